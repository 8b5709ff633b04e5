// SPDX-License-Identifier: GPL-2.0
/*
 * Callbacks and dispatch: ready_read runs from dispatch (at most once per
 * socket per call) while messages are pending and again on later
 * dispatches while some are left; dispatch returns the number of callbacks
 * run and honours its timeout; the loop fd polls readable while there is
 * work; callbacks may send, close or free their own socket; hangup runs
 * exactly once, after every message is receivable, with 0 for an orderly
 * close and -ECONNRESET when the peer left messages unread; after it, send
 * gives -EPIPE; SIGPIPE is never raised; a local close runs no hangup.
 */
#include "selftest.h"

FIXTURE(callbacks) {
	struct ipcsock_test t;
	struct ipcsock *a, *b;
	struct rec ra, rb;
};

BACKEND_VARIANTS(callbacks);

FIXTURE_SETUP(callbacks)
{
	ctx_setup(_metadata, &self->t, variant->backend);
	ctx_pair(_metadata, &self->t, self->t.loop, &self->a,
		 self->t.loop, &self->b);
}

FIXTURE_TEARDOWN(callbacks)
{
	ctx_teardown(_metadata, &self->t);
}

static int send_seq(struct ipcsock *sock, uint32_t seq, int *fds,
		    unsigned int nr_fds)
{
	struct ipcsock_payload p = msg_of(&seq, sizeof(seq), fds, nr_fds);

	return ipcsock_send(sock, &p);
}

static bool loop_fd_readable(struct ipcsock_loop *loop, int timeout_ms)
{
	return fd_wait_readable(ipcsock_loop_fd(loop), timeout_ms);
}

TEST_F(callbacks, ready_read_runs_from_dispatch)
{
	struct rec *rb = &self->rb;

	rec_attach(rb, self->b);
	rb->check_seq = true;
	ASSERT_EQ(0, send_seq(self->a, 0, NULL, 0));
	/* Not from inside send. */
	EXPECT_EQ(0, rb->ready);
	ASSERT_TRUE(dispatch_until(self->t.loop, rb->received == 1, WAIT_MS));
	EXPECT_EQ(1, rb->ready);
	EXPECT_EQ(0, rb->bad);
	EXPECT_EQ(0, rb->recv_err);
	EXPECT_EQ(0, rb->hangup);
	/* Nothing pending: no further calls. */
	dispatch_for(self->t.loop, 50);
	EXPECT_EQ(1, rb->ready);
}

TEST_F(callbacks, dispatch_returns_callbacks_run)
{
	struct rec *ra = &self->ra, *rb = &self->rb;
	int ret, total = 0, calls = 0;
	uint64_t deadline;
	uint32_t i;

	rec_attach(ra, self->a);
	rec_attach(rb, self->b);
	ra->per_call = 1;
	rb->per_call = 1;
	EXPECT_EQ(0, ipcsock_loop_dispatch(self->t.loop, 0));

	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, send_seq(self->a, i, NULL, 0));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, send_seq(self->b, i, NULL, 0));

	deadline = now_ms() + WAIT_MS;
	while ((ra->received < 2 || rb->received < 3) && now_ms() < deadline) {
		ret = ipcsock_loop_dispatch(self->t.loop, 5);
		ASSERT_LE(0, ret);
		/* Two sockets with callbacks, no hangup: at most 2 a call. */
		EXPECT_GE(2, ret);
		total += ret;
		calls++;
	}
	for (i = 0; i < 5; i++) {
		ret = ipcsock_loop_dispatch(self->t.loop, 0);
		ASSERT_LE(0, ret);
		total += ret;
	}
	EXPECT_EQ(2, ra->received);
	EXPECT_EQ(3, rb->received);
	EXPECT_EQ(ra->ready + rb->ready + ra->hangup + rb->hangup, total);
	/* One message per call and one call per message. */
	EXPECT_EQ(2, ra->ready);
	EXPECT_EQ(3, rb->ready);
	EXPECT_EQ(0, ipcsock_loop_dispatch(self->t.loop, 0));
}

