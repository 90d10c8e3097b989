package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"sshguard-go/internal/alerttest"
	"sshguard-go/internal/ban"
	"sshguard-go/internal/config"
	"sshguard-go/internal/control"
	"sshguard-go/internal/daemon"
	"sshguard-go/internal/loggen"
	"sshguard-go/internal/testkit"
)

// s3Client is a client of the test's S3 server, for putting objects.
func s3Client(srv *testkit.S3) *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.Secret, "")})
}

func put(t *testing.T, c *s3.Client, bucket, key string, data []byte) {
	t.Helper()
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data)}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// TestS3Archives: report over an S3 prefix with archives in four
// compressions gives byte for byte the report of the same local files;
// a truncated archive is reported by name while the others are read; a
// missing bucket and wrong credentials are named with S3's error code;
// --since does not fetch objects last modified before it.
func TestS3Archives(t *testing.T) {
	srv := testkit.StartS3(t)
	c := s3Client(srv)
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("logs")}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var local []string
	for i, kind := range []string{"gz", "zst", "xz", "plain"} {
		var plain bytes.Buffer
		if err := loggen.Write(&plain, 2000, uint64(i+1), loggen.RFC3339); err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(plain.String(), " web-01 ", fmt.Sprintf(" web-%d ", i))
		var data bytes.Buffer
		switch kind {
		case "gz":
			w := gzip.NewWriter(&data)
			w.Write([]byte(text))
			w.Close()
		case "zst":
			w, _ := zstd.NewWriter(&data)
			w.Write([]byte(text))
			w.Close()
		case "xz":
			w, _ := xz.NewWriter(&data)
			w.Write([]byte(text))
			w.Close()
		default:
			data.WriteString(text)
		}
		name := fmt.Sprintf("auth.log.%d", 4-i)
		put(t, c, "logs", "web/"+name, data.Bytes())
		p := filepath.Join(dir, name)
		os.WriteFile(p, data.Bytes(), 0o644)
		local = append([]string{p}, local...) // key order: auth.log.1 .. auth.log.4
	}
	cfg := testkit.WriteConfig(t, "")
	fromS3, _, err := run(t, "", "report", "--json", "--config", cfg, "-j", "1", "s3://logs/web/")
	if err != nil {
		t.Fatal(err)
	}
	fromFiles, _, err := run(t, "", append([]string{"report", "--json", "--config", cfg, "-j", "1"}, local...)...)
	if err != nil || fromS3 != fromFiles || len(fromS3) < 1000 {
		t.Fatalf("report from S3 (%d bytes) differs from the files' (%d bytes): %v", len(fromS3), len(fromFiles), err)
	}

	// A truncated archive among good ones.
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	for range 3000 {
		w.Write([]byte("2026-11-23T20:14:49Z h sshd[1]: Invalid user a from 192.0.2.99 port 1\n"))
	}
	w.Close()
	put(t, c, "logs", "web/auth.log.0.gz", gz.Bytes()[:gz.Len()/2])
	out, stderr, err := run(t, "", "report", "--json", "--config", cfg, "s3://logs/web/")
	if exitCode(err) != 1 || !strings.Contains(stderr, "s3://logs/web/auth.log.0.gz") || !strings.Contains(out, "192.0.2.99") || len(out) < len(fromS3) {
		t.Fatalf("truncated object: exit %d\n%s", exitCode(err), stderr)
	}

	// A prefix of hundreds of objects (more than a page of a listing with
	// a small page is not needed: the paginator is the SDK's), read in key order.
	for i := range 300 {
		put(t, c, "logs", fmt.Sprintf("many/%03d.log", i), []byte(fmt.Sprintf("2026-11-23T20:14:49Z h sshd[%d]: Invalid user u%d from 192.0.2.%d port 1\n", 1000+i, i, i%250+1)))
	}
	out, _, err = run(t, "", "scan", "--json", "-j", "2", "s3://logs/many/")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); err != nil || len(lines) != 300 || !strings.Contains(lines[0], `"user":"u0"`) || !strings.Contains(lines[299], `"user":"u299"`) {
		t.Fatalf("300 objects: %d lines, %v", len(lines), err)
	}

	// Errors name the bucket and S3's code.
	if _, _, err := run(t, "", "report", "--config", cfg, "s3://nosuchbucket/x"); exitCode(err) != 1 || !strings.Contains(err.Error(), "NoSuchBucket") || !strings.Contains(err.Error(), "s3://nosuchbucket/x") {
		t.Fatalf("missing bucket: %v", err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	if _, _, err := run(t, "", "report", "--config", cfg, "s3://logs/web/"); exitCode(err) != 1 || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("wrong credentials: %v", err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.Secret)

	// --since: objects last modified before it are not fetched.
	time.Sleep(2 * time.Second)
	put(t, c, "logs", "new/auth.log", []byte(time.Now().UTC().Format(time.RFC3339Nano)+" h sshd[1]: Invalid user b from 192.0.2.77 port 1\n"))
	var gets atomic.Int64
	target, _ := url.Parse(srv.Endpoint)
	proxy := httputil.NewSingleHostReverseProxy(target)
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && !r.URL.Query().Has("list-type") {
			gets.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	defer counting.Close()
	out, _, err = run(t, "", "report", "--json", "--config", cfg, "--since", "1s", "--s3-endpoint", counting.URL, "s3://logs/")
	if err != nil || gets.Load() != 1 || !strings.Contains(out, "192.0.2.77") {
		t.Fatalf("--since: %d GETs, %v\n%s", gets.Load(), err, out)
	}
}

// TestReportNotifyAndBan: report --notify sends one message with the
// addresses over the threshold through the configured channels (a real
// SMTP server and a webhook here), and nothing when nobody crosses it;
// report --ban bans them through the running daemon, the allowlist
// applying.
func TestReportNotifyAndBan(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "auth.log")
	var b strings.Builder
	for i := range 12 {
		for _, ip := range []string{"203.0.113.50", "198.51.100.60"} {
			fmt.Fprintf(&b, "Nov 23 20:14:%02d h sshd[%d]: Failed password for root%d from %s port 1 ssh2\n", i, 100+i, i%3, ip)
		}
	}
	b.WriteString("Nov 23 20:15:00 h sshd[999]: Failed password for root from 192.0.2.200 port 1 ssh2\n")
	os.WriteFile(log, []byte(b.String()), 0o644)
	smtpd := alerttest.StartSMTP(t, alerttest.Options{})
	var hooks []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hooks = append(hooks, string(body))
	}))
	defer hook.Close()
	cfg := alerttest.WriteConfig(t, dir, smtpd, fmt.Sprintf("[alerts.webhook]\nurl = %q\nkinds = [\"report\"]\n[ban]\nallow = [\"198.51.100.0/24\"]\n", hook.URL))
	_, stderr, err := run(t, "", "report", "--config", cfg, "--threshold", "10", "--notify", log)
	if err != nil || !strings.Contains(stderr, "notified email") || !strings.Contains(stderr, "notified webhook") {
		t.Fatalf("--notify: %v\n%s", err, stderr)
	}
	m := smtpd.Wait(1, 5*time.Second)[0]
	if !strings.Contains(m.Header.Get("Subject"), "archives: 1 addresses reached 10 attempts") || !strings.Contains(m.Text, "203.0.113.50") ||
		strings.Contains(m.Text, "198.51.100.60") || len(hooks) != 1 || !strings.Contains(hooks[0], "203.0.113.50") {
		t.Fatalf("mail %q\n%s\nhooks %q", m.Header.Get("Subject"), m.Text, hooks)
	}
	if _, stderr, _ := run(t, "", "report", "--config", cfg, "--threshold", "50", "--notify", log); !strings.Contains(stderr, "nothing to notify") || len(smtpd.Mails()) != 1 {
		t.Fatalf("nobody over 50: %s, %d mails", stderr, len(smtpd.Mails()))
	}

	// --ban through a running daemon (its kernel set in memory).
	fw := &memFW{set: map[netip.Prefix]time.Duration{}}
	d, err := daemon.New(context.Background(), mustLoad(t, cfg, dir), daemon.WithNotify(func(string) {}), daemon.WithFirewall(fw))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitControl(t, dir)
	_, out, err := run(t, "", "report", "--config", cfg, "--threshold", "10", "--ban", "--for", "2h",
		"--socket", dir+"/ctl.sock", "--db", dir+"/state.db", "--allow", "203.0.113.99", log)
	if err != nil || !strings.Contains(out, "sshguard-go: banned 203.0.113.50/32\n") || strings.Count(out, "banned") != 1 {
		t.Fatalf("--ban: %v\n%s", err, out)
	}
	c, _ := control.Dial(dir + "/ctl.sock")
	list, _ := c.Bans(context.Background())
	bans := list.Bans
	if len(bans) != 1 || bans[0].Reason != "archive: 12 failed attempts in all" || bans[0].Expires.Sub(bans[0].Since) != 2*time.Hour || bans[0].Origin != "archive" {
		t.Fatalf("daemon's bans %+v", bans)
	}
	if fw.set[netip.MustParsePrefix("203.0.113.50/32")] != 2*time.Hour {
		t.Fatalf("kernel set %v", fw.set)
	}
}

// memFW is a kernel set in memory, for a daemon in the test's process.
type memFW struct {
	mu  sync.Mutex
	set map[netip.Prefix]time.Duration
}

func (f *memFW) Ban(_ context.Context, els []ban.Element) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range els {
		f.set[e.Prefix] = e.Timeout
	}
	return nil
}

func (f *memFW) Unban(_ context.Context, ps []netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range ps {
		delete(f.set, p)
	}
	return nil
}

// mustLoad loads cfg with the test's paths in dir.
func mustLoad(t *testing.T, cfg, dir string) *config.Config {
	t.Helper()
	c, err := config.Load(cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	c.State.DB, c.State.Socket, c.Log.File = dir+"/state.db", dir+"/ctl.sock", dir+"/auth.log"
	return c
}
