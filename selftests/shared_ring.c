// SPDX-License-Identifier: GPL-2.0
/*
 * Shared-ring mode: the library embedded in an application's own
 * io_uring. The application submits and reaps; every CQE goes through
 * ipcsock_loop_handle_cqe() first, then ipcsock_loop_dispatch(loop, 0)
 * runs the callbacks. The application's own requests on the same ring
 * must come back to it untouched and in time, also on a DEFER_TASKRUN
 * ring, and a loop takes only its own completions, not those of another
 * loop on the ring or of a loop freed before.
 */
#include "selftest.h"

#include <sched.h>
#include <sys/syscall.h>

#include <sanitizer/lsan_interface.h>

/* LeakSanitizer's interface: null where it is not linked in. */
#pragma weak __lsan_disable
#pragma weak __lsan_enable

#define APP_UD_BASE	0x1000ull
#define NR_MSGS		2000

/*
 * The application: its ring, the loop embedded in it (and a second one
 * some tests add), what it saw.
 */
struct app {
	struct io_uring ring;
	struct ipcsock_loop *loop;
	struct ipcsock *a, *b;
	/* A second loop on the ring, and a second channel on either loop. */
	struct ipcsock_loop *loop2;
	struct ipcsock *c, *d;
	struct rec rd;
	int fds_before;
	unsigned int next_seq;
	unsigned int app_cqes;
	/* Tagged CQEs taken by loop, by loop2, and by neither. */
	unsigned int claimed;
	unsigned int claimed2;
	unsigned int dropped;
	bool order_ok;
	int hangup_err;
	bool hung_up;
	bool leave_one;
	/* ready_read leaves every message unreceived, and counts its calls. */
	bool hold;
	unsigned int held_calls;
	/* The application's own completions, in the order they came. */
	struct {
		uint64_t ud;
		int res;
	} app_log[16];
};

FIXTURE(shared)
{
	struct app app;
};

SHARED_RING_VARIANTS(shared);

/* The kernel's thread submits: SQEs are consumed some time after submit. */
FIXTURE_VARIANT_ADD(shared, sqpoll)
{
	.flags = IORING_SETUP_SQPOLL,
};

static void on_ready(struct ipcsock *sock, void *arg)
{
	struct app *self = arg;
	struct ipcsock_payload p;
	unsigned int seq;

	if (self->hold) {
		self->held_calls++;
		return;
	}
	while (!ipcsock_receive(sock, &p)) {
		if (p.len != sizeof(seq)) {
			self->order_ok = false;
			continue;
		}
		memcpy(&seq, p.data, sizeof(seq));
		if (seq != self->next_seq)
			self->order_ok = false;
		self->next_seq++;
		/* Leave a message behind to see the library wake us. */
		if (self->leave_one)
			break;
	}
}

static void on_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct app *self = arg;

	(void)sock;
	self->hung_up = true;
	self->hangup_err = err;
}

static void app_log_cqe(struct app *self, const struct io_uring_cqe *cqe)
{
	if (self->app_cqes < ARRAY_SIZE(self->app_log)) {
		self->app_log[self->app_cqes].ud = cqe->user_data;
		self->app_log[self->app_cqes].res = cqe->res;
	}
	self->app_cqes++;
}

/*
 * One turn of the application's loop: wait, hand out CQEs (to the first
 * loop, what it declines to the second), dispatch.
 */
static int app_turn(struct app *self, int timeout_ms)
{
	struct __kernel_timespec ts = {
		.tv_nsec = timeout_ms * 1000000L,
	};
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	int ret, ret2 = 0;

	ret = io_uring_submit_and_wait_timeout(&self->ring, &cqe, 1, &ts, NULL);
	if (ret < 0 && ret != -ETIME)
		return ret;
	io_uring_for_each_cqe(&self->ring, head, cqe) {
		if (self->loop && ipcsock_loop_handle_cqe(self->loop, cqe))
			self->claimed++;
		else if (self->loop2 &&
			 ipcsock_loop_handle_cqe(self->loop2, cqe))
			self->claimed2++;
		else if (IPCSOCK_USER_DATA_IS_OURS(cqe->user_data))
			self->dropped++;
		else if (cqe->user_data >= APP_UD_BASE)
			app_log_cqe(self, cqe);
		n++;
	}
	io_uring_cq_advance(&self->ring, n);
	ret = self->loop ? ipcsock_loop_dispatch(self->loop, 0) : 0;
	if (self->loop2)
		ret2 = ipcsock_loop_dispatch(self->loop2, 0);
	return ret < 0 ? ret : ret2 < 0 ? ret2 : ret + ret2;
}

static bool app_idle(struct app *self)
{
	return ipcsock_loop_idle(self->loop) && ipcsock_loop_idle(self->loop2);
}

/*
 * A connected pair *x (created) and *y (bound to x's other end) on
 * @loop; on failure the test ends and teardown frees what was made.
 */
static void app_pair(struct __test_metadata *_metadata,
		     struct ipcsock_loop *loop, struct ipcsock **x,
		     struct ipcsock **y)
{
	int fd, ret;

	*x = ipcsock_new(loop);
	*y = ipcsock_new(loop);
	ASSERT_NE(NULL, *x);
	ASSERT_NE(NULL, *y);
	fd = ipcsock_create(*x);
	ASSERT_GE(fd, 0);
	ret = ipcsock_bind(*y, fd);
	if (ret)
		close(fd);
	ASSERT_EQ(0, ret);
}

/*
 * *@sock on @loop, bound to sv[0] of a new pair whose sv[1] the test
 * drives by hand, its callbacks recorded in @rc.
 */
static void app_raw_pair(struct __test_metadata *_metadata,
			 struct ipcsock_loop *loop, struct ipcsock **sock,
			 struct rec *rc, int sv[2])
{
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
				sv));
	*sock = ipcsock_new(loop);
	ASSERT_NE(NULL, *sock);
	ASSERT_EQ(0, ipcsock_bind(*sock, sv[0]));
	rec_attach(rc, *sock);
}

/* The loop on the application's ring, with a and b connected on it. */
static void app_open(struct __test_metadata *_metadata, struct app *app,
		     const struct ipcsock_loop_opts *opts)
{
	app->loop = ipcsock_loop_new_shared(&app->ring, opts);
	ASSERT_NE(NULL, app->loop);
	ASSERT_EQ(IPCSOCK_BACKEND_URING, ipcsock_loop_backend(app->loop));
	app_pair(_metadata, app->loop, &app->a, &app->b);
	ipcsock_set_ready_read(app->b, on_ready, app);
	ipcsock_set_hangup(app->b, on_hangup, app);
}

/*
 * Free every socket, hand out completions until the loops are idle (closing
 * cancels; the cancellations come back through our CQ), free the loops.
 */
static void app_close(struct __test_metadata *_metadata, struct app *app)
{
	int i;

	ipcsock_free(app->c);
	ipcsock_free(app->d);
	ipcsock_free(app->a);
	ipcsock_free(app->b);
	app->a = app->b = app->c = app->d = NULL;
	for (i = 0; i < 100 && !app_idle(app); i++)
		app_turn(app, 10);
	EXPECT_TRUE(ipcsock_loop_idle(app->loop));
	EXPECT_TRUE(ipcsock_loop_idle(app->loop2));
	ipcsock_loop_free(app->loop2);
	ipcsock_loop_free(app->loop);
	app->loop = app->loop2 = NULL;
}

FIXTURE_SETUP(shared)
{
	/* An SQPOLL thread that idles soon spins less on a busy machine. */
	struct io_uring_params p = {
		.flags = variant->flags,
		.sq_thread_idle = 10,
	};
	struct app *app = &self->app;

	app->fds_before = count_open_fds();
	app->order_ok = true;
	ASSERT_EQ(0, io_uring_queue_init_params(64, &app->ring, &p));
	app_open(_metadata, app, NULL);
}

FIXTURE_TEARDOWN(shared)
{
	struct app *app = &self->app;

	app_close(_metadata, app);
	io_uring_queue_exit(&app->ring);
	EXPECT_EQ(app->fds_before, count_open_fds());
}

/* Messages arrive in order and the application's own CQEs stay its own. */
TEST_F(shared, order_and_foreign_cqes)
{
	struct app *app = &self->app;
	struct io_uring_sqe *sqe;
	unsigned int i, app_sent = 0;
	uint64_t deadline;

	for (i = 0; i < NR_MSGS; i++) {
		struct ipcsock_payload p = { .data = &i, .len = sizeof(i) };
		int ret = ipcsock_send(app->a, &p);

		if (ret == -ENOBUFS) {
			ASSERT_LE(0, app_turn(app, 10));
			i--;
			continue;
		}
		ASSERT_EQ(0, ret);
		if (i % 100 == 0) {
			sqe = io_uring_get_sqe(&app->ring);
			ASSERT_NE(NULL, sqe);
			io_uring_prep_nop(sqe);
			io_uring_sqe_set_data64(sqe, APP_UD_BASE + app_sent++);
		}
	}
	deadline = now_ms() + WAIT_MS;
	while ((app->next_seq < NR_MSGS || app->app_cqes < app_sent) &&
	       now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 10));
	EXPECT_EQ(NR_MSGS, app->next_seq);
	EXPECT_TRUE(app->order_ok);
	EXPECT_EQ(app_sent, app->app_cqes);
}

