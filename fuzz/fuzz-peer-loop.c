// SPDX-License-Identifier: MIT
/*
 * fuzz-peer: the loops, and the application that owns a shared ring.
 *
 * Loops live across inputs and are made on first use, each with default
 * and with small options (enum fz_kind, enum fz_size): byte 0's three
 * (io_uring sending directly or always on the ring, epoll), and, which
 * only byte 1 reaches, loops inside an io_uring of the application's
 * (ipcsock_loop_new_shared(): a plain ring and one set up with
 * IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, each sending
 * directly or on the ring; and one set up with IORING_SETUP_SQPOLL, whose
 * kernel thread takes the SQEs in its own time; the small ones have a 4-
 * or 8-entry SQ), loops with busy_poll_us set, and the thread's default
 * loop. The shared ones
 * are made before anything else (fz_loops_early()), so that their loop
 * numbers are the first a counter gives out (see fuzz-peer-multi.c).
 *
 * On a shared ring the harness is the application: it submits and waits
 * on the ring itself, hands every completion whose user_data carries the
 * library's tag to ipcsock_loop_handle_cqe() of the input's loop, or of
 * another loop on the same ring (fuzz-peer-multi.c), one of which must
 * take it (1), and keeps the others, which the library must leave alone
 * (0), then runs ipcsock_loop_dispatch(loop, 0). It also puts requests of
 * its own on the ring (op_app()), each of which must come back to it
 * exactly once with the result it should have: among them a chain it
 * leaves open (IOSQE_IO_LINK on its last SQE, unsubmitted) while the
 * input calls into the library, and ends later with a NOP of its own,
 * which must then run after the chain's head and only if the head
 * succeeded, whatever the library put on the ring meanwhile. The waits
 * are long: when the library has a callback due it must make the ring
 * complete something (its wake-up NOP), so a conversation that has not
 * settled yet cannot leave the application waiting until the deadline.
 * Dispatch must never wait on a shared ring, so the harness sometimes
 * gives it a timeout of -1. Once the loop is idle, nothing of the
 * library's may complete any more.
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "fuzz-peer.h"

static struct fz_loop fz_loops[NR_KINDS][NR_SIZES];

static const char * const kind_names[NR_KINDS][NR_SIZES] = {
	[KIND_URING] = { "io_uring", "io_uring-small" },
	[KIND_EPOLL] = { "epoll", "epoll-small" },
	[KIND_URING_RING] = { "io_uring-ring", "io_uring-ring-small" },
	[KIND_SHARED] = { "shared", "shared-small", "shared-small8" },
	[KIND_SHARED_DEFER] = { "shared-defer", "shared-defer-small",
				"shared-defer-small8" },
	[KIND_SHARED_RING] = { "shared-ring", "shared-ring-small",
			       "shared-ring-small8" },
	[KIND_SHARED_DEFER_RING] = { "shared-defer-ring",
				     "shared-defer-ring-small",
				     "shared-defer-ring-small8" },
	[KIND_BUSY_URING] = { "busy-io_uring", "busy-io_uring-small" },
	[KIND_BUSY_EPOLL] = { "busy-epoll", "busy-epoll-small" },
	[KIND_BUSY_URING_RING] = { "busy-io_uring-ring",
				   "busy-io_uring-ring-small" },
	[KIND_DEFAULT] = { "default" },
	[KIND_SHARED_SQPOLL] = { "shared-sqpoll", "shared-sqpoll-small",
				 "shared-sqpoll-small8" },
};

static bool kind_shared(unsigned int kind)
{
	return (kind >= KIND_SHARED && kind <= KIND_SHARED_DEFER_RING) ||
	       kind == KIND_SHARED_SQPOLL;
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
static void shared_ring_setup(struct fz_loop *fl, bool defer, bool sqpoll,
			      unsigned int size)
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
	if (sqpoll) {
		p.flags = IORING_SETUP_SQPOLL;
		p.sq_thread_idle = FZ_SQPOLL_IDLE_MS;
		fl->sqpoll = true;
	}
	fl->sq_entries = size == SIZE_SMALL8 ? FZ_SHARED_SQ_SMALL8 :
			 size == SIZE_SMALL ? FZ_SHARED_SQ_SMALL : FZ_SHARED_SQ;
	err = io_uring_queue_init_params(fl->sq_entries, fl->ring, &p);
	if (err)
		setup_failed(fl, "io_uring_queue_init_params", -err);
	/* Without it, a wait with a timeout puts liburing's TIMEOUT on it. */
	if (!(p.features & IORING_FEAT_EXT_ARG))
		setup_failed(fl, "IORING_FEAT_EXT_ARG", EOPNOTSUPP);
	fl->app_evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fl->app_evfd < 0)
		setup_failed(fl, "eventfd", errno);
}

