/*
 * emit_xml.c - thin_dump's XML, as 1.1.0 writes it: no declaration,
 * two-space indentation, one element per line, attributes in a fixed
 * order, flags="1" only when needs_check is set, and no newline after the
 * closing </superblock>.
 */
#include "emit.h"

/* Start a new line at @depth (no newline before the first). */
static void line(struct emitter *em, int depth)
{
	static const char spaces[] = "        ";

	if (em->lines++)
		ob_write(em->ob, "\n", 1);
	ob_write(em->ob, spaces, (size_t)depth * 2);
}

static void attr(struct outbuf *ob, const char *name, uint64_t v)
{
	ob_puts(ob, name);
	ob_u64(ob, v);
	ob_write(ob, "\"", 1);
}

static void attr_str(struct outbuf *ob, const char *name, const char *s)
{
	ob_puts(ob, name);
	for (; *s; s++) {
		switch (*s) {
		case '"': ob_puts(ob, "&quot;"); break;
		case '&': ob_puts(ob, "&amp;"); break;
		case '<': ob_puts(ob, "&lt;"); break;
		case '>': ob_puts(ob, "&gt;"); break;
		default: ob_write(ob, s, 1);
		}
	}
	ob_write(ob, "\"", 1);
}

static int x_sb_begin(void *ctx, const struct tm_ir_superblock *sb)
{
	struct emitter *em = ctx;
	struct outbuf *ob = em->ob;

	line(em, 0);
	ob_puts(ob, "<superblock uuid=\"\"");
	attr(ob, " time=\"", sb->time);
	attr(ob, " transaction=\"", sb->transaction);
	if (sb->flags & 1)
		ob_puts(ob, " flags=\"1\"");
	attr(ob, " version=\"", sb->version);
	attr(ob, " data_block_size=\"", sb->data_block_size);
	attr(ob, " nr_data_blocks=\"", sb->nr_data_blocks);
	ob_write(ob, ">", 1);
	return ob->err;
}

static int x_sb_end(void *ctx)
{
	struct emitter *em = ctx;

	line(em, 0);
	ob_puts(em->ob, "</superblock>");
	return em->ob->err;
}

static int x_def_begin(void *ctx, const char *name)
{
	struct emitter *em = ctx;

	line(em, 1);
	attr_str(em->ob, "<def name=\"", name);
	ob_write(em->ob, ">", 1);
	return em->ob->err;
}

static int x_def_end(void *ctx)
{
	struct emitter *em = ctx;

	line(em, 1);
	ob_puts(em->ob, "</def>");
	return em->ob->err;
}

static int x_dev_begin(void *ctx, const struct tm_ir_device *d)
{
	struct emitter *em = ctx;
	struct outbuf *ob = em->ob;

	line(em, 1);
	attr(ob, "<device dev_id=\"", d->dev_id);
	attr(ob, " mapped_blocks=\"", d->mapped_blocks);
	attr(ob, " transaction=\"", d->transaction);
	attr(ob, " creation_time=\"", d->creation_time);
	attr(ob, " snap_time=\"", d->snap_time);
	ob_write(ob, ">", 1);
	return ob->err;
}

static int x_dev_end(void *ctx)
{
	struct emitter *em = ctx;

	line(em, 1);
	ob_puts(em->ob, "</device>");
	return em->ob->err;
}

static int x_ref(void *ctx, const char *name)
{
	struct emitter *em = ctx;

	line(em, 2);
	attr_str(em->ob, "<ref name=\"", name);
	ob_puts(em->ob, "/>");
	return em->ob->err;
}

/* The hot path: one mapping line, formatted in place. */
static int x_run(void *ctx, const struct tm_ir_run *r)
{
	struct emitter *em = ctx;
	struct outbuf *ob = em->ob;
	char *p = ob_reserve(ob, 160);

	if (em->lines++)
		*p++ = '\n';
	if (r->length == 1) {
		p = PUT_LIT(p, "    <single_mapping origin_block=\"");
		p = put_u64(p, r->origin_begin);
		p = PUT_LIT(p, "\" data_block=\"");
		p = put_u64(p, r->data_begin);
	} else {
		p = PUT_LIT(p, "    <range_mapping origin_begin=\"");
		p = put_u64(p, r->origin_begin);
		p = PUT_LIT(p, "\" data_begin=\"");
		p = put_u64(p, r->data_begin);
		p = PUT_LIT(p, "\" length=\"");
		p = put_u64(p, r->length);
	}
	p = PUT_LIT(p, "\" time=\"");
	p = put_u64(p, r->time);
	p = PUT_LIT(p, "\"/>");
	ob_commit(ob, p);
	return ob->err;
}

void emit_xml_sink(struct emitter *em, struct tm_ir_sink *s)
{
	s->ctx = em;
	s->superblock_begin = x_sb_begin;
	s->superblock_end = x_sb_end;
	s->def_begin = x_def_begin;
	s->def_end = x_def_end;
	s->device_begin = x_dev_begin;
	s->device_end = x_dev_end;
	s->ref = x_ref;
	s->run = x_run;
}
