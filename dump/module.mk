TOOLS += thin_dump
thin_dump_SRCS := $(sort $(wildcard dump/*.c))
