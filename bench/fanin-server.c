// SPDX-License-Identifier: MIT
/*
 * fanin's server process: one implementation's event loop over every
 * channel, and its measured window. The window opens once the warm-up time
 * has passed and every channel has echoed a window of messages and enough
 * to have used each of the library's receive buffers once (the first use
 * of a buffer faults its page in: not the steady state),
 * and closes after the measured time and at least a window per channel
 * (every channel's turn comes at least once, on average);
 * the clock is read once per turn of the loop, as every implementation
 * turns the same way.
 */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "ipcsock.h"
#include "fanin.h"

static int serve_until(struct fanin_srv *s, const struct fanin_server_ops *ops,
		       uint64_t not_before, uint64_t min_echoed, bool warm)
{
	int err;

	while (!s->err && s->hung_up < s->nr) {
		if (now_ns() >= not_before && s->echoed >= min_echoed &&
		    (!warm || s->warm == s->nr))
			return 0;
		err = ops->turn(s, -1);
		if (err)
			fanin_srv_fail(s, err);
	}
	/* Every client gone before the window ended: a failure. */
	return s->err ? s->err : -EPIPE;
}

int fanin_server_main(const struct fanin_server_ops *ops,
		      const struct fanin_cfg *cfg, const int *fds, int ctl)
{
	struct fanin_srv_report rep = { 0 };
	struct fanin_srv s = {
		.nr = cfg->channels,
		.window = cfg->window,
		.warm_at = cfg->window > IPCSOCK_DEFAULT_RECV_BUFFERS ?
			   cfg->window : IPCSOCK_DEFAULT_RECV_BUFFERS,
	};
	uint64_t t0, cpu0, e0;
	int64_t rss0;
	int err;

	/* Told apart from the clients in ps, top and perf. */
	prctl(PR_SET_NAME, "fanin-server");
	/* The application's own per-channel state, before the baseline. */
	s.next_seq = calloc(s.nr, sizeof(*s.next_seq));
	if (!s.next_seq)
		return 1;
	/*
	 * Forked, not exec'd: hand back the heap the coordinator freed, so
	 * that the channels' pages show as new.
	 */
	malloc_trim(0);
	rss0 = rss_kib();
	err = ops->open(&s, fds);
	if (!err) {
		/* One turn that does not wait: receives armed, nothing sent. */
		err = ops->turn(&s, 0);
		rep.idle_rss_kib = rss_kib() - rss0;
	}
	rep.err = err;
	if (write_full(ctl, &rep, sizeof(rep)))
		err = -EPIPE;
	if (err) {
		if (!rep.err)
			ops->close(&s);
		return 1;
	}

	/* Warm-up: from the first message, until every channel is warm. */
	err = serve_until(&s, ops, 0, 1, false);
	t0 = now_ns();
	if (!err)
		err = serve_until(&s, ops, t0 + cfg->warmup_ms * 1000000ull,
				  0, true);
	t0 = now_ns();
	cpu0 = cpu_ns(NULL);
	e0 = s.echoed;
	if (!err)
		err = serve_until(&s, ops, t0 + cfg->duration_ms * 1000000ull,
				  e0 + (uint64_t)s.nr * s.window, false);
	rep.cpu_ns = cpu_ns(NULL) - cpu0;
	rep.ns = now_ns() - t0;
	rep.msgs = s.echoed - e0;
	rep.busy_rss_kib = rss_kib() - rss0;
	rep.err = err;
	if (write_full(ctl, &rep, sizeof(rep)))
		err = -EPIPE;
	/* Echo what is still in flight until every client has closed. */
	while (!err && !s.err && s.hung_up < s.nr)
		err = ops->turn(&s, -1);
	ops->close(&s);
	free(s.next_seq);
	return err || s.err ? 1 : 0;
}
