/*
 * dump.c - walk a view of the metadata and feed the IR sink: superblock,
 * defs for shared leaf runs, devices with their mapping runs and refs.
 * See include/thinmeta/dump.h for the rules of sharing and run cutting.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bstream.h"
#include "thinmeta/btree.h"
#include "thinmeta/dump.h"
#include "thinmeta/metadata.h"
#include "thinmeta/superblock.h"

struct run_builder {
	struct tm_ir_runs runs;
	int have_last;
	uint64_t last_key;	/* keys must ascend through a def/device */
};

struct dumper {
	struct tm_bm *bm;
	const struct tm_ir_sink *sink;
	struct tm_error *e;
	struct run_builder rb;
	uint64_t *order;	/* every leaf to emit, in emission order, */
	struct bstream *leaves;	/* read ahead (engine/bstream.h) */
	size_t next_leaf;
	const char *where;	/* "device 3", "def 95" */
	char where_buf[64];
};

/* Take the next leaf from the stream (block @b) and feed its mappings to
 * the run builder. */
static int emit_leaf(struct dumper *d, uint64_t b)
{
	struct bs_block blk;
	struct tm_node n;
	int r;

	bs_get(d->leaves, d->next_leaf++, &blk);
	r = bs_validate(&blk, tm_bm_dev(d->bm), b, &tm_node_validator, d->e);
	if (r)
		goto fail;
	tm_node_view(blk.data, b, &n);
	if (!tm_node_is_leaf(&n)) {
		r = tm_fail(d->e, -EUCLEAN, TM_RULE_DEPTH, b,
			    "block %" PRIu64 ": expected a mapping leaf, found an internal node", b);
		goto fail;
	}
	if (n.value_size != TM_VSIZE_U64) {
		r = tm_fail(d->e, -EUCLEAN, TM_RULE_VALUE_SIZE, b,
			    "block %" PRIu64 ": mapping leaf has value_size %u, expected 8",
			    b, n.value_size);
		goto fail;
	}
	if ((r = tm_node_check_keys(&n, d->e)))
		goto fail;
	if (n.nr_entries && d->rb.have_last && tm_node_key(&n, 0) <= d->rb.last_key) {
		r = tm_fail(d->e, -EUCLEAN, TM_RULE_KEY_RANGE, b,
			    "block %" PRIu64 ": mapping key %" PRIu64 " is not above the previous leaf's last key %" PRIu64,
			    b, tm_node_key(&n, 0), d->rb.last_key);
		goto fail;
	}
	const uint8_t *keys = n.base + TM_NODE_HEADER_SIZE, *vals = tm_node_value(&n, 0);
	for (uint32_t i = 0; i < n.nr_entries; i++) {
		uint64_t key = tm_le64(keys + 8u * i), v = tm_le64(vals + 8u * i);
		if ((r = tm_ir_runs_add(&d->rb.runs, key, tm_bt_block(v), tm_bt_time(v))))
			return r;
	}
	if (n.nr_entries) {
		d->rb.have_last = 1;
		d->rb.last_key = tm_node_key(&n, n.nr_entries - 1);
	}
	return 0;
fail:
	tm_error_context(d->e, "%s mapping tree", d->where);
	return r;
}

static void start_group(struct dumper *d)
{
	d->rb.runs.active = 0;
	d->rb.have_last = 0;
}

/* A device's entries: leaf blocks, or refs (TM_GATHER_REF). */
struct devlist {
	uint64_t *ents;
	uint64_t n;
};

static int emit_device_entries(struct dumper *d, const struct devlist *l)
{
	char name[24];
	int r;

	start_group(d);
	for (uint64_t i = 0; i < l->n; i++) {
		uint64_t x = l->ents[i];
		if (x & TM_GATHER_REF) {
			if ((r = tm_ir_runs_flush(&d->rb.runs)))
				return r;
			snprintf(name, sizeof(name), "%" PRIu64, x & ~TM_GATHER_REF);
			if ((r = d->sink->ref(d->sink->ctx, name)))
				return r;
			/* keys need not ascend across a ref boundary check-wise */
			continue;
		}
		if ((r = emit_leaf(d, x)))
			return r;
	}
	return tm_ir_runs_flush(&d->rb.runs);
}

