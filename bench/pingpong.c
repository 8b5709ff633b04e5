// SPDX-License-Identifier: MIT
/*
 * pingpong: the parent sends a message, the peer sends one back of the
 * same size with as many fds of its own, and the parent times the round
 * trip. Warm-up round trips first (for the warm-up time, and at least
 * BENCH_WARMUP_MSGS), then the measured ones, then a STOP round trip that
 * ends the peer's window.
 */
#include <errno.h>

#include "bench.h"

static void client_rx(struct bench_chan *c, void *data, size_t len,
		      int *fds, unsigned int nr_fds)
{
	struct bench_ctx *x = c->rx_arg;
	const struct bench_hdr *h = data;

	bench_close_fds(fds, nr_fds);
	if (len < sizeof(*h)) {
		x->err = -EPROTO;
		return;
	}
	x->got++;
	x->got_flags = h->flags;
}

static int exchange(struct bench_ctx *x, uint16_t flags)
{
	struct bench_hdr *h = msg_hdr(x, 0);
	int err;

	h->seq++;
	h->flags = flags;
	x->got = 0;
	err = ctx_send(x, 0, 1);
	if (err)
		return err;
	return ctx_wait_got(x, 1);
}

static int pingpong_parent(struct bench_ctx *x)
{
	const struct bench_cfg *cfg = x->cfg;
	uint64_t t0, t1, end;
	uint16_t flags;
	size_t n = 0;
	int err;

	x->chan.rx = client_rx;
	/* The first round trip waits for the peer to start: not warm-up. */
	err = exchange(x, 0);
	if (err)
		return err;
	end = now_ns() + cfg->warmup_ms * 1000000ull;
	do {
		err = exchange(x, 0);
		if (err)
			return err;
	} while (now_ns() < end || ++n < BENCH_WARMUP_MSGS);
	n = 0;

	window_begin(x);
	end = now_ns() + cfg->duration_ms * 1000000ull;
	flags = BENCH_F_MEASURE;
	do {
		t0 = now_ns();
		err = exchange(x, flags);
		t1 = now_ns();
		if (err)
			return err;
		x->samples[n++] = t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0;
		flags = 0;
	} while (t1 < end && n < x->cap_samples);
	x->nr_samples = n;
	window_end(x, 2 * n);

	err = exchange(x, BENCH_F_STOP);
	if (!err && !(x->got_flags & BENCH_F_STOP))
		err = -EPROTO;
	return err;
}

static void echo_rx(struct bench_chan *c, void *data, size_t len, int *fds,
		    unsigned int nr_fds)
{
	struct bench_ctx *x = c->rx_arg;
	const struct bench_hdr *h = data;

	bench_close_fds(fds, nr_fds);
	if (len < sizeof(*h)) {
		x->err = -EPROTO;
		return;
	}
	ctx_echo(x, h, 0);
}

static int pingpong_peer(struct bench_ctx *x)
{
	x->chan.rx = echo_rx;
	return ctx_wait_stop(x);
}

const struct bench_scenario_ops pingpong_ops = {
	.name = "pingpong",
	.parent = pingpong_parent,
	.peer = pingpong_peer,
};