TEST_F(callbacks, dispatch_honours_timeout)
{
	uint64_t t0, dt;

	/* Nothing to do: returns 0 after about the timeout. */
	t0 = now_ms();
	EXPECT_EQ(0, ipcsock_loop_dispatch(self->t.loop, 100));
	dt = now_ms() - t0;
	EXPECT_LE(80, dt);
	EXPECT_GT(1000, dt);

	t0 = now_ms();
	EXPECT_EQ(0, ipcsock_loop_dispatch(self->t.loop, 0));
	EXPECT_GT(50, now_ms() - t0);
}

TEST_F(callbacks, dispatch_forever_wakes_for_message)
{
	struct rec *rb = &self->rb;
	uint64_t t0 = now_ms();
	int i;

	rec_attach(rb, self->b);
	ASSERT_EQ(0, send_seq(self->a, 0, NULL, 0));
	/* -1 waits for work; the receive is work, so this cannot hang. */
	for (i = 0; i < 10 && !rb->received; i++)
		ASSERT_LE(0, ipcsock_loop_dispatch(self->t.loop, -1));
	EXPECT_EQ(1, rb->received);
	EXPECT_GT(2000, now_ms() - t0);
}

/*
 * A callback that leaves messages pending is called again on a later
 * dispatch, and the loop fd stays readable in between: nothing strands.
 */
TEST_F(callbacks, ready_read_again_while_pending)
{
	struct rec *rb = &self->rb;
	struct ipcsock_payload p;
	uint32_t i, v;
	int ready;

	rec_attach(rb, self->b);
	rb->no_receive = true;
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, send_seq(self->a, i, NULL, 0));

	ASSERT_TRUE(dispatch_until(self->t.loop, rb->ready >= 1, WAIT_MS));
	for (i = 0; i < 3; i++) {
		ready = rb->ready;
		EXPECT_TRUE(loop_fd_readable(self->t.loop, 0))
			TH_LOG("loop fd not readable with messages pending");
		EXPECT_EQ(1, ipcsock_loop_dispatch(self->t.loop, 0));
		EXPECT_EQ(ready + 1, rb->ready);
	}
	/* Still all there, in order. */
	for (i = 0; i < 3; i++) {
		memset(&p, 0, sizeof(p));
		ASSERT_EQ(0, ipcsock_receive(self->b, &p));
		ASSERT_EQ(sizeof(v), p.len);
		memcpy(&v, p.data, sizeof(v));
		EXPECT_EQ(i, v);
	}
	EXPECT_EQ(-EAGAIN, ipcsock_receive(self->b, &p));
	ready = rb->ready;
	dispatch_for(self->t.loop, 50);
	EXPECT_EQ(ready, rb->ready);
}

TEST_F(callbacks, one_call_per_dispatch)
{
	struct rec *rb = &self->rb;
	uint64_t deadline;
	uint32_t i;
	int ret;

	rec_attach(rb, self->b);
	rb->per_call = 1;
	rb->check_seq = true;
	for (i = 0; i < 5; i++)
		ASSERT_EQ(0, send_seq(self->a, i, NULL, 0));

	deadline = now_ms() + WAIT_MS;
	while (rb->received < 5 && now_ms() < deadline) {
		ret = ipcsock_loop_dispatch(self->t.loop, 5);
		EXPECT_LE(0, ret);
		EXPECT_GE(1, ret);
	}
	EXPECT_EQ(5, rb->received);
	EXPECT_EQ(5, rb->ready);
	EXPECT_EQ(0, rb->bad);
	dispatch_for(self->t.loop, 30);
	EXPECT_EQ(5, rb->ready);
}

TEST_F(callbacks, no_callback_messages_queue)
{
	struct ipcsock_payload p;
	uint32_t i, v;

	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, send_seq(self->a, i, NULL, 0));
	EXPECT_EQ(0, dispatch_for(self->t.loop, 50));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, receive_wait(self->t.loop, self->b, &p, WAIT_MS));
		memcpy(&v, p.data, sizeof(v));
		EXPECT_EQ(i, v);
	}
}

TEST_F(callbacks, callbacks_can_be_cleared)
{
	struct rec *rb = &self->rb;
	struct ipcsock_payload p;

	rec_attach(rb, self->b);
	ASSERT_EQ(0, send_seq(self->a, 0, NULL, 0));
	ASSERT_TRUE(dispatch_until(self->t.loop, rb->received == 1, WAIT_MS));
	ipcsock_set_ready_read(self->b, NULL, NULL);
	ipcsock_set_hangup(self->b, NULL, NULL);
	ASSERT_EQ(0, send_seq(self->a, 1, NULL, 0));
	EXPECT_EQ(0, dispatch_for(self->t.loop, 50));
	EXPECT_EQ(1, rb->ready);
	ASSERT_EQ(0, ipcsock_receive(self->b, &p));
	ipcsock_close(self->a);
	EXPECT_EQ(0, dispatch_for(self->t.loop, 50));
	EXPECT_EQ(0, rb->hangup);
}

