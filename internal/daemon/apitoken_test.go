package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sshguard-go/internal/api"
	"sshguard-go/internal/roottest"
	"sshguard-go/internal/session"
	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

// localUserEnv, set, makes the test binary the unprivileged client of
// TestAPIAsLocalUser (TestMain) instead of running tests.
const localUserEnv = "SSHGUARD_TEST_API_AS_LOCAL_USER"

func TestMain(m *testing.M) {
	if v := os.Getenv(localUserEnv); v != "" {
		os.Exit(asLocalUser(v))
	}
	if v := os.Getenv(noisyChildEnv); v != "" {
		os.Exit(noisyReportChild(v)) // the report process of BenchmarkNoisyNeighbour
	}
	if v := os.Getenv(noisyAuditEnv); v != "" {
		os.Exit(noisyAuditChild(v)) // its audit stream
	}
	if v := os.Getenv(noisyFleetEnv); v != "" {
		os.Exit(noisyFleetChild(v)) // its fleet peer
	}
	if v := os.Getenv(noisyAPIEnv); v != "" {
		os.Exit(noisyAPIChild(v)) // its API clients
	}
	os.Exit(roottest.RunGuarded(m)) // and no table left in the host's ruleset
}

// localUserAsk is what the unprivileged client is asked to do: read the
// token file, and GET each path of the API at base without credentials.
type localUserAsk struct {
	Base, TokenFile string
	Paths           []string
	Secret          string // what no answer may hold
}

// localUserSaw is what it saw.
type localUserSaw struct {
	UID, GID, Groups int
	TokenErr         string // "" when it read the token file
	Codes            map[string]int
	Leaks            []string // the paths whose answer held the secret
}

