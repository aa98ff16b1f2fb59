# thin_explore: the ncurses metadata browser.  Only this tool links curses.
TOOLS += thin_explore
thin_explore_SRCS := $(sort $(wildcard tui/*.c))
thin_explore_LDLIBS := $(shell pkg-config --libs ncursesw 2>/dev/null || echo -lncursesw)

# The navigation model without the terminal (everything but thin_explore.c)
# is linked into its unit test, tests/unit/test_explore_model.c.  These are
# the first rules make reads: keep them from becoming the default goal.
tui_saved_goal := $(.DEFAULT_GOAL)
TUI_MODEL_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(filter-out tui/thin_explore.c,$(thin_explore_SRCS)))
$(BUILD)/tests/test_explore_model: $(TUI_MODEL_OBJS)
$(BUILD)/tests/test_explore_model: COMMON_LIB := $(TUI_MODEL_OBJS) $(BUILD)/libtmcommon.a
$(BUILD)/tests/test_explore_model: CPPFLAGS += -Itui
.DEFAULT_GOAL := $(tui_saved_goal)
