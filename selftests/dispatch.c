// SPDX-License-Identifier: GPL-2.0
/*
 * Dispatch details: a signal ends a wait as it ends poll(2)'s, a hangup
 * that happened while no hangup callback was set is reported to the
 * callback set later, once, and the loop fd polls readable whenever a
 * callback became due outside dispatch (inside a send, say), so that a
 * host loop that waits on it never strands one.
 */
#include "selftest.h"

#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/time.h>

CTX_FIXTURE(dispatch);

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
	/* Nothing of a batch goes out during the call with ring sends. */
	if (variant->backend == BACKEND_URING_RING_SENDS)
		SKIP(return, "ring sends queue the whole batch: no torn batch");
	expect_child_exit(_metadata, send_fail_child, variant->backend, SFC_OK);
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

/*
 * Bursts of messages sent and received on one loop, and a host that,
 * after a dispatch once it sent, dispatches only when the loop fd polls
 * readable: every message must come. A DEFER_TASKRUN ring runs only so
 * much task work per io_uring_enter and signals its eventfd only for new
 * work, not for what it kept for later.
 */
#define BURSTS_TOTAL	3000u
#define BURSTS_MAX_MSG	4096u

/* Sizes up to BURSTS_MAX_MSG; the first 4 bytes carry the number. */
static size_t burst_len(uint32_t seq)
{
	return seq % 5 ? 8 + seq * 2654435761u % (BURSTS_MAX_MSG - 7) :
			 BURSTS_MAX_MSG;
}

TEST_F(dispatch, loop_fd_readable_through_bursts)
{
	static unsigned char buf[BURSTS_MAX_MSG];
	struct ipcsock_payload p = msg_of(buf, 0, NULL, 0);
	struct ipcsock_loop *loop;
	struct ipcsock *a, *b;
	unsigned int n;
	uint32_t seq = 0;
	struct rec rb;
	int lfd, ret, fds[2];

	loop = ctx_loop(_metadata, &self->t, BURSTS_MAX_MSG, 0, 256);
	ctx_pair(_metadata, &self->t, loop, &a, loop, &b);
	rec_attach(&rb, b);
	rb.check_seq = true;
	lfd = ipcsock_loop_fd(loop);
	ASSERT_LE(0, lfd);
	/* The sequence of bursts and waits the miss was found with. */
	srand(1);
	ASSERT_EQ(0, pipe2(fds, O_CLOEXEC));
	ctx_fd(_metadata, &self->t, fds[0]);
	ctx_fd(_metadata, &self->t, fds[1]);
	while ((uint32_t)rb.received < BURSTS_TOTAL) {
		for (n = 1 + rand() % 60; n && seq < BURSTS_TOTAL; n--) {
			memcpy(buf, &seq, sizeof(seq));
			p.len = burst_len(seq);
			/* Every 7th with fds, as in the review's reproducer. */
			p.fds = seq % 7 ? NULL : fds;
			p.nr_fds = seq % 7 ? 0 : 2;
			ret = ipcsock_send(a, &p);
			if (ret == -ENOBUFS)
				break;
			ASSERT_EQ(0, ret);
			seq++;
		}
		ASSERT_LE(0, ipcsock_loop_dispatch(loop, rand() % 3 ? 0 : 1));
		/* From here on the host dispatches when the loop fd says so. */
		while ((uint32_t)rb.received < seq) {
			ASSERT_TRUE(fd_wait_readable(lfd, 1000))
				TH_LOG("loop fd quiet for 1 s, %d of %u received",
				       rb.received, seq);
			ASSERT_LE(0, ipcsock_loop_dispatch(loop, 0));
		}
	}
	EXPECT_EQ(0, rb.bad);
}

/*
 * The loop fd polls readable whenever dispatch has work, after every
 * public call, not only right after the call that made the work due. The
 * set-up of the tests below: on a loop with one-message send queues, b's
 * ready_read takes one message per call and leaves the rest, so b is
 * still on the ready list when dispatch returns; c's raw peer never reads,
 * so c's sends end in -ENOBUFS after a reap. a, b's peer, is on the
 * fixture's loop, whose queues are long enough for its three sends.
 */
struct leftover {
	struct ipcsock_loop *loop;
	struct ipcsock *a, *b, *c;
	struct rec rb;
	int c_peer;
	int lfd;
};

static unsigned char big_msg[60000];

static void leftover_setup(struct __test_metadata *_metadata,
			   struct ipcsock_test *t, struct leftover *lo)
{
	int i;

