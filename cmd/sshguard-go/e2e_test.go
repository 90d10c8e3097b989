package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sshguard-go/internal/alerttest"
	"sshguard-go/internal/control"
	"sshguard-go/internal/roottest"
	"sshguard-go/internal/testkit"
)

// TestMain lets the test binary be the sshguard-go binary (SG_MAIN=1) or
// a TCP probe (SG_DIAL=addr[,bind]: exit 0 if a connection is made within
// 3 s), so end-to-end tests run the real program in namespaces.
func TestMain(m *testing.M) {
	if os.Getenv("SG_MAIN") == "1" {
		os.Args = append([]string{"sshguard-go"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	if v := os.Getenv("SG_DIAL"); v != "" {
		addr, bind, _ := strings.Cut(v, ",")
		d := net.Dialer{Timeout: 3 * time.Second}
		if bind != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(bind)}
		}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			os.Exit(1)
		}
		c.Close()
		os.Exit(0)
	}
	os.Exit(roottest.RunGuarded(m)) // and no table left in the host's ruleset
}

// selfIn runs this test binary as sshguard-go with args in the network
// namespace ns.
func selfIn(ns, self string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, self}, args...)...)
	cmd.Env = append(os.Environ(), "SG_MAIN=1")
	return cmd
}

type lab struct {
	t        *testing.T
	dir      string
	srv, cli string
	daemon   *exec.Cmd
	self     string
}

// newLab brings up the lab (scripts/lab.sh: a real sshd and rsyslog in
// one namespace, a client namespace), with PAM when pam is set, taken
// down when t ends; tools are what the test needs besides the lab's own.
func newLab(t *testing.T, prefix string, pam bool, tools ...string) *lab {
	t.Helper()
	roottest.Require(t, append([]string{"sshd", "rsyslogd", "sshpass", "ssh", "ip", "nft", "unshare"}, tools...)...)
	roottest.Lock(t, "sgtest") // the account the labs log in as: one lab at a time
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("%s%d", prefix, os.Getpid()%100000)
	l := &lab{t: t, dir: t.TempDir(), srv: name + "-s", cli: name + "-c", self: self}
	args := []string{"bash", "../../scripts/lab.sh", "up", l.dir, name}
	if pam {
		args = append(args, "pam")
	}
	l.sh(args...)
	t.Cleanup(func() {
		l.stop()
		exec.Command("bash", "../../scripts/lab.sh", "down", l.dir, name).Run()
	})
	return l
}

func (l *lab) sh(args ...string) string {
	l.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return string(out)
}

// sg runs the sshguard-go CLI against the daemon's socket.
func (l *lab) sg(args ...string) (string, error) { return cli(l.self, l.dir, args...) }

func (l *lab) start() {
	l.t.Helper()
	os.Remove(l.dir + "/ctl.sock")
	log, _ := os.OpenFile(l.dir+"/daemon.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	cmd := selfIn(l.srv, l.self, "run", "--config", l.dir+"/sshguard-go.toml",
		"--log", l.dir+"/auth.log", "--db", l.dir+"/state.db", "--socket", l.dir+"/ctl.sock")
	cmd.Stdout, cmd.Stderr = log, log
	// READY=1 must arrive once the table exists (and the log is followed).
	startReady(l.t, cmd, l.dir)
	l.daemon = cmd
	if out, err := exec.Command("ip", "netns", "exec", l.srv, "nft", "list", "table", "inet", "sshguard-go").CombinedOutput(); err != nil {
		l.t.Fatalf("READY before the table exists: %v %s", err, out)
	}
	waitControl(l.t, l.dir)
}

func (l *lab) stop() {
	if l.daemon == nil {
		return
	}
	testkit.Stop(l.t, l.daemon, 10*time.Second)
	l.daemon = nil
}

// kill ends the daemon with SIGKILL: no clean shutdown.
func (l *lab) kill() {
	l.daemon.Process.Kill()
	l.daemon.Wait()
	l.daemon = nil
}

// guess makes one wrong password attempt as user from bind. The attempt
// that crosses the threshold is banned while its connection is open: the
// kernel then drops the client's packets, so the client is given up after
// a few seconds.
func (l *lab) guess(server, user, bind string) {
	args := []string{"netns", "exec", l.cli, "timeout", "8", "sshpass", "-p", "wrong", "ssh", "-o", "StrictHostKeyChecking=no",
		"-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=3", "-o", "PreferredAuthentications=password",
		"-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1", "-l", user}
	if bind != "" {
		args = append(args, "-b", bind)
	}
	exec.Command("ip", append(args, server, "true")...).Run()
}

