/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What every selftest program includes first: the shared helpers
 * (helpers.h), the kselftest harness, the usual backend variants of a
 * fixture, and the context helpers that assert. These last stay inline
 * here because the harness's header defines global symbols and so can be
 * included by the test program alone, not by helpers.c as well.
 */
#ifndef IPCSOCK_SELFTEST_H
#define IPCSOCK_SELFTEST_H

#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

/*
 * The kselftest harness is written for the kernel's selftest flags, not
 * for -Wextra: its macros compare mixed signedness, its signal handler has
 * an unused parameter, and setjmp() around every test makes GCC warn about
 * clobbered locals. Silence exactly those, for the whole test program.
 */
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#ifndef __clang__
#pragma GCC diagnostic ignored "-Wclobbered"
#endif
#include "kselftest_harness.h"

/*
 * The variants of a fixture that runs on each of the loop's backends,
 * io_uring and epoll: variant->backend can go straight into
 * ipcsock_loop_opts. (->shared and ->ring_flags are for
 * ALL_SETUP_VARIANTS(), which adds to these; here they are 0.)
 */
#define REAL_BACKEND_VARIANTS(fixture)					\
	FIXTURE_VARIANT(fixture) {					\
		enum ipcsock_backend backend;				\
		bool shared;						\
		unsigned int ring_flags;				\
	};								\
	FIXTURE_VARIANT_ADD(fixture, uring) {				\
		.backend = IPCSOCK_BACKEND_URING,			\
	};								\
	FIXTURE_VARIANT_ADD(fixture, epoll) {				\
		.backend = IPCSOCK_BACKEND_EPOLL,			\
	}

/*
 * Those and io_uring with every send on the ring, BACKEND_URING_RING_SENDS
 * (for loop_new() and the ctx_*() helpers, which understand it). Fixtures
 * whose variants differ in more than the backend spell theirs out.
 */
#define BACKEND_VARIANTS(fixture)					\
	REAL_BACKEND_VARIANTS(fixture);					\
	FIXTURE_VARIANT_ADD(fixture, uring_ring_sends) {		\
		.backend = BACKEND_URING_RING_SENDS,			\
	}

/*
 * A ring the test sets up and shares with a loop, plain and with
 * SINGLE_ISSUER | DEFER_TASKRUN (completions wait for the issuer):
 * variant->flags goes into io_uring_params.
 */
#define SHARED_RING_VARIANTS(fixture)					\
	FIXTURE_VARIANT(fixture) {					\
		unsigned int flags;					\
	};								\
	FIXTURE_VARIANT_ADD(fixture, plain) {				\
		.flags = 0,						\
	};								\
	FIXTURE_VARIANT_ADD(fixture, defer_taskrun) {			\
		.flags = IORING_SETUP_SINGLE_ISSUER |			\
			 IORING_SETUP_DEFER_TASKRUN,			\
	}

/*
 * Every setup a loop can run in, for fixtures built on the per-test
 * context: io_uring with a ring of its own, epoll, io_uring with ring
 * sends, and a ring the test owns and shares with the loop, plain,
 * SINGLE_ISSUER | DEFER_TASKRUN (completions wait for the issuer's
 * io_uring_enter) and SQPOLL (the kernel thread takes the entries some
 * time after they were prepared), the last two also with ring sends.
 * variant->backend, ->shared and ->ring_flags go to ctx_setup_variant();
 * ->backend is BACKEND_URING_RING_SENDS with ring sends, shared or not.
 */
#define ALL_SETUP_VARIANTS(fixture)					\
	BACKEND_VARIANTS(fixture);					\
	FIXTURE_VARIANT_ADD(fixture, shared_plain) {			\
		.backend = IPCSOCK_BACKEND_URING,			\
		.shared = true,						\
	};								\
	FIXTURE_VARIANT_ADD(fixture, shared_defer_taskrun) {		\
		.backend = IPCSOCK_BACKEND_URING,			\
		.shared = true,						\
		.ring_flags = SETUP_DEFER_TASKRUN,			\
	};								\
	FIXTURE_VARIANT_ADD(fixture, shared_sqpoll) {			\
		.backend = IPCSOCK_BACKEND_URING,			\
		.shared = true,						\
		.ring_flags = IORING_SETUP_SQPOLL,			\
	};								\
	FIXTURE_VARIANT_ADD(fixture, shared_defer_taskrun_ring_sends) {	\
		.backend = BACKEND_URING_RING_SENDS,			\
		.shared = true,						\
		.ring_flags = SETUP_DEFER_TASKRUN,			\
	};								\
	FIXTURE_VARIANT_ADD(fixture, shared_sqpoll_ring_sends) {	\
		.backend = BACKEND_URING_RING_SENDS,			\
		.shared = true,						\
		.ring_flags = IORING_SETUP_SQPOLL,			\
	}