/*
 * A callback that leaves a message unreceived must be called again even
 * though no new completion arrives: the library wakes the ring itself.
 */
TEST_F(shared, unreceived_message_wakes_ring)
{
	struct app *app = &self->app;
	unsigned int i;
	uint64_t deadline;

	app->leave_one = true;
	for (i = 0; i < 8; i++) {
		struct ipcsock_payload p = { .data = &i, .len = sizeof(i) };

		ASSERT_EQ(0, ipcsock_send(app->a, &p));
	}
	deadline = now_ms() + WAIT_MS;
	while (app->next_seq < 8 && now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 1000));
	EXPECT_EQ(8, app->next_seq);
	EXPECT_TRUE(app->order_ok);
}

/* Peer close reaches the shared loop as hangup(0) after the messages. */
TEST_F(shared, hangup_after_messages)
{
	struct app *app = &self->app;
	unsigned int i;
	uint64_t deadline;

	for (i = 0; i < 3; i++) {
		struct ipcsock_payload p = { .data = &i, .len = sizeof(i) };

		ASSERT_EQ(0, ipcsock_send(app->a, &p));
	}
	ipcsock_close(app->a);
	deadline = now_ms() + WAIT_MS;
	while (!app->hung_up && now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 10));
	EXPECT_TRUE(app->hung_up);
	EXPECT_EQ(0, app->hangup_err);
	EXPECT_EQ(3, app->next_seq);
	EXPECT_TRUE(app->order_ok);
}

/*
 * The peer closes with our message unread: hangup(-ECONNRESET), also when
 * the receive read the end before it saw the reset. The kernel leaves the
 * reset pending on the socket then: a receive that checked for it just
 * before the close returns EOF (an SQPOLL thread, or a peer in another
 * process, can close in that window; fuzz-peer caught it on an SQPOLL
 * ring), and so does a zero-length datagram taken in before the close,
 * which this test does every time: the receive takes it as task work on
 * our way out of send(), in get_events on a DEFER_TASKRUN ring, or in the
 * kernel's own time on an SQPOLL ring; its completion waits in the CQ
 * while the peer closes.
 */
TEST_F(shared, reset_pending_at_eof)
{
	struct app *app = &self->app;
	struct ipcsock_payload p = { .data = "u", .len = 1 };
	uint64_t deadline;
	struct rec rc;
	int sv[2];

	app_raw_pair(_metadata, app->loop, &app->c, &rc, sv);
	ASSERT_EQ(0, ipcsock_send(app->c, &p));
	/* The receive is armed, nothing of the library's is in the CQ. */
	ASSERT_LE(0, app_turn(app, 10));
	ASSERT_EQ(0, io_uring_cq_ready(&app->ring));

	ASSERT_EQ(0, send(sv[1], "", 0, 0));
	deadline = now_ms() + WAIT_MS;
	while (!io_uring_cq_ready(&app->ring) && now_ms() < deadline) {
		ASSERT_LE(0, io_uring_get_events(&app->ring));
		if (!io_uring_cq_ready(&app->ring))
			usleep(1000);
	}
	ASSERT_NE(0, io_uring_cq_ready(&app->ring));
	close(sv[1]);

	while (!rc.hangup && now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 10));
	ASSERT_EQ(1, rc.hangup);
	EXPECT_EQ(-ECONNRESET, rc.hangup_err);
	EXPECT_EQ(0, rc.received);
	EXPECT_EQ(0, rc.bad);
}

/*
 * A ready_read callback that leaves its message unreceived makes the
 * library wake the ring with a tagged NOP on every dispatch. That may not
 * starve the rest of the ring: on a DEFER_TASKRUN ring completions are
 * task work, run only when the application enters the kernel to wait,
 * and a wait that a NOP already posted satisfies never does. While the
 * message stays held, the application's own 20 ms timeout must complete
 * within a second, and a message on another channel of the loop arrive.
 */
TEST_F(shared, held_message_does_not_starve_ring)
{
	struct __kernel_timespec ts = { .tv_nsec = 20 * 1000000L };
	struct app *app = &self->app;
	uint64_t start, deadline, took = 0;
	struct io_uring_sqe *sqe;
	unsigned int seq = 0;
	struct ipcsock_payload p = { .data = &seq, .len = sizeof(seq) };

	app->hold = true;
	app_pair(_metadata, app->loop, &app->c, &app->d);
	rec_attach(&app->rd, app->d);
	ASSERT_EQ(0, ipcsock_send(app->a, &p));
	deadline = now_ms() + WAIT_MS;
	while (!app->held_calls && now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 100));
	ASSERT_LT(0, app->held_calls);

	/* The message stays held; the application goes on with its work. */
	sqe = io_uring_get_sqe(&app->ring);
	ASSERT_NE(NULL, sqe);
	io_uring_prep_timeout(sqe, &ts, 0, 0);
	io_uring_sqe_set_data64(sqe, APP_UD_BASE);
	ASSERT_EQ(0, send_str(app->c, "other"));
	start = now_ms();
	while ((!app->app_cqes || !app->rd.received) &&
	       now_ms() < start + 2000) {
		ASSERT_LE(0, app_turn(app, 100));
		if (app->app_cqes && !took)
			took = now_ms() - start;
	}
	EXPECT_EQ(1, app->app_cqes)
		TH_LOG("20 ms timeout not done in 2 s; %u ready_read calls",
		       app->held_calls);
	if (app->app_cqes)
		EXPECT_GT(1000, took);
	EXPECT_EQ(1, app->rd.received)
		TH_LOG("a message on another channel was not delivered");

	/* Still there, and whole, once the callback takes it. */
	app->hold = false;
	deadline = now_ms() + WAIT_MS;
	while (app->next_seq < 1 && now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 100));
	EXPECT_EQ(1, app->next_seq);
	EXPECT_TRUE(app->order_ok);
}

/*
 * The first send after the peer closed, before the loop saw it (see
 * callbacks.c): -EPIPE when the call sends it, 0 when it is queued for
 * the ring (IPCSOCK_LOOP_RING_SENDS, on loop2); the hangup follows with
 * 0, and every send after it gives -EPIPE.
 */
TEST_F(shared, first_send_after_peer_close)
{
	IPCSOCK_LOOP_OPTS(opts, .bgid_base = 0x2000,
			  .flags = IPCSOCK_LOOP_RING_SENDS);
	struct app *app = &self->app;
	struct rec rc[2] = { 0 };
	struct ipcsock *x[2];
	unsigned int seq = 0, i;
	struct ipcsock_payload p = { .data = &seq, .len = sizeof(seq) };
	uint64_t deadline;
	int fd;

	app->loop2 = ipcsock_loop_new_shared(&app->ring, &opts);
	ASSERT_NE(NULL, app->loop2);
	x[0] = app->c = ipcsock_new(app->loop);
	x[1] = app->d = ipcsock_new(app->loop2);
	for (i = 0; i < 2; i++) {
		ASSERT_NE(NULL, x[i]);
		fd = ipcsock_create(x[i]);
		ASSERT_LE(0, fd);
		close(fd);
		rec_attach(&rc[i], x[i]);
	}
	EXPECT_EQ(-EPIPE, ipcsock_send(app->c, &p));
	EXPECT_EQ(0, ipcsock_send(app->d, &p));
	deadline = now_ms() + WAIT_MS;
	while ((!rc[0].hangup || !rc[1].hangup) && now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 10));
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(1, rc[i].hangup);
		EXPECT_EQ(0, rc[i].hangup_err);
		EXPECT_EQ(0, rc[i].bad);
	}
	EXPECT_EQ(-EPIPE, ipcsock_send(app->c, &p));
	EXPECT_EQ(-EPIPE, ipcsock_send(app->d, &p));
}

#define FORK_MSGS	32

/*
 * The child of a fork() shares the parent's SQ and CQ (the ring's pages
 * are MAP_SHARED), so freeing its inherited copies must not submit or
 * write an SQE: a library SQE prepared and not yet submitted (the re-arm
 * that handing over a completion prepares) would be submitted by the
 * child, its multishot receive owned by a task that is about to exit and
 * cancelled with it, and the parent's channel would fail. The parent's SQ
 * tail must be where the parent left it, and its channel must go on.
 */
