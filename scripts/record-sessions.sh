#!/usr/bin/env bash
# Records the log of real SSH sessions, and auditd's record of the commands
# run in them, into testdata/sessions/: a real OpenSSH sshd (with PAM, so
# pam_loginuid gives each session an audit session id) and a real rsyslogd
# in the network namespace sg-ses-srv, a real ssh/sftp client in
# sg-ses-cli over a veth pair, and the running auditd with the execve rule
# the README documents (added for the recording, removed after).
#
#   auth.log   sshd's lines (RFC 3339), as rsyslog wrote them
#   audit.log  the audit records of the recording (auditd's own log, cut to
#              the lines written while it ran)
#
# The sessions, in order: a password login running three commands (logout);
# a key login with an sftp upload of 100,000 bytes and a download of them
# (logout); a session killed by the server (pkill -KILL -P of its sshd); a
# client that stops answering (timeout: ClientAliveInterval 1,
# ClientAliveCountMax 2); a client killed (disconnect).
#
# Needs root, openssh-server, openssh-client, rsyslog, sshpass, iproute2,
# auditd (running: auditctl -s shows a pid), a kernel whose audit subsystem
# is usable here (it is in a privileged container).
set -euo pipefail
out=${1:-testdata/sessions}
work=$(mktemp -d /tmp/sg-ses.XXXXXX)
srv=sg-ses-srv cli=sg-ses-cli
audit=${AUDIT_LOG:-/var/log/audit/audit.log}
mkdir -p "$out"

rule=(-a always,exit -F arch=b64 -S execve -F 'auid>=1000' -F 'auid!=unset' -k sshguard-go)
cleanup() {
	auditctl -d "${rule[@]:1}" 2>/dev/null || true
	[ -f "$work/sshd.pid" ] && kill "$(cat "$work/sshd.pid")" 2>/dev/null || true
	[ -f "$work/rsyslog.pid" ] && kill "$(cat "$work/rsyslog.pid")" 2>/dev/null || true
	ip netns del $srv 2>/dev/null || true
	ip netns del $cli 2>/dev/null || true
	return 0
}
trap cleanup EXIT
auditctl -s | grep -q '^pid [1-9]' || { echo "auditd is not running" >&2; exit 1; }

ip netns del $srv 2>/dev/null || true
ip netns del $cli 2>/dev/null || true
ip link del sg-ses-a 2>/dev/null || true
ip netns add $srv
ip netns add $cli
ip link add sg-ses-a type veth peer name sg-ses-b
ip link set sg-ses-a netns $srv
ip link set sg-ses-b netns $cli
ip -n $srv addr add 10.200.1.1/24 dev sg-ses-a
ip -n $cli addr add 10.200.1.2/24 dev sg-ses-b
for ns in $srv $cli; do ip -n $ns link set lo up; done
ip -n $srv link set sg-ses-a up
ip -n $cli link set sg-ses-b up

cat >"$work/rsyslog.conf" <<EOF
global(workDirectory="$work")
module(load="imuxsock" SysSock.Name="$work/log")
auth,authpriv.* action(type="omfile" file="$work/auth.log" template="RSYSLOG_FileFormat")
EOF
rsyslogd -f "$work/rsyslog.conf" -i "$work/rsyslog.pid"

ssh-keygen -q -t ed25519 -N '' -f "$work/hostkey"
ssh-keygen -q -t ed25519 -N '' -f "$work/userkey"
id sgtest >/dev/null 2>&1 || useradd -m -s /bin/bash sgtest
echo 'sgtest:right-password' | chpasswd
install -d -m 700 -o sgtest ~sgtest/.ssh
install -m 600 -o sgtest "$work/userkey.pub" ~sgtest/.ssh/authorized_keys
cat >"$work/sshd_config" <<EOF
Port 22
HostKey $work/hostkey
PidFile $work/sshd.pid
UsePAM yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin no
SyslogFacility AUTH
LogLevel INFO
ClientAliveInterval 1
ClientAliveCountMax 2
Subsystem sftp internal-sftp -l INFO
EOF
for _ in $(seq 50); do [ -S "$work/log" ] && break; sleep 0.1; done
mkdir -p /run/sshd
[ -e /dev/log ] || touch /dev/log
unshare --mount --propagation private sh -c "mount --bind '$work/log' /dev/log && exec ip netns exec $srv /usr/sbin/sshd -f '$work/sshd_config'"
sleep 0.5
auditctl "${rule[@]}"
from=$(wc -l <"$audit")

c() { ip netns exec $cli "$@"; }
opt=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=3)
# 1. password, three commands, logout
c sshpass -p right-password ssh "${opt[@]}" -o PubkeyAuthentication=no sgtest@10.200.1.1 'id; ls /tmp >/dev/null; echo "two words" > /tmp/sg-ses-test'
# 2. key, sftp up and down
head -c 100000 /dev/urandom >"$work/up.bin"
c sftp "${opt[@]}" -i "$work/userkey" -b - sgtest@10.200.1.1 <<EOF
put $work/up.bin up.bin
get up.bin $work/down.bin
EOF
# 3. killed by the server: the children of its sshd
ip netns exec $cli ssh "${opt[@]}" -i "$work/userkey" sgtest@10.200.1.1 'sleep 30' &
sleep 1.5
mon=$(grep 'Accepted publickey' "$work/auth.log" | tail -1 | sed -E 's/.*sshd\[([0-9]+)\].*/\1/')
pkill -KILL -P "$mon"
wait || true
# 4. a client that stops answering: the server times it out (the client
# itself in the background, not a shell around it, so that $! is ssh)
ip netns exec $cli ssh "${opt[@]}" -i "$work/userkey" sgtest@10.200.1.1 'sleep 30' &
pid=$!
sleep 1.5
kill -STOP $pid
sleep 5
kill -KILL $pid
wait || true
# 5. a client killed: the connection drops
ip netns exec $cli ssh "${opt[@]}" -i "$work/userkey" sgtest@10.200.1.1 'sleep 30' &
pid=$!
sleep 1.5
kill -KILL $pid
wait || true
sleep 2
tail -n +"$((from + 1))" "$audit" >"$out/audit.log"
cp "$work/auth.log" "$out/auth.log"
cmp -s "$work/up.bin" "$work/down.bin" && echo "sftp: 100000 bytes up and down"
wc -l "$out"/*.log
