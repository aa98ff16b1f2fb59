/* emit_human.c - thin_dump -f human_readable, as 1.1.0 prints it. */
#include "emit.h"

static int h_sb_begin(void *ctx, const struct tm_ir_superblock *sb)
{
	struct outbuf *ob = ((struct emitter *)ctx)->ob;

	ob_puts(ob, "begin superblock: \"\", ");
	ob_u64(ob, sb->time);
	ob_puts(ob, ", ");
	ob_u64(ob, sb->transaction);
	ob_puts(ob, (sb->flags & 1) ? ", 1, " : ", 0, ");
	ob_u64(ob, sb->version);
	ob_puts(ob, ", ");
	ob_u64(ob, sb->data_block_size);
	ob_puts(ob, ", ");
	ob_u64(ob, sb->nr_data_blocks);
	ob_puts(ob, "\n");
	return ob->err;
}

static int h_sb_end(void *ctx)
{
	struct outbuf *ob = ((struct emitter *)ctx)->ob;

	ob_puts(ob, "end superblock\n");
	return ob->err;
}

static int h_def_begin(void *ctx, const char *name)
{
	struct outbuf *ob = ((struct emitter *)ctx)->ob;

	ob_puts(ob, "def: ");
	ob_puts(ob, name);
	ob_puts(ob, "\n");
	return ob->err;
}

static int h_blank(void *ctx)
{
	struct outbuf *ob = ((struct emitter *)ctx)->ob;

	ob_puts(ob, "\n");
	return ob->err;
}

static int h_dev_begin(void *ctx, const struct tm_ir_device *d)
{
	struct outbuf *ob = ((struct emitter *)ctx)->ob;

	ob_puts(ob, "device: ");
	ob_u64(ob, d->dev_id);
	ob_puts(ob, "\nmapped_blocks: ");
	ob_u64(ob, d->mapped_blocks);
	ob_puts(ob, "\ntransaction: ");
	ob_u64(ob, d->transaction);
	ob_puts(ob, "\ncreation time: ");
	ob_u64(ob, d->creation_time);
	ob_puts(ob, "\nsnap time: ");
	ob_u64(ob, d->snap_time);
	ob_puts(ob, "\n");
	return ob->err;
}

static int h_ref(void *ctx, const char *name)
{
	struct outbuf *ob = ((struct emitter *)ctx)->ob;

	ob_puts(ob, "    ref: ");
	ob_puts(ob, name);
	ob_puts(ob, "\n");
	return ob->err;
}

static int h_run(void *ctx, const struct tm_ir_run *r)
{
	struct outbuf *ob = ((struct emitter *)ctx)->ob;
	char *p = ob_reserve(ob, 160);

	p = PUT_LIT(p, "    (");
	p = put_u64(p, r->origin_begin);
	p = PUT_LIT(p, "..");
	p = put_u64(p, r->origin_begin + r->length - 1);
	p = PUT_LIT(p, ") -> (");
	p = put_u64(p, r->data_begin);
	p = PUT_LIT(p, "..");
	p = put_u64(p, r->data_begin + r->length - 1);
	p = PUT_LIT(p, "), ");
	p = put_u64(p, r->time);
	*p++ = '\n';
	ob_commit(ob, p);
	return ob->err;
}

void emit_human_sink(struct emitter *em, struct tm_ir_sink *s)
{
	s->ctx = em;
	s->superblock_begin = h_sb_begin;
	s->superblock_end = h_sb_end;
	s->def_begin = h_def_begin;
	s->def_end = h_blank;
	s->device_begin = h_dev_begin;
	s->device_end = h_blank;
	s->ref = h_ref;
	s->run = h_run;
}
