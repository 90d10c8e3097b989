#!/usr/bin/env bash
# Installs, with apt, what the whole test suite needs on Debian 12 or
# Ubuntu (run as root). .ci/run calls it; so can you before `sudo make test`.
#   openssh-server/-client, rsyslog, sshpass, iproute2: the live sshd tests in
#     network namespaces; nftables: nft, to check the kernel set;
#   systemd: systemd-analyze for the unit's checks; debootstrap,
#     systemd-container: scripts/check-unit.sh runs the service under a real
#     systemd in a Debian 12 container;
#   systemd-journal-remote: real journal files for the journald source;
#   sshguard, fail2ban (with python3-pyinotify, which it recommends): the
#     tools `make bench-compare` and `make bench-ban-compare` measure against;
#   make, gzip: the build; bzip2, xz-utils: bzip2 and xz archives for the
#     input tests;
#   chromium: the dashboards' browser tests drive it headless;
#   nats-server: the fleet's end-to-end test shares bans through it;
#   versitygw (Go, Apache-2.0): a real S3 server on a directory, for the
#     archive tests, installed into /usr/local/bin.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
	openssh-server openssh-client rsyslog sshpass iproute2 nftables iputils-ping \
	systemd systemd-container debootstrap systemd-journal-remote sshguard fail2ban python3-pyinotify make gzip bzip2 xz-utils chromium fonts-dejavu-core nats-server >/dev/null
go=$(command -v go || echo /usr/local/go/bin/go)
GOBIN=/usr/local/bin "$go" install github.com/versity/versitygw/cmd/versitygw@v1.8.0
