# sshguard-go. `make help` lists the targets.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
GO      ?= $(shell command -v go || echo /usr/local/go/bin/go)
# The Debian version: a release number, and the commit for builds between releases.
RELEASE ?= 0.1.0
DEB_VERSION ?= $(RELEASE)+git$(COMMIT)
GOARCH  ?= $(shell $(GO) env GOARCH)
NFPM    ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
PREFIX  ?= /usr/local
UNITDIR ?= /etc/systemd/system
DESTDIR ?=

.PHONY: help build test test-short bench-smoke lint bench bench-compare bench-archive bench-ban-compare bench-wave bench-year bench-slow bench-noisy bench-fleet-scale fuzz fuzz-smoke samples clean man default-config completions deb install

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build ./sshguard-go
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o sshguard-go ./cmd/sshguard-go

test: ## the whole test suite, as CI runs it (root tests need root)
	$(GO) test -race -count=1 ./...

test-short: ## the tests that need neither root nor a live sshd
	$(GO) test -short -count=1 ./...

bench-smoke: ## every benchmark once, as CI runs them (root benchmarks need root)
	$(GO) test -run XXX -bench . -benchtime 1x ./...

lint: ## gofmt, go vet
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	$(GO) vet ./...

bench: ## parser benchmarks (one core)
	$(GO) test ./internal/source -run XXX -bench ScanJSON -benchmem -cpu 1

bench-compare: build ## scan speed beside sshg-parser and fail2ban-regex on one generated file
	./scripts/bench-compare.sh

bench-archive: build ## report on one file and on 16, -j 1 and -j 2, beside scan --json and sshg-parser (lines/s, peak memory)
	./scripts/bench-archive.sh

bench-ban-compare: build ## log line -> kernel ban beside SSHGuard and fail2ban daemons (root)
	$(GO) run ./scripts/bancompare -n 50
	$(GO) run ./scripts/bancompare -n 50 -preload 100000

bench-wave: build ## a botnet wave: 10,000 and 100,000 new addresses at once, beside SSHGuard on 10,000 (root; SSHGuard takes minutes)
	$(GO) run ./scripts/bancompare -tools sshguard-go -wave 10000
	$(GO) run ./scripts/bancompare -tools sshguard-go -wave 100000
	$(GO) run ./scripts/bancompare -tools sshguard-go -wave 100000 -webhook
	$(GO) run ./scripts/bancompare -tools sshguard -wave 10000

bench-slow: ## the month of slow attackers and legitimate typos beside fail2ban (sshd, recidive) and SSHGuard: who is banned when
	$(GO) run ./scripts/slowcompare

bench-noisy: ## ban latency and peak memory while each noisy neighbour runs, then all together five times, at full size (root; minutes)
	SSHGUARD_BENCH_NOISY=full SSHGUARD_BENCH_NOISY_ALL=5 $(GO) test ./internal/daemon -run XXX -bench NoisyNeighbour -benchtime 1x -timeout 60m

bench-fleet-scale: ## 10, 100 and 1,000 hosts on one NATS server: ban fan-out, fleet-wide counting all-to-all vs partitioned (a Markdown table); 1,000 hosts' fan-out through each host's real gate and database
	SSHGUARD_FLEET_SCALE=1 $(GO) test ./internal/share -run XXX -bench FleetScale -benchtime 1x -timeout 60m
	SSHGUARD_FLEET_REAL=1000 $(GO) test ./internal/daemon -run XXX -bench FleetFanOutReal -benchtime 1x -timeout 30m

bench-year: ## a year of a busy server against the state database: its size at days 30, 90, 180, 365
	$(GO) test ./internal/store -run XXX -bench 'Year|StateSize' -benchtime 1x

fuzz: ## every fuzz target (parsers of untrusted input) for a minute each
	./scripts/fuzz-smoke.sh 60s

fuzz-smoke: ## every fuzz target for 5,000 inputs each, as CI runs them
	./scripts/fuzz-smoke.sh 5000x

samples: ## re-record testdata/recorded from a real sshd (root)
	./scripts/record-samples.sh testdata/recorded

man: build ## man pages into build/man, from the command definitions and the documentation of the keys
	rm -rf build/man && ./sshguard-go man build/man && gzip -9n build/man/*.1 build/man/*.5

default-config: ## write deploy/sshguard-go.toml from the documentation of the keys (internal/config/keys.go)
	$(GO) test ./internal/config -run TestDefaultFileIsGenerated -count=1 -update

completions: build ## bash, zsh and fish completion into build/completions
	mkdir -p build/completions
	./sshguard-go completion bash > build/completions/sshguard-go.bash
	./sshguard-go completion zsh > build/completions/_sshguard-go
	./sshguard-go completion fish > build/completions/sshguard-go.fish

deb: build man completions ## the Debian package, into dist/ (older ones there removed)
	mkdir -p dist
	rm -f dist/sshguard-go_*.deb
	DEB_VERSION='$(DEB_VERSION)' GOARCH='$(GOARCH)' $(NFPM) package --config deploy/nfpm.yaml --packager deb --target dist/

install: build man completions ## install under $(DESTDIR)$(PREFIX), the unit in $(UNITDIR); keeps an existing config
	install -Dm0755 sshguard-go $(DESTDIR)$(PREFIX)/bin/sshguard-go
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)/var/lib/sshguard-go
	sed 's|/usr/bin/sshguard-go|$(PREFIX)/bin/sshguard-go|g' deploy/sshguard-go.service > $(DESTDIR)$(UNITDIR)/sshguard-go.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/sshguard-go.service
	chmod 0700 $(DESTDIR)/var/lib/sshguard-go
	test -e $(DESTDIR)/etc/sshguard-go/sshguard-go.toml || install -Dm0600 deploy/sshguard-go.toml $(DESTDIR)/etc/sshguard-go/sshguard-go.toml
	install -m0644 build/man/*.1.gz $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m0644 build/man/*.5.gz $(DESTDIR)$(PREFIX)/share/man/man5/
	install -Dm0644 build/completions/sshguard-go.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/sshguard-go
	install -Dm0644 build/completions/_sshguard-go $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_sshguard-go
	install -Dm0644 build/completions/sshguard-go.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/sshguard-go.fish
	@echo "installed; now: sudo systemctl daemon-reload && sudo systemctl enable --now sshguard-go"

clean:
	rm -rf sshguard-go build dist
