/*
 * btree_build.c - building btrees bottom-up, as thin-provisioning-tools
 * 1.1.0 does (src/pdata/btree_builder.rs): leaves packed full from a
 * stream of ascending keys, shared leaves spliced in, then the internal
 * levels.  Internal nodes are never shared.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "build_internal.h"
#include "thinmeta/btree.h"
#include "thinmeta/format.h"

void bld_nb_init(struct bld_nb *nb, struct bld_out *out, uint32_t flags,
		 uint32_t value_size, const struct bld_value_rc *rc)
{
	memset(nb, 0, sizeof(*nb));
	nb->out = out;
	nb->flags = flags;
	nb->value_size = value_size;
	nb->max = tm_node_max_entries(value_size);
	nb->rc = rc;
}

void bld_nb_restart(struct bld_nb *nb)
{
	free(nb->nodes);
	nb->nodes = NULL;
	nb->nn = nb->ncap = 0;
	nb->qhead = nb->qlen = 0;
	nb->have_last = 0;
	nb->last_key = 0;
}

void bld_nb_free(struct bld_nb *nb)
{
	free(nb->qkeys);
	free(nb->qvals);
	free(nb->nodes);
	nb->qkeys = NULL;
	nb->qvals = NULL;
	nb->nodes = NULL;
}

static int nomem(struct bld_nb *nb)
{
	return tm_fail(nb->out->e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
}

static int queue_grow(struct bld_nb *nb, size_t need, size_t front)
{
	size_t ncap = nb->qcap > need ? nb->qcap : 4 * (size_t)nb->max;
	uint64_t *k;
	uint8_t *v;

	while (ncap < need)
		ncap *= 2;
	k = malloc(ncap * sizeof(*k));
	v = malloc(ncap * nb->value_size);
	if (!k || !v) {
		free(k);
		free(v);
		return nomem(nb);
	}
	if (nb->qlen) {
		memcpy(k + front, nb->qkeys + nb->qhead, nb->qlen * sizeof(*k));
		memcpy(v + front * nb->value_size, nb->qvals + nb->qhead * nb->value_size,
		       nb->qlen * nb->value_size);
	}
	free(nb->qkeys);
	free(nb->qvals);
	nb->qkeys = k;
	nb->qvals = v;
	nb->qcap = ncap;
	nb->qhead = front;
	return 0;
}

static int queue_push(struct bld_nb *nb, uint64_t key, const void *value)
{
	size_t at;
	int r;

	if (nb->qhead + nb->qlen == nb->qcap) {
		if (nb->qhead) {
			memmove(nb->qkeys, nb->qkeys + nb->qhead, nb->qlen * sizeof(uint64_t));
			memmove(nb->qvals, nb->qvals + nb->qhead * nb->value_size,
				nb->qlen * nb->value_size);
			nb->qhead = 0;
		} else if ((r = queue_grow(nb, nb->qlen + 1, 0))) {
			return r;
		}
	}
	at = nb->qhead + nb->qlen;
	nb->qkeys[at] = key;
	memcpy(nb->qvals + at * nb->value_size, value, nb->value_size);
	nb->qlen++;
	return 0;
}

/* Put @n values in front of the queue (rare: a fresh copy is simplest). */
static int queue_prepend(struct bld_nb *nb, const uint64_t *keys,
			 const uint8_t *values, size_t n)
{
	int r = queue_grow(nb, nb->qlen + n, n);

	if (r)
		return r;
	memcpy(nb->qkeys, keys, n * sizeof(uint64_t));
	memcpy(nb->qvals, values, n * nb->value_size);
	nb->qhead = 0;
	nb->qlen += n;
	return 0;
}

static int nodes_push(struct bld_nb *nb, const struct bld_nsum *s)
{
	if (nb->nn == nb->ncap) {
		size_t ncap = nb->ncap ? nb->ncap * 2 : 16;
		struct bld_nsum *p = realloc(nb->nodes, ncap * sizeof(*p));
		if (!p)
			return nomem(nb);
		nb->nodes = p;
		nb->ncap = ncap;
	}
	nb->nodes[nb->nn++] = *s;
	return 0;
}

