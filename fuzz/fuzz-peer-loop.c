// SPDX-License-Identifier: MIT
/*
 * fuzz-peer: the loops, and the application that owns a shared ring.
 *
 * Loops live across inputs and are made on first use, each with default
 * and with small options (enum fz_kind): byte 0's three (io_uring sending
 * directly or always on the ring, epoll), and, which only byte 1 reaches,
 * loops inside an io_uring of the application's (ipcsock_loop_new_shared():
 * a plain ring and one set up with IORING_SETUP_SINGLE_ISSUER |
 * IORING_SETUP_DEFER_TASKRUN, each sending directly or on the ring; the
 * small ones have a 4-entry SQ) and loops with busy_poll_us set.
 *
 * On a shared ring the harness is the application: it submits and waits
 * on the ring itself, hands every completion whose user_data carries the
 * library's tag to ipcsock_loop_handle_cqe(), which must take it (1), and
 * keeps the others, which the library must leave alone (0), then runs
 * ipcsock_loop_dispatch(loop, 0). It also puts requests of its own on the
 * ring (op_app()), each of which must come back to it exactly once with
 * the result it should have. The waits are long: when the library has a
 * callback due it must make the ring complete something (its wake-up
 * NOP), so a conversation that has not settled yet cannot leave the
 * application waiting until the deadline. Dispatch must never wait on a
 * shared ring, so the harness sometimes gives it a timeout of -1. Once
 * the loop is idle, nothing of the library's may complete any more.
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "fuzz-peer.h"

static struct fz_loop fz_loops[NR_KINDS][2];

static const char * const kind_names[NR_KINDS][2] = {
	[KIND_URING] = { "io_uring", "io_uring-small" },
	[KIND_EPOLL] = { "epoll", "epoll-small" },
	[KIND_URING_RING] = { "io_uring-ring", "io_uring-ring-small" },
	[KIND_SHARED] = { "shared", "shared-small" },
	[KIND_SHARED_DEFER] = { "shared-defer", "shared-defer-small" },
	[KIND_SHARED_RING] = { "shared-ring", "shared-ring-small" },
	[KIND_SHARED_DEFER_RING] = { "shared-defer-ring",
				     "shared-defer-ring-small" },
	[KIND_BUSY_URING] = { "busy-io_uring", "busy-io_uring-small" },
	[KIND_BUSY_EPOLL] = { "busy-epoll", "busy-epoll-small" },
	[KIND_BUSY_URING_RING] = { "busy-io_uring-ring",
				   "busy-io_uring-ring-small" },
};

static bool kind_shared(unsigned int kind)
{
	return kind >= KIND_SHARED && kind <= KIND_SHARED_DEFER_RING;
}

/*
 * Does the kernel take IORING_SETUP_DEFER_TASKRUN? The library's own rings
 * have it if so (and then run task work only when it enters the ring).
 */
static bool kernel_defer_taskrun(void)
{
	static int known = -1;
	struct io_uring_params p;
	struct io_uring ring;

	if (known < 0) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_SINGLE_ISSUER |
			  IORING_SETUP_DEFER_TASKRUN;
		known = !io_uring_queue_init_params(2, &ring, &p);
		if (known)
			io_uring_queue_exit(&ring);
	}
	return known;
}

static bool kind_ring_sends(unsigned int kind)
{
	return kind == KIND_URING_RING || kind == KIND_SHARED_RING ||
	       kind == KIND_SHARED_DEFER_RING || kind == KIND_BUSY_URING_RING;
}

static __attribute__((noreturn)) void setup_failed(const struct fz_loop *fl,
						   const char *what, int err)
{
	fprintf(stderr, "fuzz-peer: %s: %s (%s)\n", fl->name, what,
		strerror(err));
	exit(1);
}

/* The application's ring, for a shared loop. */
static void shared_ring_setup(struct fz_loop *fl, bool defer, bool small)
{
	struct io_uring_params p;
	int err;

	fl->ring = calloc(1, sizeof(*fl->ring));
	if (!fl->ring)
		setup_failed(fl, "calloc", ENOMEM);
	memset(&p, 0, sizeof(p));
	if (defer)
		p.flags = IORING_SETUP_SINGLE_ISSUER |
			  IORING_SETUP_DEFER_TASKRUN;
	err = io_uring_queue_init_params(small ? FZ_SHARED_SQ_SMALL :
						 FZ_SHARED_SQ, fl->ring, &p);
	if (err)
		setup_failed(fl, "io_uring_queue_init_params", -err);
	/* Without it, a wait with a timeout puts liburing's TIMEOUT on it. */
	if (!(p.features & IORING_FEAT_EXT_ARG))
		setup_failed(fl, "IORING_FEAT_EXT_ARG", EOPNOTSUPP);
	fl->app_evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fl->app_evfd < 0)
		setup_failed(fl, "eventfd", errno);
}

