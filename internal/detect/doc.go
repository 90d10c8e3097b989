// Package detect turns log lines into sshd events that say who did what.
//
// A line goes through three steps: the header parser (ParseLine) finds the
// timestamp, host, program tag and pid in any of the supported formats
// (traditional syslog, RFC 3339 syslog, RFC 5424, journalctl short, short-iso
// and json, bare "host prog[pid]: msg", or the bare message); the classifier
// (Classify) recognises the sshd message and reads the client address from
// the position where sshd wrote it; and the Correlator joins the lines of one
// connection so that each guess is counted once and lines that carry no
// address borrow their connection's.
//
// User names, client version strings, disconnect reasons and certificate key
// IDs are attacker-controlled and logged verbatim. The classifier therefore
// never searches the message for "from <ip>" naively: for each shape it knows
// on which side of the address attacker text can appear, and when a line is
// genuinely ambiguous it reports no address rather than a guessed one.
package detect