	lo->loop = ctx_loop(_metadata, t, 0, 1, 0);
	ctx_pair(_metadata, t, t->loop, &lo->a, lo->loop, &lo->b);
	lo->c_peer = ctx_raw_pair(_metadata, t, lo->loop, &lo->c);
	lo->lfd = ipcsock_loop_fd(lo->loop);
	ASSERT_LE(0, lo->lfd);
	rec_attach(&lo->rb, lo->b);
	lo->rb.per_call = 1;
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, send_str(lo->a, "x"));
	ASSERT_TRUE(dispatch2_until(lo->loop, t->loop, lo->rb.received,
				    WAIT_MS));
	ASSERT_EQ(1, lo->rb.received);
	/* Two left: the callback is due again. */
	ASSERT_TRUE(fd_wait_readable(lo->lfd, 0));
}

/* Send big messages on @sock until its queue is full. */
static int fill_until_enobufs(struct ipcsock *sock)
{
	struct ipcsock_payload p = msg_of(big_msg, sizeof(big_msg), NULL, 0);
	int ret = 0, i;

	for (i = 0; i < 100 && !ret; i++)
		ret = ipcsock_send(sock, &p);
	return ret;
}

/*
 * The outside review's lfd_drain2: a send that finds its queue full reaps
 * completions; on epoll that reap is an epoll_wait() on the loop's own
 * set, which used to consume the eventfd that kept the loop fd readable
 * for b's leftover messages.
 */
TEST_F(dispatch, loop_fd_readable_with_leftover_after_enobufs)
{
	struct leftover lo;

	leftover_setup(_metadata, &self->t, &lo);
	ASSERT_EQ(-ENOBUFS, fill_until_enobufs(lo.c));
	EXPECT_EQ(-ENOBUFS, fill_until_enobufs(lo.c));
	EXPECT_TRUE(fd_wait_readable(lo.lfd, 1000))
		TH_LOG("loop fd not readable with b's callback due");
	EXPECT_EQ(1, ipcsock_loop_dispatch(lo.loop, 0));
	EXPECT_EQ(2, lo.rb.received);
}

/*
 * Messages for b, which has no ready_read yet, are received by the reaps
 * of c's full sends, and b goes on the ready list there. Setting the
 * callback then makes it due: the loop fd must say so, although b was on
 * the ready list already and a later reap may have seen the eventfd.
 */
TEST_F(dispatch, loop_fd_readable_after_set_ready_read)
{
	struct ipcsock_loop *loop;
	struct ipcsock *a, *b, *c;
	struct rec rb;
	int lfd, i;

	loop = ctx_loop(_metadata, &self->t, 0, 1, 0);
	ctx_pair(_metadata, &self->t, self->t.loop, &a, loop, &b);
	ctx_raw_pair(_metadata, &self->t, loop, &c);
	lfd = ipcsock_loop_fd(loop);
	ASSERT_LE(0, lfd);
	ASSERT_EQ(-ENOBUFS, fill_until_enobufs(c));
	ASSERT_EQ(0, send_str(a, "x"));
	ASSERT_EQ(0, send_str(a, "y"));
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(-ENOBUFS, fill_until_enobufs(c));
		usleep(10 * 1000);
	}
	memset(&rb, 0, sizeof(rb));
	rb.sock = b;
	ipcsock_set_ready_read(b, rec_ready_read, &rb);
	EXPECT_TRUE(fd_wait_readable(lfd, 1000))
		TH_LOG("loop fd not readable with messages and a callback");
	EXPECT_TRUE(dispatch_until(loop, rb.received == 2, WAIT_MS));
	EXPECT_EQ(1, rb.ready);
	EXPECT_EQ(0, rb.bad);
}

/* After @what, the loop fd must still poll readable: b's callback is due. */
static void lfd_readable_after(struct __test_metadata *_metadata, int lfd,
			       const char *what)
{
	EXPECT_TRUE(fd_wait_readable(lfd, 100))
		TH_LOG("loop fd not readable after %s", what);
}

