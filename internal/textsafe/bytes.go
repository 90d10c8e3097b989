package textsafe

import "fmt"

// Bytes writes n bytes for a person in the binary unit that suits it
// ("1.5 KiB", "2.0 MiB", "3.1 GiB"); under 1 KiB as n followed by unit
// ("512 B" or "512 bytes", the word the caller's output uses).
func Bytes(n int64, unit string) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d %s", n, unit)
}