static void loop_setup(struct fz_loop *fl, unsigned int kind, bool small)
{
	bool epoll = kind == KIND_EPOLL || kind == KIND_BUSY_EPOLL;
	bool defer = kind == KIND_SHARED_DEFER ||
		     kind == KIND_SHARED_DEFER_RING;
	IPCSOCK_LOOP_OPTS(opts,
		.backend = epoll ? IPCSOCK_BACKEND_EPOLL :
				   IPCSOCK_BACKEND_URING,
		.max_msg_size = small ? FZ_SMALL_MSG : 0,
		.send_queue_len = small ? FZ_SMALL_QUEUE : 0,
		.recv_buffers = small ? FZ_SMALL_BUFFERS : 0,
		.flags = kind_ring_sends(kind) ? IPCSOCK_LOOP_RING_SENDS : 0,
	);

	fl->name = kind_names[kind][small];
	fl->app_evfd = -1;
	fl->busy = kind >= KIND_BUSY_URING;
	fl->ring_sends = kind_ring_sends(kind);
	if (kind_shared(kind))
		fl->async_rx = !defer;
	else
		fl->async_rx = !epoll && !kernel_defer_taskrun();
	if (fl->busy)
		opts.busy_poll_us = FZ_BUSY_US;
	if (kind_shared(kind)) {
		shared_ring_setup(fl, defer, small);
		/*
		 * AUTO is io_uring here; ring_entries and busy_poll_us are
		 * ignored; the small loops' buffer groups sit at the top.
		 */
		opts.backend = defer ? IPCSOCK_BACKEND_URING :
				       IPCSOCK_BACKEND_AUTO;
		opts.ring_entries = 2;
		opts.busy_poll_us = defer ? FZ_BUSY_US : 0;
		opts.bgid_base = small ? 0xff00 : 0;
		fl->loop = ipcsock_loop_new_shared(fl->ring, &opts);
	} else {
		fl->loop = ipcsock_loop_new(&opts);
	}
	if (!fl->loop)
		setup_failed(fl, "ipcsock_loop_new", errno);
	if (ipcsock_loop_backend(fl->loop) != (epoll ? IPCSOCK_BACKEND_EPOLL :
					       IPCSOCK_BACKEND_URING))
		setup_failed(fl, "not the backend asked for", EINVAL);
	fl->unbound = ipcsock_new(fl->loop);
	fl->fd = ipcsock_loop_fd(fl->loop);
	if (!fl->unbound || fl->fd < 0)
		setup_failed(fl, "loop set-up", fl->fd < 0 ? -fl->fd : ENOMEM);
	fl->max_msg = small ? FZ_SMALL_MSG : IPCSOCK_DEFAULT_MAX_MSG_SIZE;
	fl->queue_len = small ? FZ_SMALL_QUEUE : IPCSOCK_DEFAULT_SEND_QUEUE;
}

struct fz_loop *fz_loop_get(unsigned int kind, bool small)
{
	struct fz_loop *fl = &fz_loops[kind][small];

	if (!fl->loop)
		loop_setup(fl, kind, small);
	return fl;
}

/* ------------------------------------------------------------------ */
/* The application's side of a shared ring */

static void app_cqe(struct fz_loop *fl, const struct io_uring_cqe *cqe)
{
	struct fz_app_req *r = NULL;
	unsigned int i;
	bool ok;

	for (i = 0; i < FZ_APP_MAX && !r; i++)
		if (fl->app[i].busy && fl->app[i].ud == cqe->user_data)
			r = &fl->app[i];
	if (!r)
		fz_fail("shared ring: CQE %#llx (res %d) is neither the library's nor the application's",
			(unsigned long long)cqe->user_data, cqe->res);
	switch (r->kind) {
	case APP_TIMEOUT:
		ok = cqe->res == -ETIME;
		break;
	case APP_POLL:
		ok = cqe->res > 0 && (cqe->res & POLLIN);
		break;
	default:
		ok = !cqe->res;
		break;
	}
	if (!ok || (cqe->flags & IORING_CQE_F_MORE))
		fz_fail("shared ring: the application's request %#llx (kind %u) completed with %d, flags %#x",
			(unsigned long long)r->ud, r->kind, cqe->res,
			cqe->flags);
	r->busy = false;
	fl->app_inflight--;
	fl->app_cqes++;
}

