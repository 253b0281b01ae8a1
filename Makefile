# orchestrate — build, test, demo. Every target is usable by CI as is.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -s -w -X main.version=$(VERSION)
GO ?= go

.PHONY: all build test unit e2e demo lint bench fuzz deps clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/orchestrate ./cmd/orchestrate
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/ec2sim ./cmd/ec2sim

deps:
	./scripts/install-deps.sh

# All tests: unit tests everywhere, and the end-to-end tests that need root
# (real sshd, loop filesystems, fsfreeze). Under CI=true a skipped
# end-to-end test is a failure.
test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 10m ./...

unit:
	$(GO) test -short -count=1 ./...

e2e: deps
	$(GO) test -count=1 -v -timeout 10m ./test/e2e/

# A real freeze–snapshot–thaw on this machine: a throwaway sshd, two loop
# filesystems, the emulator and `orchestrate run`. Needs root.
demo: deps build
	$(GO) run ./test/demo -orchestrate bin/orchestrate -ec2sim bin/ec2sim

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) mod tidy -diff

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./internal/hosts/
	$(GO) test -run '^$$' -fuzz FuzzQuote -fuzztime 30s ./internal/freeze/

clean:
	rm -rf bin
