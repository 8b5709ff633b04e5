// SPDX-License-Identifier: GPL-2.0
/*
 * Dispatch details: a signal ends a wait as it ends poll(2)'s, a hangup
 * that happened while no hangup callback was set is reported to the
 * callback set later, once, and the loop fd polls readable whenever a
 * callback became due outside dispatch (inside a send, say), so that a
 * host loop that waits on it never strands one.
 */
#include "helpers.h"

#include <stdatomic.h>
#include <sys/syscall.h>
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

FIXTURE_VARIANT_ADD(dispatch, uring_ring_sends)
{
	.backend = BACKEND_URING_RING_SENDS,
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
	if (variant->backend != IPCSOCK_BACKEND_EPOLL && under_valgrind())
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

/* Exit codes of send_fail_child(), one per check. */
enum {
	SFC_OK,
	SFC_SETUP,
	SFC_WRONG_ERROR,
	SFC_NOT_SPLIT,
	SFC_LOOP_FD,
	SFC_NO_HANGUP,
	SFC_NOT_FAILED,
	SFC_LEAK,
};

/*
 * Use up every free descriptor number below a soft RLIMIT_NOFILE put just
 * above the highest open one, so that the next dup fails with EMFILE.
 * Returns the fillers (close them with close_fds_array), NULL on failure.
 */
static int *use_up_fd_numbers(unsigned int *nr)
{
	struct rlimit rl;
	int *fillers, top, fd;

	*nr = 0;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return NULL;
	top = max_open_fd(rl.rlim_cur);
	if (top < 0)
		return NULL;
	rl.rlim_cur = top + 1;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		return NULL;
	fillers = calloc(top + 1, sizeof(int));
	if (!fillers)
		return NULL;
	while ((int)*nr <= top) {
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			break;
		fillers[(*nr)++] = fd;
	}
	return fillers;
}

/*
 * The child of send_fail_wakes_loop_fd (it lowers RLIMIT_NOFILE). A batch
 * of two: the first message fills the socket buffer (SO_SNDBUF at its
 * minimum, the message as large as that allows) and goes out directly,
 * the second carries an fd and must be queued, and duplicating that fd
 * fails with EMFILE. The head is out, so the channel fails inside
 * ipcsock_send_batch() (which says -EPIPE, the hangup -EMFILE): hangup
 * is due although no dispatch ran, and
 * ipcsock_loop_fd() must poll readable for it.
 */
static int send_fail_child(struct __test_metadata *_metadata,
			   enum ipcsock_backend backend)
{
	unsigned char *big, buf[64];
	struct ipcsock_payload p[2];
	struct ipcsock_loop *loop;
	struct ipcsock *sock;
	socklen_t len = sizeof(int);
	int sv[2], sndbuf = 1, mfd, lfd, fds, ret, *fillers;
	unsigned int max, nr_fillers;
	struct rec rc;
	ssize_t n;

	/* Only stdio: the parent's loop is not ours to keep open. */
	syscall(SYS_close_range, 3, ~0u, 0);
	fds = count_open_fds();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) ||
	    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(int)) ||
	    getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, &len))
		return SFC_SETUP;
	/* AF_UNIX takes a datagram of up to SO_SNDBUF - 32 bytes. */
	max = sndbuf - 32 - TEST_WIRE_HDR_LEN;
	big = calloc(1, TEST_WIRE_HDR_LEN + max);
	loop = loop_new(backend, max, 0, 0);
	sock = loop ? ipcsock_new(loop) : NULL;
	mfd = memfd_with("queued", "q");
	if (!big || !sock || mfd < 0 || ipcsock_bind(sock, sv[0]))
		return SFC_SETUP;
	rec_attach(&rc, sock);
	lfd = ipcsock_loop_fd(loop);
	if (lfd < 0)
		return SFC_SETUP;
	/* What the library opens lazily exists before the limit drops. */
	ipcsock_loop_dispatch(loop, 0);

	p[0] = msg_of(big, max, NULL, 0);
	p[1] = msg_of("tail", 4, &mfd, 1);
	fillers = use_up_fd_numbers(&nr_fillers);
	if (!fillers)
		return SFC_SETUP;
	ret = ipcsock_send_batch(sock, p, 2);
	close_fds_array(fillers, nr_fillers);
	free(fillers);
	if (ret != -EPIPE) {
		TH_LOG("send_batch: %d, not -EPIPE", ret);
		return SFC_WRONG_ERROR;
	}
	/* The head went out, the tail did not: a torn batch. */
	n = raw_recv(sv[1], big, TEST_WIRE_HDR_LEN + max, NULL, 0, NULL, NULL);
	if (n != (ssize_t)(TEST_WIRE_HDR_LEN + max) ||
	    raw_recv(sv[1], buf, sizeof(buf), NULL, 0, NULL, NULL) != -EAGAIN) {
		TH_LOG("the batch did not go out head first (%zd)", n);
		return SFC_NOT_SPLIT;
	}

	if (!fd_wait_readable(lfd, 500)) {
		TH_LOG("loop fd not readable in 500 ms with hangup due");
		return SFC_LOOP_FD;
	}
	ret = ipcsock_loop_dispatch(loop, 0);
	if (ret != 1 || rc.hangup != 1 || rc.hangup_err != -EMFILE) {
		TH_LOG("dispatch(0): %d, hangup %d, err %d", ret, rc.hangup,
		       rc.hangup_err);
		return SFC_NO_HANGUP;
	}
	if (ipcsock_send(sock, &p[1]) != -EPIPE)
		return SFC_NOT_FAILED;
	ipcsock_free(sock);
	ipcsock_loop_free(loop);
	close(sv[1]);
	close(mfd);
	free(big);
	return count_open_fds() == fds ? SFC_OK : SFC_LEAK;
}