/*
 * Hand over the completions posted: the tagged ones are the library's and
 * handle_cqe must take them, the others it must leave to the application.
 */
static unsigned int ring_reap(struct fz_loop *fl)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	int ret;

	io_uring_for_each_cqe(fl->ring, head, cqe) {
		ret = ipcsock_loop_handle_cqe(fl->loop, cqe);
		if (IPCSOCK_USER_DATA_IS_OURS(cqe->user_data)) {
			if (ret != 1)
				fz_fail("handle_cqe(%#llx, res %d) gave %d for the library's own CQE",
					(unsigned long long)cqe->user_data,
					cqe->res, ret);
			fl->lib_cqes++;
		} else {
			if (ret)
				fz_fail("handle_cqe took the application's CQE %#llx: %d",
					(unsigned long long)cqe->user_data,
					ret);
			app_cqe(fl, cqe);
		}
		n++;
	}
	io_uring_cq_advance(fl->ring, n);
	return n;
}

/*
 * One turn of the application's loop: submit, wait up to @wait_ms for a
 * completion (0: only fetch what is done), hand them over. A message that
 * the peer had read before the turn was sent by then, so its CQE was
 * posted: once the CQ and the kernel's overflow list are empty, it is
 * handed over too (@fz->lib_reaped, for send_state_ok()).
 */
static unsigned int ring_turn(struct fz_loop *fl, struct fz *fz, int wait_ms)
{
	unsigned int read = fz ? fz->lib_read : 0, n;
	struct __kernel_timespec ts = {
		.tv_sec = wait_ms / 1000,
		.tv_nsec = (wait_ms % 1000) * 1000000L,
	};
	struct io_uring_cqe *cqe;
	int ret;

	if (wait_ms > 0)
		ret = io_uring_submit_and_wait_timeout(fl->ring, &cqe, 1, &ts,
						       NULL);
	else
		ret = io_uring_submit_and_get_events(fl->ring);
	if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN &&
	    ret != -EBUSY)
		fz_fail("shared ring: submit and wait: %s", strerror(-ret));
	n = ring_reap(fl);
	if (fz && !io_uring_cq_ready(fl->ring) &&
	    !(IO_URING_READ_ONCE(*fl->ring->sq.kflags) & IORING_SQ_CQ_OVERFLOW))
		fz->lib_reaped = read;
	return n;
}

/*
 * Dispatch: on a shared ring one turn of the application's loop first.
 * Dispatch never waits there, so a timeout becomes "forever".
 */
void fz_dispatch(struct fz *fz, int timeout_ms)
{
	struct fz_loop *fl = fz->fl;

	if (!fl->ring) {
		loop_dispatch(fl->loop, timeout_ms);
		return;
	}
	ring_turn(fl, fz, timeout_ms);
	loop_dispatch(fl->loop, timeout_ms ? -1 : 0);
}

/*
 * Round @i of waiting for something the conversation must still see. On
 * a shared ring it must come as a completion before @end.
 */
void fz_wait(struct fz *fz, unsigned int i, uint64_t end)
{
	uint64_t now = now_ms();
	struct fz_loop *fl = fz->fl;

	if (!fl->ring) {
		fz_dispatch(fz, i >= 64);
		return;
	}
	ring_turn(fl, fz, now < end ? end - now : 0);
	loop_dispatch(fl->loop, 0);
}

/*
 * Every socket is closed or freed: wait until the loop is idle and the
 * application's requests are back, then nothing of the library's may
 * complete any more.
 */
void fz_loop_quiesce(struct fz_loop *fl)
{
	uint64_t end = now_ms() + FZ_IDLE_MS, now;
	unsigned long lib_cqes;
	eventfd_t cnt;
	unsigned int i;

	if (!fl->ring) {
		while (!ipcsock_loop_idle(fl->loop)) {
			if (now_ms() > end)
				fz_fail("loop not idle after every socket was freed");
			loop_dispatch(fl->loop, 1);
		}
		return;
	}
	for (i = 0; i < FZ_APP_MAX; i++)
		if (fl->app[i].busy && fl->app[i].kind == APP_POLL)
			eventfd_write(fl->app_evfd, 1);
	while (!ipcsock_loop_idle(fl->loop) || fl->app_inflight) {
		now = now_ms();
		if (now > end)
			fz_fail("shared ring: loop %s, %u of the application's requests still out",
				ipcsock_loop_idle(fl->loop) ? "idle" :
							      "not idle",
				fl->app_inflight);
		ring_turn(fl, NULL, end - now);
		loop_dispatch(fl->loop, 0);
	}
	lib_cqes = fl->lib_cqes;
	ring_turn(fl, NULL, 0);
	if (fl->lib_cqes != lib_cqes)
		fz_fail("shared ring: %lu of the library's CQEs after it was idle",
			fl->lib_cqes - lib_cqes);
	eventfd_read(fl->app_evfd, &cnt);
}

