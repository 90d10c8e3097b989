#!/usr/bin/env bash
# A test lab of real parts for end-to-end tests:
#   lab.sh up DIR NAME [pam]
#                         server namespace NAME-s (10.200.9.1, fd00:209::1) with
#                         rsyslogd writing DIR/auth.log and sshd on port 22
#                         (with PAM when "pam" is given: its session lines and
#                         pam_loginuid), sftp by internal-sftp; client namespace
#                         NAME-c (10.200.9.2 and .3, fd00:209::2) joined by a
#                         veth pair; user sgtest with password right-password
#                         and the key DIR/userkey.
#   lab.sh down DIR NAME  stops sshd and rsyslogd, deletes the namespaces.
# Needs root, openssh-server, rsyslog, iproute2. rsyslogd listens on a socket
# of its own, which sshd sees as /dev/log in a private mount namespace (an
# empty /dev/log is created as the mount point if the host has none).
set -euo pipefail
cmd=$1 dir=$2 name=$3 pam=no
[ "${4:-}" = pam ] && pam=yes
srv=$name-s cli=$name-c

down() {
	for p in sshd rsyslog; do
		[ -f "$dir/$p.pid" ] && kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
	done
	rm -rf "/tmp/sg-lab-keys-$name"
	ip netns del "$srv" 2>/dev/null || true
	ip netns del "$cli" 2>/dev/null || true
	return 0
}

if [ "$cmd" = down ]; then
	down
	exit 0
fi

mkdir -p "$dir"
down # leftovers of an interrupted run with the same name
ip netns add "$srv"
ip netns add "$cli"
ip link add "$name-a" type veth peer name "$name-b"
ip link set "$name-a" netns "$srv"
ip link set "$name-b" netns "$cli"
ip -n "$srv" addr add 10.200.9.1/24 dev "$name-a"
ip -n "$cli" addr add 10.200.9.2/24 dev "$name-b"
ip -n "$cli" addr add 10.200.9.3/24 dev "$name-b"
ip -n "$srv" addr add fd00:209::1/64 dev "$name-a" nodad
ip -n "$cli" addr add fd00:209::2/64 dev "$name-b" nodad
for ns in "$srv" "$cli"; do ip -n "$ns" link set lo up; done
ip -n "$srv" link set "$name-a" up
ip -n "$cli" link set "$name-b" up

cat >"$dir/rsyslog.conf" <<EOF
global(workDirectory="$dir")
module(load="imuxsock" SysSock.Name="$dir/log")
auth,authpriv.* action(type="omfile" file="$dir/auth.log" template="RSYSLOG_FileFormat")
EOF
rsyslogd -f "$dir/rsyslog.conf" -i "$dir/rsyslog.pid" </dev/null >/dev/null 2>&1
for _ in $(seq 50); do [ -S "$dir/log" ] && break; sleep 0.1; done

ssh-keygen -q -t ed25519 -N '' -f "$dir/hostkey" <<<y >/dev/null
ssh-keygen -q -t ed25519 -N '' -f "$dir/userkey" <<<y >/dev/null
id sgtest >/dev/null 2>&1 || useradd -m -s /bin/bash sgtest
echo 'sgtest:right-password' | chpasswd
# The lab's own authorised keys, not ~sgtest/.ssh: labs and the recording
# scripts run at the same time (go test runs packages at once). sshd reads
# the file as the user, so it lies where sgtest may read it.
keys=/tmp/sg-lab-keys-$name
mkdir -p -m 755 "$keys"
install -m 644 "$dir/userkey.pub" "$keys/authorized_keys"
cat >"$dir/sshd_config" <<EOF
Port 22
HostKey $dir/hostkey
PidFile $dir/sshd.pid
UsePAM $pam
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin no
MaxAuthTries 6
SyslogFacility AUTH
LogLevel INFO
Subsystem sftp internal-sftp -l INFO
AuthorizedKeysFile $keys/authorized_keys
StrictModes no
EOF
mkdir -p /run/sshd
# The mount point for our socket. It is left in place: removing it would
# detach the bind mounts of any other lab running at the same time (an
# unlinked mount point is unmounted in every namespace).
[ -e /dev/log ] || touch /dev/log
unshare --mount --propagation private sh -c "mount --bind '$dir/log' /dev/log && exec ip netns exec $srv /usr/sbin/sshd -f '$dir/sshd_config'" </dev/null >/dev/null 2>&1
for _ in $(seq 50); do [ -f "$dir/sshd.pid" ] && break; sleep 0.1; done
