TOOLS += thin_backup
thin_backup_SRCS := $(sort $(wildcard backup/*.c))