#define SETUP_DEFER_TASKRUN						\
	(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN)

/*
 * A fixture that is the per-test context alone, on every backend: its
 * setup makes the loop, its teardown frees what is left and checks for
 * leaked descriptors. Its tests use self->t.
 */
#define CTX_FIXTURE(fixture)						\
	FIXTURE(fixture) {						\
		struct ipcsock_test t;					\
	};								\
	BACKEND_VARIANTS(fixture);					\
	FIXTURE_SETUP(fixture)						\
	{								\
		ctx_setup(_metadata, &self->t, variant->backend);	\
	}								\
	FIXTURE_TEARDOWN(fixture)					\
	{								\
		ctx_teardown(_metadata, &self->t);			\
	}

/*
 * The same on every setup of ALL_SETUP_VARIANTS(): the loops of a test on
 * a shared ring live in a ring of the context's, which the helpers that
 * wait (dispatch_until(), receive_wait(), loop_pump(), ...) drive as its
 * application would. A test dispatching a loop itself uses loop_pump().
 */
#define CTX_FIXTURE_ALL_SETUPS(fixture)					\
	FIXTURE(fixture) {						\
		struct ipcsock_test t;					\
	};								\
	ALL_SETUP_VARIANTS(fixture);					\
	FIXTURE_SETUP(fixture)						\
	{								\
		ctx_setup_variant(_metadata, &self->t, variant->backend,\
				  variant->shared, variant->ring_flags);\
	}								\
	FIXTURE_TEARDOWN(fixture)					\
	{								\
		ctx_teardown(_metadata, &self->t);			\
	}

/*
 * The context's setup: the fd baseline, then the loop on @backend, in a
 * ring of the context's set up with @ring_flags when @shared.
 */
static inline void ctx_setup_variant(struct __test_metadata *_metadata,
				     struct ipcsock_test *t,
				     enum ipcsock_backend backend,
				     bool shared, unsigned int ring_flags)
{
	int i, ret;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < CTX_FDS; i++)
		t->fds[i] = -1;
	t->backend = backend;

	/* A library that raises SIGPIPE kills the test: prove it does not. */
	signal(SIGPIPE, SIG_DFL);

	if (real_backend(backend) == IPCSOCK_BACKEND_URING &&
	    !uring_available())
		SKIP(return, "io_uring is not available to this process");

	t->fd_base = count_open_fds();
	ASSERT_LT(0, t->fd_base);

	if (shared) {
		ret = ctx_ring_init(t, ring_flags);
		if (ret)
			SKIP(return, "no ring with flags %#x: %s", ring_flags,
			     strerror(-ret));
	}
	t->loop = ctx_loop_new(t, -1, 0, 0, 0);
	if (!t->loop && shared && errno == EOPNOTSUPP)
		SKIP(return, "no shared-ring mode on this kernel");
	ASSERT_NE(NULL, t->loop) {
		TH_LOG("loop (%s%s): %s", backend_name(backend),
		       shared ? ", shared ring" : "", strerror(errno));
	}
	ASSERT_EQ(real_backend(backend), ipcsock_loop_backend(t->loop));
	t->fd_loop = count_open_fds();
}

static inline void ctx_setup(struct __test_metadata *_metadata,
			     struct ipcsock_test *t,
			     enum ipcsock_backend backend)
{
	ctx_setup_variant(_metadata, t, backend, false, 0);
}

/* Free what is left and check that no descriptor leaked. */
static inline void ctx_teardown(struct __test_metadata *_metadata,
				struct ipcsock_test *t)
{
	int now = ctx_release(t);

	if (!t->fd_base)
		return;	/* skipped before the baseline was taken */
	if (now != t->fd_base) {
		TH_LOG("descriptor leak: %d open at setup, %d at teardown",
		       t->fd_base, now);
		dump_open_fds("leak check at teardown");
	}
	EXPECT_EQ(t->fd_base, now);
	EXPECT_FALSE(t->not_idle)
		TH_LOG("a loop in the shared ring was not idle at teardown");
}

