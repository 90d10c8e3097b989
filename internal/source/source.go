// Package source reads log lines: a file followed as it grows (with its
// read position and rotation), the systemd journal, and offline inputs
// (files, gzip archives, standard input). It knows nothing of what the
// lines mean; internal/detect does.
package source
