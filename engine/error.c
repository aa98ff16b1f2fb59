/* error.c - recording where and why an engine call failed. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "thinmeta/error.h"

static const char *const rule_names[TM_RULE__COUNT] = {
	[TM_RULE_NONE] = "none",
	[TM_RULE_IO] = "io",
	[TM_RULE_NOMEM] = "nomem",
	[TM_RULE_CHECKSUM] = "checksum",
	[TM_RULE_BLOCKNR] = "blocknr",
	[TM_RULE_MAGIC] = "magic",
	[TM_RULE_VERSION] = "version",
	[TM_RULE_FEATURE] = "feature",
	[TM_RULE_BLOCK_SIZE] = "block_size",
	[TM_RULE_NODE_FLAGS] = "node_flags",
	[TM_RULE_MAX_ENTRIES] = "max_entries",
	[TM_RULE_NR_ENTRIES] = "nr_entries",
	[TM_RULE_VALUE_SIZE] = "value_size",
	[TM_RULE_KEY_ORDER] = "key_order",
	[TM_RULE_KEY_RANGE] = "key_range",
	[TM_RULE_DEPTH] = "depth",
	[TM_RULE_CYCLE] = "cycle",
	[TM_RULE_OUT_OF_RANGE] = "out_of_range",
	[TM_RULE_EMPTY_INTERNAL] = "empty_internal",
	[TM_RULE_DEVICES] = "devices",
	[TM_RULE_NO_SNAP] = "no_snap",
	[TM_RULE_SNAP_MISMATCH] = "snap_mismatch",
	[TM_RULE_TOO_SMALL] = "too_small",
	[TM_RULE_ZEROED] = "zeroed",
	[TM_RULE_BAD_VALUE] = "bad_value",
	[TM_RULE_ARG] = "arg",
};

const char *tm_rule_name(enum tm_rule rule)
{
	if ((unsigned)rule >= TM_RULE__COUNT || !rule_names[rule])
		return "unknown";
	return rule_names[rule];
}

void tm_error_clear(struct tm_error *e)
{
	if (!e)
		return;
	e->err = 0;
	e->rule = TM_RULE_NONE;
	e->block = TM_NO_BLOCK;
	e->msg[0] = '\0';
}

int tm_fail(struct tm_error *e, int err, enum tm_rule rule, uint64_t block,
	    const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return err;
	e->err = err;
	e->rule = rule;
	e->block = block;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return err;
}

void tm_error_context(struct tm_error *e, const char *fmt, ...)
{
	char prefix[128], old[sizeof(e->msg)];
	va_list ap;

	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	size_t n = strlen(prefix);
	if (n + 2 >= sizeof(e->msg))
		n = sizeof(e->msg) - 3;
	memcpy(e->msg, prefix, n);
	memcpy(e->msg + n, ": ", 2);
	size_t rest = sizeof(e->msg) - n - 3;
	size_t m = strlen(old);
	if (m > rest)
		m = rest;
	memcpy(e->msg + n + 2, old, m);
	e->msg[n + 2 + m] = '\0';
}
