package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sshguard-go/internal/testkit"
)

// TestCheckConfigChecksTheSource: check-config, and run before it starts
// (run -t too), refuse a log file that does not exist, naming the key,
// the file and the line (or only the key when a flag gave it), as the
// daemon would at its start; with log.wait it passes, and --no-source
// leaves the source out. journald, when it is the source, must answer
// journalctl.
func TestCheckConfigChecksTheSource(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "auth.lgo")
	p := testkit.WriteConfig(t, "[ban]\nban_time = \"1h\"\n[log]\nfile = \""+missing+"\"\n")
	want := p + ":4: log.file: " + missing + " does not exist (a typo? to wait for it to appear, set [log] wait = true)"
	if _, _, err := run(t, "", "check-config", "-q", p); exitCode(err) != 2 || err.Error() != want {
		t.Errorf("check-config of a missing log file: %v (exit %d)\nwant %s", err, exitCode(err), want)
	}
	if _, _, err := run(t, "", "run", "-t", "--config", p); exitCode(err) != 2 || err.Error() != want {
		t.Errorf("run -t of a missing log file: %v (exit %d)\nwant %s", err, exitCode(err), want)
	}
	// A flag's value is not the file's: no line.
	other := filepath.Join(dir, "other.log")
	if _, _, err := run(t, "", "run", "-t", "--config", p, "--log", other); exitCode(err) != 2 ||
		err.Error() != "log.file: "+other+" does not exist (a typo? to wait for it to appear, set [log] wait = true)" {
		t.Errorf("run -t --log of a missing file: %v (exit %d)", err, exitCode(err))
	}
	if _, _, err := run(t, "", "check-config", "-q", "--no-source", p); err != nil {
		t.Errorf("check-config --no-source: %v", err)
	}
	wait := testkit.WriteConfig(t, "[log]\nfile = \""+missing+"\"\nwait = true\n")
	if _, _, err := run(t, "", "check-config", "-q", wait); err != nil {
		t.Errorf("check-config with log.wait: %v", err)
	}
	os.WriteFile(missing, nil, 0o600)
	if _, _, err := run(t, "", "check-config", "-q", p); err != nil {
		t.Errorf("check-config once the file exists: %v", err)
	}
	if _, _, err := run(t, "", "check-config", "-q", testkit.WriteConfig(t, "[log]\nfile = \""+dir+"\"\n")); exitCode(err) != 2 || !strings.Contains(err.Error(), ":2: log.file: "+dir+" is a directory") {
		t.Errorf("check-config of a directory: %v", err)
	}

	// journald: journalctl must find journal files it may read.
	bin := t.TempDir()
	t.Setenv("PATH", bin)
	journalctl := filepath.Join(bin, "journalctl")
	os.WriteFile(journalctl, []byte("#!/bin/sh\necho 'No journal files were found.' >&2\n"), 0o755)
	j := testkit.WriteConfig(t, "[log]\njournal = true\n")
	if _, _, err := run(t, "", "check-config", "-q", j); exitCode(err) != 2 || !strings.Contains(err.Error(), j+":2: log.journal: journald: there are no journal files") {
		t.Errorf("check-config of journald without journal files: %v", err)
	}
	os.WriteFile(journalctl, []byte("#!/bin/sh\necho 'File path: /run/log/journal/x/system.journal'\n"), 0o755)
	if _, _, err := run(t, "", "check-config", "-q", j); err != nil {
		t.Errorf("check-config of a readable journal: %v", err)
	}
}

// TestAllowEveryAddress: check-config and run refuse an allowlist of
// every address, from the file (with its line) or --allow (the key);
// check-config and run -t warn of an entry wider than /16 and pass.
func TestAllowEveryAddress(t *testing.T) {
	logFile := "[log]\nfile = \"" + recorded + "\"\n"
	p := testkit.WriteConfig(t, logFile+"[ban]\nallow = [\"0.0.0.0/0\"]\n")
	if _, _, err := run(t, "", "check-config", "-q", p); exitCode(err) != 2 || err.Error() != p+`:4: ban.allow: "0.0.0.0/0" is every address: nothing would ever be banned` {
		t.Errorf("check-config of allow 0.0.0.0/0: %v", err)
	}
	ok := testkit.WriteConfig(t, logFile)
	if _, _, err := run(t, "", "run", "-t", "--config", ok, "--allow", "::/0"); exitCode(err) != 2 || err.Error() != `ban.allow: "::/0" is every address: nothing would ever be banned` {
		t.Errorf("run -t --allow ::/0: %v", err)
	}
	wide := testkit.WriteConfig(t, logFile+"[ban]\nallow = [\"10.0.0.0/8\"]\n")
	want := "warning: " + wide + `:4: ban.allow: "10.0.0.0/8" is wider than /16 (the widest ban that needs no --force): no address in it is ever banned; narrow it unless it is all yours` + "\n"
	if _, stderr, err := run(t, "", "check-config", "-q", wide); err != nil || stderr != want {
		t.Errorf("check-config of allow 10.0.0.0/8: %v\n%q\nwant %q", err, stderr, want)
	}
	if _, stderr, err := run(t, "", "run", "-t", "--config", wide); err != nil || stderr != want {
		t.Errorf("run -t of allow 10.0.0.0/8: %v\n%q\nwant %q", err, stderr, want)
	}
}

