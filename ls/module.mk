TOOLS += thin_ls
thin_ls_SRCS := $(sort $(wildcard ls/*.c))
