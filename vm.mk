# VM targets (included by the Makefile). Everything built lives in
# $(IMGBASE_CACHE), keyed by its inputs: a second run rebuilds nothing.
IMGBASE_CACHE ?= /var/cache/imgbase
export IMGBASE_CACHE
VM_BUILD := bash test/image/build.sh
VM_TEST_TIMEOUT ?= 80m
VM_RUN ?= .

.PHONY: image testimages runtime-layout.squash check check-long vm-check demo vm-deps

vm-deps:
	@$(VM_BUILD) deps

image:
	@$(VM_BUILD) image

testimages:
	@$(VM_BUILD) testimages

runtime-layout.squash:
	@$(VM_BUILD) squash

# check: the real-system suite (seeds' walk-throughs on real LVM in QEMU).
check: package vm-check

# check-long: the VM tests too long for CI's hour (IMGBASE_LONG=1: e.g.
# TestPowerCut's twelve power cuts, about 50 minutes beside another guest;
# TestUEFISystemdBoot, 16 to 35 minutes for each of its four layouts, on the
# UEFI image, and TestDracutHost, about 25 minutes, on the dracut host image,
# both of which build.sh all then builds too), and the
# long parts of others (harness.go's Long): TestDeltaUpdate's kill during the
# sync, v2 → v3 and back (each verified and compared with a full install), v3's
# boot, check --deep and the rollback's boot; TestUpdate's kill at every step and
# the boot after; TestUpdateFromOCI's tag move, switch and boot; the boots into
# the host's own root and after a kernel change in a layer (TestBootIntoLayer,
# check-long only), after a rollback
# (TestImageBaseLayerAndRollback) and after a fallback (TestBootLayers).
check-long: package
	@IMGBASE_LONG=1 $(MAKE) --no-print-directory vm-check VM_TEST_TIMEOUT=$(VM_LONG_TIMEOUT)

VM_LONG_TIMEOUT ?= 120m

# -parallel 64: the harness (test/vm/schedule.go) runs at most two guests,
# longest test first; go test must not hold tests back itself.
vm-check:
	@set -e; vars=$$($(VM_BUILD) all); \
	echo "$$vars"; \
	env $$vars IMGBASE_DEB=$(DEB) $(GO) test -tags vm ./test/vm/... -v -count=1 -parallel 64 \
		-timeout $(VM_TEST_TIMEOUT) -run '$(VM_RUN)' $(GOTESTFLAGS)

demo: package
	@set -e; vars=$$($(VM_BUILD) all); \
	env $$vars IMGBASE_DEB=$(DEB) $(GO) run -tags vm ./test/vm/demo
