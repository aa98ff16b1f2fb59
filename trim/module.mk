TOOLS += thin_trim
thin_trim_SRCS := $(sort $(wildcard trim/*.c))
