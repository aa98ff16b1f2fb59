TOOLS += thin_check
thin_check_SRCS := $(sort $(wildcard check/*.c))
