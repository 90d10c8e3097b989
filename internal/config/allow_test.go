package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestAllowEntries: ban.allow takes addresses, prefixes and host names; a
// mistyped address (its last label all digits) is not taken for a host
// name, and neither is what no host name can be; the error names the
// file, the line and the key.
func TestAllowEntries(t *testing.T) {
	for _, ok := range []string{"192.0.2.1", "2001:db8::/48", "::ffff:192.0.2.1", "localhost", "web-01", "host.example.org",
		"host.example.org.", "1password.com", "a.b-c.de", "xn--bcher-kva.example", strings.Repeat("a", 63) + ".example"} {
		if _, err := parse("ok.toml", []byte(fmt.Sprintf("[ban]\nallow = [%q]\n", ok))); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, typo := range []string{"1.2.3.4.5", "10.0.0.256", "192.168.1", "192.168.1.", "10", "host.123"} {
		_, err := parse("bad.toml", []byte(fmt.Sprintf("[ban]\nban_time = \"1h\"\nallow = [%q]\n", typo)))
		want := fmt.Sprintf("bad.toml:3: ban.allow: %q is neither an address nor a host name (a host name never ends in a number): a mistyped address?", typo)
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v\nwant %s", typo, err, want)
		}
	}
	for _, bad := range []string{"-host", "host-", "a..b", ".host", "host_1", strings.Repeat("a", 64) + ".example", "192.0.2.0/33"} {
		_, err := parse("bad.toml", []byte(fmt.Sprintf("[ban]\nallow = [%q]\n", bad)))
		want := fmt.Sprintf("bad.toml:2: ban.allow: %q is not an address, prefix or host name", bad)
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v\nwant %s", bad, err, want)
		}
	}
}

// TestAllowWidths: an allowlist entry of every address (/0, written any
// way) is refused, naming the file, the line and the key: it would turn
// banning off. One wider than a ban by hand may be without --force (/16,
// /32) is taken with a warning naming the same; flags' entries are named
// by the key alone.
func TestAllowWidths(t *testing.T) {
	for _, every := range []string{"0.0.0.0/0", "::/0", "::ffff:0.0.0.0/96"} {
		_, err := parse("bad.toml", []byte(fmt.Sprintf("[ban]\nban_time = \"1h\"\nallow = [\"192.0.2.1\", %q]\n", every)))
		want := fmt.Sprintf("bad.toml:3: ban.allow: %q is every address: nothing would ever be banned", every)
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v\nwant %s", every, err, want)
		}
	}
	c, err := parse("ok.toml", []byte("[ban]\nban_time = \"1h\"\nallow = [\"10.0.0.0/8\", \"192.168.0.0/16\", \"2001:db8::/32\", \"2000::/3\", \"host.example.org\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`ok.toml:3: ban.allow: "10.0.0.0/8" is wider than /16 (the widest ban that needs no --force): no address in it is ever banned; narrow it unless it is all yours`,
		`ok.toml:3: ban.allow: "2000::/3" is wider than /32 (the widest ban that needs no --force): no address in it is ever banned; narrow it unless it is all yours`,
	}
	if got := c.Warnings(); !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	Overrides{Allow: []string{"128.0.0.0/1"}}.Apply(c)
	if got := c.Warnings(); len(got) != 3 || got[2] != `ban.allow: "128.0.0.0/1" is wider than /16 (the widest ban that needs no --force): no address in it is ever banned; narrow it unless it is all yours` {
		t.Errorf("warnings with --allow:\n%s", strings.Join(got, "\n"))
	}
}