// TestCheckConfigMasksNATSCredentials: check-config and run -t print
// fleet.nats_url without its user information, and warn of a file that
// holds it and others may read.
func TestCheckConfigMasksNATSCredentials(t *testing.T) {
	p := testkit.WriteConfig(t, "[log]\nfile = \""+recorded+"\"\n[fleet]\nnats_url = \"nats://sg:NATSPASS@nats.example.net:4222\"\nname = \"web-01\"\n")
	os.Chmod(p, 0o644)
	for _, args := range [][]string{{"check-config", p}, {"run", "-t", "--config", p}} {
		out, stderr, err := run(t, "", args...)
		if err != nil || strings.Contains(out, "NATSPASS") || !strings.Contains(out, "nats_url = 'nats://********@nats.example.net:4222'") {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
		if args[0] == "check-config" && !strings.Contains(stderr, p+" holds secrets and is readable by others (mode 0644)") {
			t.Errorf("%v: no warning of a file others may read: %q", args, stderr)
		}
	}
}

// TestPriorityRange: --priority and firewall.priority out of -400..400
// are refused (the kernel wrapped 9999999999 around to 1410065407).
func TestPriorityRange(t *testing.T) {
	p := testkit.WriteConfig(t, "[log]\nfile = \""+recorded+"\"\n")
	want := "firewall.priority: must be in [-400, 400], the span of nftables' named priorities (raw -300, mangle -150, filter 0, srcnat 100), is 9999999999"
	if _, _, err := run(t, "", "run", "-t", "--config", p, "--priority", "9999999999"); exitCode(err) != 2 || err.Error() != want {
		t.Errorf("run -t --priority 9999999999: %v (exit %d)\nwant %s", err, exitCode(err), want)
	}
	if out, _, err := run(t, "", "run", "-t", "--config", p, "--priority", "-400"); err != nil || !strings.Contains(out, "priority = -400") {
		t.Errorf("run -t --priority -400: %v", err)
	}
	bad := testkit.WriteConfig(t, "[firewall]\npriority = -1000\n")
	if _, _, err := run(t, "", "check-config", "--no-source", bad); exitCode(err) != 2 || !strings.Contains(err.Error(), bad+":2: firewall.priority: must be in [-400, 400]") {
		t.Errorf("check-config of priority -1000: %v", err)
	}
}

// TestCheckConfigWarnsOfSecretFiles: check-config names every secret file
// that every user may read, with its key and line, and passes.
func TestCheckConfigWarnsOfSecretFiles(t *testing.T) {
	dir := t.TempDir()
	hook, nats := filepath.Join(dir, "hook"), filepath.Join(dir, "nats-password")
	os.WriteFile(hook, []byte("https://hooks.example.org/services/SECRET\n"), 0o644)
	os.WriteFile(nats, []byte("SECRET\n"), 0o604)
	p := testkit.WriteConfig(t, "[log]\nfile = \""+recorded+"\"\n[alerts.webhook]\nurl_file = \""+hook+"\"\n[fleet]\nnats_url = \"nats://nats.example.net:4222\"\n"+
		"name = \"web-01\"\nuser = \"web-01\"\npassword_file = \""+nats+"\"\n")
	_, stderr, err := run(t, "", "check-config", "-q", p)
	want := "warning: " + p + ":4: alerts.webhook.url_file: " + hook + " is readable by every user (mode 0644): anyone on this machine can post to the webhook; chmod o-r it\n" +
		"warning: " + p + ":9: fleet.password_file: " + nats + " is readable by every user (mode 0604): anyone on this machine can ban and unban on every host of the fleet; chmod o-r it\n"
	if err != nil || stderr != want {
		t.Errorf("check-config: %v\n%s\nwant\n%s", err, stderr, want)
	}
}
