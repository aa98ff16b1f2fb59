# thinmeta - non-recursive build.
#
#   make                 build the library and every tool into bin/
#   make check           unit tests (Check) and command-level tests
#   make check SANITIZE=1   the same under ASan+UBSan (objects in build/san)
#   make check-slow      large sizes and long soaks
#   make demo            dump the bundled example pool and its metadata snapshot
#   make clean
#
# Each tool directory has a module.mk that adds to TOOLS.

CC      ?= cc
CFLAGS  ?= -O2 -g
STD     := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wvla \
           -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS += -Iinclude -Icommon
LDLIBS  ?=

ifeq ($(SANITIZE),1)
  BUILD   ?= build/san
  BIN     ?= build/san/bin
  CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=address,undefined
else
  BUILD   ?= build/obj
  BIN     ?= bin
endif

ALL_CFLAGS = $(STD) $(CPPFLAGS) $(CFLAGS) -MMD -MP

ENGINE_SRCS := $(sort $(wildcard engine/*.c))
ENGINE_OBJS := $(ENGINE_SRCS:%.c=$(BUILD)/%.o)
LIB         := $(BUILD)/libthinmeta.a

COMMON_SRCS := $(sort $(wildcard common/*.c))
COMMON_OBJS := $(COMMON_SRCS:%.c=$(BUILD)/%.o)
COMMON_LIB  := $(BUILD)/libtmcommon.a

.DEFAULT_GOAL := all
TOOLS :=
include $(sort $(wildcard */module.mk))

TOOL_BINS := $(TOOLS:%=$(BIN)/%)

.PHONY: all check check-unit check-cli check-slow demo clean kernel-check
all: $(TOOL_BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIB): $(ENGINE_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

# The shared library (man/libthinmeta.3): the engine's objects are built
# position-independent with hidden visibility, so libthinmeta.so exports only
# the API of include/thinmeta/thinmeta.h (also listed in the version script);
# the static library holds the same objects, and the tools link that.
api_version = $(shell sed -n 's/^\#define THINMETA_VERSION_$(1) *//p' include/thinmeta/thinmeta.h)
LIB_MAJOR   := $(call api_version,MAJOR)
LIB_MINOR   := $(call api_version,MINOR)
LIB_PATCH   := $(call api_version,PATCH)
LIB_VERSION := $(LIB_MAJOR).$(LIB_MINOR).$(LIB_PATCH)
SHLIB_SONAME := libthinmeta.so.$(LIB_MAJOR)
SHLIB       := $(BUILD)/libthinmeta.so.$(LIB_VERSION)
SHLIB_MAP   := engine/libthinmeta.map

$(ENGINE_OBJS): ALL_CFLAGS += -fPIC -fvisibility=hidden
# (objects built before these flags were added are rebuilt once)
$(ENGINE_OBJS): $(BUILD)/.engine-pic
$(BUILD)/.engine-pic:
	@mkdir -p $(@D) && touch $@

$(SHLIB): $(ENGINE_OBJS) $(SHLIB_MAP)
	$(CC) -shared -Wl,-soname,$(SHLIB_SONAME) -Wl,--version-script=$(SHLIB_MAP) \
		-Wl,-z,defs -o $@ $(ENGINE_OBJS) $(LDFLAGS)

$(COMMON_LIB): $(COMMON_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

# A tool NAME links $(NAME_OBJS) with the common and engine libraries.
define tool_rule
$(1)_OBJS := $$($(1)_SRCS:%.c=$$(BUILD)/%.o)
$$(BIN)/$(1): $$($(1)_OBJS) $$(COMMON_LIB) $$(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$($(1)_OBJS) $$(COMMON_LIB) $$(LIB) $$($(1)_LDLIBS) $$(LDLIBS)
endef
$(foreach t,$(TOOLS),$(eval $(call tool_rule,$(t))))

# make install / uninstall, the shared library in `all`
include install.mk

# ---------------------------------------------------------------- tests
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)
UNIT_SRCS    := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS    := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

$(BUILD)/tests/%: tests/unit/%.c $(LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Iengine -o $@ $< $(COMMON_LIB) $(LIB) $(LDFLAGS) $(CHECK_LIBS)

check: check-unit check-cli

KFIXTURES := $(patsubst fixtures/kernel/%.xz,$(BUILD)/fixtures/%,$(wildcard fixtures/kernel/*.img.xz))

$(BUILD)/fixtures/%: fixtures/kernel/%.xz
	@mkdir -p $(dir $@)
	xz -dc $< > $@.tmp && mv $@.tmp $@

check-unit: $(UNIT_BINS) $(KFIXTURES)
	@THINMETA_FIXTURES=$(abspath $(BUILD)/fixtures) sh tests/unit/run.sh $(UNIT_BINS)

check-cli: all
	@BIN=$(abspath $(BIN)) bash tests/cli/run.sh

check-slow: all
	@BIN=$(abspath $(BIN)) SLOW=1 bash tests/cli/run.sh

demo: all
	@BIN=$(BIN) sh scripts/demo.sh

clean:
	rm -rf build bin

-include $(ENGINE_OBJS:.o=.d) $(COMMON_OBJS:.o=.d)
-include $(foreach t,$(TOOLS),$($(t)_OBJS:.o=.d))

# ---------------------------------------------------------------- fuzz smoke and valgrind (issue 9)
# make check also runs the fuzz smoke test (fuzz/module.mk: check-fuzz) and
# a subset under valgrind (tests/valgrind/run.sh), each skipped with a
# message when its tool is missing (required when CI=true), after the rest.
.PHONY: check-valgrind
check: check-fuzz check-valgrind
ifneq ($(filter check,$(MAKECMDGOALS)),)
check-fuzz check-valgrind: | check-unit check-cli
endif
check-valgrind: all $(UNIT_BINS) $(KFIXTURES)
ifeq ($(SANITIZE),1)
	@echo "check-valgrind: skipped under SANITIZE=1 (valgrind cannot run AddressSanitizer binaries)"
else
	@bash tests/valgrind/run.sh $(BUILD) $(BIN)
endif
