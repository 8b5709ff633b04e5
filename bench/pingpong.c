// SPDX-License-Identifier: MIT
/* pingpong: timed round trips, one message each way. */
#include "bench.h"

static int pingpong_parent(struct bench_ctx *x)
{
	const struct bench_cfg *cfg = x->cfg;
	uint64_t t0, t1, end;
	uint16_t flags;
	size_t n = 0;
	int err;

	x->chan.rx = reply_rx;
	/* The first round trip waits for the peer to start: not warm-up. */
	err = ctx_exchange(x, 0, 0);
	if (err)
		return err;
	end = now_ns() + cfg->warmup_ms * 1000000ull;
	do {
		err = ctx_exchange(x, 0, 0);
		if (err)
			return err;
	} while (now_ns() < end || ++n < BENCH_WARMUP_MSGS);
	n = 0;

	window_begin(x);
	end = now_ns() + cfg->duration_ms * 1000000ull;
	flags = BENCH_F_MEASURE;
	do {
		t0 = now_ns();
		err = ctx_exchange(x, 0, flags);
		t1 = now_ns();
		if (err)
			return err;
		x->samples[n++] = t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0;
		flags = 0;
	} while (t1 < end && n < x->cap_samples);
	x->nr_samples = n;
	window_end(x, 2 * n);

	return ctx_exchange(x, 0, BENCH_F_STOP);
}

const struct bench_scenario_ops pingpong_ops = {
	.name = "pingpong",
	.parent = pingpong_parent,
	.peer = echo_peer,
};