/*
 * The thread's default loop: what ipcsock_loop_new(NULL) makes, io_uring
 * unless IPCSOCK_BACKEND says otherwise. Made once, it lives on.
 */
static void default_setup(struct fz_loop *fl)
{
	bool epoll;

	fl->name = kind_names[KIND_DEFAULT][0];
	fl->app_evfd = -1;
	fl->kind = KIND_DEFAULT;
	fl->loop = ipcsock_loop_default();
	if (!fl->loop)
		setup_failed(fl, "ipcsock_loop_default", errno);
	loop_counted(fl);
	epoll = ipcsock_loop_backend(fl->loop) == IPCSOCK_BACKEND_EPOLL;
	fl->async_rx = !epoll && !kernel_defer_taskrun();
	fl->unbound = ipcsock_new(fl->loop);
	fl->fd = ipcsock_loop_fd(fl->loop);
	if (!fl->unbound || fl->fd < 0)
		setup_failed(fl, "loop set-up", fl->fd < 0 ? -fl->fd : ENOMEM);
	fl->max_msg = IPCSOCK_DEFAULT_MAX_MSG_SIZE;
	fl->queue_len = IPCSOCK_DEFAULT_SEND_QUEUE;
}

static void loop_setup(struct fz_loop *fl, unsigned int kind,
		       unsigned int size)
{
	bool small = size != SIZE_DEFAULT;
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

	fl->name = kind_names[kind][size];
	fl->app_evfd = -1;
	fl->kind = kind;
	fl->busy = kind >= KIND_BUSY_URING;
	fl->ring_sends = kind_ring_sends(kind);
	if (kind_shared(kind))
		fl->async_rx = !defer;
	else
		fl->async_rx = !epoll && !kernel_defer_taskrun();
	if (fl->busy)
		opts.busy_poll_us = FZ_BUSY_US;
	if (kind_shared(kind)) {
		fl->shared_defer = defer;
		shared_ring_setup(fl, defer, kind == KIND_SHARED_SQPOLL, size);
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
	loop_counted(fl);
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

/* Only shared rings have a SIZE_SMALL8; the default loop has one size. */
struct fz_loop *fz_loop_get(unsigned int kind, unsigned int size)
{
	struct fz_loop *fl;

	if (kind == KIND_DEFAULT)
		size = SIZE_DEFAULT;
	else if (size == SIZE_SMALL8 && !kind_shared(kind))
		size = SIZE_SMALL;
	fl = &fz_loops[kind][size];
	if (fl->loop)
		return fl;
	if (kind == KIND_DEFAULT)
		default_setup(fl);
	else
		loop_setup(fl, kind, size);
	return fl;
}

/*
 * The shared loops first: they take the lowest loop numbers. Then the
 * default loop, which a forked child inherits: made now, not in the
 * middle of an input, whose fds would then count as leaked.
 */
void fz_loops_early(void)
{
	unsigned int kind, size;

	for (kind = 0; kind < NR_KINDS; kind++)
		for (size = 0; size < NR_SIZES && kind_shared(kind); size++)
			fz_loop_get(kind, size);
	fz_loop_get(KIND_DEFAULT, SIZE_DEFAULT);
}

/* ------------------------------------------------------------------ */
/* The application's side of a shared ring */

/*
 * The NOP that ends a chain runs after the chain's head, and is cancelled
 * exactly when the head failed: a request of the library's in between
 * must neither cut the chain nor fail it. A head submitted without its
 * tail ends a chain of its own, which the kernel leaves to an io-wq
 * worker: it may then complete after the tail. If the harness itself had
 * to submit the head alone (no SQE left for the tail), anything goes.
 */
static void chain_tail_check(struct fz_loop *fl, int res)
{
	const struct fz_chain *c = &fl->chain;

	if (c->split && (!res || res == -ECANCELED))
		return;
	if (!c->head_done)
		fz_fail("shared ring: the application's linked NOP completed (%d) before its head: the chain was cut, its head submitted without it",
			res);
	if (c->head_kind == APP_CHAIN_NOP && res == -ECANCELED)
		fz_fail("shared ring: the application's linked NOP was cancelled after its head succeeded: a request of the library's joined its open chain and failed");
	if (c->head_kind == APP_CHAIN_NOP && res)
		fz_fail("shared ring: the application's linked NOP completed with %d",
			res);
	if (c->head_kind == APP_CHAIN_BAD && !res)
		fz_fail("shared ring: the application's linked NOP ran although its head failed: the library submitted the open chain with a request of its own");
	if (c->head_kind == APP_CHAIN_BAD && res != -ECANCELED)
		fz_fail("shared ring: the application's linked NOP completed with %d after its head failed",
			res);
}

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
	case APP_BAD:
		ok = cqe->res == -EINVAL;
		break;
	case APP_CHAIN_BAD:
		ok = cqe->res == -EBADF;
		break;
	case APP_CHAIN_TAIL:
		chain_tail_check(fl, cqe->res);
		ok = true;
		break;
	default:
		ok = !cqe->res;
		break;
	}
	if (!ok || (cqe->flags & IORING_CQE_F_MORE))
		fz_fail("shared ring: the application's request %#llx (kind %u) completed with %d, flags %#x",
			(unsigned long long)r->ud, r->kind, cqe->res,
			cqe->flags);
	if (r->kind == APP_CHAIN_NOP || r->kind == APP_CHAIN_BAD)
		fl->chain.head_done = true;
	if (r->kind == APP_CHAIN_TAIL)
		fl->chain.live = false;
	r->busy = false;
	fl->app_inflight--;
	fl->app_cqes++;
}

