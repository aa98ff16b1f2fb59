# fuzz/module.mk - fuzzing with libFuzzer (docs/fuzzing.md).  Not a tool:
# nothing is added to TOOLS, and `make check` does not depend on clang.
#
#   make fuzz           build the targets with clang and run each for
#                       FUZZ_SECONDS (default 60)
#   make fuzz-smoke     the same, FUZZ_SMOKE_SECONDS (default 5) each: for CI
#   make fuzz-build     build the targets only ($(BUILD)/libfuzzer/TARGET)
#   make fuzz-corpus    regenerate the seed corpus fuzz/corpus/ from fixtures/
#
# New inputs found go to $(BUILD)/libfuzzer/work/TARGET, crashes to
# $(BUILD)/libfuzzer/artifacts/TARGET/.  Each crash, once fixed, is saved
# under fuzz/regressions/TARGET/; `make check` replays the seed corpus and
# the regressions through the same entry functions compiled without
# libFuzzer (tests/unit/test_fuzz_replay.c).

FUZZ_CC            ?= clang
FUZZ_SECONDS       ?= 60
FUZZ_SMOKE_SECONDS ?= 5
FUZZ_TARGETS       := fuzz_image fuzz_xml fuzz_pool_script
FUZZ_OUT           := $(BUILD)/libfuzzer
FUZZ_SAN           := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS        := $(STD) $(CPPFLAGS) -Idump -Irestore -Ipool -g -O1 \
                      -fno-omit-frame-pointer $(FUZZ_SAN) -fsanitize=fuzzer-no-link

# (fuzz_image_mutator.c: libFuzzer only, the replay has no LLVMFuzzerMutate)
fuzz_image_FSRCS := fuzz/fuzz_image.c fuzz/fuzz_image_mutator.c fuzz/fuzz_dev.c \
                    fuzz/ir_check.c dump/emit_xml.c dump/emit_human.c
fuzz_xml_FSRCS   := fuzz/fuzz_xml.c fuzz/fuzz_dev.c fuzz/ir_check.c restore/xml_read.c
fuzz_xml_FLIBS   := -lexpat
fuzz_pool_script_FSRCS := fuzz/fuzz_pool_script.c fuzz/fuzz_dev.c fuzz/ir_check.c \
                          pool/script.c pool/data.c

FUZZ_LIB_OBJS := $(patsubst %.c,$(FUZZ_OUT)/obj/%.o,$(ENGINE_SRCS) $(COMMON_SRCS))
FUZZ_BINS     := $(FUZZ_TARGETS:%=$(FUZZ_OUT)/%)

$(FUZZ_OUT)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_OUT)/libthinmeta-fuzz.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

define fuzz_rule
$(1)_FOBJS := $$($(1)_FSRCS:%.c=$$(FUZZ_OUT)/obj/%.o)
$$(FUZZ_OUT)/$(1): $$($(1)_FOBJS) $$(FUZZ_OUT)/libthinmeta-fuzz.a
	$$(FUZZ_CC) $$(FUZZ_SAN) -fsanitize=fuzzer -o $$@ $$^ $$($(1)_FLIBS)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_rule,$(t))))

.PHONY: fuzz fuzz-smoke fuzz-build fuzz-corpus
fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@sh fuzz/run.sh $(FUZZ_OUT) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	@sh fuzz/run.sh $(FUZZ_OUT) $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)

fuzz-corpus: $(BIN)/thin_restore
	python3 fuzz/make-corpus.py --bin $(BIN) --out fuzz/corpus

-include $(FUZZ_LIB_OBJS:.o=.d) $(foreach t,$(FUZZ_TARGETS),$($(t)_FOBJS:.o=.d))

# ---------------------------------------------------------------- replay in make check
# The same entry functions, compiled with $(CC) (and the sanitizers under
# SANITIZE=1), each renamed from LLVMFuzzerTestOneInput to TARGET_one.

FUZZ_REPLAY      := $(BUILD)/tests/test_fuzz_replay
FUZZ_REPLAY_OBJS := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/replay_%.o) \
                    $(BUILD)/fuzz/fuzz_dev.o $(BUILD)/fuzz/ir_check.o \
                    $(BUILD)/dump/emit_xml.o $(BUILD)/dump/emit_human.o \
                    $(BUILD)/restore/xml_read.o $(BUILD)/pool/script.o $(BUILD)/pool/data.o

$(BUILD)/fuzz/replay_%.o: fuzz/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Idump -Irestore -Ipool -DLLVMFuzzerTestOneInput=$*_one -c -o $@ $<

$(FUZZ_REPLAY): $(FUZZ_REPLAY_OBJS)
$(FUZZ_REPLAY): private CPPFLAGS += -DFUZZ_DIR='"$(abspath fuzz)"'
$(FUZZ_REPLAY): private LDFLAGS += $(FUZZ_REPLAY_OBJS) $(COMMON_LIB) $(LIB) -lexpat

-include $(FUZZ_REPLAY_OBJS:.o=.d)

# fz_unpack: a fuzz_image input as a metadata image the tools can read
FUZZ_UNPACK := $(BUILD)/fuzz/fz_unpack
$(BUILD)/fuzz/unpack.o: fuzz/unpack.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<
$(FUZZ_UNPACK): $(BUILD)/fuzz/unpack.o $(BUILD)/fuzz/fuzz_dev.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^
.PHONY: fuzz-unpack
fuzz-unpack: $(FUZZ_UNPACK)

# ---------------------------------------------------------------- from make check
# `make check` runs the fuzz smoke test (each target FUZZ_SMOKE_SECONDS)
# when clang can link libFuzzer, and says it skipped it otherwise; with
# CI=true a missing libFuzzer fails.  Under SANITIZE=1 it is skipped: the
# plain `make check` ran it, and the targets carry the sanitizers anyway.
FUZZ_PROBE = printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' | \
	$(FUZZ_CC) -x c -fsanitize=fuzzer,address,undefined -o /dev/null - >/dev/null 2>&1

.PHONY: check-fuzz
check-fuzz:
ifeq ($(SANITIZE),1)
	@echo "check-fuzz: skipped under SANITIZE=1 (the plain make check runs the fuzz smoke test)"
else
	@if $(FUZZ_PROBE); then \
		$(MAKE) --no-print-directory fuzz-smoke; \
	elif [ "$$CI" = true ]; then \
		echo "check-fuzz: $(FUZZ_CC) cannot link libFuzzer (CI=true: required; scripts/install-deps.sh installs clang and libclang-rt-dev)" >&2; \
		exit 1; \
	else \
		echo "check-fuzz: SKIPPED ($(FUZZ_CC) with libFuzzer is not installed)"; \
	fi
endif