// login logs in with a password from bind and runs true.
func (l *lab) login(server, user, password, bind string) (string, error) {
	out, err := exec.Command("ip", "netns", "exec", l.cli, "timeout", "15", "sshpass", "-p", password, "ssh",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
		"-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no", "-b", bind, "-l", user, server, "true").CombinedOutput()
	return string(out), err
}

// alertTables returns the [alerts] part of the configuration alertConfig
// wrote to dir (the lab keeps its own [detection] and [firewall]).
func alertTables(t *testing.T, dir string) string {
	b, err := os.ReadFile(dir + "/sshguard-go.toml")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(b), "[alerts]")
	return "[alerts]" + rest
}

// reach reports whether a TCP connection from bind to server port 22 is
// made within 3 s.
func (l *lab) reach(server, bind string) bool {
	cmd := exec.Command("ip", "netns", "exec", l.cli, l.self)
	cmd.Env = append(os.Environ(), "SG_DIAL="+net.JoinHostPort(server, "22")+","+bind)
	return cmd.Run() == nil
}

func (l *lab) bans() map[string]control.BanInfo {
	l.t.Helper()
	out, err := l.sg("list", "--json")
	if err != nil {
		l.t.Fatalf("list: %v\n%s", err, out)
	}
	var list []control.BanInfo
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		l.t.Fatalf("list --json: %v\n%s", err, out)
	}
	m := map[string]control.BanInfo{}
	for _, b := range list {
		m[b.Prefix.String()] = b
	}
	return m
}

// waitBan waits up to 5 s for prefix to be listed (or not).
func (l *lab) waitBan(prefix string, want bool) {
	l.t.Helper()
	testkit.Eventually(l.t, 5*time.Second, fmt.Sprintf("%s banned = %v", prefix, want), func() (bool, string) {
		bans := l.bans()
		_, ok := bans[prefix]
		b, _ := os.ReadFile(l.dir + "/daemon.log")
		return ok == want, fmt.Sprintf("list: %v\ndaemon log:\n%s", bans, b)
	})
}

func (l *lab) nftSet(name string) string {
	out, _ := exec.Command("ip", "netns", "exec", l.srv, "nft", "list", "set", "inet", "sshguard-go", name).CombinedOutput()
	return string(out)
}

