// SPDX-License-Identifier: MIT
/* camera: three request/reply events per frame, at a fixed frame rate. */
#include "bench.h"

/* Request i is answered by reply i. */
static const unsigned int req_size[CAMERA_EXCHANGES] = { 1024, 64, 256 };
static const unsigned int req_fds[CAMERA_EXCHANGES] = { CAMERA_FDS, 0, 0 };
static const unsigned int reply_size[CAMERA_EXCHANGES] = { 16, 128, 512 };

void camera_msgs(struct bench_ctx *x)
{
	unsigned int i;

	x->nr_rx = CAMERA_EXCHANGES;
	for (i = 0; i < CAMERA_EXCHANGES; i++) {
		x->msgs[i].len = x->parent ? req_size[i] : reply_size[i];
		x->msgs[i].nr_fds = x->parent ? req_fds[i] : 0;
		x->rx_len[i] = x->parent ? reply_size[i] : req_size[i];
		x->rx_fds[i] = x->parent ? 0 : req_fds[i];
		msg_hdr(x, i)->idx = i;
	}
}

static int camera_parent(struct bench_ctx *x)
{
	const struct bench_cfg *cfg = x->cfg;
	uint64_t period = 1000000000ull / cfg->fps, frame, t0, lat;
	unsigned int f, i, frames = cfg->warm_frames + cfg->frames;
	uint16_t flags;
	int err;

	x->chan.rx = reply_rx;
	/* Reach the steady state quickly: unpaced frames first. */
	for (f = 0; f * CAMERA_EXCHANGES < BENCH_WARMUP_MSGS; f++) {
		for (i = 0; i < CAMERA_EXCHANGES; i++) {
			err = ctx_exchange(x, i, 0);
			if (err)
				return err;
		}
	}
	frame = now_ns();
	for (f = 0; f < frames && x->nr_samples < x->cap_samples; f++) {
		flags = 0;
		if (f == cfg->warm_frames) {
			window_begin(x);
			flags = BENCH_F_MEASURE;
		}
		lat = 0;
		for (i = 0; i < CAMERA_EXCHANGES; i++) {
			sleep_until_ns(frame + i * period / CAMERA_EXCHANGES);
			t0 = now_ns();
			err = ctx_exchange(x, i, flags);
			if (err)
				return err;
			lat += now_ns() - t0;
			flags = 0;
		}
		if (f >= cfg->warm_frames)
			x->samples[x->nr_samples++] =
				lat > UINT32_MAX ? UINT32_MAX : lat;
		frame += period;
	}
	window_end(x, 2 * CAMERA_EXCHANGES * x->nr_samples);
	return ctx_exchange(x, 1, BENCH_F_STOP);
}

const struct bench_scenario_ops camera_ops = {
	.name = "camera",
	.parent = camera_parent,
	.peer = echo_peer,
};
