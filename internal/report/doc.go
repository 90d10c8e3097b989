// Package report summarises detected events per client address: counted
// failed attempts and probes, logins, users tried, first and last seen.
// The offline report command prints it; what the daemon and its API count
// must agree with it.
//
// The files: window.go (the time window and the command's flags),
// select.go (weights, allowlist, threshold and top), output.go (text and
// JSON), bridges.go (the offenders and ban requests for alert and control).
package report
