#!/usr/bin/env bash
# Times sshguard-go scan --json, SSHGuard's sshg-parser and fail2ban-regex
# on the same generated auth.logs (a mixed one, a quarter unrelated lines;
# and an attack-dense one, three in four lines an sshd attack event), each
# pinned to one core, in one run.
#   LINES=1000000 F2B_LINES=200000 ./scripts/bench-compare.sh
# Needs: apt-get install sshguard fail2ban; ./sshguard-go built (make build).
set -euo pipefail
lines=${LINES:-1000000}
f2b_lines=${F2B_LINES:-200000}   # fail2ban-regex is slow: time it on a prefix
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go run ./scripts/genlog -n "$lines" >"$dir/mixed.log"
go run ./scripts/genlog -n "$lines" -dense >"$dir/dense.log"

secs() { /usr/bin/time -f %e "$@" 2>&1 >/dev/null | tail -1; }
best() { # best of three runs
	local b=
	for _ in 1 2 3; do
		local s; s=$(secs "$@")
		if [ -z "$b" ] || awk "BEGIN{exit !($s < $b)}"; then b=$s; fi
	done
	echo "$b"
}
rate() { awk -v n="$1" -v s="$2" 'BEGIN{ if (s <= 0) s = 0.001; printf "%.0f", n / s }'; }

for log in mixed dense; do
	f="$dir/$log.log"
	head -n "$f2b_lines" "$f" >"$dir/$log-f2b.log"
	cat "$f" >/dev/null # warm the page cache
	sg=$(best env GOMAXPROCS=1 taskset -c 0 ./sshguard-go scan --json "$f")
	rp=$(best env GOMAXPROCS=1 taskset -c 0 ./sshguard-go report --json "$f")
	sgp=$(best taskset -c 0 sh -c "/usr/libexec/sshguard/sshg-parser < '$f'")
	f2b=$(secs taskset -c 0 fail2ban-regex "$dir/$log-f2b.log" /etc/fail2ban/filter.d/sshd.conf)
	echo "== $log.log"
	printf '%-34s %10s %8s %14s\n' tool lines seconds lines/s
	printf '%-34s %10d %8s %14s\n' "sshguard-go scan --json (1 core)" "$lines" "$sg" "$(rate "$lines" "$sg")"
	printf '%-34s %10d %8s %14s\n' "sshguard-go report --json (1 core)" "$lines" "$rp" "$(rate "$lines" "$rp")"
	printf '%-34s %10d %8s %14s\n' "sshg-parser (sshguard $(dpkg-query -W -f='${Version}' sshguard 2>/dev/null))" "$lines" "$sgp" "$(rate "$lines" "$sgp")"
	printf '%-34s %10d %8s %14s\n' "fail2ban-regex ($(fail2ban-regex --version | head -1 | awk '{print $2}'))" "$f2b_lines" "$f2b" "$(rate "$f2b_lines" "$f2b")"
	awk -v a="$sg" -v b="$sgp" -v n="$lines" -v c="$f2b" -v m="$f2b_lines" 'BEGIN{printf "sshguard-go scan is %.1fx sshg-parser and %.0fx fail2ban-regex\n", b/a, (n/a)/(m/c)}'
done
