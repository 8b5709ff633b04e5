// SPDX-License-Identifier: GPL-2.0
/*
 * Dispatch details: a signal ends a wait as it ends poll(2)'s, and a
 * hangup that happened while no hangup callback was set is reported to
 * the callback set later, once.
 */
#include "helpers.h"

#include <stdatomic.h>
#include <sys/time.h>

FIXTURE(dispatch)
{
	struct ipcsock_test t;
};

FIXTURE_VARIANT(dispatch)
{
	enum ipcsock_backend backend;
};

FIXTURE_VARIANT_ADD(dispatch, uring)
{
	.backend = IPCSOCK_BACKEND_URING,
};

FIXTURE_VARIANT_ADD(dispatch, epoll)
{
	.backend = IPCSOCK_BACKEND_EPOLL,
};

FIXTURE_SETUP(dispatch)
{
	ctx_setup(_metadata, &self->t, variant->backend);
}

FIXTURE_TEARDOWN(dispatch)
{
	ctx_teardown(_metadata, &self->t);
}

/* Lock-free atomics are async-signal-safe. */
static atomic_int alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

TEST_F(dispatch, signal_ends_wait)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	struct itimerval it = { .it_value.tv_usec = 50 * 1000 };
	struct ipcsock *a, *b;
	uint64_t start;
	int ret;

	/*
	 * Valgrind (3.19) runs io_uring_enter as a syscall that does not
	 * block, with signals held until it returns: the wait never ends.
	 */
	if (variant->backend != IPCSOCK_BACKEND_EPOLL && getenv("LD_PRELOAD") &&
	    strstr(getenv("LD_PRELOAD"), "vgpreload"))
		SKIP(return, "valgrind holds signals during io_uring_enter");

	ctx_pair(_metadata, &self->t, self->t.loop, &a, self->t.loop, &b);
	/* No SA_RESTART; it would not matter: waits are never restarted. */
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	alarms = 0;
	ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
	start = now_ms();
	ret = ipcsock_loop_dispatch(self->t.loop, -1);
	EXPECT_EQ(-EINTR, ret);
	EXPECT_EQ(1, alarms);
	EXPECT_GT(WAIT_MS, now_ms() - start);
	signal(SIGALRM, SIG_DFL);
}

TEST_F(dispatch, late_hangup_callback)
{
	struct ipcsock *a, *b;
	struct rec rb;

	ctx_pair(_metadata, &self->t, self->t.loop, &a, self->t.loop, &b);
	ipcsock_close(a);
	/* The end arrives with nobody listening... */
	dispatch_for(self->t.loop, 50);
	/* ...and is told to whoever asks later, once. */
	rec_attach(&rb, b);
	ASSERT_TRUE(dispatch_until(self->t.loop, rb.hangup, WAIT_MS));
	dispatch_for(self->t.loop, 50);
	EXPECT_EQ(1, rb.hangup);
	EXPECT_EQ(0, rb.hangup_err);
}

TEST(option_limits)
{
	IPCSOCK_LOOP_OPTS(bufs, .recv_buffers = 0x80000001u);
	IPCSOCK_LOOP_OPTS(ring, .ring_entries = 32768);

	/* Used to hang rounding up to a power of two. */
	EXPECT_EQ(NULL, ipcsock_loop_new(&bufs));
	EXPECT_EQ(EINVAL, errno);
	/* Used to fall back to epoll silently when the kernel said no. */
	EXPECT_EQ(NULL, ipcsock_loop_new(&ring));
	EXPECT_EQ(EINVAL, errno);
}

TEST_HARNESS_MAIN
