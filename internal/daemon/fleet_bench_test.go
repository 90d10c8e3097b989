package daemon

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"sshguard-go/internal/control"
)

// BenchmarkFleetBanLatency: a ban on host a (made by hand through its
// control socket) until host b has recorded it (after its firewall:
// kernel first), over 200 bans, through a real NATS server with
// JetStream in the process; p50 and p99 reported. The goal is p99 under
// 50 ms on loopback.
func BenchmarkFleetBanLatency(b *testing.B) {
	for b.Loop() {
		n := startNATS(b)
		a := fleetHost(b, n, "a", "")
		h := fleetHost(b, n, "b", "")
		ca, cb := a.client(), h.client()
		var lat []time.Duration
		for i := range 200 {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, byte(113 + i/250), byte(1 + i%250)}), 32)
			start := time.Now()
			if _, err := ca.Ban(control.BanRequest{Prefix: p, For: time.Hour}); err != nil {
				b.Fatal(err)
			}
			for {
				bans, err := cb.Bans()
				if err != nil {
					b.Fatal(err)
				}
				if slices.ContainsFunc(bans, func(bi control.BanInfo) bool { return bi.Prefix == p }) {
					break
				}
				if time.Since(start) > 10*time.Second {
					b.Fatalf("ban %d never reached b", i)
				}
				time.Sleep(200 * time.Microsecond)
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		if p99 := lat[len(lat)*99/100]; p99 > 50*time.Millisecond {
			b.Fatalf("p99 %v, the goal is under 50 ms", p99)
		}
	}
}

// BenchmarkFleetReplay: host a has 100,000 bans in force in the stream;
// host d joins and replays them: the time from its start until it has
// applied all (goal under 5 s).
func BenchmarkFleetReplay(b *testing.B) {
	const total = 100000
	for b.Loop() {
		n := startNATS(b)
		a := fleetHost(b, n, "a", "")
		ca := a.client()
		reqs := make([]control.BanRequest, 0, total)
		for i := range total {
			reqs = append(reqs, control.BanRequest{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32), For: 2 * time.Hour})
		}
		if _, errs := control.BanAll(ca, reqs); len(errs) > 0 {
			b.Fatal(errs[0])
		}
		for a.fleet().Published < total {
			time.Sleep(50 * time.Millisecond)
		}
		start := time.Now()
		d := fleetHost(b, n, "d", "")
		for {
			st := d.fleet()
			if st.Received["a"]["applied"] >= total {
				break
			}
			if time.Since(start) > 2*time.Minute {
				b.Fatalf("replay stuck: %+v", st)
			}
			time.Sleep(20 * time.Millisecond)
		}
		took := time.Since(start)
		b.ReportMetric(took.Seconds(), "replay-s")
		b.ReportMetric(float64(total)/took.Seconds(), "bans/s")
		if took > 5*time.Second {
			b.Fatalf("replay of %d bans took %v, the goal is under 5 s", total, took)
		}
		if got := len(mustBans(b, d)); got != total {
			b.Fatalf("d has %d bans", got)
		}
	}
}

func mustBans(b *testing.B, h *harness) []control.BanInfo {
	list, err := h.client().Bans()
	if err != nil {
		b.Fatal(err)
	}
	return list
}