/* The leaves emit_leaf() will be asked for, in that order, as a stream. */
static int open_leaves(struct dumper *d, const struct devlist *lists, uint64_t nsel,
		       const struct tm_gathered *g)
{
	uint64_t n = 0, k = 0;
	uint64_t *order;

	for (uint64_t i = 0; i < g->nr_runs; i++)
		if (g->run_shared[i])
			n += g->run_len[i];
	for (uint64_t i = 0; i < nsel; i++)
		for (uint64_t j = 0; j < lists[i].n; j++)
			n += !(lists[i].ents[j] & TM_GATHER_REF);
	order = malloc((n ? n : 1) * sizeof(*order));
	if (!order)
		return tm_fail(d->e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	for (uint64_t i = 0; i < g->nr_runs; i++)
		if (g->run_shared[i])
			for (uint64_t j = 0; j < g->run_len[i]; j++)
				order[k++] = g->runs[g->run_start[i] + j];
	for (uint64_t i = 0; i < nsel; i++)
		for (uint64_t j = 0; j < lists[i].n; j++)
			if (!(lists[i].ents[j] & TM_GATHER_REF))
				order[k++] = lists[i].ents[j];
	d->order = order;
	if (bs_open(tm_bm_dev(d->bm), order, n, &d->leaves))
		return tm_fail(d->e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	return 0;
}

static int wanted(const struct tm_dump_opts *o, uint64_t id)
{
	if (!o->dev_ids)
		return 1;
	for (size_t i = 0; i < o->nr_dev_ids; i++)
		if (o->dev_ids[i] == id)
			return 1;
	return 0;
}

static void fill_ir_superblock(const struct tm_view *v, const struct tm_dump_opts *o,
			       struct tm_ir_superblock *s)
{
	memset(s, 0, sizeof(*s));
	s->time = v->sb.time;
	s->transaction = v->sb.trans_id;
	s->flags = v->sb.flags;
	s->version = v->sb.version;
	s->data_block_size = v->sb.data_block_size;
	s->nr_data_blocks = v->sb.data_sm.nr_blocks;
	if (v->is_snapshot)
		return;
	if (o->set_transaction_id && o->transaction_id > s->transaction)
		s->transaction = o->transaction_id;
	if (o->set_nr_data_blocks && o->nr_data_blocks > s->nr_data_blocks)
		s->nr_data_blocks = o->nr_data_blocks;
	if (o->set_data_block_size)
		s->data_block_size = o->data_block_size;
}

static void to_ir_device(const struct tm_device *dv, struct tm_ir_device *id)
{
	id->dev_id = dv->dev_id;
	id->mapped_blocks = dv->details.mapped_blocks;
	id->transaction = dv->details.transaction_id;
	id->creation_time = dv->details.creation_time;
	id->snap_time = dv->details.snapshotted_time;
}

struct root_idx {
	uint64_t root, idx;
};

static int cmp_by_root(const void *a, const void *b)
{
	const struct root_idx *x = a, *y = b;

	if (x->root != y->root)
		return x->root < y->root ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;	/* keep id order */
}

/*
 * The superblock at @b, for a dump.  1.1.0's thin_dump reads only what it
 * prints: the details tree and, without --skip-mappings, the mapping tree;
 * the space maps' roots and (unless it is dumped) the held snapshot's are
 * never followed, so one past the end of the device does not stop it.
 * Every field rule applies; of the roots only those of the trees read
 * (@trees: 0 none, 1 the details tree, 2 both) must be on the device.
 */
static int dump_read_sb(struct tm_bm *bm, uint64_t b, int trees, struct tm_superblock *sb,
			struct tm_error *e)
{
	struct tm_superblock t;
	int r = tm_sb_read(bm, b, sb, e);

	if (r)
		return r;
	/* as a copy: the rules without the space maps' and the snapshot's roots */
	t = *sb;
	if (trees < 2)
		t.mapping_root = 0;
	if (trees < 1)
		t.details_root = 0;
	return tm_sb_check_fields(&t, tm_bm_nr_blocks(bm), 1, e);
}

/* tm_view_live / tm_view_snapshot, checking only the roots a dump reads. */
static int dump_view(struct tm_bm *bm, const struct tm_dump_opts *o, struct tm_view *v,
		     struct tm_error *e)
{
	struct tm_superblock live;
	int trees = o->skip_mappings ? 1 : 2;
	int r;

	memset(v, 0, sizeof(*v));
	if (tm_bm_nr_blocks(bm) < 1)
		return tm_fail(e, -EUCLEAN, TM_RULE_TOO_SMALL, 0,
			       "metadata device is smaller than one block");
	if (!o->metadata_snap)
		return dump_read_sb(bm, 0, trees, &v->sb, e);
	if ((r = dump_read_sb(bm, 0, 0, &live, e)))
		return r;
	if (!live.held_root)
		return tm_fail(e, -ENODATA, TM_RULE_NO_SNAP, 0,
			       "no current metadata snapshot (the superblock holds none)");
	if (o->snap_block && o->snap_block != live.held_root)
		return tm_fail(e, -EINVAL, TM_RULE_SNAP_MISMATCH, o->snap_block,
			       "metadata snapshot block %llu does not match the one in the superblock (%llu)",
			       (unsigned long long)o->snap_block,
			       (unsigned long long)live.held_root);
	if ((r = dump_read_sb(bm, live.held_root, trees, &v->sb, e))) {
		tm_error_context(e, "metadata snapshot");
		return r;
	}
	v->sb_block = live.held_root;
	v->is_snapshot = 1;
	return 0;
}

int tm_dump(struct tm_bm *bm, const struct tm_dump_opts *o,
	    const struct tm_ir_sink *sink, struct tm_error *e)
{
	struct tm_view view;
	struct tm_ir_superblock isb;
	struct tm_ir_device idev;
	struct tm_device *devs = NULL;
	struct devlist *lists = NULL;
	uint64_t nr_devs = 0, nsel = 0;
	struct tm_gathered g = { 0 };
	struct root_idx *order = NULL;
	struct dumper *d = NULL;
	int r;

	r = dump_view(bm, o, &view, e);
	if (r)
		return r;
	r = tm_read_devices(bm, &view, o->skip_mappings, &devs, &nr_devs, e);
	if (r)
		return r;

	d = calloc(1, sizeof(*d));
	if (!d) {
		r = tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
		goto out;
	}
	d->bm = bm;
	d->sink = sink;
	d->rb.runs.sink = sink;
	d->e = e;

	fill_ir_superblock(&view, o, &isb);
	if ((r = sink->superblock_begin(sink->ctx, &isb)))
		goto out;

	if (o->skip_mappings) {
		/* 1.1.0: every device of the details tree, --dev-id ignored */
		for (uint64_t i = 0; i < nr_devs; i++) {
			to_ir_device(&devs[i], &idev);
			if ((r = sink->device_begin(sink->ctx, &idev)) ||
			    (r = sink->device_end(sink->ctx)))
				goto out;
		}
		r = sink->superblock_end(sink->ctx);
		goto out;
	}

	/* the selected devices, and the leaf list of each */
	for (uint64_t i = 0; i < nr_devs; i++)
		if (wanted(o, devs[i].dev_id))
			devs[nsel++] = devs[i];
	lists = calloc(nsel ? nsel : 1, sizeof(*lists));
	if (!lists) {
		r = tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
		goto out;
	}
	/* devices sharing a root share its list: walk each root once */
	order = malloc((nsel ? nsel : 1) * sizeof(*order));
	if (!order) {
		r = tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
		goto out;
	}
	for (uint64_t i = 0; i < nsel; i++) {
		order[i].root = devs[i].mapping_root;
		order[i].idx = i;
	}
	qsort(order, nsel, sizeof(*order), cmp_by_root);
	for (uint64_t k = 0; k < nsel; k++) {
		uint64_t i = order[k].idx;
		if (k && order[k - 1].root == order[k].root) {
			uint64_t j = order[k - 1].idx;
			lists[i].n = lists[j].n;
			lists[i].ents = malloc((lists[j].n ? lists[j].n : 1) * sizeof(uint64_t));
			if (!lists[i].ents) {
				r = tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
				goto out;
			}
			memcpy(lists[i].ents, lists[j].ents, lists[j].n * sizeof(uint64_t));
			continue;
		}
		r = tm_btree_leaves(bm, devs[i].mapping_root, &lists[i].ents, &lists[i].n, e);
		if (r) {
			tm_error_context(e, "device %" PRIu64 " mapping tree", devs[i].dev_id);
			goto out;
		}
		for (uint64_t b = 0; b < lists[i].n; b++)
			if (lists[i].ents[b] >= tm_bm_nr_blocks(bm)) {
				r = tm_fail(e, -ERANGE, TM_RULE_OUT_OF_RANGE, lists[i].ents[b],
					    "device %" PRIu64 " mapping tree: leaf pointer %" PRIu64
					    " is past the end of the metadata device",
					    devs[i].dev_id, lists[i].ents[b]);
				goto out;
			}
	}

	if (!o->expand_shared && nsel > 1) {
		uint64_t **lp = malloc(nsel * sizeof(*lp));
		uint64_t *ln = malloc(nsel * sizeof(*ln));
		if (!lp || !ln) {
			free(lp);
			free(ln);
			r = tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
			goto out;
		}
		for (uint64_t i = 0; i < nsel; i++) {
			lp[i] = lists[i].ents;
			ln[i] = lists[i].n;
		}
		/* a shared run becomes a ref to its def */
		r = tm_gather_defs(lp, ln, nsel, tm_bm_nr_blocks(bm), &g);
		for (uint64_t i = 0; i < nsel; i++)
			lists[i].n = ln[i];
		free(lp);
		free(ln);
		if (r) {
			r = tm_fail(e, r, r == -ENOMEM ? TM_RULE_NOMEM : TM_RULE_CYCLE,
				    TM_NO_BLOCK, "cannot group the mapping leaves into runs");
			goto out;
		}
	}

	/* every leaf to emit, in emission order (defs, then devices), read
	 * ahead in bulk */
	if ((r = open_leaves(d, lists, nsel, &g)))
		goto out;

	if (!o->expand_shared && nsel > 1) {
		/* the defs */
		for (uint64_t i = 0; i < g.nr_runs; i++) {
			char name[24];
			if (!g.run_shared[i])
				continue;
			snprintf(name, sizeof(name), "%" PRIu64, g.heads[i]);
			snprintf(d->where_buf, sizeof(d->where_buf), "shared run %s", name);
			d->where = d->where_buf;
			if ((r = sink->def_begin(sink->ctx, name)))
				goto out;
			start_group(d);
			for (uint64_t k = 0; k < g.run_len[i]; k++) {
				if ((r = emit_leaf(d, g.runs[g.run_start[i] + k])))
					goto out;
			}
			if ((r = tm_ir_runs_flush(&d->rb.runs)) || (r = sink->def_end(sink->ctx)))
				goto out;
		}
	}

	for (uint64_t i = 0; i < nsel; i++) {
		snprintf(d->where_buf, sizeof(d->where_buf), "device %" PRIu64, devs[i].dev_id);
		d->where = d->where_buf;
		to_ir_device(&devs[i], &idev);
		if ((r = sink->device_begin(sink->ctx, &idev)) ||
		    (r = emit_device_entries(d, &lists[i])) ||
		    (r = sink->device_end(sink->ctx)))
			goto out;
	}
	r = sink->superblock_end(sink->ctx);
out:
	if (lists)
		for (uint64_t i = 0; i < nsel; i++)
			free(lists[i].ents);
	free(lists);
	free(devs);
	tm_gathered_free(&g);
	free(order);
	if (d) {
		bs_close(d->leaves);
		free(d->order);
	}
	free(d);
	return r;
}
