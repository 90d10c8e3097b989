package fleet

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"text/tabwriter"

	"sshguard-go/internal/api"
	"sshguard-go/internal/config"
	"sshguard-go/internal/httpserve"
	"sshguard-go/internal/textsafe"
)

// WriteTable writes s as a table: a row per host, then the total.
func WriteTable(w io.Writer, s *Summary) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "HOST\tSTATE\tFAILED\tPROBES\tCONNECTIONS\tADDRESSES\tBANS\tLOGINS\tMS\tERROR\n")
	row := func(name, state string, d api.Day, ms string, errText string) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", name, state, d.Failed, d.Probes, d.Connections, d.Addresses, d.Bans, d.Logins, ms, errText)
	}
	for _, h := range s.Hosts { // a host's error may quote what it answered: made safe for the terminal
		if h.OK {
			row(textsafe.String(h.Name), "up", *h.Day, fmt.Sprint(h.MS), "")
		} else {
			fmt.Fprintf(tw, "%s\tdown\t-\t-\t-\t-\t-\t-\t%d\t%s\n", textsafe.String(h.Name), h.MS, textsafe.String(h.Error))
		}
	}
	row(fmt.Sprintf("TOTAL %s", textsafe.String(s.Date)), fmt.Sprintf("%d/%d up", s.Answered, len(s.Hosts)), s.Total, "", "")
	tw.Flush()
}

// ServeOn serves f's handler as listen says (its address, token file,
// certificates) until ctx ends; ready gets the URL once it listens.
func (f *Fleet) ServeOn(ctx context.Context, listen config.APIConfig, ready func(url string)) error {
	tok, err := listen.Token()
	if err != nil {
		return err
	}
	tc, err := listen.TLS()
	if err != nil {
		return err
	}
	return Serve(ctx, listen.Listen, f.Handler(tok), tc, f.Limits(), ready)
}

// Serve serves h on addr (with tc when set) within lim (Fleet.Limits) until
// ctx ends; ready is told the URL once it listens.
func Serve(ctx context.Context, addr string, h http.Handler, tc *tls.Config, lim httpserve.Limits, ready func(url string)) error {
	scheme := "http"
	if tc != nil {
		scheme = "https"
	}
	return httpserve.Server{Handler: h, Limits: lim, TLS: tc}.Listen(ctx, addr, func(a net.Addr) { ready(scheme + "://" + a.String() + "/") })
}
