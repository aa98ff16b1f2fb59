/*
 * repair_emit.c - feed a salvage to an IR sink.  Devices' leaf lists are
 * split into runs shared between devices exactly as thin_dump does it
 * (tm_gather_runs; defs named after the first leaf's block), so that an
 * intact pool dumps with --repair as it dumps without, and a repaired pool
 * keeps its sharing (the builder shares the leaves of a def).  Mapping
 * runs merge across leaves and are cut at refs and def/device ends.
 * Mappings to data blocks past nr_data_blocks are left out.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repair_int.h"
#include "thinmeta/btree.h"
#include "thinmeta/dump.h"

#define PREFETCH_BATCH 256u

struct emitter {
	struct tm_bm *bm;
	const struct tm_ir_sink *sink;
	struct tm_error *e;
	uint64_t nr_data_blocks;
	struct tm_ir_runs runs;
	uint8_t buf[TM_BLOCK_SIZE];
};

static int emit_leaf(struct emitter *m, uint64_t b)
{
	struct tm_node n;
	int r;

	r = tm_bm_read(m->bm, b, &tm_node_validator, m->buf, m->e);
	if (r) {
		tm_error_context(m->e, "reading a salvaged leaf again");
		return r;
	}
	tm_node_view(m->buf, b, &n);
	for (uint32_t i = 0; i < n.nr_entries; i++) {
		uint64_t v = tm_node_value64(&n, i);
		if (tm_bt_block(v) >= m->nr_data_blocks)
			continue;
		if ((r = tm_ir_runs_add(&m->runs, tm_node_key(&n, i), tm_bt_block(v),
					  tm_bt_time(v))))
			return r;
	}
	return 0;
}

static void prefetch(struct emitter *m, const uint64_t *ents, uint64_t n)
{
	uint64_t batch[PREFETCH_BATCH];
	unsigned k = 0;

	for (uint64_t i = 0; i < n && i < PREFETCH_BATCH; i++)
		if (!(ents[i] & TM_GATHER_REF))
			batch[k++] = ents[i];
	tm_bm_prefetch(m->bm, batch, k);
}

static int emit_entries(struct emitter *m, const uint64_t *ents, uint64_t n)
{
	char name[24];
	int r;

	m->runs.active = 0;
	for (uint64_t i = 0; i < n; i++) {
		if (i % PREFETCH_BATCH == 0)
			prefetch(m, ents + i, n - i);
		if (ents[i] & TM_GATHER_REF) {
			if ((r = tm_ir_runs_flush(&m->runs)))
				return r;
			snprintf(name, sizeof(name), "%" PRIu64, ents[i] & ~TM_GATHER_REF);
			if ((r = m->sink->ref(m->sink->ctx, name)))
				return r;
			continue;
		}
		if ((r = emit_leaf(m, ents[i])))
			return r;
	}
	return tm_ir_runs_flush(&m->runs);
}

static int wanted(const struct tm_salvage_emit_opts *o, uint64_t id)
{
	if (!o->dev_ids)
		return 1;
	for (size_t i = 0; i < o->nr_dev_ids; i++)
		if (o->dev_ids[i] == id)
			return 1;
	return 0;
}

static void ir_device(const struct sdev *d, struct tm_ir_device *id)
{
	id->dev_id = d->dev_id;
	id->mapped_blocks = d->recovered;
	id->transaction = d->d.transaction_id;
	id->creation_time = d->d.creation_time;
	id->snap_time = d->d.snapshotted_time;
}

int salvage_emit(struct tm_salvage *s, const struct tm_salvage_emit_opts *o,
		 const struct tm_ir_sink *sink, struct tm_error *e)
{
	struct tm_ir_superblock isb;
	struct tm_ir_device idev;
	struct sdev **sel = NULL;
	uint64_t **lists = NULL, *lens = NULL;
	struct tm_gathered g = { 0 };
	size_t nsel = 0;
	struct emitter *m = NULL;
	int r;

	memset(&isb, 0, sizeof(isb));
	memcpy(isb.uuid, s->sb.uuid, sizeof(isb.uuid));
	isb.time = s->sb.time;
	isb.transaction = s->sb.trans_id;
	isb.flags = o->keep_flags ? s->sb.flags : 0;
	isb.version = s->sb.version ? s->sb.version : 2;
	isb.data_block_size = s->sb.data_block_size;
	isb.nr_data_blocks = s->nr_data_blocks;

	m = calloc(1, sizeof(*m));
	sel = calloc(s->nr_devs ? s->nr_devs : 1, sizeof(*sel));
	lists = calloc(s->nr_devs ? s->nr_devs : 1, sizeof(*lists));
	lens = calloc(s->nr_devs ? s->nr_devs : 1, sizeof(*lens));
	if (!m || !sel || !lists || !lens) {
		r = tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
		goto out;
	}
	m->bm = s->bm;
	m->sink = sink;
	m->runs.sink = sink;
	m->e = e;
	m->nr_data_blocks = s->nr_data_blocks;

	if ((r = sink->superblock_begin(sink->ctx, &isb)))
		goto out;
	if (o->skip_mappings) {
		for (size_t k = 0; k < s->nr_devs; k++) {
			if (s->devs[k].left_out)
				continue;
			ir_device(&s->devs[k], &idev);
			if ((r = sink->device_begin(sink->ctx, &idev)) ||
			    (r = sink->device_end(sink->ctx)))
				goto out;
		}
		r = sink->superblock_end(sink->ctx);
		goto out;
	}

	for (size_t k = 0; k < s->nr_devs; k++) {
		if (s->devs[k].left_out || !wanted(o, s->devs[k].dev_id))
			continue;
		sel[nsel] = &s->devs[k];
		lens[nsel] = s->devs[k].nr_leaves;
		lists[nsel] = malloc((lens[nsel] ? lens[nsel] : 1) * sizeof(uint64_t));
		if (!lists[nsel]) {
			r = tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
			goto out;
		}
		if (lens[nsel])
			memcpy(lists[nsel], s->devs[k].leaves, lens[nsel] * sizeof(uint64_t));
		nsel++;
	}

	if (!o->expand_shared && nsel > 1) {
		r = tm_gather_defs(lists, lens, nsel, tm_bm_nr_blocks(s->bm), &g);
		if (r) {
			r = tm_fail(e, r, r == -ENOMEM ? TM_RULE_NOMEM : TM_RULE_CYCLE,
				    TM_NO_BLOCK, "cannot group the mapping leaves into runs");
			goto out;
		}
		for (uint64_t i = 0; i < g.nr_runs; i++) {
			char name[24];
			if (!g.run_shared[i])
				continue;
			snprintf(name, sizeof(name), "%" PRIu64, g.heads[i]);
			if ((r = sink->def_begin(sink->ctx, name)) ||
			    (r = emit_entries(m, g.runs + g.run_start[i], g.run_len[i])) ||
			    (r = sink->def_end(sink->ctx)))
				goto out;
		}
	}

	for (size_t i = 0; i < nsel; i++) {
		ir_device(sel[i], &idev);
		if ((r = sink->device_begin(sink->ctx, &idev)) ||
		    (r = emit_entries(m, lists[i], lens[i])) ||
		    (r = sink->device_end(sink->ctx)))
			goto out;
	}
	r = sink->superblock_end(sink->ctx);
out:
	if (lists)
		for (size_t i = 0; i < nsel; i++)
			free(lists[i]);
	free(lists);
	free(lens);
	free(sel);
	tm_gathered_free(&g);
	free(m);
	return r;
}
