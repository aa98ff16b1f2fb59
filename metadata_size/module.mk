TOOLS += thin_metadata_size
thin_metadata_size_SRCS := $(sort $(wildcard metadata_size/*.c))
