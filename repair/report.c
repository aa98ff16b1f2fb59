/* report.c - the repair report (see report.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "report.h"
#include "tool.h"

int repair_report_eventful(const struct tm_repair_report *rep)
{
	if (!rep->sb_intact || rep->nr_bad || rep->nr_io_errors || rep->details_missing)
		return 1;
	for (size_t i = 0; i < rep->nr_devs; i++)
		if (rep->devs[i].state != TM_DEV_INTACT)
			return 1;
	return 0;
}

static const char *why_text(enum tm_rule r)
{
	switch (r) {
	case TM_RULE_IO:
		return "unreadable";
	case TM_RULE_CHECKSUM:
		return "bad checksum";
	case TM_RULE_ZEROED:
		return "all zeroes";
	case TM_RULE_BLOCKNR:
		return "holds another block's number";
	case TM_RULE_NODE_FLAGS:
	case TM_RULE_MAX_ENTRIES:
	case TM_RULE_NR_ENTRIES:
		return "broken node header";
	case TM_RULE_VALUE_SIZE:
		return "wrong value size for its tree";
	case TM_RULE_KEY_ORDER:
		return "keys out of order";
	case TM_RULE_KEY_RANGE:
		return "keys outside its parent's range";
	case TM_RULE_DEPTH:
		return "at the wrong depth";
	case TM_RULE_CYCLE:
		return "reached twice (a cycle)";
	case TM_RULE_OUT_OF_RANGE:
		return "pointer past the end of the device";
	case TM_RULE_EMPTY_INTERNAL:
		return "internal node with no entries";
	default:
		return tm_rule_name(r);
	}
}

static void value(FILE *f, const char *name, const struct tm_repair_value *v)
{
	fprintf(f, "%s %" PRIu64 " (%s)", name, v->value, tm_repair_src_name(v->src));
}

void repair_report_summary(FILE *f, const struct tm_repair_report *rep)
{
	size_t written = 0;

	for (size_t i = 0; i < rep->nr_devs; i++)
		if (rep->devs[i].state != TM_DEV_LEFT_OUT)
			written++;
	fprintf(f, "%s: %zu device%s, %" PRIu64 " mapping%s: the metadata is intact\n",
		tool_name, written, written == 1 ? "" : "s", rep->total_recovered,
		rep->total_recovered == 1 ? "" : "s");
}

static void superblock_line(FILE *f, const struct tm_repair_report *rep)
{
	fprintf(f, "%s:   superblock: ", tool_name);
	if (rep->sb_intact) {
		fprintf(f, "intact\n");
		return;
	}
	fprintf(f, "unusable (%s)", rep->sb_msg);
	if (rep->roots_searched)
		fprintf(f, "; roots chosen by scanning %" PRIu64 " blocks: %" PRIu64
			" mapping tree%s found, %" PRIu64 " paired with a details tree; "
			"using mapping root %" PRIu64 ", details root %" PRIu64,
			rep->nr_blocks, rep->nr_root_candidates,
			rep->nr_root_candidates == 1 ? "" : "s", rep->nr_pairs,
			rep->mapping_root, rep->details_root);
	fputc('\n', f);
}

void repair_report_print(FILE *f, const char *input, const struct tm_repair_report *rep)
{
	size_t written = 0, left = 0;

	fprintf(f, "%s: repair report for %s\n", tool_name, input);
	superblock_line(f, rep);
	if (rep->snap_block)
		fprintf(f, "%s:   metadata snapshot at block %" PRIu64
			" read as evidence (its mappings are not used; it is not kept)\n",
			tool_name, rep->snap_block);
	if (rep->details_missing)
		fprintf(f, "%s:   no device details tree found: all details rebuilt\n", tool_name);
	fprintf(f, "%s:   ", tool_name);
	value(f, "transaction id", &rep->transaction_id);
	fprintf(f, ", ");
	value(f, "data block size", &rep->data_block_size);
	fprintf(f, ", ");
	value(f, "nr data blocks", &rep->nr_data_blocks);
	fprintf(f, ", ");
	value(f, "time", &rep->time);
	fputc('\n', f);
	if (rep->nr_data_blocks.src == TM_SRC_GUESS)
		fprintf(f, "%s:   (nr data blocks is the highest mapped block + 1; the pool grows "
			"it to its data device's size when activated)\n", tool_name);
	if (rep->transaction_id.src == TM_SRC_GUESS)
		fprintf(f, "%s:   (the transaction id is guessed; lvm accepts its own or one more: "
			"if it refuses, repair again with --transaction-id)\n", tool_name);

	if (rep->scanned)
		fprintf(f, "%s:   scanned %" PRIu64 " blocks: %" PRIu64 " intact btree nodes, %"
			PRIu64 " unreadable blocks; metadata space map %s%s%s\n",
			tool_name, rep->nr_blocks, rep->nr_nodes_found, rep->nr_io_errors,
			rep->sm_usable ? "vouched for orphans" : "not usable",
			rep->sm_usable || !rep->sm_msg[0] ? "" : ": ",
			rep->sm_usable ? "" : rep->sm_msg);
	if (rep->nr_bad) {
		fprintf(f, "%s:   %zu unusable node%s:\n", tool_name, rep->nr_bad,
			rep->nr_bad == 1 ? "" : "s");
		for (size_t i = 0; i < rep->nr_bad; i++)
			fprintf(f, "%s:     block %" PRIu64 " (%s): %s\n", tool_name,
				rep->bad[i].block, rep->bad[i].where, why_text(rep->bad[i].why));
	}
	if (rep->nr_adopted || rep->nr_unclaimed || rep->nr_orphan_trees)
		fprintf(f, "%s:   orphaned subtrees: %" PRIu64 " brought back under their damaged "
			"parent, %" PRIu64 " with no owner that could be told, %" PRIu64
			" device trees with no device\n", tool_name, rep->nr_adopted,
			rep->nr_unclaimed, rep->nr_orphan_trees);

	for (size_t i = 0; i < rep->nr_devs; i++) {
		const struct tm_repair_dev *d = &rep->devs[i];
		if (d->state == TM_DEV_LEFT_OUT) {
			left++;
			fprintf(f, "%s:   device %" PRIu64 ": LEFT OUT: its mapping tree was lost or "
				"cannot be told apart from another device's (%" PRIu64
				" mappings expected)\n", tool_name, d->dev_id, d->mapped_blocks);
			continue;
		}
		written++;
		if (d->state == TM_DEV_INTACT && !d->root_assigned)
			continue;
		fprintf(f, "%s:   device %" PRIu64 ": %" PRIu64 " mapping%s recovered", tool_name,
			d->dev_id, d->recovered, d->recovered == 1 ? "" : "s");
		if (d->have_details)
			fprintf(f, " of %" PRIu64, d->mapped_blocks);
		if (d->details_rebuilt)
			fprintf(f, "; details rebuilt (all its mappings now count as shared)");
		if (d->root_assigned)
			fprintf(f, "; its tree was matched to it after the top level was lost");
		if (d->dropped)
			fprintf(f, "; %" PRIu64 " mappings past the data device dropped", d->dropped);
		fputc('\n', f);
		for (size_t k = 0; k < d->nr_losses; k++) {
			const struct tm_repair_loss *l = &d->losses[k];
			fprintf(f, "%s:     lost virtual blocks %" PRIu64 "..", tool_name, l->begin);
			if (l->end == UINT64_MAX)
				fprintf(f, "end");
			else
				fprintf(f, "%" PRIu64, l->end);
			fprintf(f, " (block %" PRIu64 ": %s)\n", l->block, why_text(l->why));
		}
	}
	fprintf(f, "%s:   %zu device%s written", tool_name, written, written == 1 ? "" : "s");
	if (left)
		fprintf(f, ", %zu left out", left);
	fprintf(f, "; %" PRIu64 " mapping%s recovered", rep->total_recovered,
		rep->total_recovered == 1 ? "" : "s");
	if (rep->total_expected)
		fprintf(f, " of the %" PRIu64 " the device details promise", rep->total_expected);
	fputc('\n', f);
}

void repair_report_failure(FILE *f, const char *input, int err, const char *why,
			   const struct tm_repair_report *rep, int dump)
{
	if (err == -EINVAL && rep && rep->data_block_size.src == TM_SRC_NONE) {
		fprintf(f, "%s: %s: the superblock is unusable (%s) and the data block size "
			"cannot be recovered from anything else: give it with "
			"--data-block-size <SECTORS> (the pool's chunk size in 512-byte sectors, "
			"as 'lvs -o chunk_size' shows it)", tool_name, input, rep->sb_msg);
		if (rep->sb_legible)
			fprintf(f, "; the damaged superblock reads %u", rep->sb_hint_data_block_size);
		fputc('\n', f);
		fprintf(f, "%s: with it, the transaction id would be %" PRIu64 " (%s) and the number "
			"of data blocks %" PRIu64 " (%s)", tool_name, rep->transaction_id.value,
			tm_repair_src_name(rep->transaction_id.src), rep->nr_data_blocks.value,
			tm_repair_src_name(rep->nr_data_blocks.src));
		if (rep->sb_legible)
			fprintf(f, "; the damaged superblock reads %" PRIu64 " and %" PRIu64,
				rep->sb_hint_transaction_id, rep->sb_hint_nr_data_blocks);
		fprintf(f, "; --transaction-id and --nr-data-blocks set them\n");
		return;
	}
	fprintf(f, "%s: %s: nothing usable found: %s\n", tool_name, input, why);
	if (!rep)
		return;
	fprintf(f, "%s: tried: the superblock (%s)", tool_name,
		rep->sb_intact ? "intact" : rep->sb_msg);
	if (rep->scanned)
		fprintf(f, "; a scan of all %" PRIu64 " blocks (%" PRIu64 " intact btree nodes, %"
			PRIu64 " mapping trees)", rep->nr_blocks, rep->nr_nodes_found,
			rep->nr_root_candidates);
	if (rep->nr_bad)
		fprintf(f, "; %zu unusable nodes where the trees start", rep->nr_bad);
	fputc('\n', f);
	fprintf(f, "%s: next: make sure %s is the pool's metadata device (not its data device "
		"or a new volume); if you kept a thin_dump XML backup, thin_restore it%s\n",
		tool_name, input, dump ? "" : "; nothing was written to the output");
}
