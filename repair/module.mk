TOOLS += thin_repair
thin_repair_SRCS := $(sort $(wildcard repair/*.c))
# thin_dump --repair prints the same report
thin_dump_SRCS += repair/report.c
