# kernel/module.mk - `make kernel-check`: the real Linux kernel as an oracle
# (kernel/README.md). Run by hand, not by `make check` or CI: it boots Debian
# 12's kernel under qemu-system-x86_64 (scripts/install-deps.sh --kernel) and
# caches ~600 MiB of packages under KCHECK_CACHE.
#
#   make kernel-check                      every kernel/scenarios/*.thinpool
#   make kernel-check KCHECK_ARGS='kernel/scenarios/05-wrap-reuse.thinpool'
#   make kernel-check KCHECK_CONTROL=1     also the control runs
KCHECK_CACHE ?= build/kernel-cache
KCHECK_ARGS  ?=

# This file is included before the top Makefile's first rule: keep `all` the
# default goal.
kernel_saved_goal := $(.DEFAULT_GOAL)
kernel-check: all
	@BIN=$(abspath $(BIN)) KCHECK_CACHE=$(abspath $(KCHECK_CACHE)) bash kernel/check.sh $(KCHECK_ARGS)
.DEFAULT_GOAL := $(kernel_saved_goal)
