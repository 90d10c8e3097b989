package loggen

import (
	"bytes"
	"strings"
	"testing"
)

func TestDeterministicAndMixed(t *testing.T) {
	var a, b bytes.Buffer
	if err := Write(&a, 5000, 7, Traditional); err != nil {
		t.Fatal(err)
	}
	Write(&b, 5000, 7, Traditional)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same seed, different output")
	}
	lines := strings.Split(strings.TrimSpace(a.String()), "\n")
	if len(lines) != 5000 {
		t.Fatalf("%d lines, want 5000", len(lines))
	}
	unrelated, v6 := 0, 0
	for _, l := range lines {
		if !strings.Contains(l, " sshd[") && !strings.Contains(l, " internal-sftp[") {
			unrelated++
		}
		if strings.Contains(l, "2001:db8:") {
			v6++
		}
	}
	if unrelated < 1000 || unrelated > 2000 || v6 == 0 {
		t.Fatalf("%d unrelated and %d IPv6 lines of 5000", unrelated, v6)
	}
}