/* The loop fd wakes a host poll loop when there is something to do. */
TEST_F(callbacks, loop_fd_readable_with_work)
{
	struct rec *rb = &self->rb;

	rec_attach(rb, self->b);
	ASSERT_LE(0, ipcsock_loop_fd(self->t.loop));
	ASSERT_EQ(0, send_seq(self->a, 7, NULL, 0));
	/* A host loop: poll the fd, then dispatch without waiting. */
	while (!rb->received) {
		ASSERT_TRUE(loop_fd_readable(self->t.loop, WAIT_MS))
			TH_LOG("loop fd not readable; %d received",
			       rb->received);
		ASSERT_LE(0, ipcsock_loop_dispatch(self->t.loop, 0));
	}
	EXPECT_EQ(1, rb->received);
}

/* And it does not keep a host poll loop spinning when there is none. */
TEST_F(callbacks, loop_fd_quiet_when_idle)
{
	struct rec *rb = &self->rb;
	int i;

	rec_attach(rb, self->b);
	ASSERT_LE(0, ipcsock_loop_fd(self->t.loop));
	ASSERT_EQ(0, send_seq(self->a, 1, NULL, 0));
	ASSERT_TRUE(dispatch_until(self->t.loop, rb->received == 1, WAIT_MS));
	for (i = 0; i < 5; i++)
		ipcsock_loop_dispatch(self->t.loop, 0);
	EXPECT_FALSE(loop_fd_readable(self->t.loop, 50))
		TH_LOG("loop fd readable with nothing to do");
}

/* A host loop driven only by the loop fd gets every message. */
TEST_F(callbacks, host_poll_loop_stream)
{
	struct rec *rb = &self->rb;
	uint64_t deadline;
	uint32_t i;

	rec_attach(rb, self->b);
	rb->per_call = 1;
	rb->check_seq = true;
	for (i = 0; i < 100; i++)
		ASSERT_EQ(0, send_seq(self->a, i, NULL, 0));
	deadline = now_ms() + WAIT_MS;
	while (rb->received < 100 && now_ms() < deadline) {
		if (!loop_fd_readable(self->t.loop, 1000))
			break;
		ipcsock_loop_dispatch(self->t.loop, 0);
	}
	EXPECT_EQ(100, rb->received);
	EXPECT_EQ(0, rb->bad);
}

/* Callbacks that close or free their own socket. */
struct self_destruct {
	struct ipcsock_test *t;
	int ready;
	int hangup;
	bool do_free;
};

static void sd_ready_read(struct ipcsock *sock, void *arg)
{
	struct self_destruct *sd = arg;

	sd->ready++;
	if (sd->do_free) {
		ctx_forget_sock(sd->t, sock);
		ipcsock_free(sock);
	} else {
		ipcsock_close(sock);
	}
}

static void sd_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct self_destruct *sd = arg;

	sd->hangup++;
	if (sd->do_free) {
		ctx_forget_sock(sd->t, sock);
		ipcsock_free(sock);
	} else {
		ipcsock_close(sock);
	}
}

static void self_destruct_in_ready_read(struct __test_metadata *_metadata,
					struct ipcsock_test *t,
					struct ipcsock *a, struct ipcsock *b,
					bool do_free)
{
	struct self_destruct sd = { .t = t, .do_free = do_free };
	int mfd, i;

	mfd = memfd_with("sd", "x");
	ctx_fd(_metadata, t, mfd);
	ipcsock_set_ready_read(b, sd_ready_read, &sd);
	ipcsock_set_hangup(b, sd_hangup, &sd);
	for (i = 0; i < 5; i++)
		ASSERT_EQ(0, send_seq(a, i, &mfd, 1));

	ASSERT_TRUE(dispatch_until(t->loop, sd.ready == 1, WAIT_MS));
	dispatch_for(t->loop, 50);
	EXPECT_EQ(1, sd.ready);
	/* A local close runs no hangup. */
	EXPECT_EQ(0, sd.hangup);
	if (!do_free)
		EXPECT_FALSE(ipcsock_is_bound(b));
	/* The rest of the channel is unaffected. */
	EXPECT_TRUE(ipcsock_is_bound(a));
}

