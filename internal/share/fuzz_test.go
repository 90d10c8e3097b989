package share

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

// FuzzBanMessage: whatever a peer publishes on its bans subject, reading it
// neither panics nor takes what is not a ban or unban of a valid prefix.
// Seeded with messages as BanMessage writes them.
func FuzzBanMessage(f *testing.F) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, b := range []store.Ban{
		{Prefix: netip.MustParsePrefix("203.0.113.7/32"), Start: now, Expires: now.Add(time.Hour), Reason: "6 failed attempts in 1h", Attempts: 6, Origin: "detected"},
		{Prefix: netip.MustParsePrefix("2001:db8::/64"), Start: now, Reason: "admin", Origin: "admin"},
	} {
		f.Add(BanMessage(&b))
	}
	f.Add([]byte(`{"v":1,"kind":"unban","prefix":"203.0.113.7/32"}`))
	f.Add([]byte(`{"v":1,"kind":"ban","prefix":"0.0.0.0/0","expires":"9999-12-31T23:59:59Z","attempts":1e308}`))
	f.Add([]byte(`{"v":1,"prefix":"::ffff:203.0.113.7/128","reason":"\u0000\u202e"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, ok := decodeMessage(data)
		if ok && (!m.Prefix.IsValid() || m.V != 1) {
			t.Fatalf("took %+v from %q", m, data)
		}
	})
}

// FuzzAttempts: whatever a peer publishes on its attempts subject, the
// counter neither panics nor bans on that one host's word (the quorum is
// two hosts), and what it keeps stays bounded.
func FuzzAttempts(f *testing.F) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	seed, _ := json.Marshal([]attempt{{P: netip.MustParsePrefix("203.0.113.7/32"), W: 1, T: at.UnixMilli()}, {P: netip.MustParsePrefix("2001:db8::/48"), W: 0.5, T: at.UnixMilli()}})
	f.Add(seed)
	f.Add([]byte(`[{"p":"203.0.113.7/32","w":12.75,"t":1795000000000},{"p":"203.0.113.7/32","w":"NaN","t":-9223372036854775808}]`))
	f.Add([]byte(`[{"p":"0.0.0.0/0","w":1e308,"t":9223372036854775807}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := testkit.NewClock(at)
		k := counter(c)
		for range 3 {
			k.receive("peer", data)
		}
		if bans := bansOf(k); len(bans) != 0 {
			t.Fatalf("one host's attempts made bans %+v from %q", bans, data)
		}
		if k.remote > 3*maxBatch {
			t.Fatalf("%d remote attempts counted from 3 batches", k.remote)
		}
	})
}