static bool app_ud_out(const struct fz_loop *fl, uint64_t ud)
{
	unsigned int i;

	for (i = 0; i < FZ_APP_MAX; i++)
		if (fl->app[i].busy && fl->app[i].ud == ud)
			return true;
	return false;
}

/*
 * The application's user_data: never the library's tag in the top 16
 * bits, never liburing's LIBURING_UDATA_TIMEOUT, but close to both; and
 * none that one of its requests still out has.
 */
static uint64_t app_ud(struct fz_loop *fl, unsigned int form)
{
	static const uint64_t base[8] = {
		0,				/* small integers, 0 too */
		0x00007f0000000000ull,		/* a pointer */
		(IPCSOCK_USER_DATA_TAG - 1) << 48,
		(IPCSOCK_USER_DATA_TAG + 1) << 48,
		IPCSOCK_USER_DATA_TAG << 32,	/* the tag, lower down */
		IPCSOCK_USER_DATA_TAG,
		0xfffe000000000000ull,
		(IPCSOCK_USER_DATA_TAG | 0x8000) << 48,
	};
	uint64_t ud;

	do {
		ud = base[form & 7] + (fl->app_gen++ & 0xffffff);
	} while (app_ud_out(fl, ud));
	if (IPCSOCK_USER_DATA_IS_OURS(ud) || ud == LIBURING_UDATA_TIMEOUT)
		fz_fail("harness: application user_data %#llx",
			(unsigned long long)ud);
	return ud;
}

static void app_prep(struct fz_loop *fl, unsigned int kind, unsigned int form)
{
	static struct __kernel_timespec ts = { .tv_nsec = 1000 };
	unsigned int n = kind == APP_LINKED ? 2 : 1, i, slot;
	struct io_uring_sqe *sqe;

	if (fl->app_inflight + n > FZ_APP_MAX)
		return;
	if (io_uring_sq_space_left(fl->ring) < n)
		io_uring_submit(fl->ring);
	if (io_uring_sq_space_left(fl->ring) < n)
		return;
	for (i = 0; i < n; i++) {
		for (slot = 0; fl->app[slot].busy; slot++)
			;
		sqe = io_uring_get_sqe(fl->ring);
		switch (kind) {
		case APP_TIMEOUT:
			io_uring_prep_timeout(sqe, &ts, 0, 0);
			break;
		case APP_POLL:
			io_uring_prep_poll_add(sqe, fl->app_evfd, POLLIN);
			break;
		default:
			io_uring_prep_nop(sqe);
			if (kind == APP_LINKED && !i)
				sqe->flags |= IOSQE_IO_LINK;
			break;
		}
		fl->app[slot].ud = app_ud(fl, form);
		fl->app[slot].kind = kind;
		fl->app[slot].busy = true;
		io_uring_sqe_set_data64(sqe, fl->app[slot].ud);
		fl->app_inflight++;
	}
}

/*
 * OP_APP [b]: the application's own work.
 *   arg bits 0-1: on a shared ring, put a NOP, a 1 us TIMEOUT, a POLL_ADD
 *                 on the application's eventfd, or two linked NOPs on it
 *   arg bit 2:    leave them unsubmitted: the library's next submit
 *                 takes them along, else the application's next wait
 *   arg bit 3:    ipcsock_loop_flush(), on any loop
 *   b bits 0-2:   the form of the user_data, see app_ud()
 *   b bit 3:      write the eventfd, which completes the POLL_ADDs
 */
void op_app(struct fz *fz, struct fz_in *in, unsigned int arg)
{
	struct fz_loop *fl = fz->fl;
	unsigned int b = in_u8(in);
	int ret;

	if (fl->ring) {
		app_prep(fl, arg & 3, b & 7);
		if (!(arg & 4))
			io_uring_submit(fl->ring);
		if (b & 8)
			eventfd_write(fl->app_evfd, 1);
	}
	if (arg & 8) {
		ret = ipcsock_loop_flush(fl->loop);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN &&
		    ret != -EBUSY)
			fz_fail("ipcsock_loop_flush: %d", ret);
	}
}
