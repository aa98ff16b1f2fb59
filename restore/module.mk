TOOLS += thin_restore
thin_restore_SRCS := $(sort $(wildcard restore/*.c))
thin_restore_LDLIBS := -lexpat -lpthread

# tests/unit/test_builder.c also tests the XML reader on the builder
# (xml_read_parallel against xml_read, the canonical-line path against expat).
RESTORE_TEST_OBJS := $(BUILD)/restore/xml_read.o $(BUILD)/restore/xml_par.o
$(BUILD)/tests/test_builder: $(RESTORE_TEST_OBJS)
$(BUILD)/tests/test_builder: private CPPFLAGS += -Irestore
$(BUILD)/tests/test_builder: private LDFLAGS += $(RESTORE_TEST_OBJS) -lexpat -lpthread