/* Write a node of the first @n queued values. */
static int emit_values(struct bld_nb *nb, size_t n)
{
	uint8_t buf[TM_BLOCK_SIZE];
	struct bld_nsum s;
	uint64_t b;
	int r;

	if ((r = bld_alloc(nb->out, &b)))
		return r;
	memset(buf, 0, sizeof(buf));
	tm_put_le32(buf + TM_NODE_OFF_FLAGS, nb->flags);
	tm_put_le32(buf + TM_NODE_OFF_NR_ENTRIES, (uint32_t)n);
	tm_put_le32(buf + TM_NODE_OFF_MAX_ENTRIES, nb->max);
	tm_put_le32(buf + TM_NODE_OFF_VALUE_SIZE, nb->value_size);
	for (size_t i = 0; i < n; i++)
		tm_put_le64(buf + TM_NODE_HEADER_SIZE + 8 * i, nb->qkeys[nb->qhead + i]);
	if (n)
		memcpy(buf + TM_NODE_HEADER_SIZE + 8 * (size_t)nb->max,
		       nb->qvals + nb->qhead * nb->value_size, n * nb->value_size);
	s.block = b;
	s.nr_entries = (uint32_t)n;
	s.first_key = n ? nb->qkeys[nb->qhead] : 0;
	s.last_key = n ? nb->qkeys[nb->qhead + n - 1] : 0;
	nb->qhead += n;
	nb->qlen -= n;
	if (!nb->qlen)
		nb->qhead = 0;
	if ((r = bld_write(nb->out, b, &tm_node_validator, buf)))
		return r;
	return nodes_push(nb, &s);
}

/* Everything queued, as one node or two halves (more first if need be). */
static int emit_all(struct bld_nb *nb)
{
	int r;

	while (nb->qlen > 2 * (size_t)nb->max)
		if ((r = emit_values(nb, nb->max)))
			return r;
	if (nb->qlen == 0)
		return 0;
	if (nb->qlen <= nb->max)
		return emit_values(nb, nb->qlen);
	size_t n1 = nb->qlen / 2;
	if ((r = emit_values(nb, n1)))
		return r;
	return emit_values(nb, nb->qlen);
}

int bld_read_leaf(struct bld_out *o, uint64_t b, uint32_t value_size,
		  uint64_t *keys, uint8_t *values, uint32_t *nr)
{
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_node n;
	int r;

	if ((r = bld_read(o, b, &tm_node_validator, buf)))
		return r;
	tm_node_view(buf, b, &n);
	if (n.value_size != value_size || n.nr_entries > tm_node_max_entries(value_size))
		return tm_fail(o->e, -EUCLEAN, TM_RULE_VALUE_SIZE, b,
			       "block %llu: node read back is not what was written",
			       (unsigned long long)b);
	for (uint32_t i = 0; i < n.nr_entries; i++) {
		keys[i] = tm_node_key(&n, i);
		memcpy(values + (size_t)i * value_size, tm_node_value(&n, i), value_size);
	}
	*nr = n.nr_entries;
	return 0;
}

static int count_values(struct bld_nb *nb, const uint8_t *values, uint32_t n)
{
	int r;

	for (uint32_t i = 0; nb->rc && i < n; i++)
		if ((r = nb->rc->inc(nb->rc->ctx, values + (size_t)i * nb->value_size)))
			return r;
	return 0;
}

/*
 * Take the last node back into the queue.  If the node is still referenced
 * elsewhere (a shared leaf) its values are copied and counted again;
 * otherwise it is freed and its values' references move to the queue.
 */
static int unshift_node(struct bld_nb *nb)
{
	uint64_t keys[TM_BLOCK_SIZE / 8];
	uint8_t values[TM_BLOCK_SIZE];
	struct bld_nsum s = nb->nodes[--nb->nn];
	uint32_t n;
	int freed, r;

	if ((r = bld_read_leaf(nb->out, s.block, nb->value_size, keys, values, &n)))
		return r;
	if ((r = bld_dec(nb->out, s.block, &freed)))
		return r;
	if (!freed && (r = count_values(nb, values, n)))
		return r;
	return queue_prepend(nb, keys, values, n);
}