TEST_F(shared, fork_child_leaves_ring_alone)
{
	struct app *app = &self->app;
	struct io_uring_cqe *cqe;
	unsigned int i, head, n, ktail;
	uint64_t deadline;
	int status;
	pid_t pid;

	/* More than the receive's credit: it runs dry and is re-armed. */
	app->hold = true;
	for (i = 0; i < FORK_MSGS; i++) {
		struct ipcsock_payload p = { .data = &i, .len = sizeof(i) };

		ASSERT_EQ(0, ipcsock_send(app->a, &p));
	}
	/* Hand completions over, without submitting, until a re-arm waits. */
	deadline = now_ms() + WAIT_MS;
	while (!io_uring_sq_ready(&app->ring) && now_ms() < deadline) {
		struct __kernel_timespec ts = { .tv_nsec = 10 * 1000000L };

		io_uring_wait_cqe_timeout(&app->ring, &cqe, &ts);
		n = 0;
		io_uring_for_each_cqe(&app->ring, head, cqe) {
			if (ipcsock_loop_handle_cqe(app->loop, cqe))
				app->claimed++;
			n++;
		}
		io_uring_cq_advance(&app->ring, n);
	}
	ASSERT_LT(0, io_uring_sq_ready(&app->ring))
		TH_LOG("the receive was never re-armed");
	ktail = io_uring_smp_load_acquire(app->ring.sq.ktail);

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		ipcsock_free(app->a);
		ipcsock_free(app->b);
		ipcsock_loop_free(app->loop);
		io_uring_queue_exit(&app->ring);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(ktail, io_uring_smp_load_acquire(app->ring.sq.ktail))
		TH_LOG("the child moved the parent's SQ tail");

	/* Everything sent before and after arrives, and nothing fails. */
	app->hold = false;
	for (i = FORK_MSGS; i < 2 * FORK_MSGS; i++) {
		struct ipcsock_payload p = { .data = &i, .len = sizeof(i) };

		ASSERT_EQ(0, ipcsock_send(app->a, &p));
	}
	deadline = now_ms() + WAIT_MS;
	while (app->next_seq < 2 * FORK_MSGS && !app->hung_up &&
	       now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 10));
	EXPECT_EQ(2 * FORK_MSGS, app->next_seq);
	EXPECT_TRUE(app->order_ok);
	EXPECT_FALSE(app->hung_up)
		TH_LOG("the channel failed: %d", app->hangup_err);
	EXPECT_EQ(0, app->dropped);
}

#define CHAIN_MSGS	2048
#define CHAIN_BATCH	64

/*
 * IPCSOCK_LOOP_RING_SENDS on a shared ring: every message is a linked
 * SENDMSG. Under DEFER_TASKRUN each link after a chain's head is issued
 * as task work, one hop per io_uring_enter, so unless the library drives
 * its chains a message costs the application a whole wait-handle-dispatch
 * turn. A stream sent in batches must get through in far fewer turns
 * than it has messages (and on an SQPOLL ring, whose thread takes a chain
 * when it gets to it, get through at all).
 */
TEST_F(shared, ring_sends_need_few_turns)
{
	IPCSOCK_LOOP_OPTS(opts, .flags = IPCSOCK_LOOP_RING_SENDS,
			  .send_queue_len = 2 * CHAIN_MSGS);
	struct ipcsock_payload p[CHAIN_BATCH];
	uint32_t seq[CHAIN_BATCH];
	struct app *app = &self->app;
	unsigned int sent, turns = 0, i;
	uint64_t deadline;

	app_close(_metadata, app);
	app_open(_metadata, app, &opts);
	for (sent = 0; sent < CHAIN_MSGS; sent += CHAIN_BATCH) {
		for (i = 0; i < CHAIN_BATCH; i++) {
			seq[i] = sent + i;
			p[i] = msg_of(&seq[i], sizeof(seq[i]), NULL, 0);
		}
		ASSERT_EQ(CHAIN_BATCH,
			  ipcsock_send_batch(app->a, p, CHAIN_BATCH));
	}
	deadline = now_ms() + 2 * WAIT_MS;
	while (app->next_seq < CHAIN_MSGS && now_ms() < deadline) {
		ASSERT_LE(0, app_turn(app, 100));
		turns++;
	}
	EXPECT_EQ(CHAIN_MSGS, app->next_seq);
	EXPECT_TRUE(app->order_ok);
	/*
	 * An SQPOLL thread posts each completion as it goes and wakes the
	 * application for it: the turns count its pace, not the library's.
	 */
	if (variant->flags & IORING_SETUP_SQPOLL)
		return;
	EXPECT_GT(CHAIN_MSGS / 4, turns)
		TH_LOG("%u application turns for %u messages", turns,
		       app->next_seq);
}

#define TWO_LOOPS_MSGS	16

/*
 * Two loops on one ring, with buffer groups apart (bgid_base), each with
 * a channel of its own. ipcsock_loop_handle_cqe() takes only its own
 * loop's completions, although the tag is the same for both: the
 * application hands each CQE to the first loop and what it declines to
 * the second, and every message arrives on its own loop, in order, with
 * no tagged CQE left that neither took.
 */
TEST_F(shared, two_loops_one_ring)
{
	IPCSOCK_LOOP_OPTS(opts, .bgid_base = 0x2000);
	struct app *app = &self->app;
	uint64_t deadline;
	unsigned int i;

	app->loop2 = ipcsock_loop_new_shared(&app->ring, &opts);
	ASSERT_NE(NULL, app->loop2);
	app_pair(_metadata, app->loop2, &app->c, &app->d);
	rec_attach(&app->rd, app->d);
	app->rd.check_seq = true;
	for (i = 0; i < TWO_LOOPS_MSGS; i++) {
		struct ipcsock_payload p = { .data = &i, .len = sizeof(i) };

		ASSERT_EQ(0, ipcsock_send(app->a, &p));
		ASSERT_EQ(0, ipcsock_send(app->c, &p));
	}
	deadline = now_ms() + WAIT_MS;
	while ((app->next_seq < TWO_LOOPS_MSGS ||
		app->rd.received < TWO_LOOPS_MSGS) && now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 10));
	EXPECT_EQ(TWO_LOOPS_MSGS, app->next_seq);
	EXPECT_TRUE(app->order_ok);
	EXPECT_FALSE(app->hung_up);
	EXPECT_EQ(TWO_LOOPS_MSGS, app->rd.received);
	EXPECT_EQ(0, app->rd.bad);
	EXPECT_EQ(0, app->rd.hangup);
	EXPECT_LT(0, app->claimed2) TH_LOG("the first loop took every CQE");
	EXPECT_EQ(0, app->dropped);
}

#define LATE_MSGS	16

/*
 * A loop freed before it was idle leaves completions to come on the ring
 * (here the cancellations of its channels' receives). The application
 * drops them, but may well hand them to a new loop on the same ring
 * first: that loop must decline them (ipcsock_loop_handle_cqe() returns
 * 0), although its channels may have the ids the old loop's had, and its
 * channels must work undisturbed.
 */
TEST_F(shared, late_cqes_of_freed_loop)
{
	/* The old loop's buffer groups may stay registered: use others. */
	IPCSOCK_LOOP_OPTS(opts, .bgid_base = 0x2000);
	struct app *app = &self->app;
	struct rec ra;
	uint64_t deadline;
	unsigned int i;

	/*
	 * The manual lets a loop freed before it is idle leave its channels
	 * allocated, for the kernel still holds their buffers. LeakSanitizer
	 * is told to ignore them below; valgrind cannot be, and would fail
	 * the test for them.
	 */
	if (under_valgrind())
		SKIP(return, "the freed loop's channels stay allocated");
	/* The old loop, with a and b; what it allocates is no leak. */
	app_close(_metadata, app);
	if (__lsan_disable)
		__lsan_disable();
	app_open(_metadata, app, NULL);
	if (__lsan_enable)
		__lsan_enable();
	ipcsock_free(app->a);
	ipcsock_free(app->b);
	app->a = app->b = NULL;
	ASSERT_FALSE(ipcsock_loop_idle(app->loop));
	ipcsock_loop_free(app->loop);
	app->loop = NULL;

	app_open(_metadata, app, &opts);
	rec_attach(&ra, app->a);
	ra.check_seq = true;
	for (i = 0; i < LATE_MSGS; i++) {
		struct ipcsock_payload p = { .data = &i, .len = sizeof(i) };

		ASSERT_EQ(0, ipcsock_send(app->a, &p));
		ASSERT_EQ(0, ipcsock_send(app->b, &p));
	}
	deadline = now_ms() + WAIT_MS;
	while ((app->next_seq < LATE_MSGS || ra.received < LATE_MSGS) &&
	       now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 10));
	EXPECT_EQ(LATE_MSGS, app->next_seq);
	EXPECT_TRUE(app->order_ok);
	EXPECT_FALSE(app->hung_up);
	EXPECT_EQ(LATE_MSGS, ra.received);
	EXPECT_EQ(0, ra.bad);
	EXPECT_EQ(0, ra.hangup);
	EXPECT_LT(0, app->dropped)
		TH_LOG("the new loop took the old loop's completions");
}