TEST_F(callbacks, ready_read_closes_own_socket)
{
	self_destruct_in_ready_read(_metadata, &self->t, self->a, self->b,
				    false);
}

TEST_F(callbacks, ready_read_frees_own_socket)
{
	self_destruct_in_ready_read(_metadata, &self->t, self->a, self->b,
				    true);
}

static void self_destruct_in_hangup(struct __test_metadata *_metadata,
				    struct ipcsock_test *t, struct ipcsock *a,
				    struct ipcsock *b, bool do_free)
{
	struct self_destruct sd = { .t = t, .do_free = do_free };

	ipcsock_set_hangup(b, sd_hangup, &sd);
	ASSERT_EQ(0, send_seq(a, 0, NULL, 0));
	ipcsock_close(a);
	ASSERT_TRUE(dispatch_until(t->loop, sd.hangup == 1, WAIT_MS));
	dispatch_for(t->loop, 50);
	EXPECT_EQ(1, sd.hangup);
	if (!do_free)
		EXPECT_FALSE(ipcsock_is_bound(b));
}

TEST_F(callbacks, hangup_closes_own_socket)
{
	self_destruct_in_hangup(_metadata, &self->t, self->a, self->b, false);
}

TEST_F(callbacks, hangup_frees_own_socket)
{
	self_destruct_in_hangup(_metadata, &self->t, self->a, self->b, true);
}

/* Ping-pong driven entirely by sends made inside callbacks. */
struct pingpong {
	uint32_t rounds;
	uint32_t seen;
	int bad;
	bool echo;		/* this side echoes, the other counts */
};

static void pp_ready_read(struct ipcsock *sock, void *arg)
{
	struct pingpong *pp = arg;
	struct ipcsock_payload p;
	uint32_t v;

	while (ipcsock_receive(sock, &p) == 0) {
		if (p.len != sizeof(v)) {
			pp->bad++;
			continue;
		}
		memcpy(&v, p.data, sizeof(v));
		if (pp->echo) {
			if (send_seq(sock, v, NULL, 0))
				pp->bad++;
			continue;
		}
		if (v != pp->seen)
			pp->bad++;
		pp->seen = v + 1;
		if (pp->seen < pp->rounds && send_seq(sock, pp->seen, NULL, 0))
			pp->bad++;
	}
}

static void pingpong(struct __test_metadata *_metadata, struct ipcsock_test *t,
		     struct ipcsock_loop *la, struct ipcsock *a,
		     struct ipcsock_loop *lb, struct ipcsock *b)
{
	struct pingpong pa = { .rounds = 1000 }, pb = { .echo = true };

	ipcsock_set_ready_read(a, pp_ready_read, &pa);
	ipcsock_set_ready_read(b, pp_ready_read, &pb);
	ASSERT_EQ(0, send_seq(a, 0, NULL, 0));
	if (la == lb) {
		EXPECT_TRUE(dispatch_until(la, pa.seen == pa.rounds, 20000));
	} else {
		EXPECT_TRUE(dispatch2_until(la, lb, pa.seen == pa.rounds,
					    20000));
	}
	EXPECT_EQ(pa.rounds, pa.seen);
	EXPECT_EQ(0, pa.bad);
	EXPECT_EQ(0, pb.bad);
}

TEST_F_TIMEOUT(callbacks, send_inside_callback_same_loop, 60)
{
	pingpong(_metadata, &self->t, self->t.loop, self->a, self->t.loop,
		 self->b);
}

TEST_F_TIMEOUT(callbacks, send_inside_callback_two_loops, 60)
{
	struct ipcsock_loop *l2;
	struct ipcsock *c, *d;

	l2 = ctx_loop(_metadata, &self->t, 0, 0, 0);
	ctx_pair(_metadata, &self->t, self->t.loop, &c, l2, &d);
	pingpong(_metadata, &self->t, self->t.loop, c, l2, d);
}

/*
 * A reply sent inside a callback is on its way when that dispatch returns:
 * the raw peer sees it without any further call into the library.
 */
