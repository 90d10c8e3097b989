package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"sshguard-go/internal/share"
)

// staleAfter is how old a summary may be before its host is shown down.
const staleAfter = 3 * time.Minute

// KVSource is the fleet view's data from the bucket, kept up to date by a
// watcher. It is safe for concurrent use.
type KVSource struct {
	mu    sync.Mutex
	hosts map[string]share.HostSummary
	bad   map[string]string // host -> why its entry is unreadable
	nc    *nats.Conn
	now   func() time.Time
	apis  *Hosts // the hosts of a hosts file given beside --nats: their dashboards are served
}

// maxKVHosts bounds the hosts a KVSource keeps.
const maxKVHosts = 100000

// WatchSummaries connects to NATS and follows the bucket until ctx ends.
func WatchSummaries(ctx context.Context, urls []string, opts ...nats.Option) (*KVSource, error) {
	nc, err := nats.Connect(strings.Join(urls, ","), append([]nats.Option{nats.Name("sshguard-go fleet serve"), nats.MaxReconnects(-1)}, opts...)...)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	kv, err := share.OpenSummaries(ctx, js)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("bucket %s: %w", share.SummaryBucket, err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		nc.Close()
		return nil, err
	}
	src := &KVSource{hosts: map[string]share.HostSummary{}, bad: map[string]string{}, nc: nc, now: time.Now}
	go func() {
		defer nc.Close()
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e != nil {
					src.update(e)
				}
			}
		}
	}()
	return src, nil
}

func (k *KVSource) update(e jetstream.KeyValueEntry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	host := e.Key()
	if e.Operation() != jetstream.KeyValuePut {
		delete(k.hosts, host)
		delete(k.bad, host)
		return
	}
	if _, ok := k.hosts[host]; !ok && len(k.hosts)+len(k.bad) >= maxKVHosts {
		return
	}
	var hs share.HostSummary
	if err := json.Unmarshal(e.Value(), &hs); err != nil {
		k.bad[host] = "its summary is not the API's JSON: " + err.Error()
		delete(k.hosts, host)
		return
	}
	if err := checkDays(hs.Summary.Days); err != nil { // judged as it was sent
		k.bad[host] = err.Error()
		delete(k.hosts, host)
		return
	}
	delete(k.bad, host)
	// Kept as the view uses it: what a host says is not trusted.
	hs.Summary.Days = cleanDays(hs.Summary.Days)
	hs.Summary.TopAddresses = cleanTop(hs.Summary.TopAddresses)
	hs.Summary.TopUsers = nil
	k.hosts[host] = hs
}

// Summary builds the fleet's day from the bucket.
func (k *KVSource) Summary(_ context.Context, day time.Time) *Summary {
	k.mu.Lock()
	defer k.mu.Unlock()
	date := day.Format(time.DateOnly)
	s := &Summary{Date: date, Hosts: []HostDay{}}
	names := make([]string, 0, len(k.hosts)+len(k.bad))
	for h := range k.hosts {
		names = append(names, h)
	}
	for h := range k.bad {
		names = append(names, h)
	}
	slices.Sort(names)
	now := k.now()
	for _, h := range names {
		hd := HostDay{Name: h}
		hs, ok := k.hosts[h]
		if ok { // what is known of it, shown on its page even when it is down
			hd.Updated, hd.days, hd.top = hs.Updated, hs.Summary.Days, hs.Summary.TopAddresses
		}
		switch {
		case !ok:
			hd.Error = k.bad[h]
		case now.Sub(hs.Updated) > staleAfter:
			hd.Error = "no summary since " + hs.Updated.Format(time.RFC3339)
		default:
			for _, d := range hs.Summary.Days {
				if d.Date == date {
					hd.Day = &d
				}
			}
			if hd.Day == nil {
				hd.Error = "its summary has no day " + date
			} else if err := checkDays(hs.Summary.Days); err != nil {
				hd.Error, hd.Day = err.Error(), nil
			} else {
				hd.OK = true
			}
		}
		s.Hosts = append(s.Hosts, hd)
	}
	total(s, day)
	return s
}

// API is the named host's when a hosts file beside the bucket lists it,
// else nil: the bucket holds no host's API to ask.
func (k *KVSource) API(name string) HostAPI {
	if k.apis == nil {
		return nil
	}
	return k.apis.API(name)
}

// NATS is how fleet serve --nats reaches the summaries' bucket.
type NATS struct {
	URL, CredsFile, TokenFile, CAFile string // URL: one or several, comma-separated
}

// OpenView is the fleet view fleet serve shows: built from the summaries'
// bucket when n.URL is set (watched until ctx ends), else by asking the
// hosts of the hosts file hosts (Load). With both, the view is the
// bucket's and the hosts the file lists have their own dashboards too
// (their APIs asked only for those pages).
func OpenView(ctx context.Context, hosts *File, n NATS) (*Fleet, error) {
	if n.URL == "" {
		return New(hosts)
	}
	var apis *Hosts
	if hosts != nil {
		fl, err := New(hosts)
		if err != nil {
			return nil, err
		}
		apis = fl.src.(*Hosts)
	}
	opts, err := share.Options(share.Credentials{CredsFile: n.CredsFile, TokenFile: n.TokenFile, CAFile: n.CAFile})
	if err != nil {
		return nil, err
	}
	src, err := WatchSummaries(ctx, strings.Split(n.URL, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("--nats: %w", err)
	}
	src.apis = apis
	return NewView(src, time.Second), nil
}