/* Not the loop's ring: handle_cqe says "not ours" for foreign tags. */
TEST_F(shared, foreign_user_data_not_ours)
{
	struct app *app = &self->app;
	struct io_uring_cqe cqe = { .user_data = 0x12345678, .res = 0 };

	EXPECT_EQ(0, ipcsock_loop_handle_cqe(app->loop, &cqe));
	cqe.user_data = (uint64_t)(uintptr_t)&cqe;
	EXPECT_EQ(0, ipcsock_loop_handle_cqe(app->loop, &cqe));
}

TEST(shared_rejects_epoll_backend)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = IPCSOCK_BACKEND_EPOLL);
	struct io_uring ring;

	ASSERT_EQ(0, io_uring_queue_init(8, &ring, 0));
	EXPECT_EQ(NULL, ipcsock_loop_new_shared(&ring, &opts));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, ipcsock_loop_new_shared(NULL, NULL));
	io_uring_queue_exit(&ring);
}

/*
 * Ring sends on a shared DEFER_TASKRUN ring without SUBMIT_ALL: the
 * application left an SQE the kernel refuses at submit, with more behind
 * it. The kernel stops there, the library's sends stay in the SQ, and a
 * send that waited for their completions never returned (the kernel ends
 * a timed-out wait with 0 while the application's CQEs are posted). The
 * send must return, and the message go out with a later submit.
 */
TEST(ring_sends_behind_refused_sqe)
{
	struct io_uring_params p = {
		.flags = IORING_SETUP_SINGLE_ISSUER |
			 IORING_SETUP_DEFER_TASKRUN,
	};
	IPCSOCK_LOOP_OPTS(opts, .bgid_base = 0x2000,
			  .flags = IPCSOCK_LOOP_RING_SENDS);
	struct ipcsock_payload m = { .data = "hi", .len = 2 };
	int fds = count_open_fds(), remote, i, app_cqes = 0;
	struct io_uring_cqe *cqe;
	struct ipcsock_loop *loop;
	struct io_uring_sqe *sqe;
	struct io_uring ring;
	struct ipcsock *a;
	uint64_t start;
	char buf[64];
	ssize_t n = -1;

	if (io_uring_queue_init_params(64, &ring, &p))
		SKIP(return, "no DEFER_TASKRUN rings here");
	loop = ipcsock_loop_new_shared(&ring, &opts);
	ASSERT_NE(NULL, loop);
	a = ipcsock_new(loop);
	ASSERT_NE(NULL, a);
	remote = ipcsock_create(a);
	ASSERT_LE(0, remote);
	for (i = 0; i < 6; i++) {
		sqe = io_uring_get_sqe(&ring);
		ASSERT_NE(NULL, sqe);
		io_uring_prep_nop(sqe);
		if (i == 1)
			sqe->opcode = 0xff;	/* refused at submit */
		io_uring_sqe_set_data64(sqe, i + 1);
	}
	start = now_ms();
	EXPECT_EQ(0, ipcsock_send(a, &m));
	EXPECT_GT(1000, now_ms() - start);
	while (n < 0 && now_ms() - start < WAIT_MS) {
		io_uring_submit_and_wait_timeout(&ring, &cqe, 1,
			&(struct __kernel_timespec){ .tv_nsec = 10000000 },
			NULL);
		while (!io_uring_peek_cqe(&ring, &cqe)) {
			if (!ipcsock_loop_handle_cqe(loop, cqe))
				app_cqes++;
			io_uring_cqe_seen(&ring, cqe);
		}
		ipcsock_loop_dispatch(loop, 0);
		n = recv(remote, buf, sizeof(buf), MSG_DONTWAIT);
	}
	/* The wire header, then the two bytes. */
	EXPECT_EQ(8 + 2, n);
	EXPECT_EQ(6, app_cqes);
	ipcsock_free(a);
	close(remote);
	for (i = 0; i < 100 && !ipcsock_loop_idle(loop); i++) {
		io_uring_submit_and_wait_timeout(&ring, &cqe, 1,
			&(struct __kernel_timespec){ .tv_nsec = 10000000 },
			NULL);
		while (!io_uring_peek_cqe(&ring, &cqe)) {
			ipcsock_loop_handle_cqe(loop, cqe);
			io_uring_cqe_seen(&ring, cqe);
		}
	}
	EXPECT_TRUE(ipcsock_loop_idle(loop));
	ipcsock_loop_free(loop);
	io_uring_queue_exit(&ring);
	EXPECT_EQ(fds, count_open_fds());
}

/*
 * The application calls into the library while a link chain of its own is
 * still open: its last prepared SQE has IOSQE_IO_LINK. An SQE the library
 * put behind it would join the chain - here close()'s cancel, cancelled
 * with the failing head, leaving the receive armed and the peer without
 * its hang-up - and end the chain where the application did not. The
 * peer must see the hang-up, the loop become idle, and the application's
 * next SQE still be linked to its head: cancelled when the head fails.
 */
TEST_F(shared, close_with_open_link)
{
	struct app *app = &self->app;
	struct io_uring_sqe *sqe;
	uint64_t deadline;
	char byte;

	sqe = io_uring_get_sqe(&app->ring);
	ASSERT_NE(NULL, sqe);
	io_uring_prep_read(sqe, -1, &byte, 1, 0);
	sqe->flags |= IOSQE_IO_LINK;
	io_uring_sqe_set_data64(sqe, APP_UD_BASE + 1);
	ipcsock_close(app->a);
	sqe = io_uring_get_sqe(&app->ring);
	ASSERT_NE(NULL, sqe);
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, APP_UD_BASE + 2);

	deadline = now_ms() + WAIT_MS;
	while ((!app->hung_up || app->app_cqes < 2 ||
		!ipcsock_loop_idle(app->loop)) && now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 10));
	EXPECT_TRUE(app->hung_up) TH_LOG("the peer never saw the hang-up");
	EXPECT_EQ(0, app->hangup_err);
	ASSERT_EQ(2, app->app_cqes);
	EXPECT_EQ(APP_UD_BASE + 1, app->app_log[0].ud);
	EXPECT_EQ(-EBADF, app->app_log[0].res);
	EXPECT_EQ(APP_UD_BASE + 2, app->app_log[1].ud);
	EXPECT_EQ(-ECANCELED, app->app_log[1].res)
		TH_LOG("the application's chain was cut: its next SQE ran");
	/* The fixture's b still has its receive armed; a's is gone. */
	ipcsock_close(app->b);
	deadline = now_ms() + WAIT_MS;
	while (!ipcsock_loop_idle(app->loop) && now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 10));
	EXPECT_TRUE(ipcsock_loop_idle(app->loop));
}

/*
 * The same with IOSQE_IO_HARDLINK behind a 50 ms timeout: the hang-up
 * still comes, and the application's next SQE runs after its head, not
 * before it.
 */
TEST_F(shared, close_with_open_hardlink)
{
	struct __kernel_timespec ts = { .tv_nsec = 50 * 1000000L };
	struct app *app = &self->app;
	struct io_uring_sqe *sqe;
	uint64_t deadline;

	sqe = io_uring_get_sqe(&app->ring);
	ASSERT_NE(NULL, sqe);
	io_uring_prep_timeout(sqe, &ts, 0, 0);
	sqe->flags |= IOSQE_IO_HARDLINK;
	io_uring_sqe_set_data64(sqe, APP_UD_BASE + 1);
	ipcsock_close(app->a);
	sqe = io_uring_get_sqe(&app->ring);
	ASSERT_NE(NULL, sqe);
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, APP_UD_BASE + 2);

	deadline = now_ms() + WAIT_MS;
	while ((!app->hung_up || app->app_cqes < 2) && now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 10));
	EXPECT_TRUE(app->hung_up);
	EXPECT_EQ(0, app->hangup_err);
	ASSERT_EQ(2, app->app_cqes);
	EXPECT_EQ(APP_UD_BASE + 1, app->app_log[0].ud)
		TH_LOG("the application's hard-linked SQE ran before its head");
	EXPECT_EQ(-ETIME, app->app_log[0].res);
	EXPECT_EQ(APP_UD_BASE + 2, app->app_log[1].ud);
	EXPECT_EQ(0, app->app_log[1].res);
}

/*
 * An open chain across every call that prepares SQEs: create and bind
 * (receives armed), sends both ways, receives (buffers recycled). The
 * chain's head is a read of an empty pipe, so anything of the library's
 * caught in the chain would wait for it: messages must flow while the
 * head waits, and the application's closing NOP complete only after it.
 */