/* A new socket on @loop, remembered in the context for teardown. */
static inline struct ipcsock *ctx_sock(struct __test_metadata *_metadata,
				       struct ipcsock_test *t,
				       struct ipcsock_loop *loop)
{
	struct ipcsock *sock = ipcsock_new(loop);

	ASSERT_NE(NULL, sock);
	ASSERT_EQ(0, ctx_keep_sock(t, sock))
		TH_LOG("too many sockets in one test");
	return sock;
}

/* Remember a raw fd for teardown; returns its slot. */
static inline int ctx_fd(struct __test_metadata *_metadata,
			 struct ipcsock_test *t, int fd)
{
	int slot;

	ASSERT_LE(0, fd);
	slot = ctx_keep_fd(t, fd);
	ASSERT_LE(0, slot) TH_LOG("too many raw fds in one test");
	return slot;
}

/* An extra loop with other options, freed by teardown. */
static inline struct ipcsock_loop *ctx_loop(struct __test_metadata *_metadata,
					    struct ipcsock_test *t,
					    unsigned int max_msg_size,
					    unsigned int send_queue_len,
					    unsigned int recv_buffers)
{
	struct ipcsock_loop *loop;
	int slot;

	for (slot = 0; slot < CTX_LOOPS && t->loops[slot]; slot++)
		;
	ASSERT_GT(CTX_LOOPS, slot) TH_LOG("too many loops in one test");
	loop = ctx_loop_new(t, slot, max_msg_size, send_queue_len,
			    recv_buffers);
	ASSERT_NE(NULL, loop) {
		TH_LOG("ipcsock_loop_new(%s): %s", backend_name(t->backend),
		       strerror(errno));
	}
	ASSERT_EQ(real_backend(t->backend), ipcsock_loop_backend(loop));
	ASSERT_EQ(0, ctx_keep_loop(t, loop))
		TH_LOG("too many loops in one test");
	return loop;
}

/*
 * A connected pair: *a created (local end), *b bound to a's remote end.
 * The two may live on different loops.
 */
static inline void ctx_pair(struct __test_metadata *_metadata,
			    struct ipcsock_test *t,
			    struct ipcsock_loop *la, struct ipcsock **a,
			    struct ipcsock_loop *lb, struct ipcsock **b)
{
	int remote, ret;

	*a = ctx_sock(_metadata, t, la);
	*b = ctx_sock(_metadata, t, lb);
	remote = ipcsock_create(*a);
	ASSERT_LE(0, remote) TH_LOG("create: %s", strerror(-remote));
	ret = ipcsock_bind(*b, remote);
	if (ret)
		close(remote);
	ASSERT_EQ(0, ret) TH_LOG("bind: %s", strerror(-ret));
	ASSERT_TRUE(ipcsock_is_bound(*a));
	ASSERT_TRUE(ipcsock_is_bound(*b));
}

/* A library socket *a whose peer is a raw SOCK_SEQPACKET fd, returned. */
static inline int ctx_raw_pair(struct __test_metadata *_metadata,
			       struct ipcsock_test *t,
			       struct ipcsock_loop *loop, struct ipcsock **a)
{
	int remote;

	*a = ctx_sock(_metadata, t, loop);
	remote = ipcsock_create(*a);
	ASSERT_LE(0, remote) TH_LOG("create: %s", strerror(-remote));
	ctx_fd(_metadata, t, remote);
	return remote;
}

/*
 * A SEQPACKET pair in @sv, then fork(): returns 0 in the child and the
 * child's pid in the parent, each to close the end it does not use.
 */
static inline pid_t fork_with_pair(struct __test_metadata *_metadata,
				   int sv[2])
{
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
				sv));
	pid = fork();
	ASSERT_LE(0, pid);
	return pid;
}

/*
 * Run @child(_metadata, @backend) in a forked process, for checks that
 * change the process for good (uid, limits), and expect it to exit with
 * @want.
 */
static inline void expect_child_exit(struct __test_metadata *_metadata,
				     int (*child)(struct __test_metadata *,
						  enum ipcsock_backend),
				     enum ipcsock_backend backend, int want)
{
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(child(_metadata, backend));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(want, WEXITSTATUS(status));
}

#endif /* IPCSOCK_SELFTEST_H */
