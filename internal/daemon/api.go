package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"

	"sshguard-go/internal/api"
	"sshguard-go/internal/config"
	"sshguard-go/internal/httpserve"
)

// newAPI builds the API server of cfg (nil when api.listen is off),
// reading its token and certificates now: a daemon that cannot serve
// them safely does not start. Without api.token_file and api.client_ca
// the token is the daemon's own, made once next to the database
// (apiTokenFile).
func (d *Daemon) newAPI(cfg *config.Config) (*api.Server, *tls.Config, error) {
	if cfg.API.Listen == "" {
		return nil, nil, nil
	}
	tok, err := cfg.API.Token()
	if err != nil {
		return nil, nil, err
	}
	d.apiTokenFile = cfg.API.TokenFile
	// A token file every user may read is one of the configuration's
	// warnings (config.Config.Warnings), logged by New.
	if cfg.API.TokenFile == "" && cfg.API.ClientCA == "" {
		path := apiTokenFile(cfg)
		var made bool
		if tok, made, err = ownToken(path); err != nil {
			return nil, nil, err
		}
		if made {
			d.log.Info("api: made a token; clients send it as Authorization: Bearer", "file", path)
		}
		d.apiTokenFile = path
	}
	tc, err := cfg.API.TLS()
	if err != nil {
		return nil, nil, err
	}
	host, _, _ := net.SplitHostPort(cfg.API.Listen)
	return &api.Server{DB: d.db, Host: cfg.Alerts.Host(), Loc: cfg.Alerts.Location(), Events: d.events, Token: tok,
		OpenCounts: config.Loopback(host), Counts: d.guard}, tc, nil
}

// listenAPI opens the API's socket (at start: a port taken stops the
// daemon there, and APIAddr is known once New returns).
func (d *Daemon) listenAPI(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("api listener: %w", err)
	}
	d.apiLn = l
	d.apiAddr.Store(l.Addr().String())
	return nil
}

// serveAPI serves the API until ctx ends.
func (d *Daemon) serveAPI(ctx context.Context) error {
	scheme := "http"
	if d.apiTLS != nil {
		scheme = "https"
	}
	d.log.Info("api", "url", scheme+"://"+d.apiLn.Addr().String()+"/", "token_file", d.apiTokenFile, "client_certificates", d.apiTLS != nil && d.apiTLS.ClientCAs != nil,
		"counts_without_credentials", d.api.OpenCounts)
	srv := httpserve.Server{Handler: d.api.Handler(), Limits: d.limits.api, TLS: d.apiTLS, ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelDebug)}
	if err := srv.Serve(ctx, d.apiLn); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}

// APIAddr is the address the API listens on, once it does ("" before).
func (d *Daemon) APIAddr() string {
	a, _ := d.apiAddr.Load().(string)
	return a
}
