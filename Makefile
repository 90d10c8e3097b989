# sshguard-go. `make help` lists the targets.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
GO      ?= go

.PHONY: help build test test-short lint bench bench-compare fuzz samples clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build ./sshguard-go
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o sshguard-go ./cmd/sshguard-go

test: ## the whole test suite, as CI runs it (root tests need root)
	$(GO) test -race -count=1 ./...

test-short: ## the tests that need neither root nor a live sshd
	$(GO) test -short -count=1 ./...

lint: ## gofmt, go vet
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	$(GO) vet ./...

bench: ## parser benchmarks (one core)
	$(GO) test ./internal/detect -run XXX -bench . -benchmem -cpu 1

bench-compare: build ## scan speed beside sshg-parser and fail2ban-regex on one generated file
	./scripts/bench-compare.sh

fuzz: ## fuzz the parser for a minute each
	$(GO) test ./internal/detect -run XXX -fuzz FuzzSpoof -fuzztime 60s
	$(GO) test ./internal/detect -run XXX -fuzz FuzzParseLine -fuzztime 60s

samples: ## re-record testdata/recorded from a real sshd (root)
	./scripts/record-samples.sh testdata/recorded

clean:
	rm -f sshguard-go