TEST_F(shared, calls_with_open_link)
{
	struct app *app = &self->app;
	struct io_uring_sqe *sqe;
	struct rec rc, rd;
	uint64_t deadline;
	unsigned int i;
	int pfd[2];
	char byte;

	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	sqe = io_uring_get_sqe(&app->ring);
	ASSERT_NE(NULL, sqe);
	io_uring_prep_read(sqe, pfd[0], &byte, 1, 0);
	sqe->flags |= IOSQE_IO_LINK;
	io_uring_sqe_set_data64(sqe, APP_UD_BASE + 1);

	app_pair(_metadata, app->loop, &app->c, &app->d);
	rec_attach(&rc, app->c);
	rec_attach(&rd, app->d);
	rc.check_seq = rd.check_seq = true;
	for (i = 0; i < 4; i++) {
		struct ipcsock_payload p = { .data = &i, .len = sizeof(i) };

		ASSERT_EQ(0, ipcsock_send(app->c, &p));
		ASSERT_EQ(0, ipcsock_send(app->d, &p));
		ASSERT_EQ(0, ipcsock_send(app->a, &p));
	}
	sqe = io_uring_get_sqe(&app->ring);
	ASSERT_NE(NULL, sqe);
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, APP_UD_BASE + 2);

	deadline = now_ms() + WAIT_MS;
	while ((rc.received < 4 || rd.received < 4 || app->next_seq < 4) &&
	       now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 10));
	EXPECT_EQ(4, rc.received);
	EXPECT_EQ(4, rd.received);
	EXPECT_EQ(4, app->next_seq);
	EXPECT_EQ(0, rc.bad + rd.bad);
	EXPECT_EQ(0, app->app_cqes)
		TH_LOG("the NOP ran before the head it was linked to");

	ASSERT_EQ(1, write(pfd[1], "x", 1));
	deadline = now_ms() + WAIT_MS;
	while (app->app_cqes < 2 && now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 10));
	ASSERT_EQ(2, app->app_cqes);
	EXPECT_EQ(APP_UD_BASE + 1, app->app_log[0].ud);
	EXPECT_EQ(1, app->app_log[0].res);
	EXPECT_EQ(APP_UD_BASE + 2, app->app_log[1].ud);
	EXPECT_EQ(0, app->app_log[1].res);
	close(pfd[0]);
	close(pfd[1]);
}

/*
 * Requests of the library's cancelled by someone else. The application
 * cancels every request on a socket's fd (IORING_ASYNC_CANCEL_FD |
 * _ALL) while a send queue waits for room: the receive and the POLLOUT
 * come back -ECANCELED although the channel lives, and must be armed
 * again. And a cancel of the library's that was itself cancelled (here:
 * an SQE the application had taken before a completion made the library
 * queue a cancel, and turned into a failing link head after, so that the
 * cancel joined its chain) must be issued again: the channel's receive
 * ends and the loop becomes idle.
 */
#define CANCELLED_MSGS	400

TEST_F(shared, requests_cancelled_by_others)
{
	IPCSOCK_LOOP_OPTS(opts, .bgid_base = 0x2000);
	struct app *app = &self->app;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	char buf[2048] = { 0 }, rbuf[sizeof(buf) + 64];
	unsigned int i, got = 0, head, n;
	struct ipcsock *c;
	uint32_t seq;
	uint64_t deadline;
	bool order = true;
	struct rec rc;
	int sv[2], ret;

	app_raw_pair(_metadata, app->loop, &c, &rc, sv);
	rc.check_seq = true;
	for (i = 0; i < CANCELLED_MSGS; i++) {
		struct ipcsock_payload p = { .data = buf, .len = sizeof(buf) };

		memcpy(buf, &i, sizeof(i));
		ret = ipcsock_send(c, &p);
		if (ret == -ENOBUFS)
			break;
		ASSERT_EQ(0, ret);
	}
	/* The socket is full and messages are queued: POLLOUT is armed. */
	ASSERT_LT(i, CANCELLED_MSGS);
	app_turn(app, 10);
	sqe = io_uring_get_sqe(&app->ring);
	ASSERT_NE(NULL, sqe);
	io_uring_prep_cancel_fd(sqe, sv[0], IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, APP_UD_BASE + 1);
	deadline = now_ms() + WAIT_MS;
	while (!app->app_cqes && now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 10));
	ASSERT_EQ(1, app->app_cqes);
	EXPECT_LE(2, app->app_log[0].res)
		TH_LOG("the receive and POLLOUT were not both cancelled");

	/* Everything queued goes once the peer reads; then the other way. */
	n = i;
	deadline = now_ms() + WAIT_MS;
	while (got < n && now_ms() < deadline) {
		ret = raw_recv_msg(sv[1], rbuf, sizeof(rbuf), NULL, 0, NULL,
			       NULL);
		if (ret == -EAGAIN) {
			ASSERT_LE(0, app_turn(app, 1));
			continue;
		}
		ASSERT_EQ(TEST_WIRE_HDR_LEN + sizeof(buf), ret);
		memcpy(&seq, rbuf + TEST_WIRE_HDR_LEN, sizeof(seq));
		if (seq != got)
			order = false;
		got++;
	}
	EXPECT_EQ(n, got)
		TH_LOG("the send queue stalled after POLLOUT was cancelled");
	EXPECT_TRUE(order);
	for (i = 0; i < 3; i++)
		ASSERT_LT(0, raw_send_msg(sv[1], &i, sizeof(i), NULL, 0));
	deadline = now_ms() + WAIT_MS;
	while (rc.received < 3 && now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 10));
	EXPECT_EQ(3, rc.received)
		TH_LOG("the receive was not armed again after it was cancelled");
	EXPECT_EQ(0, rc.bad);

	/*
	 * A broken datagram fails the channel, and the completion that
	 * brings it makes the library queue a cancel of the receive, behind
	 * an SQE the application took before handing the completion over.
	 */
	app->loop2 = ipcsock_loop_new_shared(&app->ring, &opts);
	ASSERT_NE(NULL, app->loop2);
	ipcsock_free(c);
	close(sv[1]);
	app_raw_pair(_metadata, app->loop2, &app->c, &rc, sv);
	ASSERT_LE(0, app_turn(app, 0));
	ASSERT_LT(0, raw_send_hdr(sv[1], NULL, "junk", 4, NULL, 0));
	app->app_cqes = 0;
	deadline = now_ms() + WAIT_MS;
	while (!rc.hangup && now_ms() < deadline) {
		struct __kernel_timespec ts = { .tv_nsec = 10 * 1000000L };

		io_uring_submit_and_wait_timeout(&app->ring, &cqe, 1, &ts,
						 NULL);
		sqe = io_uring_get_sqe(&app->ring);
		ASSERT_NE(NULL, sqe);
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, APP_UD_BASE + 2);
		n = 0;
		io_uring_for_each_cqe(&app->ring, head, cqe) {
			if (!ipcsock_loop_handle_cqe(app->loop2, cqe) &&
			    !ipcsock_loop_handle_cqe(app->loop, cqe) &&
			    cqe->user_data >= APP_UD_BASE)
				app_log_cqe(app, cqe);
			n++;
		}
		io_uring_cq_advance(&app->ring, n);
		/* The misuse: the SQE becomes a failing head after the call. */
		io_uring_prep_read(sqe, -1, buf, 1, 0);
		sqe->flags |= IOSQE_IO_LINK;
		io_uring_sqe_set_data64(sqe, APP_UD_BASE + 2);
		ipcsock_loop_dispatch(app->loop2, 0);
		ipcsock_loop_dispatch(app->loop, 0);
	}
	ASSERT_EQ(1, rc.hangup);
	EXPECT_EQ(-EPROTO, rc.hangup_err);
	/* The failed channel, still bound, holds nothing in the kernel. */
	deadline = now_ms() + WAIT_MS;
	while (!ipcsock_loop_idle(app->loop2) && now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 10));
	EXPECT_TRUE(ipcsock_loop_idle(app->loop2))
		TH_LOG("the cancelled cancel was not issued again");
	close(sv[1]);
}

/*
 * Make an SQPOLL ring's kernel thread lag behind the application, as a
 * busy machine may: it shares the application's CPU (IORING_SETUP_SQ_AFF),
 * so it takes SQEs when the scheduler lets it, not at once. With @fifo the
 * application runs SCHED_FIFO there, and the thread takes SQEs only while
 * the application sleeps in the kernel. False when the process may not do
 * this (SCHED_FIFO needs root): the test then leaves the lag to chance.
 */
