// SPDX-License-Identifier: MIT
/*
 * Request and reply, as pingpong and camera use them: the parent's
 * exchange and reply check, and the one echo peer both scenarios run.
 */
#include <errno.h>

#include "bench.h"

/* Closes the fds; NULL (and x->err set) unless @data has the expected shape. */
static const struct bench_hdr *rr_check(struct bench_ctx *x, void *data,
					size_t len, int *fds,
					unsigned int nr_fds)
{
	const struct bench_hdr *h = data;

	bench_close_fds(fds, nr_fds);
	if (len < sizeof(*h) || h->idx >= x->nr_rx ||
	    len != x->rx_len[h->idx] || nr_fds != x->rx_fds[h->idx]) {
		x->err = -EPROTO;
		return NULL;
	}
	return h;
}

void reply_rx(struct bench_chan *c, void *data, size_t len, int *fds,
	      unsigned int nr_fds)
{
	struct bench_ctx *x = c->rx_arg;
	const struct bench_hdr *h = rr_check(x, data, len, fds, nr_fds);

	if (!h)
		return;
	x->got++;
	x->got_flags = h->flags;
}

/* Sends request @i with @flags and waits for its reply. */
int ctx_exchange(struct bench_ctx *x, unsigned int i, uint16_t flags)
{
	struct bench_hdr *h = msg_hdr(x, i);
	int err;

	h->seq++;
	h->flags = flags;
	x->got = 0;
	err = ctx_send(x, i, 1);
	while (!err && !x->got && !x->err)
		err = x->chan.impl->wait(&x->chan);
	if (!err)
		err = x->err;
	/* STOP ends the peer's window: its reply must say it saw it. */
	if (!err && (flags & BENCH_F_STOP) && !(x->got_flags & BENCH_F_STOP))
		err = -EPROTO;
	return err;
}

/*
 * The peer: answer request idx with reply idx, following the window
 * flags (count the replies inside the window; STOP ends it and the role).
 */
static void echo_rx(struct bench_chan *c, void *data, size_t len, int *fds,
		    unsigned int nr_fds)
{
	struct bench_ctx *x = c->rx_arg;
	const struct bench_hdr *h = rr_check(x, data, len, fds, nr_fds);
	struct bench_hdr *r;
	int err;

	if (!h)
		return;
	if (h->flags & BENCH_F_MEASURE) {
		window_begin(x);
		x->count = 0;
	}
	if (h->flags & BENCH_F_STOP) {
		window_end(x, 2 * x->count);
		x->stop = true;
	} else {
		x->count++;
	}
	r = msg_hdr(x, h->idx);
	r->seq = h->seq;
	r->flags = h->flags;
	err = ctx_send(x, h->idx, 1);
	if (err)
		x->err = err;
}

int echo_peer(struct bench_ctx *x)
{
	x->chan.rx = echo_rx;
	return ctx_wait_stop(x);
}