/* Copy the values of a shared node into the queue (the node is not used). */
static int append_values(struct bld_nb *nb, const struct bld_nsum *s)
{
	uint64_t keys[TM_BLOCK_SIZE / 8];
	uint8_t values[TM_BLOCK_SIZE];
	uint32_t n;
	int r;

	if ((r = bld_read_leaf(nb->out, s->block, nb->value_size, keys, values, &n)))
		return r;
	if ((r = count_values(nb, values, n)))
		return r;
	for (uint32_t i = 0; i < n; i++)
		if ((r = queue_push(nb, keys[i], values + (size_t)i * nb->value_size)))
			return r;
	return 0;
}

static int use_node(struct bld_nb *nb, const struct bld_nsum *s)
{
	int r = bld_inc(nb->out, s->block);

	return r ? r : nodes_push(nb, s);
}

int bld_nb_push_value(struct bld_nb *nb, uint64_t key, const void *value)
{
	size_t half = nb->max / 2;
	int r;

	if (nb->have_last && key <= nb->last_key)
		return tm_fail(nb->out->e, -EINVAL, TM_RULE_KEY_ORDER, TM_NO_BLOCK,
			       "key %llu does not follow key %llu",
			       (unsigned long long)key, (unsigned long long)nb->last_key);
	if (nb->nn == 1 && nb->nodes[0].nr_entries < half) {
		/* a lone small node pushed earlier cannot stay: it is no root */
		if ((r = unshift_node(nb)))
			return r;
	} else if (nb->qlen >= 2 * (size_t)nb->max) {
		/* keep a node's worth queued so the last node can be balanced */
		if ((r = emit_values(nb, nb->max)))
			return r;
	}
	if (nb->rc && (r = nb->rc->inc(nb->rc->ctx, value)))
		return r;
	if ((r = queue_push(nb, key, value)))
		return r;
	nb->have_last = 1;
	nb->last_key = key;
	return 0;
}

/* Room for @n more values at the end of the queue. */
static int queue_reserve(struct bld_nb *nb, size_t n)
{
	if (nb->qhead + nb->qlen + n <= nb->qcap)
		return 0;
	if (nb->qhead && nb->qlen + n <= nb->qcap) {
		memmove(nb->qkeys, nb->qkeys + nb->qhead, nb->qlen * sizeof(uint64_t));
		memmove(nb->qvals, nb->qvals + nb->qhead * nb->value_size,
			nb->qlen * nb->value_size);
		nb->qhead = 0;
		return 0;
	}
	return queue_grow(nb, nb->qlen + n, 0);
}

int bld_nb_push_mappings(struct bld_nb *nb, uint64_t key, uint64_t data, uint64_t n,
			 uint32_t time)
{
	size_t half = nb->max / 2, twice = 2 * (size_t)nb->max;
	int r;

	if (n == 0)
		return 0;
	if (nb->have_last && key <= nb->last_key)
		return tm_fail(nb->out->e, -EINVAL, TM_RULE_KEY_ORDER, TM_NO_BLOCK,
			       "key %llu does not follow key %llu",
			       (unsigned long long)key, (unsigned long long)nb->last_key);
	/* what bld_nb_push_value() does before its first value */
	if (nb->nn == 1 && nb->nodes[0].nr_entries < half && (r = unshift_node(nb)))
		return r;
	while (n) {
		size_t take, at;

		/* ... and before every value: keep at most two nodes' worth queued */
		while (nb->qlen >= twice)
			if ((r = emit_values(nb, nb->max)))
				return r;
		take = twice - nb->qlen;
		if (take > n)
			take = (size_t)n;
		if ((r = queue_reserve(nb, take)))
			return r;
		at = nb->qhead + nb->qlen;
		for (size_t i = 0; i < take; i++) {
			nb->qkeys[at + i] = key + i;
			tm_put_le64(nb->qvals + (at + i) * 8, tm_bt_pack(data + i, time));
		}
		nb->qlen += take;
		key += take;
		data += take;
		n -= take;
	}
	nb->have_last = 1;
	nb->last_key = key - 1;
	return 0;
}

