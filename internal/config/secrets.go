package config

import "strings"

// mask stands for a secret in what check-config and run -t print.
const mask = "********"

// userinfo returns the user information of the URL u, "user:password" of
// scheme://user:password@host/..., and where it is in u; "" when u has
// none. The last '@' ends it, so that a password's unescaped '/', '?' or
// '@' is never taken for the host: a path holding '@' is masked too much,
// never too little.
func userinfo(u string) (info string, start, end int) {
	if k := strings.Index(u, "://"); k >= 0 {
		start = k + len("://")
	}
	at := strings.LastIndex(u[start:], "@")
	if at < 0 {
		return "", 0, 0
	}
	return u[start : start+at], start, start + at
}

// maskUserinfo is u with its user information masked whole: a password
// (user:password@), and a user alone too, which NATS takes for a token
// (nats://TOKEN@host).
func maskUserinfo(u string) string {
	if info, start, end := userinfo(u); info != "" {
		return u[:start] + mask + u[end:]
	}
	return u
}

// hasUserinfo reports whether the URL u carries user information.
func hasUserinfo(u string) bool {
	info, _, _ := userinfo(u)
	return info != ""
}
