package config

import (
	"reflect"
	"time"
)

// Overrides are settings given on the command line (run's flags, and the
// state flags of the commands that manage the daemon): each replaces the
// file's. A nil field was not given and leaves the file's value.
type Overrides struct {
	LogFile        *string        // log.file
	Journal        *bool          // log.journal
	FromStart      *bool          // log.from_start
	DB             *string        // state.db
	Socket         *string        // state.socket
	Table          *string        // firewall.table
	Priority       *int           // firewall.priority
	Forward        *bool          // firewall.forward
	CutConnections *bool          // firewall.cut_connections
	Threshold      *float64       // detection.threshold
	Window         *time.Duration // detection.window
	BanTime        *time.Duration // ban.ban_time
	// Allow is added to ban.allow, not put in its place.
	Allow []string
	// DryRun sets firewall.backend to "none".
	DryRun bool
}

// Apply sets in c what ov gives.
func (ov Overrides) Apply(c *Config) {
	set(&c.Log.File, ov.LogFile)
	set(&c.Log.Journal, ov.Journal)
	set(&c.Log.FromStart, ov.FromStart)
	set(&c.State.DB, ov.DB)
	set(&c.State.Socket, ov.Socket)
	set(&c.Firewall.Table, ov.Table)
	set(&c.Firewall.Priority, ov.Priority)
	set(&c.Firewall.Forward, ov.Forward)
	set(&c.Firewall.CutConnections, ov.CutConnections)
	c.Ban.Allow = append(c.Ban.Allow, ov.Allow...)
	set(&c.Detection.Threshold, ov.Threshold)
	if ov.Window != nil {
		c.Detection.Window = Duration(*ov.Window)
	}
	if ov.BanTime != nil {
		c.Ban.BanTime = Duration(*ov.BanTime)
	}
	if ov.DryRun {
		c.Firewall.Backend = "none"
	}
	if !reflect.ValueOf(ov).IsZero() {
		c.data = nil // a line of the file may no longer hold the value (Locate)
	}
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// Reload is what of ov still applies when the daemon reads the file again
// (SIGHUP): only Allow adds to it; the file decides the rest.
func (ov Overrides) Reload() Overrides { return Overrides{Allow: ov.Allow} }

// LoadWith is Load with ov applied to the result; the caller checks it
// (Config.Check).
func LoadWith(path string, explicit bool, ov Overrides) (*Config, error) {
	c, err := Load(path, explicit)
	if err != nil {
		return nil, err
	}
	ov.Apply(c)
	return c, nil
}