TEST_F(dispatch, send_fail_wakes_loop_fd)
{
	int status;
	pid_t pid;

	/* Nothing of a batch goes out during the call with ring sends. */
	if (variant->backend == BACKEND_URING_RING_SENDS)
		SKIP(return, "ring sends queue the whole batch: no torn batch");
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(send_fail_child(_metadata, variant->backend));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(SFC_OK, WEXITSTATUS(status));
}

/*
 * A send at the queue bound first reaps completions, running no callback.
 * If that reap receives a message the peer sent meanwhile (on epoll it is
 * an epoll_wait(), which takes the socket's readiness with it), ready_read
 * is due and the loop fd must keep polling readable until dispatch runs
 * it: a host loop that waits on the fd would never dispatch the message.
 */
TEST_F(dispatch, loop_fd_readable_after_enobufs)
{
	static unsigned char big[60000];
	struct ipcsock_payload p = msg_of(big, sizeof(big), NULL, 0);
	struct ipcsock_loop *loop;
	struct ipcsock *a;
	uint32_t v = 42;
	struct rec ra;
	int remote, lfd, ret = 0, i;

	loop = ctx_loop(_metadata, &self->t, 0, 1, 0);
	remote = ctx_raw_pair(_metadata, &self->t, loop, &a);
	rec_attach(&ra, a);
	lfd = ipcsock_loop_fd(loop);
	ASSERT_LE(0, lfd);
	/* Socket buffer and one-message queue full; the peer never reads. */
	for (i = 0; i < 100; i++) {
		ret = ipcsock_send(a, &p);
		if (ret)
			break;
	}
	ASSERT_EQ(-ENOBUFS, ret);
	ASSERT_EQ(TEST_WIRE_HDR_LEN + sizeof(v),
		  raw_send_msg(remote, &v, sizeof(v), NULL, 0));
	ASSERT_TRUE(fd_wait_readable(lfd, WAIT_MS));
	/* The host sends again (a timer fired) before it dispatches. */
	EXPECT_EQ(-ENOBUFS, ipcsock_send(a, &p));
	EXPECT_EQ(0, ra.ready);
	EXPECT_TRUE(fd_wait_readable(lfd, 1000))
		TH_LOG("loop fd not readable in 1 s with a message pending");
	EXPECT_EQ(1, ipcsock_loop_dispatch(loop, 0));
	EXPECT_EQ(1, ra.received);
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