static void reply_ready_read(struct ipcsock *sock, void *arg)
{
	struct ipcsock_payload p;
	int *replied = arg;

	while (ipcsock_receive(sock, &p) == 0)
		if (send_str(sock, "pong") == 0)
			(*replied)++;
}

TEST_F(callbacks, callback_send_goes_out_after_dispatch)
{
	unsigned char buf[64];
	struct ipcsock *c;
	int remote, replied = 0;
	uint64_t deadline;

	remote = ctx_raw_pair(_metadata, &self->t, self->t.loop, &c);
	ipcsock_set_ready_read(c, reply_ready_read, &replied);
	ASSERT_EQ(TEST_WIRE_HDR_LEN + 4, raw_send_msg(remote, "ping", 4,
						      NULL, 0));
	deadline = now_ms() + WAIT_MS;
	while (!replied && now_ms() < deadline)
		ipcsock_loop_dispatch(self->t.loop, 5);
	ASSERT_EQ(1, replied);
	/* No more dispatch, no flush: it must arrive on its own. */
	ASSERT_TRUE(fd_wait_readable(remote, 2000));
	EXPECT_EQ(TEST_WIRE_HDR_LEN + 4,
		  raw_recv(remote, buf, sizeof(buf), NULL, 0, NULL, NULL));
	EXPECT_EQ(0, memcmp(buf + TEST_WIRE_HDR_LEN, "pong", 4));
}

TEST_F(callbacks, flush_submits_callback_sends)
{
	unsigned char buf[64];
	struct ipcsock *c;
	int remote, replied = 0;

	remote = ctx_raw_pair(_metadata, &self->t, self->t.loop, &c);
	ipcsock_set_ready_read(c, reply_ready_read, &replied);
	ASSERT_EQ(TEST_WIRE_HDR_LEN + 4, raw_send_msg(remote, "ping", 4,
						      NULL, 0));
	ASSERT_TRUE(dispatch_until(self->t.loop, replied == 1, WAIT_MS));
	EXPECT_LE(0, ipcsock_loop_flush(self->t.loop));
	ASSERT_TRUE(fd_wait_readable(remote, 2000));
	EXPECT_EQ(TEST_WIRE_HDR_LEN + 4,
		  raw_recv(remote, buf, sizeof(buf), NULL, 0, NULL, NULL));
	/* Nothing queued: flush is a no-op. */
	EXPECT_LE(0, ipcsock_loop_flush(self->t.loop));
}

/*
 * Peer closes after sending: hangup(0) comes once, after every message is
 * receivable (the slow ready_read takes one per call; the hangup callback
 * drains whatever is left and must find all of it).
 */
TEST_F(callbacks, hangup_after_all_messages)
{
	struct rec *rb = &self->rb;
	struct ipcsock_payload p;
	int mfd;
	uint32_t i;

	mfd = memfd_with("hup", "h");
	ctx_fd(_metadata, &self->t, mfd);
	rec_attach(rb, self->b);
	rb->per_call = 1;
	rb->check_seq = true;
	rb->receive_in_hangup = true;
	for (i = 0; i < 10; i++)
		ASSERT_EQ(0, send_seq(self->a, i, &mfd, i & 1));
	ipcsock_close(self->a);

	ASSERT_TRUE(dispatch_until(self->t.loop, rb->hangup, WAIT_MS));
	EXPECT_EQ(10, rb->received_at_hangup);
	EXPECT_EQ(0, rb->hangup_err);
	EXPECT_EQ(0, rb->bad);
	EXPECT_EQ(5, rb->fds);
	dispatch_for(self->t.loop, 100);
	EXPECT_EQ(1, rb->hangup);
	EXPECT_EQ(10, rb->received);

	/* Still bound until the caller closes it; sends fail with -EPIPE. */
	EXPECT_TRUE(ipcsock_is_bound(self->b));
	EXPECT_EQ(-EAGAIN, ipcsock_receive(self->b, &p));
	EXPECT_EQ(-EPIPE, send_seq(self->b, 99, NULL, 0));
	EXPECT_EQ(-EPIPE, send_seq(self->b, 99, &mfd, 1));
	EXPECT_TRUE(fd_is_open(mfd));
	ipcsock_close(self->b);
	EXPECT_EQ(-ENOTCONN, send_seq(self->b, 99, NULL, 0));
	EXPECT_EQ(1, rb->hangup);
}

