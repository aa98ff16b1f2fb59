TOOLS += thin_delta
thin_delta_SRCS := $(sort $(wildcard delta/*.c))
