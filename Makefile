# imgbase — see README.md. `make demo` runs the main job, `make test` all tests.
GO ?= go
BIN := bin/imgbase
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
GOFLAGS_BUILD := -trimpath -ldflags "-s -w -X main.version=$(VERSION)"

.PHONY: build unit test deps fuzz bench vet clean

# test: every test — unit tests, then the real-system suite in QEMU (vm.mk).
test: unit check

# deps: what the tests need on a fresh Debian machine (run as root).
deps:
	apt-get update -qq
	apt-get install -y -qq e2fsprogs xfsprogs squashfs-tools minisign attr acl grub-emu docker-registry >/dev/null
	$(MAKE) vm-deps

# fuzz: a short run of every fuzz target.
fuzz:
	@for p in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$p | grep ^Fuzz); do \
	    $(GO) test $$p -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-10s} || exit 1; \
	  done; done
build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN) ./cmd/imgbase

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

unit: vet
	$(GO) test ./...

clean:
	rm -rf bin

# bench: Go benchmarks (decoding 1,000 LVs, the sparse writer, the merge …),
# then imgbase against the bare tools on real LVM in a guest, as a table.
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 20x -benchmem ./internal/...
	@set -e; vars=$$(bash test/image/build.sh all); \
	env $$vars IMGBASE_BENCH=1 IMGBASE_BIN=$(CURDIR)/$(BIN) $(GO) test -tags vm ./test/vm -run '^TestBench$$' -v -count=1 -timeout 40m

# VM targets (image, check, demo, runtime-layout.squash, bench) live in vm.mk.
-include vm.mk