/* Every public call that can reap, receive or submit, one after another. */
TEST_F(dispatch, loop_fd_readable_across_calls)
{
	struct ipcsock_payload p2[2] = {
		msg_of(big_msg, sizeof(big_msg), NULL, 0),
		msg_of(big_msg, sizeof(big_msg), NULL, 0),
	};
	struct io_uring_cqe cqe = { .user_data = 1 };
	struct ipcsock_payload m;
	struct leftover lo;
	struct ipcsock *d;
	int remote;

	leftover_setup(_metadata, &self->t, &lo);
	EXPECT_EQ(lo.lfd, ipcsock_loop_fd(lo.loop));
	lfd_readable_after(_metadata, lo.lfd, "ipcsock_loop_fd");
	EXPECT_EQ(-ENOBUFS, fill_until_enobufs(lo.c));
	lfd_readable_after(_metadata, lo.lfd, "ipcsock_send -ENOBUFS");
	EXPECT_EQ(-ENOBUFS, ipcsock_send_batch(lo.c, p2, 2));
	lfd_readable_after(_metadata, lo.lfd, "ipcsock_send_batch -ENOBUFS");
	EXPECT_EQ(-EAGAIN, ipcsock_receive(lo.c, &m));
	lfd_readable_after(_metadata, lo.lfd, "ipcsock_receive -EAGAIN");
	EXPECT_EQ(0, ipcsock_receive(lo.b, &m));
	lfd_readable_after(_metadata, lo.lfd, "ipcsock_receive");
	EXPECT_EQ(0, ipcsock_loop_flush(lo.loop));
	lfd_readable_after(_metadata, lo.lfd, "ipcsock_loop_flush");
	ipcsock_set_hangup(lo.b, rec_hangup, &lo.rb);
	lfd_readable_after(_metadata, lo.lfd, "ipcsock_set_hangup");
	ipcsock_set_ready_read(lo.b, rec_ready_read, &lo.rb);
	lfd_readable_after(_metadata, lo.lfd, "ipcsock_set_ready_read");
	EXPECT_EQ(0, ipcsock_loop_handle_cqe(lo.loop, &cqe));
	lfd_readable_after(_metadata, lo.lfd, "ipcsock_loop_handle_cqe");
	EXPECT_FALSE(ipcsock_loop_idle(lo.loop));
	lfd_readable_after(_metadata, lo.lfd, "ipcsock_loop_idle");
	d = ipcsock_new(lo.loop);
	ASSERT_NE(NULL, d);
	remote = ipcsock_create(d);
	EXPECT_LE(0, remote);
	lfd_readable_after(_metadata, lo.lfd, "ipcsock_create");
	ipcsock_close(d);
	lfd_readable_after(_metadata, lo.lfd, "ipcsock_close");
	EXPECT_EQ(0, ipcsock_bind(d, remote));
	lfd_readable_after(_metadata, lo.lfd, "ipcsock_bind");
	ipcsock_free(d);
	lfd_readable_after(_metadata, lo.lfd, "ipcsock_free");
	EXPECT_EQ(-ENOBUFS, fill_until_enobufs(lo.c));
	lfd_readable_after(_metadata, lo.lfd, "a second ipcsock_send -ENOBUFS");
	/* The last of the three messages is left for the callback. */
	EXPECT_EQ(1, ipcsock_loop_dispatch(lo.loop, 0));
	EXPECT_EQ(2, lo.rb.received);
}

/*
 * The same on a shared ring, whose application hands the library its
 * completions: ipcsock_loop_handle_cqe() can make a callback due, and the
 * loop fd must then poll readable although no dispatch ran yet.
 */
FIXTURE(shared_lfd)
{
	struct io_uring ring;
	bool ring_ok;
	struct ipcsock_loop *loop;
	struct ipcsock *a, *b, *c;
	struct rec rb;
	int c_peer;
	int lfd;
	int fds_before;
};

SHARED_RING_VARIANTS(shared_lfd);

/* Hand the ring's completions to the loop, as the application does. */
static int shared_reap(struct io_uring *ring, struct ipcsock_loop *loop,
		       int timeout_ms)
{
	struct __kernel_timespec ts = { .tv_nsec = timeout_ms * 1000000L };
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	int mine = 0;

	io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);
	io_uring_for_each_cqe(ring, head, cqe) {
		mine += ipcsock_loop_handle_cqe(loop, cqe);
		n++;
	}
	io_uring_cq_advance(ring, n);
	return mine;
}