static bool sqpoll_lagging(struct io_uring_params *p, bool fifo)
{
	struct sched_param sp = { .sched_priority = 1 };
	cpu_set_t set;
	int cpu = sched_getcpu();

	if (cpu < 0)
		return false;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return false;
	p->flags |= IORING_SETUP_SQ_AFF;
	p->sq_thread_cpu = cpu;
	return !fifo || !sched_setscheduler(0, SCHED_FIFO, &sp);
}

/*
 * A small shared ring (8 SQ entries) under many channels: whenever the
 * library wants an SQE - to arm or re-arm a receive, to wait for room,
 * to cancel on close, to wake the ring - it may find the SQ full, of the
 * application's SQEs or of its own, even after a submit (an SQPOLL thread
 * that has not caught up). No such work may be lost: every message
 * arrives, in order, every peer sees the hang-up, the loop becomes idle
 * and no fd is left open.
 */
#define SQF_PAIRS	32
#define SQF_MSGS	150
#define SQF_LEN		2000
#define SQF_APP_SQES	4

struct sqf {
	struct io_uring ring;
	struct ipcsock_loop *loop;
	struct ipcsock *x[SQF_PAIRS], *y[SQF_PAIRS];
	struct rec rx[SQF_PAIRS], ry[SQF_PAIRS];
	unsigned int app_sent, app_done;
	int fds_before;
};

FIXTURE(sqfull)
{
	struct sqf s;
};

FIXTURE_VARIANT(sqfull)
{
	unsigned int flags;
	unsigned int loop_flags;
	bool app_sqes;		/* the application keeps SQEs of its own pending */
};

FIXTURE_VARIANT_ADD(sqfull, plain)
{
	.flags = 0,
};

FIXTURE_VARIANT_ADD(sqfull, plain_app_sqes)
{
	.flags = 0,
	.app_sqes = true,
};

FIXTURE_VARIANT_ADD(sqfull, defer_taskrun_app_sqes)
{
	.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	.app_sqes = true,
};

FIXTURE_VARIANT_ADD(sqfull, ring_sends_app_sqes)
{
	.flags = 0,
	.loop_flags = IPCSOCK_LOOP_RING_SENDS,
	.app_sqes = true,
};

FIXTURE_VARIANT_ADD(sqfull, sqpoll)
{
	.flags = IORING_SETUP_SQPOLL,
};

FIXTURE_VARIANT_ADD(sqfull, sqpoll_app_sqes)
{
	.flags = IORING_SETUP_SQPOLL,
	.app_sqes = true,
};

FIXTURE_VARIANT_ADD(sqfull, sqpoll_ring_sends)
{
	.flags = IORING_SETUP_SQPOLL,
	.loop_flags = IPCSOCK_LOOP_RING_SENDS,
};

/* Top the application's own pending (prepared, unsubmitted) NOPs up. */
static void sqf_app_sqes(struct sqf *self, bool on)
{
	struct io_uring_sqe *sqe;

	while (on && io_uring_sq_ready(&self->ring) < SQF_APP_SQES) {
		sqe = io_uring_get_sqe(&self->ring);
		if (!sqe)
			return;
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, APP_UD_BASE + self->app_sent++);
	}
}

static int sqf_turn(struct sqf *self, int timeout_ms)
{
	struct __kernel_timespec ts = {
		.tv_nsec = timeout_ms * 1000000L,
	};
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	int ret;

	ret = io_uring_submit_and_wait_timeout(&self->ring, &cqe, 1, &ts, NULL);
	if (ret < 0 && ret != -ETIME && ret != -EBUSY && ret != -EAGAIN)
		return ret;
	io_uring_for_each_cqe(&self->ring, head, cqe) {
		if (!ipcsock_loop_handle_cqe(self->loop, cqe) &&
		    cqe->user_data >= APP_UD_BASE)
			self->app_done++;
		n++;
	}
	io_uring_cq_advance(&self->ring, n);
	return ipcsock_loop_dispatch(self->loop, 0);
}

FIXTURE_SETUP(sqfull)
{
	struct io_uring_params p = {
		.flags = variant->flags,
		.sq_thread_idle = 10,
	};
	IPCSOCK_LOOP_OPTS(opts, .recv_buffers = 4, .send_queue_len = 64,
			  .flags = variant->loop_flags);

	self->s.fds_before = count_open_fds();
	if ((p.flags & IORING_SETUP_SQPOLL) && !sqpoll_lagging(&p, false))
		TH_LOG("cannot pin the SQPOLL thread to our CPU");
	ASSERT_EQ(0, io_uring_queue_init_params(8, &self->s.ring, &p));
	self->s.loop = ipcsock_loop_new_shared(&self->s.ring, &opts);
	ASSERT_NE(NULL, self->s.loop);
}

FIXTURE_TEARDOWN(sqfull)
{
	unsigned int i;

	for (i = 0; i < SQF_PAIRS; i++) {
		ipcsock_free(self->s.x[i]);
		ipcsock_free(self->s.y[i]);
	}
	for (i = 0; i < 500 && !ipcsock_loop_idle(self->s.loop); i++)
		sqf_turn(&self->s, 10);
	EXPECT_TRUE(ipcsock_loop_idle(self->s.loop));
	ipcsock_loop_free(self->s.loop);
	io_uring_queue_exit(&self->s.ring);
	EXPECT_EQ(self->s.fds_before, count_open_fds());
}

TEST_F(sqfull, traffic_and_close)
{
	unsigned int sent_x[SQF_PAIRS] = { 0 }, sent_y[SQF_PAIRS] = { 0 };
	unsigned int i, todo, bad;
	uint64_t deadline;
	char buf[SQF_LEN];
	int fd, ret;

	memset(buf, 0x5a, sizeof(buf));
	for (i = 0; i < SQF_PAIRS; i++) {
		sqf_app_sqes(&self->s, variant->app_sqes);
		self->s.x[i] = ipcsock_new(self->s.loop);
		self->s.y[i] = ipcsock_new(self->s.loop);
		ASSERT_NE(NULL, self->s.x[i]);
		ASSERT_NE(NULL, self->s.y[i]);
		fd = ipcsock_create(self->s.x[i]);
		ASSERT_LE(0, fd);
		sqf_app_sqes(&self->s, variant->app_sqes);
		ret = ipcsock_bind(self->s.y[i], fd);
		if (ret)
			close(fd);
		ASSERT_EQ(0, ret);
		rec_attach(&self->s.rx[i], self->s.x[i]);
		rec_attach(&self->s.ry[i], self->s.y[i]);
		self->s.rx[i].check_seq = self->s.ry[i].check_seq = true;
	}

	/* Both ways at once, bursts larger than the sockets take. */
	deadline = now_ms() + 2 * WAIT_MS;
	do {
		todo = 0;
		for (i = 0; i < SQF_PAIRS; i++) {
			struct ipcsock_payload p = {
				.data = buf, .len = sizeof(buf),
			};

			sqf_app_sqes(&self->s, variant->app_sqes);
			while (sent_x[i] < SQF_MSGS) {
				memcpy(buf, &sent_x[i], sizeof(sent_x[i]));
				ret = ipcsock_send(self->s.x[i], &p);
				if (ret == -ENOBUFS)
					break;
				ASSERT_EQ(0, ret);
				sent_x[i]++;
			}
			while (sent_y[i] < SQF_MSGS) {
				memcpy(buf, &sent_y[i], sizeof(sent_y[i]));
				ret = ipcsock_send(self->s.y[i], &p);
				if (ret == -ENOBUFS)
					break;
				ASSERT_EQ(0, ret);
				sent_y[i]++;
			}
			todo += 2 * SQF_MSGS - self->s.rx[i].received -
				self->s.ry[i].received;
		}
		sqf_app_sqes(&self->s, variant->app_sqes);
		ASSERT_LE(0, sqf_turn(&self->s, 1));
	} while (todo && now_ms() < deadline);
	EXPECT_EQ(0, todo) TH_LOG("%u messages never arrived", todo);
	for (i = 0, bad = 0; i < SQF_PAIRS; i++)
		bad += self->s.rx[i].bad + self->s.ry[i].bad +
		       self->s.rx[i].hangup + self->s.ry[i].hangup;
	EXPECT_EQ(0, bad);

	/* Closing one end: each peer sees the hang-up, after every message. */
	for (i = 0; i < SQF_PAIRS; i++) {
		sqf_app_sqes(&self->s, variant->app_sqes);
		ipcsock_free(self->s.x[i]);
		self->s.x[i] = NULL;
	}
	deadline = now_ms() + 2 * WAIT_MS;
	do {
		todo = 0;
		for (i = 0; i < SQF_PAIRS; i++)
			todo += !self->s.ry[i].hangup;
		sqf_app_sqes(&self->s, variant->app_sqes);
		ASSERT_LE(0, sqf_turn(&self->s, 1));
	} while (todo && now_ms() < deadline);
	EXPECT_EQ(0, todo) TH_LOG("%u peers never saw the hang-up", todo);
	for (i = 0; i < SQF_PAIRS; i++) {
		EXPECT_EQ(0, self->s.ry[i].hangup_err);
		EXPECT_EQ(SQF_MSGS, self->s.ry[i].received_at_hangup);
	}
	for (i = 0; i < SQF_PAIRS; i++) {
		sqf_app_sqes(&self->s, variant->app_sqes);
		ipcsock_free(self->s.y[i]);
		self->s.y[i] = NULL;
	}
	deadline = now_ms() + 2 * WAIT_MS;
	while ((!ipcsock_loop_idle(self->s.loop) ||
		self->s.app_done < self->s.app_sent) && now_ms() < deadline)
		ASSERT_LE(0, sqf_turn(&self->s, 1));
	EXPECT_TRUE(ipcsock_loop_idle(self->s.loop));
	EXPECT_EQ(self->s.app_sent, self->s.app_done);
}