/*
 * Hand over the completions posted: the tagged ones are the library's and
 * handle_cqe of the input's loop, or of another loop on the ring, must
 * take them; the others every loop must leave to the application.
 */
static unsigned int ring_reap(struct fz_loop *fl)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	int ret;

	io_uring_for_each_cqe(fl->ring, head, cqe) {
		ret = ipcsock_loop_handle_cqe(fl->loop, cqe);
		if (IPCSOCK_USER_DATA_IS_OURS(cqe->user_data)) {
			if (ret == 1)
				fl->lib_cqes++;
			else if (ret || !multi_handle_cqe(fl, cqe))
				fz_fail("handle_cqe(%#llx, res %d) gave %d for the library's own CQE, and no other loop on the ring took it",
					(unsigned long long)cqe->user_data,
					cqe->res, ret);
		} else {
			if (ret || multi_handle_cqe(fl, cqe))
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
 * handed over too (@fz->lib_reaped, for send_state_ok()). While its chain
 * is open the application only waits: a submit would cut the chain.
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

	if (fl->chain.open && wait_ms > 0)
		ret = io_uring_wait_cqe_timeout(fl->ring, &cqe, &ts);
	else if (fl->chain.open)
		ret = io_uring_get_events(fl->ring);
	else if (wait_ms > 0)
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

void fz_ring_turn(struct fz_loop *fl, int wait_ms)
{
	ring_turn(fl, NULL, wait_ms);
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
		multi_dispatch(fl);
		return;
	}
	ring_turn(fl, fz, timeout_ms);
	loop_dispatch(fl->loop, timeout_ms ? -1 : 0);
	multi_dispatch(fl);
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
	multi_dispatch(fl);
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
	app_chain_end(fl, false);
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

/* One request of the application's: the caller made sure there is room. */
static struct io_uring_sqe *app_sqe(struct fz_loop *fl, unsigned int kind,
				    unsigned int form)
{
	static struct __kernel_timespec ts = { .tv_nsec = 1000 };
	struct io_uring_sqe *sqe = io_uring_get_sqe(fl->ring);
	unsigned int slot;

	if (!sqe)
		fz_fail("harness: no SQE where one was left");
	for (slot = 0; fl->app[slot].busy; slot++)
		;
	switch (kind) {
	case APP_TIMEOUT:
		io_uring_prep_timeout(sqe, &ts, 0, 0);
		break;
	case APP_POLL:
		io_uring_prep_poll_add(sqe, fl->app_evfd, POLLIN);
		break;
	case APP_CHAIN_BAD:
		io_uring_prep_read(sqe, FZ_UNUSED_FD, NULL, 0, 0);
		break;
	default:
		io_uring_prep_nop(sqe);
		/* Above any opcode a kernel knows: refused at submit. */
		if (kind == APP_BAD)
			sqe->opcode = 0xff;
		break;
	}
	fl->app[slot].ud = app_ud(fl, form);
	fl->app[slot].kind = kind;
	fl->app[slot].busy = true;
	io_uring_sqe_set_data64(sqe, fl->app[slot].ud);
	fl->app_inflight++;
	return sqe;
}

static void app_prep(struct fz_loop *fl, unsigned int kind, unsigned int form)
{
	unsigned int n = kind == APP_LINKED ? 2 : 1, i;
	struct io_uring_sqe *sqe;

	if (fl->app_inflight + n > FZ_APP_MAX)
		return;
	if (io_uring_sq_space_left(fl->ring) < n)
		io_uring_submit(fl->ring);
	if (io_uring_sq_space_left(fl->ring) < n)
		return;
	for (i = 0; i < n; i++) {
		sqe = app_sqe(fl, kind == APP_LINKED ? APP_NOP : kind, form);
		if (kind == APP_LINKED && !i)
			sqe->flags |= IOSQE_IO_LINK;
	}
}

/*
 * NOPs, unsubmitted, until the SQ is full but for @keep entries: the
 * library finds no SQE free when it next needs one. With @bad the first
 * has an opcode the kernel refuses, which ends the submit that takes it
 * (the ring has no IORING_SETUP_SUBMIT_ALL): the SQEs after it stay.
 */
static void app_fill(struct fz_loop *fl, unsigned int keep, bool bad,
		     unsigned int form)
{
	while (io_uring_sq_space_left(fl->ring) > keep &&
	       fl->app_inflight + 2 * keep < FZ_APP_MAX) {
		app_sqe(fl, bad ? APP_BAD : APP_NOP, form);
		bad = false;
	}
}

/*
 * Leave a chain open: the last SQE prepared links to whatever comes next,
 * and nothing is submitted. Its head is a NOP, or a READ of a closed fd
 * (@bad), which fails and cancels the rest of the chain.
 */
static void app_chain_open(struct fz_loop *fl, bool bad, unsigned int form)
{
	struct fz_chain *c = &fl->chain;
	struct io_uring_sqe *sqe;

	if (c->live || fl->app_inflight + 2 > FZ_APP_MAX ||
	    !io_uring_sq_space_left(fl->ring))
		return;
	c->head_kind = bad ? APP_CHAIN_BAD : APP_CHAIN_NOP;
	sqe = app_sqe(fl, c->head_kind, form);
	sqe->flags |= IOSQE_IO_LINK;
	c->head_ud = sqe->user_data;
	c->open = true;
	c->live = true;
	c->head_done = false;
	c->split = false;
}

/*
 * End the open chain with a NOP and submit it. With @reap_first, hand
 * over the completions posted before: handle_cqe may prepare SQEs, which
 * then come between the head and the tail.
 */
void app_chain_end(struct fz_loop *fl, bool reap_first)
{
	struct fz_chain *c = &fl->chain;
	struct io_uring_sqe *sqe;
	uint64_t end;

	if (!c->open)
		return;
	if (reap_first)
		ring_reap(fl);
	if (!io_uring_sq_space_left(fl->ring)) {
		/* The library filled the SQ: the head goes without its tail. */
		c->split = true;
		io_uring_submit(fl->ring);
		/*
		 * An SQPOLL thread takes them in its own time, and a wait for
		 * SQ space can end before it has (a signal, a wake-up of
		 * another waiter): wait again, within reason.
		 */
		end = now_ms() + FZ_IDLE_MS;
		while (fl->sqpoll && !io_uring_sq_space_left(fl->ring) &&
		       now_ms() < end)
			io_uring_sqring_wait(fl->ring);
		if (!io_uring_sq_space_left(fl->ring))
			fz_fail("shared ring: the SQ stays full after a submit");
	}
	sqe = app_sqe(fl, APP_CHAIN_TAIL, 0);
	c->tail_ud = sqe->user_data;
	c->open = false;
	io_uring_submit(fl->ring);
}

/*
 * What a library call may return instead of doing its work while the
 * application's chain is open: nothing is documented, so every call must
 * do its work.
 */
bool chain_refused(const struct fz_loop *fl, int ret)
{
	(void)fl;
	(void)ret;
	return false;
}

/*
 * OP_APP [b] [c, if b bit 4]: the application's own work. It first ends
 * the chain an earlier OP_APP left open, if any.
 *   arg bits 0-1: on a shared ring, put a NOP, a 1 us TIMEOUT, a POLL_ADD
 *                 on the application's eventfd, or two linked NOPs on it
 *   arg bit 2:    leave them unsubmitted: the library's next submit
 *                 takes them along, else the application's next wait
 *   arg bit 3:    ipcsock_loop_flush(), on any loop
 *   b bits 0-2:   the form of the user_data, see app_ud()
 *   b bit 3:      write the eventfd, which completes the POLL_ADDs
 *   c bit 0:      then leave a chain open (app_chain_open()) until the
 *                 next OP_APP, or until the harness waits for the
 *                 conversation or forks; the input's calls into the
 *                 library come in between
 *   c bit 1:      its head fails (a READ of a closed fd), else a NOP
 *   c bit 2:      first fill the SQ with NOPs (app_fill())
 *   c bit 3:      the first of them has an opcode the kernel refuses
 *   c bit 4:      end the open chain only after handing over the
 *                 completions posted
 */
void op_app(struct fz *fz, struct fz_in *in, unsigned int arg)
{
	struct fz_loop *fl = fz->fl;
	unsigned int b = in_u8(in), c = 0;
	int ret;

	if (b & 0x10)
		c = in_u8(in);
	if (fl->ring) {
		app_chain_end(fl, c & 0x10);
		app_prep(fl, arg & 3, b & 7);
		if (!(arg & 4))
			io_uring_submit(fl->ring);
		if (c & 4)
			app_fill(fl, c & 1, c & 8, b & 7);
		if (c & 1)
			app_chain_open(fl, c & 2, b & 7);
		if (b & 8)
			eventfd_write(fl->app_evfd, 1);
	}
	if (arg & 8) {
		ret = ipcsock_loop_flush(fl->loop);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN &&
		    ret != -EBUSY && !chain_refused(fl, ret))
			fz_fail("ipcsock_loop_flush: %d", ret);
	}
}
