#!/usr/bin/env bash
# Installs the Debian package built by `make deb` on this machine, checks
# it from its installed paths, and removes and purges it, checking that
# nothing is left behind. Needs root. Used by .ci/run.
set -euo pipefail
deb=$(ls -t dist/sshguard-go_*.deb | head -1)
fail() { echo "check-package: $*" >&2; exit 1; }

dpkg -s sshguard-go >/dev/null 2>&1 && fail "sshguard-go is already installed here"
echo "installing $deb"
dpkg -i "$deb"
/usr/bin/sshguard-go --version
# --no-source: this build machine is not the one the file is for (it may
# have neither an auth log nor a journal); check-unit.sh checks the source.
/usr/bin/sshguard-go check-config --quiet --no-source /etc/sshguard-go/sshguard-go.toml
/usr/bin/sshguard-go check-config --no-source >/dev/null
[ "$(stat -c %a /etc/sshguard-go/sshguard-go.toml)" = 600 ] || fail "config file mode is not 0600"
[ "$(stat -c %a /var/lib/sshguard-go)" = 700 ] || fail "state directory mode is not 0700"
grep -qx /etc/sshguard-go/sshguard-go.toml /var/lib/dpkg/info/sshguard-go.conffiles || fail "the config is not a conffile"
for f in /lib/systemd/system/sshguard-go.service /usr/share/bash-completion/completions/sshguard-go \
	/usr/share/zsh/vendor-completions/_sshguard-go /usr/share/fish/vendor_completions.d/sshguard-go.fish; do
	[ -f "$f" ] || fail "$f not installed"
done
# Not `dpkg-deb -c | grep -q`: under pipefail, grep leaving early kills dpkg-deb with SIGPIPE.
contents=$(dpkg-deb -c "$deb")
grep -q 'usr/share/man/man1/sshguard-go.1.gz' <<<"$contents" || fail "no man page in the package"
grep -q 'usr/share/man/man5/sshguard-go.toml.5.gz' <<<"$contents" || fail "no man page of the configuration file in the package"
# The installed unit verifies clean (man pages are checked when man can read them).
man_opt=--man=no
[ -f /usr/share/man/man1/sshguard-go.1.gz ] && command -v man >/dev/null && man_opt=--man=yes
out=$(systemd-analyze verify $man_opt /lib/systemd/system/sshguard-go.service 2>&1) || fail "verify: $out"
[ -z "$out" ] || fail "verify: $out"
# Installing must neither enable nor start the service.
[ ! -e /etc/systemd/system/multi-user.target.wants/sshguard-go.service ] || fail "the service was enabled by the install"
pgrep -x sshguard-go >/dev/null && fail "a daemon was started by the install"

dpkg -r sshguard-go
[ ! -e /usr/bin/sshguard-go ] || fail "binary left after remove"
[ -e /etc/sshguard-go/sshguard-go.toml ] || fail "remove deleted the conffile (only purge may)"
dpkg -P sshguard-go
[ ! -e /etc/sshguard-go ] || fail "/etc/sshguard-go left after purge"
[ ! -e /var/lib/sshguard-go ] || fail "/var/lib/sshguard-go left after purge"
dpkg -s sshguard-go >/dev/null 2>&1 && fail "still registered after purge"
echo "check-package: installed, checked, removed and purged cleanly"