/*
 * The same with a raw peer: the kernel has all messages and EOF queued.
 * ready_read takes one message per call; the messages not yet received
 * when hangup runs must be receivable from inside it.
 */
/*
 * A raw peer queues 20 numbered messages and EOF for a channel whose
 * ready_read takes one message per call; @rc records it all.
 */
static void twenty_then_eof(struct __test_metadata *_metadata,
			    struct ipcsock_test *t, struct rec *rc,
			    bool receive_in_hangup)
{
	struct ipcsock *c;
	int remote;
	uint32_t i;

	remote = ctx_raw_pair(_metadata, t, t->loop, &c);
	rec_attach(rc, c);
	rc->per_call = 1;
	rc->check_seq = true;
	rc->receive_in_hangup = receive_in_hangup;
	for (i = 0; i < 20; i++)
		ASSERT_EQ(TEST_WIRE_HDR_LEN + 4,
			  raw_send_msg(remote, &i, sizeof(i), NULL, 0));
	ctx_close_fd(t, remote);
}

TEST_F(callbacks, hangup_after_all_messages_raw_peer)
{
	struct rec *rc = &self->ra;

	twenty_then_eof(_metadata, &self->t, rc, true);
	ASSERT_TRUE(dispatch_until(self->t.loop, rc->hangup, WAIT_MS));
	EXPECT_EQ(20, rc->received_at_hangup);
	EXPECT_EQ(0, rc->hangup_err);
	EXPECT_EQ(0, rc->bad);
	dispatch_for(self->t.loop, 100);
	EXPECT_EQ(1, rc->hangup);
	EXPECT_EQ(20, rc->received);
}

/*
 * A hangup callback that receives nothing: the messages still pending keep
 * coming through ready_read afterwards, nothing is stranded, and hangup
 * does not run again.
 */
TEST_F(callbacks, messages_after_hangup_still_delivered)
{
	struct rec *rc = &self->ra;

	twenty_then_eof(_metadata, &self->t, rc, false);
	ASSERT_TRUE(dispatch_until(self->t.loop, rc->received == 20 &&
				   rc->hangup, WAIT_MS));
	EXPECT_EQ(0, rc->hangup_err);
	EXPECT_EQ(0, rc->bad);
	dispatch_for(self->t.loop, 100);
	EXPECT_EQ(1, rc->hangup);
	EXPECT_EQ(20, rc->received);
	EXPECT_EQ(20, rc->ready);
}

/* Without ready_read, the hangup callback can still receive everything. */
TEST_F(callbacks, hangup_without_ready_read)
{
	struct rec *rb = &self->rb;
	uint32_t i;

	rec_attach(rb, self->b);
	ipcsock_set_ready_read(self->b, NULL, NULL);
	rb->receive_in_hangup = true;
	rb->check_seq = true;
	for (i = 0; i < 5; i++)
		ASSERT_EQ(0, send_seq(self->a, i, NULL, 0));
	ipcsock_close(self->a);
	ASSERT_TRUE(dispatch_until(self->t.loop, rb->hangup, WAIT_MS));
	EXPECT_EQ(5, rb->received_at_hangup);
	EXPECT_EQ(0, rb->hangup_err);
	EXPECT_EQ(0, rb->bad);
	EXPECT_EQ(0, rb->ready);
}

/* The peer closed with a message it never read: -ECONNRESET. */
TEST_F(callbacks, hangup_econnreset_unread)
{
	struct rec *rc = &self->ra;
	struct ipcsock *c;
	int remote, mfd;

	remote = ctx_raw_pair(_metadata, &self->t, self->t.loop, &c);
	rec_attach(rc, c);
	mfd = memfd_with("unread", "u");
	ctx_fd(_metadata, &self->t, mfd);
	ASSERT_EQ(0, send_seq(c, 1, &mfd, 1));
	ASSERT_TRUE(fd_wait_readable(remote, WAIT_MS));
	ctx_close_fd(&self->t, remote);

	ASSERT_TRUE(dispatch_until(self->t.loop, rc->hangup, WAIT_MS));
	EXPECT_EQ(-ECONNRESET, rc->hangup_err);
	dispatch_for(self->t.loop, 50);
	EXPECT_EQ(1, rc->hangup);
	EXPECT_EQ(-EPIPE, send_seq(c, 2, NULL, 0));
}

