package control

import (
	"context"
	"net/netip"
	"slices"
	"testing"
)

// liftBackend holds bans: Unban lifts the one asked, those inside it or
// the one holding it; UnbanAll those of an origin.
type liftBackend struct {
	Backend
	bans   []netip.Prefix
	origin map[netip.Prefix]string
}

func (b *liftBackend) Unban(_ context.Context, p netip.Prefix) ([]netip.Prefix, error) {
	var lifted []netip.Prefix
	b.bans = slices.DeleteFunc(b.bans, func(q netip.Prefix) bool {
		hit := p.Overlaps(q)
		if hit {
			lifted = append(lifted, q)
		}
		return hit
	})
	if len(lifted) == 0 {
		return nil, ErrNotFound
	}
	return lifted, nil
}

func (b *liftBackend) UnbanAll(_ context.Context, origin string) ([]netip.Prefix, error) {
	var lifted []netip.Prefix
	b.bans = slices.DeleteFunc(b.bans, func(q netip.Prefix) bool {
		hit := origin == "" || b.origin[q] == origin
		if hit {
			lifted = append(lifted, q)
		}
		return hit
	})
	return lifted, nil
}

// TestLift: each prefix asked lifts its own ban, those inside it or the
// one holding it, each told apart; one not banned is named; --all lifts
// those of an origin only.
func TestLift(t *testing.T) {
	pp := netip.MustParsePrefix
	own, inside, holder, other := pp("192.0.2.7/32"), pp("198.51.100.9/32"), pp("203.0.113.0/24"), pp("100.64.0.1/32")
	b := &liftBackend{bans: []netip.Prefix{own, inside, holder, other}, origin: map[netip.Prefix]string{other: "fleet"}}
	done, missing, err := Lift(context.Background(), b, []netip.Prefix{own, pp("198.51.100.0/24"), pp("203.0.113.5/32"), pp("192.0.2.99/32")}, false, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range done {
		for _, l := range d.Lifted {
			got = append(got, l.String()+" "+d.Relation(l))
		}
	}
	want := []string{"192.0.2.7/32 ", "198.51.100.9/32 inside", "203.0.113.0/24 holds"}
	if !slices.Equal(got, want) {
		t.Errorf("lifted %q, want %q", got, want)
	}
	if !slices.Equal(missing, []netip.Prefix{pp("192.0.2.99/32")}) {
		t.Errorf("not banned %v, want 192.0.2.99/32", missing)
	}
	b.bans = append(b.bans, own)
	done, missing, err = Lift(context.Background(), b, nil, true, "fleet")
	if err != nil || missing != nil || len(done) != 1 || !slices.Equal(done[0].Lifted, []netip.Prefix{other}) || done[0].Relation(other) != "" {
		t.Errorf("all of origin fleet: %+v, %v, %v; want only %v lifted", done, missing, err, other)
	}
	if !slices.Equal(b.bans, []netip.Prefix{own}) {
		t.Errorf("left %v, want %v", b.bans, own)
	}
}