int bld_nb_push_nodes(struct bld_nb *nb, const struct bld_nsum *nodes, size_t n)
{
	size_t half = nb->max / 2;
	int empty = n == 1 && nodes[0].nr_entries == 0;
	int r;

	if (n == 0)
		return 0;
	if (!empty && nb->have_last && nodes[0].first_key <= nb->last_key)
		return tm_fail(nb->out->e, -EINVAL, TM_RULE_KEY_ORDER, TM_NO_BLOCK,
			       "key %llu does not follow key %llu",
			       (unsigned long long)nodes[0].first_key,
			       (unsigned long long)nb->last_key);

	/* A single node as the first thing may become the root as it is. */
	if (n == 1 && nb->nn == 0 && nb->qlen == 0) {
		if ((r = use_node(nb, &nodes[0])))
			return r;
	} else {
		if (nb->nn == 1 && nb->nodes[0].nr_entries < half)
			if ((r = unshift_node(nb)))
				return r;
		if (nb->qlen && nb->qlen < half) {
			/* too few values for a node of their own: copy the first */
			if ((r = append_values(nb, &nodes[0])))
				return r;
			if (n > 1) {
				if ((r = emit_all(nb)))
					return r;
				for (size_t i = 1; i < n; i++)
					if ((r = use_node(nb, &nodes[i])))
						return r;
			}
		} else {
			if ((r = emit_all(nb)))
				return r;
			if (n == 1 && nodes[0].nr_entries < half) {
				if ((r = append_values(nb, &nodes[0])))
					return r;
			} else {
				for (size_t i = 0; i < n; i++) {
					if (nodes[i].nr_entries < half) {
						/* never the case for leaves we built */
						if ((r = emit_all(nb)) || (r = append_values(nb, &nodes[i])))
							return r;
						continue;
					}
					if (nb->qlen && (r = emit_all(nb)))
						return r;
					if ((r = use_node(nb, &nodes[i])))
						return r;
				}
			}
		}
	}
	if (!empty) {
		nb->have_last = 1;
		nb->last_key = nodes[n - 1].last_key;
	}
	return 0;
}

int bld_nb_complete(struct bld_nb *nb, struct bld_nsum **nodes, size_t *n)
{
	size_t half = nb->max / 2;
	int r;

	*nodes = NULL;
	*n = 0;
	if (nb->qlen && nb->qlen < half && nb->nn)
		if ((r = unshift_node(nb)))
			return r;
	if ((r = emit_all(nb)))
		return r;
	if (!nb->nn && (r = emit_values(nb, 0)))
		return r;
	*nodes = nb->nodes;
	*n = nb->nn;
	nb->nodes = NULL;
	nb->nn = nb->ncap = 0;
	return 0;
}

int bld_build_btree(struct bld_out *out, struct bld_nsum *nodes, size_t n,
		    uint64_t *root)
{
	uint8_t v[8];
	int r = 0;

	while (n > 1 && !r) {
		struct bld_nb nb;
		struct bld_nsum *up;
		size_t nup;

		bld_nb_init(&nb, out, TM_NODE_INTERNAL, TM_VSIZE_U64, NULL);
		for (size_t i = 0; i < n && !r; i++) {
			tm_put_le64(v, nodes[i].block);
			r = bld_nb_push_value(&nb, nodes[i].first_key, v);
		}
		if (!r)
			r = bld_nb_complete(&nb, &up, &nup);
		bld_nb_free(&nb);
		free(nodes);
		nodes = NULL;
		if (!r) {
			nodes = up;
			n = nup;
		}
	}
	if (!r)
		*root = nodes[0].block;
	free(nodes);
	return r;
}
