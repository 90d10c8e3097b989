#!/usr/bin/env bash
# Runs every fuzz target of the repository (func FuzzXxx in a _test.go file)
# for a short while each: ${1:-3s} (make fuzz gives a minute). A crash
# fails the run; the input that made it is written under the package's
# testdata/fuzz/FuzzXxx, to be kept as a regression seed once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-3s}
go=$(command -v go || echo /usr/local/go/bin/go)
n=0
while IFS=: read -r file _ line; do
	name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' <<<"$line")
	pkg=./$(dirname "$file")
	echo "== $pkg $name ($fuzztime)"
	"$go" test -run XXX -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"
	n=$((n + 1))
done < <(git ls-files '*_test.go' | xargs grep -n '^func Fuzz[A-Za-z0-9_]*(f \*testing.F)' | sort)
echo "== $n fuzz targets run"
