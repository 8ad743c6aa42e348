# imgbase — see README.md. `make demo` runs the main job, `make test` all tests.
GO ?= go
BIN := bin/imgbase
# A valid .deb and .rpm version from git describe (packaging/version.sh).
VERSION ?= $(shell packaging/version.sh 2>/dev/null || echo 0.0.0+dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null)
GOFLAGS_BUILD := -trimpath -ldflags "-s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)"

.PHONY: build unit test deps fuzz bench vet clean package package-check

# test: every test — unit tests, the packages' checks, then the real-system
# suite in QEMU (vm.mk).
test: unit package-check check

# deps: what the tests need on a fresh Debian machine (run as root).
deps:
	apt-get update -qq
	apt-get install -y -qq e2fsprogs xfsprogs squashfs-tools minisign attr acl grub-emu docker-registry >/dev/null
	apt-get install -y -qq --no-install-recommends lintian rpm man-db >/dev/null
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
	rm -rf bin build dist

# package: dist/imgbase_<version>_{amd64,arm64}.deb and
# dist/imgbase-<version>-1.{x86_64,aarch64}.rpm (packaging/build.sh).
# DEB is the package the VM guests install (dpkg -i).
DEB = $(CURDIR)/dist/imgbase_$(VERSION)_amd64.deb

package:
	VERSION='$(VERSION)' COMMIT='$(COMMIT)' bash packaging/build.sh

# package-check: lintian, rpm -qpl/-qpi, man -l, the completions, and
# install/upgrade/remove/purge in a chroot (test/package/check.sh; root).
package-check: package
	VERSION='$(VERSION)' bash test/package/check.sh

# bench: Go benchmarks (decoding 1,000 LVs, the sparse writer, the merge …),
# then imgbase against the bare tools on real LVM in a guest, as a table.
bench: package
	$(GO) test -run '^$$' -bench . -benchtime 20x -benchmem ./internal/...
	@set -e; vars="$$(bash test/image/build.sh all) $$(bash test/image/build.sh skopeo)"; \
	env $$vars IMGBASE_BENCH=1 IMGBASE_DEB=$(DEB) $(GO) test -tags vm ./test/vm -run '^TestBench$$' -v -count=1 -timeout 90m

# VM targets (image, check, demo, runtime-layout.squash, bench) live in vm.mk.
-include vm.mk
