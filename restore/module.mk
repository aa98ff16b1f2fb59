TOOLS += thin_restore
thin_restore_SRCS := $(sort $(wildcard restore/*.c))
thin_restore_LDLIBS := -lexpat
