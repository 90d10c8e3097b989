#!/usr/bin/env bash
# report's throughput on archives: one 1M-line file, and the same lines as 16
# files (rotated logs), with -j 1 and -j 2, beside scan --json and SSHGuard's
# sshg-parser on the same input; seconds, lines/s and peak memory (max RSS).
#   LINES=1000000 ./scripts/bench-archive.sh
# Needs: apt-get install sshguard; ./sshguard-go built (make build).
set -euo pipefail
lines=${LINES:-1000000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
run() { # label, command...: best of five by time, with its max RSS
	local label=$1 best= rss=
	shift
	for _ in 1 2 3 4 5; do
		local out s m
		out=$(/usr/bin/time -f '%e %M' "$@" 2>&1 >/dev/null | tail -1)
		read -r s m <<<"$out"
		if [ -z "$best" ] || awk "BEGIN{exit !($s < $best)}"; then best=$s rss=$m; fi
	done
	printf '%-44s %8s %12.0f %8d\n' "$label" "$best" "$(awk -v n="$lines" -v s="$best" 'BEGIN{if (s <= 0) s = 0.001; print n / s}')" "$((rss / 1024))"
}
for log in mixed dense; do
	flag=; [ "$log" = dense ] && flag=-dense
	go run ./scripts/genlog -n "$lines" $flag >"$dir/$log.log"
	mkdir -p "$dir/$log"
	(cd "$dir/$log" && split -n l/16 -d -a 2 "../$log.log" auth.log.)
	cat "$dir/$log.log" >/dev/null
	echo "== $log.log ($lines lines; $(nproc) cores)"
	printf '%-44s %8s %12s %8s\n' run seconds lines/s MB
	one=$dir/$log.log
	many=("$dir/$log"/auth.log.*)
	run "scan --json, 1 file" ./sshguard-go scan --json -j 1 "$one"
	run "report --json, 1 file" ./sshguard-go report --json -j 1 "$one"
	run "report, 1 file" ./sshguard-go report -j 1 "$one"
	run "report --json -j 1, 16 files" ./sshguard-go report --json -j 1 "${many[@]}"
	run "report --json -j 2, 16 files" ./sshguard-go report --json -j 2 "${many[@]}"
	run "scan --json -j 1, 16 files" ./sshguard-go scan --json -j 1 "${many[@]}"
	run "scan --json -j 2, 16 files" ./sshguard-go scan --json -j 2 "${many[@]}"
	run "sshg-parser, 1 file" sh -c "/usr/libexec/sshguard/sshg-parser < '$one'"
	run "sshg-parser, 16 files" sh -c "cat '$dir/$log'/auth.log.* | /usr/libexec/sshguard/sshg-parser"
done
