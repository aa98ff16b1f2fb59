TOOLS += thin_rmap
thin_rmap_SRCS := $(sort $(wildcard rmap/*.c))