// asLocalUser runs in the child: it does what ask (JSON) says and prints
// what it saw as JSON.
func asLocalUser(ask string) int {
	var a localUserAsk
	if err := json.Unmarshal([]byte(ask), &a); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	groups, _ := os.Getgroups()
	saw := localUserSaw{UID: os.Getuid(), GID: os.Getgid(), Groups: len(groups), Codes: map[string]int{}}
	if _, err := os.ReadFile(a.TokenFile); err != nil {
		saw.TokenErr = err.Error()
	}
	c := &http.Client{Timeout: 10 * time.Second}
	for _, p := range a.Paths {
		resp, err := c.Get(a.Base + p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		saw.Codes[p] = resp.StatusCode
		if strings.Contains(string(b), a.Secret) {
			saw.Leaks = append(saw.Leaks, p)
		}
	}
	json.NewEncoder(os.Stdout).Encode(saw)
	return 0
}

// examplePath is a URL path that the route pattern p serves.
func examplePath(p string) string {
	switch p {
	case "/assets/":
		return "/assets/app.js"
	case "/{$}":
		return "/"
	}
	return strings.ReplaceAll(p, "{date}", time.Now().Format(time.DateOnly))
}

// TestAPIAsLocalUser: the daemon (root) serves its API on loopback with
// no api.token_file, as installed; another account of the machine (uid
// 65534, no supplementary groups) cannot read the token the daemon made,
// gets 401 on every private path of the route table (the audit trail's
// sessions with their command lines, the logins, events and bans) and
// the counts and pages only; with the token, root reads it all.
func TestAPIAsLocalUser(t *testing.T) {
	roottest.Require(t)
	h := newHarness(t)
	// The directories on the way are open to all, as /var/lib is: only
	// the token file's own mode keeps it.
	for _, d := range []string{h.dir, filepath.Dir(h.dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The audit trail holds a command line with a password.
	const secret = "S3cret-of-alice"
	db, err := store.Open(filepath.Join(h.dir, "state.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Hour)
	end := start.Add(time.Minute)
	ss := &session.Session{Host: "web-01", PID: 40, User: "alice", IP: "198.51.100.7", Port: 50000, Method: "password", Start: start, End: &end,
		Duration: 60, EndReason: session.EndLogout, Commands: []session.Command{{Time: end, Argv: []string{"mysql", "-uroot", "-p" + secret}, Cwd: "/"}}}
	db.PutSession(store.SessionKey(ss.Start, ss.Host, ss.PID), ss.Marshal(), false)
	db.RecordLogin(store.Login{Time: start, User: "alice", Addr: netip.MustParseAddr("198.51.100.7"), Method: "password"},
		func(store.LoginHistory, *store.Login) []byte { return nil })
	db.Close()

	writeConfig(t, h.dir, "[alerts]\nhostname = \"web-01\"\n[api]\nlisten = \"127.0.0.1:0\"\n")
	h.logf("Failed password for root from 203.0.113.9 port 40000 ssh2")
	h.start()
	base := "http://" + h.d.APIAddr()
	tokenFile := filepath.Join(h.dir, "api.token")
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatalf("the daemon made no token: %v\n%s", err, h.log.String())
	}
	tok := strings.TrimSpace(string(b))

	// The test binary, where uid 65534 may run it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	binDir, err := os.MkdirTemp("", "sshguard-go-apiuser")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(binDir) })
	os.Chmod(binDir, 0o755)
	bin := filepath.Join(binDir, "client")
	copyFile(t, self, bin, 0o755)

	routes := api.Routes()
	ask := localUserAsk{Base: base, TokenFile: tokenFile, Secret: secret}
	for _, rt := range routes {
		ask.Paths = append(ask.Paths, examplePath(rt.Path))
	}
	ask.Paths = append(ask.Paths, "/api/v1/sessions?active=1", "/api/v1/sessions?since=2000-01-01T00:00:00Z&limit=10000")
	askJSON, _ := json.Marshal(ask)
	cmd := exec.Command(bin)
	cmd.Env = []string{localUserEnv + "=" + string(askJSON)}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the client as uid 65534: %v\n%s", err, stderr.String())
	}
	var saw localUserSaw
	if err := json.Unmarshal(out, &saw); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if saw.UID != 65534 || saw.GID != 65534 || saw.Groups > 1 {
		t.Fatalf("the client ran as uid %d gid %d with %d groups", saw.UID, saw.GID, saw.Groups)
	}
	if !strings.Contains(saw.TokenErr, "permission denied") {
		t.Errorf("uid 65534 reading %s: %q, want permission denied", tokenFile, saw.TokenErr)
	}
	for _, rt := range routes {
		p := examplePath(rt.Path)
		want := 200
		if rt.Access == api.Private {
			want = 401
		}
		if got := saw.Codes[p]; got != want {
			t.Errorf("uid 65534: GET %s (%v): %d, want %d", p, rt.Access, got, want)
		}
	}
	for _, p := range ask.Paths[len(routes):] {
		if got := saw.Codes[p]; got != 401 {
			t.Errorf("uid 65534: GET %s: %d, want 401", p, got)
		}
	}
	if len(saw.Leaks) > 0 {
		t.Errorf("uid 65534 read the command line's password in %v", saw.Leaks)
	}

	// Root, with the token, reads every path, the command line too.
	for _, p := range ask.Paths {
		if code := getJSON(t, http.DefaultClient, base+p, tok, nil); code != 200 {
			t.Errorf("with the token: GET %s: %d", p, code)
		}
	}
	var sessions []map[string]any
	getJSON(t, http.DefaultClient, base+"/api/v1/sessions", tok, &sessions)
	if raw, _ := json.Marshal(sessions); !strings.Contains(string(raw), secret) {
		t.Errorf("with the token, the sessions lack the command line: %s", raw)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAPITokenFile: an API on loopback without api.token_file gets a
// token the daemon makes once next to its database (mode 0600, its own,
// logged), and keeps across restarts; private paths need it. A token
// file of api.token_file is used instead, as before (with a warning when
// every user may read it). A file in the way
// that others may read, another user's, a link, or too short stops the
// daemon with the reason.
func TestAPITokenFile(t *testing.T) {
	h := newHarness(t)
	path := filepath.Join(h.dir, "api.token")
	writeConfig(t, h.dir, "[api]\nlisten = \"127.0.0.1:0\"\n")
	h.start()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatalf("no token made: %v\n%s", err, h.log.String())
	}
	if !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want a regular file 0600", path, st.Mode())
	}
	if s := st.Sys().(*syscall.Stat_t); int(s.Uid) != os.Geteuid() {
		t.Errorf("%s: uid %d, want %d", path, s.Uid, os.Geteuid())
	}
	b, _ := os.ReadFile(path)
	tok := strings.TrimSpace(string(b))
	if len(tok) != 64 || strings.Trim(tok, "0123456789abcdef") != "" {
		t.Errorf("token %q: want 64 hex digits", tok)
	}
	// The API logs where it serves, with the token's file, once it does.
	testkit.Eventually(t, 30*time.Second, "the log names "+path, func() (bool, string) {
		return strings.Contains(h.log.String(), "token_file="+path), h.log.String()
	})
	if left, _ := filepath.Glob(filepath.Join(h.dir, ".api.token*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	base := "http://" + h.d.APIAddr()
	for _, c := range []struct {
		path, token string
		want        int
	}{{"/api/v1/sessions", "", 401}, {"/api/v1/sessions", tok, 200}, {"/api/v1/bans", tok, 200}, {"/api/v1/summary", "", 200}} {
		if got := getJSON(t, http.DefaultClient, base+c.path, c.token, nil); got != c.want {
			t.Errorf("GET %s with token %.8q: %d, want %d", c.path, c.token, got, c.want)
		}
	}
	h.halt()

	// A restart keeps it, and makes none.
	made := strings.Count(h.log.String(), "made a token")
	h.start()
	if b2, _ := os.ReadFile(path); string(b2) != string(b) {
		t.Errorf("restarted: token %q, was %q", b2, b)
	}
	if n := strings.Count(h.log.String(), "made a token"); n != made || made != 1 {
		t.Errorf("%d tokens made over two starts, want 1", n)
	}
	if got := getJSON(t, http.DefaultClient, "http://"+h.d.APIAddr()+"/api/v1/sessions", tok, nil); got != 200 {
		t.Errorf("restarted: the token gets %d", got)
	}
	h.halt()

	// api.token_file, when set, is the token; the daemon's own opens
	// nothing then.
	own := "explicit-token-0123456789abcdef"
	os.WriteFile(filepath.Join(h.dir, "token"), []byte(own+"\n"), 0o600)
	writeConfig(t, h.dir, "[api]\nlisten = \"127.0.0.1:0\"\ntoken_file = \""+filepath.Join(h.dir, "token")+"\"\n")
	h.start()
	base = "http://" + h.d.APIAddr()
	if got := getJSON(t, http.DefaultClient, base+"/api/v1/sessions", own, nil); got != 200 {
		t.Errorf("api.token_file's token: %d", got)
	}
	if got := getJSON(t, http.DefaultClient, base+"/api/v1/sessions", tok, nil); got != 401 {
		t.Errorf("the daemon's own token with api.token_file set: %d", got)
	}
	if !strings.Contains(h.log.String(), "token_file="+filepath.Join(h.dir, "token")) {
		t.Errorf("the log does not name api.token_file:\n%s", h.log.String())
	}
	if strings.Contains(h.log.String(), "readable by every user") {
		t.Errorf("a warning about a token file of mode 0600:\n%s", h.log.String())
	}
	h.halt()
	// One every user may read is used, with a warning.
	os.Chmod(filepath.Join(h.dir, "token"), 0o644)
	h.start()
	if !strings.Contains(h.log.String(), "api.token_file: "+filepath.Join(h.dir, "token")+" is readable by every user (mode 0644)") {
		t.Errorf("no warning about a token file of mode 0644:\n%s", h.log.String())
	}
	h.halt()

	// What is refused.
	writeConfig(t, h.dir, "[api]\nlisten = \"127.0.0.1:0\"\n")
	refused := func(t *testing.T, want string) {
		t.Helper()
		d, err := New(context.Background(), h.config(), WithLogger(slog.New(slog.DiscardHandler)), WithNotify(func(string) {}), WithFirewall(h.fw))
		if err == nil {
			d.Close()
			t.Fatalf("the daemon started, want %q", want)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v, want %q", err, want)
		}
	}
	t.Run("readable by others", func(t *testing.T) {
		os.Chmod(path, 0o644)
		defer os.Chmod(path, 0o600)
		refused(t, "mode 0644")
		os.Chmod(path, 0o620)
		refused(t, "mode 0620")
	})
	t.Run("a link", func(t *testing.T) {
		link := filepath.Join(h.dir, "elsewhere")
		os.Rename(path, link)
		defer os.Rename(link, path)
		os.Symlink(link, path)
		defer os.Remove(path)
		refused(t, "symbolic link")
	})
	t.Run("too short", func(t *testing.T) {
		os.Rename(path, path+".keep")
		defer os.Rename(path+".keep", path)
		os.WriteFile(path, []byte("short\n"), 0o600)
		refused(t, "at least 16")
	})
	t.Run("another user's", func(t *testing.T) {
		roottest.Require(t)
		os.Chown(path, 65534, 65534)
		defer os.Chown(path, 0, 0)
		refused(t, "belongs to uid 65534")
	})
	if b3, _ := os.ReadFile(path); string(b3) != string(b) {
		t.Errorf("after the refusals: token %q, was %q", b3, b)
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		t.Error("the token file is gone")
	}
}
