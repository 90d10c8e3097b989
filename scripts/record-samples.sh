#!/usr/bin/env bash
# Records real sshd log lines into testdata/: a real OpenSSH sshd and a real
# rsyslogd run in the network namespace sg-rec-srv, a real ssh client
# (sshpass) attacks it from sg-rec-cli over a veth pair, over IPv4 and IPv6.
# rsyslog writes the same lines in the traditional and the RFC 3339 format.
#
# Needs root, openssh-server, rsyslog, sshpass, iproute2. Nothing outside
# the two namespaces is touched: our rsyslogd listens on a socket of its own,
# which sshd sees as /dev/log (bound over it in a private mount namespace;
# an empty /dev/log is created as the mount point if the host has none).
set -euo pipefail
out=${1:-testdata/recorded}
work=$(mktemp -d /tmp/sg-rec.XXXXXX)
srv=sg-rec-srv cli=sg-rec-cli
mkdir -p "$out"

cleanup() {
	[ -f "$work/sshd.pid" ] && kill "$(cat "$work/sshd.pid")" 2>/dev/null || true
	[ -f "$work/rsyslog.pid" ] && kill "$(cat "$work/rsyslog.pid")" 2>/dev/null || true
	ip netns del $srv 2>/dev/null || true
	ip netns del $cli 2>/dev/null || true
	return 0
}
trap cleanup EXIT

# Leftovers of an interrupted run would make the next one fail.
ip netns del $srv 2>/dev/null || true
ip netns del $cli 2>/dev/null || true
ip link del sg-rec-a 2>/dev/null || true
ip netns add $srv
ip netns add $cli
ip link add sg-rec-a type veth peer name sg-rec-b
ip link set sg-rec-a netns $srv
ip link set sg-rec-b netns $cli
ip -n $srv addr add 10.200.0.1/24 dev sg-rec-a
ip -n $cli addr add 10.200.0.2/24 dev sg-rec-b
ip -n $srv addr add fd00:200::1/64 dev sg-rec-a nodad
ip -n $cli addr add fd00:200::2/64 dev sg-rec-b nodad
for ns in $srv $cli; do ip -n $ns link set lo up; done
ip -n $srv link set sg-rec-a up
ip -n $cli link set sg-rec-b up

cat >"$work/rsyslog.conf" <<EOF
global(workDirectory="$work")
module(load="imuxsock" SysSock.Name="$work/log")
template(name="trad" type="string" string="%TIMESTAMP% %HOSTNAME% %syslogtag%%msg:::sp-if-no-1st-sp%%msg:::drop-last-lf%\n")
auth,authpriv.* action(type="omfile" file="$work/auth-traditional.log" template="trad")
auth,authpriv.* action(type="omfile" file="$work/auth-rfc3339.log" template="RSYSLOG_FileFormat")
EOF
rsyslogd -f "$work/rsyslog.conf" -i "$work/rsyslog.pid"

ssh-keygen -q -t ed25519 -N '' -f "$work/hostkey"
ssh-keygen -q -t ed25519 -N '' -f "$work/userkey"
ssh-keygen -q -t ed25519 -N '' -f "$work/wrongkey"
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
PermitRootLogin prohibit-password
MaxAuthTries 3
LoginGraceTime 3
SyslogFacility AUTH
LogLevel INFO
Subsystem sftp internal-sftp -l INFO
DenyUsers baduser
EOF
for _ in $(seq 50); do [ -S "$work/log" ] && break; sleep 0.1; done
mkdir -p /run/sshd
# The mount point for our socket, left in place afterwards: removing it
# would detach the bind mount of any other lab running at the same time.
[ -e /dev/log ] || touch /dev/log
# sshd (and its children) see our rsyslog's socket as /dev/log.
unshare --mount --propagation private sh -c "mount --bind '$work/log' /dev/log && exec ip netns exec $srv /usr/sbin/sshd -f '$work/sshd_config'"
sleep 0.5

c() { ip netns exec $cli "$@" || true; }
sshopt=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=3 -o PreferredAuthentications=password -o PubkeyAuthentication=no)
# wrong passwords: an invalid user, a valid user, root
c sshpass -p wrong1 ssh "${sshopt[@]}" admin@10.200.0.1 true
c sshpass -p wrong2 ssh "${sshopt[@]}" sgtest@10.200.0.1 true
c sshpass -p wrong3 ssh "${sshopt[@]}" root@10.200.0.1 true
c sshpass -p wrong4 ssh "${sshopt[@]}" baduser@10.200.0.1 true
# a spoofing user name
c sshpass -p wrong5 ssh "${sshopt[@]}" -l 'x from 10.9.9.9 port 22' 10.200.0.1 true
c sshpass -p wrong6 ssh "${sshopt[@]}" -l 'y 10.9.9.8 port 22' 10.200.0.1 true
# IPv6
c sshpass -p wrong7 ssh "${sshopt[@]}" oracle@fd00:200::1 true
# success by password and by key, with an sftp transfer
c sshpass -p right-password ssh "${sshopt[@]}" sgtest@10.200.0.1 true
c ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -i "$work/userkey" sgtest@10.200.0.1 true
echo hello >"$work/upload.txt"
c sftp -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -i "$work/userkey" -b - sgtest@10.200.0.1 <<EOF
put $work/upload.txt up.txt
get up.txt $work/down.txt
EOF
# a wrong key, then nothing
c ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i "$work/wrongkey" sgtest@10.200.0.1 true
# probes: connect and close, garbage banner, bad kex, timeout
c bash -c 'exec 3<>/dev/tcp/10.200.0.1/22; exec 3>&-'
c bash -c 'exec 3<>/dev/tcp/10.200.0.1/22; printf "GET / HTTP/1.1\r\n\r\n" >&3; sleep 0.3; exec 3>&-'
c ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o KexAlgorithms=diffie-hellman-group1-sha1 nobody@10.200.0.1 true
c bash -c 'exec 3<>/dev/tcp/10.200.0.1/22; sleep 4; exec 3>&-'
sleep 1
cp "$work/auth-traditional.log" "$out/openssh-9.2-traditional.log"
cp "$work/auth-rfc3339.log" "$out/openssh-9.2-rfc3339.log"
wc -l "$out"/*.log