/*
 * Sends to a peer that is gone: no SIGPIPE (it is SIG_DFL here, so one
 * would kill the test), hangup once, -EPIPE afterwards, no fd leaks.
 */
TEST_F(callbacks, no_sigpipe_after_peer_close)
{
	struct rec *rc = &self->ra;
	struct sigaction sa;
	struct ipcsock *c;
	int remote, mfd, ret;
	uint32_t i;

	ASSERT_EQ(0, sigaction(SIGPIPE, NULL, &sa));
	ASSERT_TRUE(sa.sa_handler == SIG_DFL);

	remote = ctx_raw_pair(_metadata, &self->t, self->t.loop, &c);
	rec_attach(rc, c);
	mfd = memfd_with("sigpipe", "s");
	ctx_fd(_metadata, &self->t, mfd);
	ctx_close_fd(&self->t, remote);

	/* Before the library can have noticed: sends hit a dead socket. */
	for (i = 0; i < 50; i++) {
		ret = send_seq(c, i, &mfd, 1);
		EXPECT_TRUE(ret == 0 || ret == -EPIPE) TH_LOG("send: %d", ret);
	}
	ASSERT_TRUE(dispatch_until(self->t.loop, rc->hangup, WAIT_MS));
	dispatch_for(self->t.loop, 50);
	EXPECT_EQ(1, rc->hangup);
	EXPECT_EQ(-EPIPE, send_seq(c, 99, &mfd, 1));
	EXPECT_TRUE(fd_is_open(mfd));
}

/*
 * The first send after the peer closed, before the loop saw the close:
 * sent during the call (nothing queued), the kernel refuses it and the
 * call says -EPIPE at once; on a loop with IPCSOCK_LOOP_RING_SENDS every
 * message is queued for the ring, so the call says 0 and the hangup tells.
 * Either way nothing arrives, the hangup runs once, with 0, and every send
 * after it gives -EPIPE (ipcsock_send(3), NOTES).
 */
TEST_F(callbacks, first_send_after_peer_close)
{
	int first = self->t.backend == BACKEND_URING_RING_SENDS ? 0 : -EPIPE;
	struct rec *rc = &self->ra;
	struct ipcsock *c;
	int remote, mfd;

	remote = ctx_raw_pair(_metadata, &self->t, self->t.loop, &c);
	rec_attach(rc, c);
	mfd = memfd_with("first", "f");
	ctx_fd(_metadata, &self->t, mfd);
	ctx_close_fd(&self->t, remote);

	EXPECT_EQ(first, send_seq(c, 1, NULL, 0));
	EXPECT_EQ(first, send_seq(c, 2, &mfd, 1));
	EXPECT_EQ(0, rc->hangup);
	ASSERT_TRUE(dispatch_until(self->t.loop, rc->hangup, WAIT_MS));
	dispatch_for(self->t.loop, 50);
	EXPECT_EQ(1, rc->hangup);
	EXPECT_EQ(0, rc->hangup_err);
	EXPECT_EQ(-EPIPE, send_seq(c, 3, NULL, 0));
	EXPECT_EQ(-EPIPE, send_seq(c, 4, &mfd, 1));
	EXPECT_TRUE(fd_is_open(mfd));
}

/* The peer goes away with a large backlog queued: all dropped, no leak. */
TEST_F(callbacks, peer_close_with_backlog)
{
	enum { LEN = 16 * 1024 };
	static unsigned char data[LEN];
	struct rec *rc = &self->ra;
	struct ipcsock_payload p;
	struct ipcsock *c;
	int remote, mfd, i;

	remote = ctx_raw_pair(_metadata, &self->t, self->t.loop, &c);
	rec_attach(rc, c);
	mfd = memfd_with("backlog", "b");
	ctx_fd(_metadata, &self->t, mfd);
	for (i = 0; i < 100; i++) {
		p = msg_of(data, LEN, &mfd, 1);
		ASSERT_EQ(0, ipcsock_send(c, &p));
	}
	ctx_close_fd(&self->t, remote);
	ASSERT_TRUE(dispatch_until(self->t.loop, rc->hangup, WAIT_MS));
	dispatch_for(self->t.loop, 50);
	EXPECT_EQ(1, rc->hangup);
	/* The messages it never read were ours. */
	EXPECT_EQ(-ECONNRESET, rc->hangup_err);
	EXPECT_EQ(-EPIPE, send_seq(c, 1, NULL, 0));
}

