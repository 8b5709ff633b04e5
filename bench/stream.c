// SPDX-License-Identifier: MIT
/*
 * stream: the peer floods; the parent counts what arrives in the window and
 * answers STOP with DONE.
 */
#include <errno.h>

#include "bench.h"

static void receiver_rx(struct bench_chan *c, void *data, size_t len,
			int *fds, unsigned int nr_fds)
{
	struct bench_ctx *x = c->rx_arg;
	const struct bench_hdr *h = data;
	struct bench_hdr *r;
	int err;

	bench_close_fds(fds, nr_fds);
	if (len < sizeof(*h)) {
		x->err = -EPROTO;
		return;
	}
	if (h->flags & BENCH_F_STOP) {
		x->count_ns = now_ns() - x->count_t0;
		window_end(x, x->count);
		x->stop = true;
		/* DONE: a bare message, no fds. */
		r = msg_hdr(x, 0);
		r->flags = BENCH_F_DONE;
		x->msgs[0].nr_fds = 0;
		err = ctx_send(x, 0, 1);
		if (err)
			x->err = err;
		return;
	}
	if (h->flags & BENCH_F_MEASURE) {
		window_begin(x);
		x->count_t0 = x->w_t0;
		x->count = 0;
		x->counting = true;
		return;
	}
	if (x->counting)
		x->count++;
}

static int stream_parent(struct bench_ctx *x)
{
	x->chan.rx = receiver_rx;
	return ctx_wait_stop(x);
}

static void sender_rx(struct bench_chan *c, void *data, size_t len,
		      int *fds, unsigned int nr_fds)
{
	struct bench_ctx *x = c->rx_arg;
	const struct bench_hdr *h = data;

	bench_close_fds(fds, nr_fds);
	if (len >= sizeof(*h) && (h->flags & BENCH_F_DONE))
		x->stop = true;
	else
		x->err = -EPROTO;
}

static int stream_peer(struct bench_ctx *x)
{
	const struct bench_cfg *cfg = x->cfg;
	unsigned int batch = x->nr_msgs;
	struct bench_hdr *first = msg_hdr(x, 0);
	uint64_t end, count = 0;
	int err;

	x->chan.rx = sender_rx;
	end = now_ns() + cfg->warmup_ms * 1000000ull;
	do {
		err = ctx_send(x, 0, batch);
		if (err)
			return err;
		count += batch;
	} while (now_ns() < end || count < BENCH_WARMUP_MSGS);
	count = 0;

	window_begin(x);
	end = now_ns() + cfg->duration_ms * 1000000ull;
	first->flags = BENCH_F_MEASURE;
	do {
		err = ctx_send(x, 0, batch);
		if (err)
			return err;
		first->flags = 0;
		count += batch;
	} while (now_ns() < end);
	window_end(x, count);

	first->flags = BENCH_F_STOP;
	err = ctx_send(x, 0, 1);
	if (err)
		return err;
	return ctx_wait_stop(x);
}

const struct bench_scenario_ops stream_ops = {
	.name = "stream",
	.parent = stream_parent,
	.peer = stream_peer,
};