// TestEndToEnd: real sshd and rsyslog in a server namespace, sshguard-go
// run there holding its table, a real ssh client in another namespace.
func TestEndToEnd(t *testing.T) {
	l := newLab(t, "sge", false)
	t.Log("lab up")
	// Alerts go to a real SMTP server listening in the server's namespace.
	smtpd := alerttest.StartSMTP(t, alerttest.Options{Listen: func(addr string) (net.Listener, error) { return roottest.ListenIn(l.srv, addr) }})
	alerttest.WriteConfig(t, l.dir, smtpd, "")
	if err := os.WriteFile(l.dir+"/sshguard-go.toml", []byte("[ban]\nallow = []\n"+alertTables(t, l.dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	l.start()
	t.Log("daemon started")
	const server, attacker, friend = "10.200.9.1", "10.200.9.2", "10.200.9.3"

	if !l.reach(server, attacker) {
		t.Fatal("client cannot reach sshd before any attempt")
	}
	// A real successful login arrives as a login alert by email.
	if out, err := l.login(server, "sgtest", "right-password", friend); err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}
	mails := smtpd.Wait(1, 10*time.Second)
	if subj := mails[0].Header.Get("Subject"); !strings.HasPrefix(subj, "[web-01] login: sgtest from "+friend+" (password)") {
		t.Fatalf("login alert subject %q", subj)
	}
	// Five wrong guesses, one with a user name carrying another address.
	for _, u := range []string{"admin", "x from 10.9.9.9 port 22", "oracle", "test", "guest"} {
		l.guess(server, u, attacker)
	}
	t.Log("five guesses made")
	l.waitBan(attacker+"/32", true)
	t.Log("banned")
	testkit.Eventually(t, 5*time.Second, "a ban alert mail", func() (bool, string) {
		var subjects []string
		for _, m := range smtpd.Mails() {
			if strings.HasPrefix(m.Header.Get("Subject"), "[web-01] banned "+attacker+" (") {
				return true, ""
			}
			subjects = append(subjects, m.Header.Get("Subject"))
		}
		return false, fmt.Sprintf("mails %q", subjects)
	})
	if l.reach(server, attacker) {
		t.Fatal("banned client still connects")
	}
	if _, ok := l.bans()["10.9.9.9/32"]; ok {
		t.Fatal("the address in the user name was banned")
	}
	if out, _ := l.sg("list"); !strings.Contains(out, attacker) {
		t.Fatalf("list:\n%s", out)
	}

	// unban restores access and resets the counter.
	if out, err := l.sg("unban", attacker); err != nil {
		t.Fatalf("unban: %v %s", err, out)
	}
	if !l.reach(server, attacker) {
		t.Fatal("client cannot connect after unban")
	}
	l.guess(server, "admin", attacker)
	time.Sleep(500 * time.Millisecond)
	if _, ok := l.bans()[attacker+"/32"]; ok {
		t.Fatal("banned again at the first attempt after unban")
	}

	// An allowlisted client is never banned.
	if out, err := l.sg("allow", "add", friend, "--comment", "admin laptop"); err != nil {
		t.Fatalf("allow add: %v %s", err, out)
	}
	for i := 0; i < 7; i++ {
		l.guess(server, "root", friend)
	}
	time.Sleep(500 * time.Millisecond)
	if _, ok := l.bans()[friend+"/32"]; ok || !l.reach(server, friend) {
		t.Fatal("allowlisted client banned")
	}

	// IPv6 offenders are banned per /64.
	for i := 0; i < 5; i++ {
		l.guess("fd00:209::1", "admin", "")
	}
	l.waitBan("fd00:209::/64", true)
	if l.reach("fd00:209::1", "") {
		t.Fatal("banned IPv6 client still connects")
	}

	// Log rotation during an attack loses no attempt: 3 before, 2 after.
	for i := 0; i < 3; i++ {
		l.guess(server, "admin", attacker)
	}
	time.Sleep(300 * time.Millisecond)
	l.sh("mv", l.dir+"/auth.log", l.dir+"/auth.log.1")
	for i := 0; i < 1; i++ {
		l.guess(server, "admin", attacker) // still written to the old file
	}
	pid := strings.TrimSpace(l.sh("cat", l.dir+"/rsyslog.pid"))
	l.sh("kill", "-HUP", pid)
	// rsyslog reopens its file at the next line after the signal: a line
	// of another program (which the daemon ignores) until the new file
	// is there, so that the guess below is written to it.
	testkit.Eventually(t, 30*time.Second, "rsyslog writes a new auth.log", func() (bool, string) {
		l.sh("logger", "-u", l.dir+"/log", "-p", "auth.info", "-t", "rotation-check", "reopened")
		_, err := os.Stat(l.dir + "/auth.log")
		return err == nil, fmt.Sprint(err)
	})
	l.guess(server, "admin", attacker) // to the new file: the fifth since the unban's
	l.waitBan(attacker+"/32", true)

	// Someone deletes our table: restored within 5 s with its bans.
	l.sh("ip", "netns", "exec", l.srv, "nft", "delete", "table", "inet", "sshguard-go")
	testkit.Eventually(t, 5*time.Second, "table and bans restored", func() (bool, string) {
		set := l.nftSet("ip4_32")
		return strings.Contains(set, attacker), set
	})

	// Killing the daemon (SIGKILL) and starting it again keeps every ban.
	l.kill()
	l.start()
	if b := l.bans(); len(b) != 2 {
		t.Fatalf("after restart: %v", b)
	}
	// A reboot (empty kernel, same database) restores them with their
	// remaining time.
	l.stop()
	l.sh("ip", "netns", "exec", l.srv, "nft", "delete", "table", "inet", "sshguard-go")
	l.start()
	set6 := l.nftSet("ip6_64")
	if !strings.Contains(set6, "fd00:209:: timeout") || !strings.Contains(set6, "expires") {
		t.Fatalf("after reboot the kernel set is:\n%s", set6)
	}
	if l.reach(server, attacker) {
		t.Fatal("ban not enforced after reboot")
	}
	if out, err := l.sg("status"); err != nil || !strings.Contains(out, "active bans 2") {
		t.Fatalf("status: %v\n%s", err, out)
	}

	// SIGHUP re-reads the configuration: allowlisting the banned client
	// there lifts its ban at once.
	if err := os.WriteFile(l.dir+"/sshguard-go.toml", []byte("[ban]\nallow = [\""+attacker+"\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l.daemon.Process.Signal(syscall.SIGHUP)
	l.waitBan(attacker+"/32", false)
	if !l.reach(server, attacker) {
		t.Fatal("client allowlisted by reload still blocked")
	}
	var log bytes.Buffer
	b, _ := os.ReadFile(filepath.Join(l.dir, "daemon.log"))
	log.Write(b)
	if strings.Contains(log.String(), "level=ERROR") {
		t.Errorf("daemon logged errors:\n%s", log.String())
	}
}

// TestAdminWithoutDaemon: with no daemon, ban/list/unban work directly on
// the database and the kernel set (in a fresh network namespace).
func TestAdminWithoutDaemon(t *testing.T) {
	roottest.Require(t, "ip", "nft")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ns, _ := roottest.NetNS(t, "sga")
	dir := t.TempDir()
	// sgWith runs the CLI in the namespace with args and then extra.
	sgWith := func(extra []string, args ...string) (string, int) {
		out, err := selfIn(ns, self, append(args, extra...)...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	sg := func(args ...string) (string, int) {
		return sgWith([]string{"--db", dir + "/s.db", "--socket", dir + "/none.sock"}, args...)
	}
	if out, code := sg("ban", "192.0.2.1", "--for", "2h"); code != 0 {
		t.Fatalf("ban: %d %s", code, out)
	}
	if out, code := sg("ban", "2001:db8::5", "--permanent"); code != 0 {
		t.Fatalf("ban: %d %s", code, out)
	}
	out, _ := sg("list", "--json")
	if !strings.Contains(out, "192.0.2.1/32") || !strings.Contains(out, "2001:db8::5/128") {
		t.Fatalf("list: %s", out)
	}
	set, _ := exec.Command("ip", "netns", "exec", ns, "nft", "list", "set", "inet", "sshguard-go", "ip4_32").CombinedOutput()
	if !strings.Contains(string(set), "192.0.2.1") {
		t.Fatalf("kernel set: %s", set)
	}
	if out, code := sg("unban", "192.0.2.1", "192.0.2.99"); code != 1 || !strings.Contains(out, "not banned: 192.0.2.99/32") {
		t.Fatalf("unban with one unknown: %d %s", code, out)
	}
	set, _ = exec.Command("ip", "netns", "exec", ns, "nft", "list", "set", "inet", "sshguard-go", "ip4_32").CombinedOutput()
	if strings.Contains(string(set), "192.0.2.1") {
		t.Fatalf("still in the kernel set: %s", set)
	}
	if out, code := sg("status"); code != 3 || !strings.Contains(out, "no daemon") {
		t.Fatalf("status: %d %s", code, out)
	}
	if out, code := sg("allow", "rm", "198.51.100.0/24"); code != 1 {
		t.Fatalf("allow rm of a missing entry: %d %s", code, out)
	}

	// Without flags, the commands take the database, socket, table and
	// allowlist from the configuration file, as the daemon would.
	cfg := fmt.Sprintf("[ban]\nallow = [\"192.0.2.77\"]\nban_time = \"3h\"\n[firewall]\ntable = \"sgcustom\"\n[state]\ndb = %q\nsocket = %q\n",
		dir+"/other.db", dir+"/none.sock")
	if err := os.WriteFile(dir+"/sg.toml", []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	sgc := func(args ...string) (string, int) { return sgWith([]string{"--config", dir + "/sg.toml"}, args...) }
	if out, code := sgc("ban", "192.0.2.5"); code != 0 {
		t.Fatalf("ban with the config: %d %s", code, out)
	}
	set, _ = exec.Command("ip", "netns", "exec", ns, "nft", "list", "set", "inet", "sgcustom", "ip4_32").CombinedOutput()
	if !strings.Contains(string(set), "192.0.2.5 timeout 3h") {
		t.Fatalf("the configured table and ban time were not used:\n%s", set)
	}
	if out, code := sgc("ban", "192.0.2.77"); code == 0 || !strings.Contains(out, "allowlist") {
		t.Fatalf("banned an address the configuration allowlists: %d %s", code, out)
	}
	if _, err := os.Stat(dir + "/other.db"); err != nil {
		t.Fatalf("the configured database was not used: %v", err)
	}

	// The administrator's own table: read-only commands leave it alone,
	// writing ones refuse it, and nothing in it changes.
	rules := dir + "/filter.nft"
	os.WriteFile(rules, []byte(debianFilter), 0o600)
	if out, err := exec.Command("ip", "netns", "exec", ns, "nft", "-f", rules).CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v %s", err, out)
	}
	listFilter := func() string {
		out, _ := exec.Command("ip", "netns", "exec", ns, "nft", "list", "table", "inet", "filter").CombinedOutput()
		return string(out)
	}
	before := listFilter()
	ft := []string{"--db", dir + "/s.db", "--socket", dir + "/none.sock", "--table", "filter"}
	if out, code := sgWith(ft, "list"); code != 0 {
		t.Fatalf("list --table filter: %d %s", code, out)
	}
	// A command that only reads makes no database where there is none.
	if out, code := sgWith([]string{"--db", dir + "/f.db", "--socket", dir + "/none.sock", "--table", "filter"}, "list"); code != 1 ||
		!strings.Contains(out, "no database at "+dir+"/f.db") {
		t.Fatalf("list with no database: %d %s", code, out)
	}
	if _, err := os.Stat(dir + "/f.db"); err == nil {
		t.Fatal("list made a database")
	}
	if out, code := sgWith(ft, "ban", "192.0.2.9"); code == 0 || !strings.Contains(out, "was not created by sshguard-go") {
		t.Fatalf("ban into the administrator's table: %d %s", code, out)
	}
	if after := listFilter(); after != before {
		t.Fatalf("inet filter changed:\n%s\nwas:\n%s", after, before)
	}
}

// debianFilter is a table like Debian's /etc/nftables.conf with a policy
// of drop and a set of its own.
const debianFilter = `table inet filter {
	set admins { type ipv4_addr; elements = { 192.0.2.200 } }
	chain input { type filter hook input priority filter; policy drop; ip saddr @admins accept; }
	chain forward { type filter hook forward priority filter; policy drop; }
	chain output { type filter hook output priority filter; policy accept; }
}
`

// TestReportBanInNamespace: report --ban puts the archive's offenders in
// the kernel set of a daemon running in a fresh network namespace, the
// allowlist applying; with the daemon stopped, it bans as sshguard-go ban
// does, in the database and the kernel.
func TestReportBanInNamespace(t *testing.T) {
	roottest.Require(t, "ip", "nft")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ns, _ := roottest.NetNS(t, "sgr")
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive.log")
	var b strings.Builder
	for i := range 12 {
		for _, ip := range []string{"203.0.113.50", "198.51.100.60"} {
			fmt.Fprintf(&b, "Nov 23 20:14:%02d h sshd[%d]: Failed password for root from %s port 1 ssh2\n", i, 100+i, ip)
		}
	}
	os.WriteFile(archive, []byte(b.String()), 0o644)
	os.WriteFile(dir+"/auth.log", nil, 0o644)
	cfg := dir + "/sg.toml"
	os.WriteFile(cfg, []byte("[ban]\nallow = [\"198.51.100.0/24\"]\n"), 0o600)
	sg := func(args ...string) (string, error) {
		out, err := selfIn(ns, self, append(args, "--config", cfg, "--db", dir+"/state.db", "--socket", dir+"/ctl.sock")...).CombinedOutput()
		return string(out), err
	}
	set := func() string {
		out, _ := exec.Command("ip", "netns", "exec", ns, "nft", "list", "set", "inet", "sshguard-go", "ip4_32").CombinedOutput()
		return string(out)
	}

	log, _ := os.Create(dir + "/daemon.log")
	defer log.Close()
	d := selfIn(ns, self, "run", "--config", cfg, "--log", dir+"/auth.log", "--db", dir+"/state.db", "--socket", dir+"/ctl.sock")
	d.Stdout, d.Stderr = log, log
	startReady(t, d, dir)
	waitControl(t, dir)
	out, err := sg("report", "--threshold", "10", "--ban", "--for", "2h", archive)
	if err != nil || !strings.Contains(out, "banned 203.0.113.50/32") || strings.Contains(out, "banned 198.51.100.60") {
		t.Fatalf("report --ban: %v\n%s", err, out)
	}
	if s := set(); !strings.Contains(s, "203.0.113.50") || strings.Contains(s, "198.51.100.60") {
		t.Fatalf("kernel set after report --ban:\n%s", s)
	}
	if out, _ := sg("list"); !strings.Contains(out, "archive: 12 failed attempts in all") {
		t.Fatalf("list:\n%s", out)
	}

	// Without a daemon: the same ban, straight into the database and set.
	testkit.Stop(t, d, 10*time.Second)
	if _, err := sg("unban", "203.0.113.50"); err != nil || strings.Contains(set(), "203.0.113.50") {
		t.Fatalf("unban without daemon: %v\n%s", err, set())
	}
	out, err = sg("report", "--threshold", "10", "--ban", archive)
	if err != nil || !strings.Contains(out, "banned 203.0.113.50/32") || !strings.Contains(set(), "203.0.113.50") {
		t.Fatalf("report --ban without daemon: %v\n%s\n%s", err, out, set())
	}
}