/* Bound to a socket whose peer is already gone: hangup(0) on dispatch. */
TEST_F(callbacks, bind_to_dead_peer)
{
	struct rec *rc = &self->ra;
	struct ipcsock *c;
	int sv[2];
	uint32_t seq = 0;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	/* One message waits, then the peer is gone. */
	ASSERT_EQ(TEST_WIRE_HDR_LEN + 4, raw_send_msg(sv[1], &seq, 4, NULL, 0));
	close(sv[1]);
	c = ctx_sock(_metadata, &self->t, self->t.loop);
	rec_attach(rc, c);
	rc->check_seq = true;
	ASSERT_EQ(0, ipcsock_bind(c, sv[0]));
	ASSERT_TRUE(dispatch_until(self->t.loop, rc->hangup, WAIT_MS));
	EXPECT_EQ(1, rc->received);
	EXPECT_EQ(0, rc->hangup_err);
	EXPECT_EQ(-EPIPE, send_seq(c, 1, NULL, 0));
}

/* Many channels on one loop, each with its own callbacks and traffic. */
TEST_F_TIMEOUT(callbacks, many_sockets_one_loop, 60)
{
	enum { PAIRS = 64, MSGS = 50 };
	static struct rec rx[PAIRS];
	struct ipcsock *a[PAIRS], *b[PAIRS];
	int i, j, remote, done;
	uint64_t deadline;

	for (i = 0; i < PAIRS; i++) {
		a[i] = ipcsock_new(self->t.loop);
		b[i] = ipcsock_new(self->t.loop);
		ASSERT_NE(NULL, a[i]);
		ASSERT_NE(NULL, b[i]);
		remote = ipcsock_create(a[i]);
		ASSERT_LE(0, remote);
		ASSERT_EQ(0, ipcsock_bind(b[i], remote));
		rec_attach(&rx[i], b[i]);
		rx[i].check_seq = true;
		rx[i].per_call = 3;
	}
	for (j = 0; j < MSGS; j++) {
		for (i = 0; i < PAIRS; i++)
			ASSERT_EQ(0, send_seq(a[i], j, NULL, 0));
		ipcsock_loop_dispatch(self->t.loop, 0);
	}
	/* Half the channels close their sending end half way through. */
	for (i = 0; i < PAIRS; i += 2)
		ipcsock_close(a[i]);

	deadline = now_ms() + 20000;
	do {
		ipcsock_loop_dispatch(self->t.loop, 5);
		for (done = 0, i = 0; i < PAIRS; i++)
			done += rx[i].received == MSGS &&
				(i % 2 || rx[i].hangup);
	} while (done < PAIRS && now_ms() < deadline);
	EXPECT_EQ(PAIRS, done);
	for (i = 0; i < PAIRS; i++) {
		EXPECT_EQ(MSGS, rx[i].received) TH_LOG("channel %d", i);
		EXPECT_EQ(0, rx[i].bad) TH_LOG("channel %d", i);
		EXPECT_EQ(i % 2 ? 0 : 1, rx[i].hangup) TH_LOG("channel %d", i);
	}
	for (i = 0; i < PAIRS; i++) {
		ipcsock_free(a[i]);
		ipcsock_free(b[i]);
	}
}

/* A local close runs no hangup callback; the peer's runs with 0. */
TEST_F(callbacks, local_close_runs_no_hangup)
{
	struct rec *ra = &self->ra, *rb = &self->rb;

	rec_attach(ra, self->a);
	rec_attach(rb, self->b);
	ASSERT_EQ(0, send_seq(self->b, 0, NULL, 0));
	ASSERT_TRUE(dispatch_until(self->t.loop, ra->received == 1, WAIT_MS));
	ipcsock_close(self->a);
	ASSERT_TRUE(dispatch_until(self->t.loop, rb->hangup == 1, WAIT_MS));
	dispatch_for(self->t.loop, 100);
	EXPECT_EQ(0, ra->hangup);
	EXPECT_EQ(1, rb->hangup);
	EXPECT_EQ(0, rb->hangup_err);
	EXPECT_EQ(-ENOTCONN, send_seq(self->a, 0, NULL, 0));
}

TEST_HARNESS_MAIN