FIXTURE_SETUP(shared_lfd)
{
	IPCSOCK_LOOP_OPTS(opts, .send_queue_len = 1);
	struct io_uring_params p = { .flags = variant->flags };
	int fd;

	self->c_peer = -1;
	self->fds_before = count_open_fds();
	if (!uring_available())
		SKIP(return, "io_uring is not available to this process");
	ASSERT_EQ(0, io_uring_queue_init_params(64, &self->ring, &p));
	self->ring_ok = true;
	self->loop = ipcsock_loop_new_shared(&self->ring, &opts);
	ASSERT_NE(NULL, self->loop);
	self->a = ipcsock_new(self->loop);
	self->b = ipcsock_new(self->loop);
	self->c = ipcsock_new(self->loop);
	ASSERT_NE(NULL, self->a);
	ASSERT_NE(NULL, self->b);
	ASSERT_NE(NULL, self->c);
	fd = ipcsock_create(self->a);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ipcsock_bind(self->b, fd));
	self->c_peer = ipcsock_create(self->c);
	ASSERT_LE(0, self->c_peer);
	self->lfd = ipcsock_loop_fd(self->loop);
	ASSERT_LE(0, self->lfd);
	rec_attach(&self->rb, self->b);
}

FIXTURE_TEARDOWN(shared_lfd)
{
	int i;

	if (!self->ring_ok)
		return;
	ipcsock_free(self->a);
	ipcsock_free(self->b);
	ipcsock_free(self->c);
	for (i = 0; i < 100 && !ipcsock_loop_idle(self->loop); i++) {
		shared_reap(&self->ring, self->loop, 10);
		ipcsock_loop_dispatch(self->loop, 0);
	}
	EXPECT_TRUE(ipcsock_loop_idle(self->loop));
	ipcsock_loop_free(self->loop);
	io_uring_queue_exit(&self->ring);
	if (self->c_peer >= 0)
		close(self->c_peer);
	EXPECT_EQ(self->fds_before, count_open_fds());
}

TEST_F(shared_lfd, handle_cqe_makes_loop_fd_readable)
{
	uint64_t deadline = now_ms() + WAIT_MS;

	ASSERT_EQ(0, send_str(self->a, "x"));
	/* The receive's completion, handed over, makes ready_read due. */
	while (!fd_wait_readable(self->lfd, 0) && now_ms() < deadline)
		shared_reap(&self->ring, self->loop, 10);
	EXPECT_TRUE(fd_wait_readable(self->lfd, 0))
		TH_LOG("loop fd not readable with a message received");
	EXPECT_EQ(1, ipcsock_loop_dispatch(self->loop, 0));
	EXPECT_EQ(1, self->rb.received);
}

TEST_F(shared_lfd, loop_fd_readable_across_calls)
{
	struct ipcsock_payload p2[2] = {
		msg_of(big_msg, sizeof(big_msg), NULL, 0),
		msg_of(big_msg, sizeof(big_msg), NULL, 0),
	};
	uint64_t deadline = now_ms() + WAIT_MS;
	struct ipcsock_payload m;
	int i;

	self->rb.per_call = 1;
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, send_str(self->a, "x"));
	while (!self->rb.received && now_ms() < deadline) {
		shared_reap(&self->ring, self->loop, 10);
		ipcsock_loop_dispatch(self->loop, 0);
	}
	ASSERT_EQ(1, self->rb.received);
	lfd_readable_after(_metadata, self->lfd, "dispatch");
	EXPECT_EQ(-ENOBUFS, fill_until_enobufs(self->c));
	lfd_readable_after(_metadata, self->lfd, "ipcsock_send -ENOBUFS");
	EXPECT_EQ(-ENOBUFS, ipcsock_send_batch(self->c, p2, 2));
	lfd_readable_after(_metadata, self->lfd, "ipcsock_send_batch -ENOBUFS");
	EXPECT_EQ(0, ipcsock_receive(self->b, &m));
	lfd_readable_after(_metadata, self->lfd, "ipcsock_receive");
	EXPECT_EQ(0, ipcsock_loop_flush(self->loop));
	lfd_readable_after(_metadata, self->lfd, "ipcsock_loop_flush");
	ipcsock_set_hangup(self->b, rec_hangup, &self->rb);
	lfd_readable_after(_metadata, self->lfd, "ipcsock_set_hangup");
	ipcsock_set_ready_read(self->b, rec_ready_read, &self->rb);
	lfd_readable_after(_metadata, self->lfd, "ipcsock_set_ready_read");
	/* The wake NOP and the sends' completions, handed over. */
	shared_reap(&self->ring, self->loop, 10);
	lfd_readable_after(_metadata, self->lfd, "ipcsock_loop_handle_cqe");
	EXPECT_EQ(1, ipcsock_loop_dispatch(self->loop, 0));
	EXPECT_EQ(2, self->rb.received);
}

TEST_HARNESS_MAIN
