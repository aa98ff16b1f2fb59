TOOLS += thin_pool
thin_pool_SRCS := $(sort $(wildcard pool/*.c))