/*
 * On an SQPOLL ring a submit only hands SQEs to the kernel's thread,
 * which resolves their fd numbers when it gets to them. Closing a socket
 * right after binding it, and before the thread caught up, must not leave
 * a receive of the library's to be issued on whatever file the number
 * names by then: here a socket of the application's, made at once, with a
 * message waiting. The message must stay the application's, and the
 * library's socket be closed all the same (its peer sees EOF).
 */
TEST(sqpoll_close_then_reuse_fd)
{
	struct io_uring_params p = {
		.flags = IORING_SETUP_SQPOLL,
		.sq_thread_idle = 10,
	};
	struct __kernel_timespec ts = { .tv_nsec = 10 * 1000000L };
	int fds_before = count_open_fds(), sv[2], tv[2], round, reused = 0;
	struct io_uring_cqe *cqe;
	struct ipcsock_loop *loop;
	struct ipcsock *sock;
	unsigned int head, n;
	struct io_uring ring;
	uint64_t deadline;
	char buf[64];

	if (!sqpoll_lagging(&p, true))
		TH_LOG("cannot make the SQPOLL thread lag: not root?");
	ASSERT_EQ(0, io_uring_queue_init_params(64, &ring, &p));
	loop = ipcsock_loop_new_shared(&ring, NULL);
	ASSERT_NE(NULL, loop);
	for (round = 0; round < 8; round++) {
		sock = ipcsock_new(loop);
		ASSERT_NE(NULL, sock);
		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC,
					0, sv));
		ASSERT_EQ(0, ipcsock_bind(sock, sv[0]));
		ipcsock_free(sock);
		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC,
					0, tv));
		reused += tv[0] == sv[0] || tv[1] == sv[0];
		ASSERT_LT(0, raw_send_msg(tv[0], "app", 3, NULL, 0));
		ASSERT_LT(0, raw_send_msg(tv[1], "app", 3, NULL, 0));

		deadline = now_ms() + WAIT_MS;
		while (!ipcsock_loop_idle(loop) && now_ms() < deadline) {
			io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts,
							 NULL);
			n = 0;
			io_uring_for_each_cqe(&ring, head, cqe) {
				ipcsock_loop_handle_cqe(loop, cqe);
				n++;
			}
			io_uring_cq_advance(&ring, n);
			ipcsock_loop_dispatch(loop, 0);
		}
		EXPECT_TRUE(ipcsock_loop_idle(loop));
		/* The application's messages are where it sent them. */
		EXPECT_EQ(TEST_WIRE_HDR_LEN + 3,
			  raw_recv(tv[0], buf, sizeof(buf), NULL, 0, NULL,
				   NULL))
			TH_LOG("round %d: a receive of the library's took the message on the reused fd %d",
			       round, tv[0]);
		EXPECT_EQ(TEST_WIRE_HDR_LEN + 3,
			  raw_recv(tv[1], buf, sizeof(buf), NULL, 0, NULL,
				   NULL))
			TH_LOG("round %d: a receive of the library's took the message on the reused fd %d",
			       round, tv[1]);
		/* And the library's socket is closed: its peer sees EOF. */
		EXPECT_EQ(0, raw_recv(sv[1], buf, sizeof(buf), NULL, 0, NULL,
				      NULL));
		close(sv[1]);
		close(tv[0]);
		close(tv[1]);
	}
	TH_LOG("the application got the closed socket's number back in %d of 8 rounds",
	       reused);
	ipcsock_loop_free(loop);
	io_uring_queue_exit(&ring);
	EXPECT_EQ(fds_before, count_open_fds());
}

/*
 * Newer than liburing 2.3's header: the kernel's numbers (6.18). lib/uring.h
 * has the same for the library; a selftest uses the public API and not the
 * library's private headers, so it names the kernel's values itself.
 */
#ifndef IORING_SETUP_NO_MMAP
#define IORING_SETUP_NO_MMAP		(1U << 14)
#endif
#ifndef IORING_SETUP_REGISTERED_FD_ONLY
#define IORING_SETUP_REGISTERED_FD_ONLY	(1U << 15)
#endif
#ifndef IORING_SETUP_NO_SQARRAY
#define IORING_SETUP_NO_SQARRAY		(1U << 16)
#endif
#ifndef IORING_SETUP_HYBRID_IOPOLL
#define IORING_SETUP_HYBRID_IOPOLL	(1U << 17)
#endif
#ifndef IORING_SETUP_CQE_MIXED
#define IORING_SETUP_CQE_MIXED		(1U << 18)
#endif

/*
 * liburing 2.3 can set up neither a NO_MMAP ring (it maps the rings
 * itself) nor a NO_SQARRAY one (it fills the SQ index array, whose offset
 * such a ring reports as 0: it would write over the ring's heads). Do
 * what a newer liburing does. The memory is the ring's until
 * ring_exit_raw().
 */
struct raw_ring {
	void *rings, *sqes;
	size_t rings_len, sqes_len;
};

static int ring_init_raw(struct io_uring *ring, struct raw_ring *raw,
			 unsigned int entries, struct io_uring_params *p)
{
	size_t sqe_size = sizeof(struct io_uring_sqe) <<
			  !!(p->flags & IORING_SETUP_SQE128);
	size_t cqe_size = sizeof(struct io_uring_cqe) <<
			  !!(p->flags & IORING_SETUP_CQE32);
	struct io_uring_sq *sq = &ring->sq;
	struct io_uring_cq *cq = &ring->cq;
	unsigned char *base;
	unsigned int i;
	int fd;

	memset(ring, 0, sizeof(*ring));
	memset(raw, 0, sizeof(*raw));
	if (p->flags & IORING_SETUP_NO_MMAP) {
		/* Generous: the kernel takes what its layout needs. */
		raw->rings_len = 64 * 1024;
		raw->sqes_len = entries * sqe_size;
		raw->rings = mmap(NULL, raw->rings_len, PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		raw->sqes = mmap(NULL, raw->sqes_len, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (raw->rings == MAP_FAILED || raw->sqes == MAP_FAILED)
			return -ENOMEM;
		memset(raw->rings, 0, raw->rings_len);
		memset(raw->sqes, 0, raw->sqes_len);
		/* user_addr, resv2 in liburing 2.3's header */
		p->cq_off.resv2 = (uintptr_t)raw->rings;
		p->sq_off.resv2 = (uintptr_t)raw->sqes;
	}
	fd = syscall(__NR_io_uring_setup, entries, p);
	if (fd < 0)
		return -errno;
	if (!(p->flags & IORING_SETUP_NO_MMAP)) {
		raw->rings_len = p->cq_off.cqes + p->cq_entries * cqe_size;
		if (!(p->flags & IORING_SETUP_NO_SQARRAY) &&
		    raw->rings_len < p->sq_off.array + p->sq_entries * 4)
			raw->rings_len = p->sq_off.array + p->sq_entries * 4;
		raw->sqes_len = p->sq_entries * sqe_size;
		raw->rings = mmap(NULL, raw->rings_len, PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_POPULATE, fd,
				  IORING_OFF_SQ_RING);
		raw->sqes = mmap(NULL, raw->sqes_len, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
		if (raw->rings == MAP_FAILED || raw->sqes == MAP_FAILED) {
			close(fd);
			return -ENOMEM;
		}
	}
	base = raw->rings;
	sq->khead = (unsigned int *)(base + p->sq_off.head);
	sq->ktail = (unsigned int *)(base + p->sq_off.tail);
	sq->kring_mask = (unsigned int *)(base + p->sq_off.ring_mask);
	sq->kring_entries = (unsigned int *)(base + p->sq_off.ring_entries);
	sq->kflags = (unsigned int *)(base + p->sq_off.flags);
	sq->kdropped = (unsigned int *)(base + p->sq_off.dropped);
	if (!(p->flags & IORING_SETUP_NO_SQARRAY)) {
		sq->array = (unsigned int *)(base + p->sq_off.array);
		for (i = 0; i < p->sq_entries; i++)
			sq->array[i] = i;
	}
	sq->sqes = raw->sqes;
	sq->ring_mask = *sq->kring_mask;
	sq->ring_entries = *sq->kring_entries;
	sq->ring_ptr = raw->rings;
	sq->ring_sz = raw->rings_len;
	cq->khead = (unsigned int *)(base + p->cq_off.head);
	cq->ktail = (unsigned int *)(base + p->cq_off.tail);
	cq->kring_mask = (unsigned int *)(base + p->cq_off.ring_mask);
	cq->kring_entries = (unsigned int *)(base + p->cq_off.ring_entries);
	cq->koverflow = (unsigned int *)(base + p->cq_off.overflow);
	cq->cqes = (struct io_uring_cqe *)(base + p->cq_off.cqes);
	cq->kflags = (unsigned int *)(base + p->cq_off.flags);
	cq->ring_mask = *cq->kring_mask;
	cq->ring_entries = *cq->kring_entries;
	cq->ring_ptr = raw->rings;
	cq->ring_sz = raw->rings_len;
	ring->flags = p->flags;
	ring->ring_fd = ring->enter_ring_fd = fd;
	ring->features = p->features;
	return 0;
}

static void ring_exit_raw(struct io_uring *ring, struct raw_ring *raw)
{
	close(ring->ring_fd);
	munmap(raw->rings, raw->rings_len);
	munmap(raw->sqes, raw->sqes_len);
}

/*
 * Which rings ipcsock_loop_new_shared() takes. It refuses, with EINVAL,
 * the setups the library cannot work on: IOPOLL (sockets cannot be polled
 * for completion; every request fails with EINVAL), a ring still disabled
 * (IORING_SETUP_R_DISABLED: nothing can be submitted), one whose fd is
 * registered only (the library registers its buffer rings through the
 * fd), and flags it does not know. Every other setup must work: an
 * exchange both ways, close, hang-up, idle, no fd left.
 */
FIXTURE(ring_setup)
{
	struct app app;
	struct io_uring wq;
	struct raw_ring raw;
	bool ring_made, wq_made;
};

FIXTURE_VARIANT(ring_setup)
{
	unsigned int flags;
	bool refused;
	bool raw;		/* set up by hand (liburing 2.3 cannot) */
	bool enable;		/* enable the R_DISABLED ring first */
	unsigned int fake;	/* flags only claimed in ring->flags */
};

FIXTURE_VARIANT_ADD(ring_setup, sqpoll)
{
	.flags = IORING_SETUP_SQPOLL,
};

FIXTURE_VARIANT_ADD(ring_setup, sqpoll_sq_aff)
{
	.flags = IORING_SETUP_SQPOLL | IORING_SETUP_SQ_AFF,
};

FIXTURE_VARIANT_ADD(ring_setup, coop_taskrun)
{
	.flags = IORING_SETUP_COOP_TASKRUN,
};

FIXTURE_VARIANT_ADD(ring_setup, taskrun_flag)
{
	.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
};

FIXTURE_VARIANT_ADD(ring_setup, single_issuer)
{
	.flags = IORING_SETUP_SINGLE_ISSUER,
};

FIXTURE_VARIANT_ADD(ring_setup, sqe128)
{
	.flags = IORING_SETUP_SQE128,
};

FIXTURE_VARIANT_ADD(ring_setup, cqe32)
{
	.flags = IORING_SETUP_CQE32,
};

FIXTURE_VARIANT_ADD(ring_setup, defer_taskrun_sqe128_cqe32)
{
	.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		 IORING_SETUP_SQE128 | IORING_SETUP_CQE32,
};

FIXTURE_VARIANT_ADD(ring_setup, cqe_mixed)
{
	.flags = IORING_SETUP_CQE_MIXED,
};

FIXTURE_VARIANT_ADD(ring_setup, cqsize_clamp_submit_all)
{
	.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP |
		 IORING_SETUP_SUBMIT_ALL,
};

FIXTURE_VARIANT_ADD(ring_setup, attach_wq)
{
	.flags = IORING_SETUP_ATTACH_WQ,
};

FIXTURE_VARIANT_ADD(ring_setup, r_disabled_enabled)
{
	.flags = IORING_SETUP_R_DISABLED | IORING_SETUP_SINGLE_ISSUER,
	.enable = true,
};

FIXTURE_VARIANT_ADD(ring_setup, no_mmap)
{
	.flags = IORING_SETUP_NO_MMAP,
	.raw = true,
};

FIXTURE_VARIANT_ADD(ring_setup, no_sqarray)
{
	.flags = IORING_SETUP_NO_SQARRAY,
	.raw = true,
};

FIXTURE_VARIANT_ADD(ring_setup, no_sqarray_sqpoll)
{
	.flags = IORING_SETUP_NO_SQARRAY | IORING_SETUP_SQPOLL,
	.raw = true,
};

FIXTURE_VARIANT_ADD(ring_setup, iopoll)
{
	.flags = IORING_SETUP_IOPOLL,
	.refused = true,
};

FIXTURE_VARIANT_ADD(ring_setup, hybrid_iopoll)
{
	.flags = IORING_SETUP_IOPOLL | IORING_SETUP_HYBRID_IOPOLL,
	.refused = true,
};

FIXTURE_VARIANT_ADD(ring_setup, r_disabled)
{
	.flags = IORING_SETUP_R_DISABLED,
	.refused = true,
};

FIXTURE_VARIANT_ADD(ring_setup, registered_fd_only)
{
	.fake = IORING_SETUP_REGISTERED_FD_ONLY,
	.refused = true,
};

FIXTURE_VARIANT_ADD(ring_setup, unknown_flag)
{
	.fake = 1U << 24,
	.refused = true,
};

FIXTURE_SETUP(ring_setup)
{
	struct io_uring_params p = {
		.flags = variant->flags,
		.sq_thread_idle = 10,
		.cq_entries = 256,
	};
	struct app *app = &self->app;
	int ret;

	app->fds_before = count_open_fds();
	app->order_ok = true;
	if (p.flags & IORING_SETUP_ATTACH_WQ) {
		ASSERT_EQ(0, io_uring_queue_init(8, &self->wq, 0));
		self->wq_made = true;
		p.wq_fd = self->wq.ring_fd;
	}
	ret = variant->raw ? ring_init_raw(&app->ring, &self->raw, 64, &p) :
			     io_uring_queue_init_params(64, &app->ring, &p);
	ASSERT_EQ(0, ret);
	self->ring_made = true;
	if (variant->enable)
		ASSERT_EQ(0, syscall(__NR_io_uring_register, app->ring.ring_fd,
				     IORING_REGISTER_ENABLE_RINGS, NULL, 0));
	app->ring.flags |= variant->fake;
}

FIXTURE_TEARDOWN(ring_setup)
{
	struct app *app = &self->app;

	if (app->loop)
		app_close(_metadata, app);
	if (self->ring_made) {
		app->ring.flags &= ~variant->fake;
		if (variant->raw)
			ring_exit_raw(&app->ring, &self->raw);
		else
			io_uring_queue_exit(&app->ring);
	}
	if (self->wq_made)
		io_uring_queue_exit(&self->wq);
	EXPECT_EQ(app->fds_before, count_open_fds());
}

#define SETUP_MSGS	64

TEST_F(ring_setup, new_shared)
{
	struct app *app = &self->app;
	struct rec ra;
	uint64_t deadline;
	unsigned int i;

	if (variant->refused) {
		errno = 0;
		EXPECT_EQ(NULL, ipcsock_loop_new_shared(&app->ring, NULL));
		EXPECT_EQ(EINVAL, errno);
		return;
	}
	app_open(_metadata, app, NULL);
	rec_attach(&ra, app->a);
	ra.check_seq = true;
	for (i = 0; i < SETUP_MSGS; i++) {
		struct ipcsock_payload p = { .data = &i, .len = sizeof(i) };

		ASSERT_EQ(0, ipcsock_send(app->a, &p));
		ASSERT_EQ(0, ipcsock_send(app->b, &p));
	}
	deadline = now_ms() + WAIT_MS;
	while ((app->next_seq < SETUP_MSGS || ra.received < SETUP_MSGS) &&
	       now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 10));
	EXPECT_EQ(SETUP_MSGS, app->next_seq);
	EXPECT_TRUE(app->order_ok);
	EXPECT_EQ(SETUP_MSGS, ra.received);
	EXPECT_EQ(0, ra.bad);

	ipcsock_close(app->a);
	deadline = now_ms() + WAIT_MS;
	while (!app->hung_up && now_ms() < deadline)
		ASSERT_LE(0, app_turn(app, 10));
	EXPECT_TRUE(app->hung_up);
	EXPECT_EQ(0, app->hangup_err);
}

TEST_HARNESS_MAIN
