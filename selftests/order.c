// SPDX-License-Identifier: GPL-2.0
/*
 * Ordering and back-pressure: a 100,000-message flood from another process
 * into a slow receiver (single sends and batches of 32), so that the
 * socket buffer fills and sends queue up in the library, must arrive
 * complete and in order; -ENOBUFS comes only when the bounded send queue
 * is full, and nothing is lost or duplicated; a datagram larger than the
 * receiver's max_msg_size fails the channel (hangup with err < 0) without
 * being delivered and without leaking its fds.
 */
#include "selftest.h"

#include <pthread.h>
#include <sys/syscall.h>

#define FLOOD_N		100000
#define FLOOD_END	0xffffffffu

CTX_FIXTURE(order);

/* Flood message @seq: the sequence number, then 0..60 derived bytes. */
static size_t flood_fill(unsigned char *buf, uint32_t seq)
{
	size_t len = sizeof(seq) + seq % 61, i;

	memcpy(buf, &seq, sizeof(seq));
	for (i = sizeof(seq); i < len; i++)
		buf[i] = (unsigned char)(seq ^ (i * 29));
	return len;
}

static bool flood_check(const unsigned char *buf, size_t len, uint32_t seq)
{
	unsigned char want[64];

	return len == flood_fill(want, seq) && !memcmp(buf, want, len);
}

/* Child exit codes. */
enum {
	CHILD_OK = 0,
	CHILD_SETUP = 10,
	CHILD_SEND,
	CHILD_NO_ACK,
	CHILD_LEAK,
};

/*
 * The sending process: floods FLOOD_N messages (batches of @batch when
 * @batch > 1) as fast as the library accepts them, retrying on -ENOBUFS
 * after a dispatch, then an END message carrying the -ENOBUFS count, then
 * waits for the parent's ack before closing.
 */
static int flood_child(int fd, enum ipcsock_backend backend,
		       unsigned int batch)
{
	static unsigned char bufs[32][64];
	struct ipcsock_payload p[32];
	struct ipcsock_loop *loop;
	struct ipcsock *s;
	uint32_t seq = 0, end[2];
	unsigned int i, n, enobufs = 0;
	uint64_t deadline;
	int ret, fd_start;

	fd_start = count_open_fds();
	loop = loop_new(backend, 0, 0, 0);
	if (!loop || ipcsock_loop_backend(loop) != real_backend(backend))
		return CHILD_SETUP;
	s = ipcsock_new(loop);
	if (!s || ipcsock_bind(s, fd))
		return CHILD_SETUP;

	deadline = now_ms() + 60000;
	while (seq < FLOOD_N) {
		n = batch < FLOOD_N - seq ? batch : FLOOD_N - seq;
		for (i = 0; i < n; i++)
			p[i] = msg_of(bufs[i], flood_fill(bufs[i], seq + i),
				      NULL, 0);
		if (n == 1)
			ret = ipcsock_send(s, p);
		else
			ret = ipcsock_send_batch(s, p, n);
		if (ret == -ENOBUFS) {
			enobufs++;
			if (now_ms() > deadline)
				return CHILD_SEND;
			ipcsock_loop_dispatch(loop, 10);
			continue;
		}
		if (ret != (n == 1 ? 0 : (int)n))
			return CHILD_SEND;
		seq += n;
	}
	end[0] = FLOOD_END;
	end[1] = enobufs;
	for (;;) {
		ret = ipcsock_send(s, &(struct ipcsock_payload){
			.data = end, .len = sizeof(end) });
		if (ret != -ENOBUFS)
			break;
		ipcsock_loop_dispatch(loop, 10);
	}
	if (ret)
		return CHILD_SEND;

	/* The ack: everything arrived, we may close. */
	deadline = now_ms() + 60000;
	for (;;) {
		struct ipcsock_payload in;

		ret = ipcsock_receive(s, &in);
		if (ret == 0)
			break;
		if (ret != -EAGAIN || now_ms() > deadline)
			return CHILD_NO_ACK;
		ipcsock_loop_dispatch(loop, 10);
	}
	ipcsock_close(s);
	ipcsock_free(s);
	ipcsock_loop_free(loop);
	/* The channel fd went with the socket. */
	return count_open_fds() == fd_start - 1 ? CHILD_OK : CHILD_LEAK;
}

struct flood_rx {
	struct ipcsock *sock;
	uint32_t next;
	int bad;
	int bad_seq;
	bool end;
	uint32_t child_enobufs;
	int hangup;
	int hangup_err;
	unsigned int calls;
};

/* Slow receiver: one message per callback, a nap now and then. */
static void flood_ready_read(struct ipcsock *sock, void *arg)
{
	struct flood_rx *rx = arg;
	struct ipcsock_payload p;
	uint32_t seq;

	if (ipcsock_receive(sock, &p))
		return;
	if (++rx->calls % 5000 == 0)
		usleep(2000);
	if (p.nr_fds || p.len < sizeof(seq)) {
		rx->bad++;
		return;
	}
	memcpy(&seq, p.data, sizeof(seq));
	if (seq == FLOOD_END && p.len == 2 * sizeof(seq)) {
		rx->end = true;
		memcpy(&rx->child_enobufs, (uint32_t *)p.data + 1,
		       sizeof(uint32_t));
		if (rx->next != FLOOD_N)
			rx->bad++;
		return;
	}
	if (seq != rx->next || !flood_check(p.data, p.len, seq)) {
		if (!rx->bad++)
			rx->bad_seq = rx->next;
	}
	rx->next = seq + 1;
}

static void flood_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct flood_rx *rx = arg;

	rx->hangup++;
	rx->hangup_err = err;
}

static void flood(struct __test_metadata *_metadata, struct ipcsock_test *t,
		  unsigned int batch)
{
	struct flood_rx rx = { 0 };
	struct ipcsock *a;
	int remote, status;
	uint64_t deadline;
	pid_t pid;

	a = ctx_sock(_metadata, t, t->loop);
	remote = ipcsock_create(a);
	ASSERT_LE(0, remote);
	rx.sock = a;
	ipcsock_set_ready_read(a, flood_ready_read, &rx);
	ipcsock_set_hangup(a, flood_hangup, &rx);

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		child_close_other_fds(remote);
		_exit(flood_child(remote, t->backend, batch));
	}
	t->child = pid;
	close(remote);

	/* Let the child fill the socket buffer and its queue first. */
	usleep(100 * 1000);
	deadline = now_ms() + 90000;
	while (!rx.end && !rx.hangup && now_ms() < deadline)
		ipcsock_loop_dispatch(t->loop, 10);
	EXPECT_TRUE(rx.end);
	EXPECT_EQ(FLOOD_N, rx.next);
	EXPECT_EQ(0, rx.bad) TH_LOG("first bad message at seq %d", rx.bad_seq);
	EXPECT_EQ(0, rx.hangup);
	/* The slow receiver really pushed back on the sender. */
	EXPECT_LT(0, rx.child_enobufs);
	TH_LOG("%u messages, sender saw -ENOBUFS %u times", rx.next,
	       rx.child_enobufs);

	ASSERT_EQ(0, send_str(a, "ack"));
	EXPECT_TRUE(dispatch_until(t->loop, rx.hangup, 30000));
	EXPECT_EQ(0, rx.hangup_err);
	EXPECT_EQ(1, rx.hangup);

	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	t->child = 0;
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(CHILD_OK, WEXITSTATUS(status));
}

TEST_F_TIMEOUT(order, flood_single_sends, 180)
{
	flood(_metadata, &self->t, 1);
}

TEST_F_TIMEOUT(order, flood_batches_of_32, 180)
{
	flood(_metadata, &self->t, 32);
}

/*
 * In one process, both ends on @loop, with fds: @n messages in order, no
 * leaks. The receiver takes a few at a time so the sender stays ahead.
 * Returns the number of bad messages, or -1 if not all arrived.
 */
static int flood_local(struct ipcsock_loop *loop, struct ipcsock *a,
		       struct ipcsock *b, int mfd, uint32_t n)
{
	unsigned char buf[64];
	struct ipcsock_payload p;
	uint32_t sent = 0, got = 0, seq;
	uint64_t deadline;
	int ret, bad = 0;

	deadline = now_ms() + 60000;
	while (got < n && now_ms() < deadline) {
		while (sent < n) {
			p = msg_of(buf, flood_fill(buf, sent), &mfd,
				   sent % 3 == 0);
			ret = ipcsock_send(a, &p);
			if (ret == -ENOBUFS)
				break;
			if (ret)
				return -1;
			sent++;
		}
		ipcsock_loop_dispatch(loop, 1);
		while (ipcsock_receive(b, &p) == 0) {
			memcpy(&seq, p.data, sizeof(seq));
			if (seq != got || !flood_check(p.data, p.len, seq) ||
			    p.nr_fds != (seq % 3 == 0))
				bad++;
			close_fds_array(p.fds, p.nr_fds);
			got++;
			if (got % 64 == 0)
				break;
		}
	}
	return got == n ? bad : -1;
}

TEST_F_TIMEOUT(order, flood_same_loop_with_fds, 120)
{
	struct ipcsock *a, *b;
	int mfd;

	ctx_pair(_metadata, &self->t, self->t.loop, &a, self->t.loop, &b);
	mfd = memfd_with("flood", "f");
	ctx_fd(_metadata, &self->t, mfd);
	EXPECT_EQ(0, flood_local(self->t.loop, a, b, mfd, 20000));
}

/* The smallest receive and send buffers still keep order. */
TEST_F_TIMEOUT(order, flood_tiny_buffers, 120)
{
	static const unsigned int rbufs[] = { 1, 2, 3 };
	struct ipcsock_loop *loop;
	struct ipcsock *a, *b;
	unsigned int i;
	int mfd;

	mfd = memfd_with("tiny", "t");
	ctx_fd(_metadata, &self->t, mfd);
	for (i = 0; i < ARRAY_SIZE(rbufs); i++) {
		loop = loop_new(self->t.backend, 256, 1 + i, rbufs[i]);
		ASSERT_NE(NULL, loop);
		a = ipcsock_new(loop);
		b = ipcsock_new(loop);
		ASSERT_NE(NULL, a);
		ASSERT_NE(NULL, b);
		ASSERT_EQ(0, ipcsock_bind(b, ipcsock_create(a)));
		EXPECT_EQ(0, flood_local(loop, a, b, mfd, 5000))
			TH_LOG("recv_buffers %u, send_queue_len %u", rbufs[i],
			       1 + i);
		ipcsock_free(a);
		ipcsock_free(b);
		ipcsock_loop_free(loop);
	}
}

/* Loops are per thread: two threads flood at once, independently. */
struct thread_flood {
	enum ipcsock_backend backend;
	int mfd;
	int result;
};

static void *thread_flood(void *arg)
{
	struct thread_flood *tf = arg;
	struct ipcsock_loop *loop;
	struct ipcsock *a, *b;

	tf->result = -100;
	loop = loop_new(tf->backend, 0, 0, 0);
	if (!loop)
		return NULL;
	a = ipcsock_new(loop);
	b = ipcsock_new(loop);
	if (a && b && !ipcsock_bind(b, ipcsock_create(a)))
		tf->result = flood_local(loop, a, b, tf->mfd, 20000);
	ipcsock_free(a);
	ipcsock_free(b);
	ipcsock_loop_free(loop);
	return NULL;
}

TEST_F_TIMEOUT(order, threads_with_own_loops, 120)
{
	struct thread_flood tf[4];
	pthread_t th[4];
	int mfd, i;

	mfd = memfd_with("threads", "t");
	ctx_fd(_metadata, &self->t, mfd);
	for (i = 0; i < 4; i++) {
		tf[i].backend = self->t.backend;
		tf[i].mfd = mfd;
		ASSERT_EQ(0, pthread_create(&th[i], NULL, thread_flood,
					    &tf[i]));
	}
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, pthread_join(th[i], NULL));
		EXPECT_EQ(0, tf[i].result) TH_LOG("thread %d", i);
	}
}

/*
 * -ENOBUFS exactly when the send queue is full (and the socket buffer is
 * full, so the queue cannot drain); nothing lost once the peer reads.
 */
static void enobufs_at_bound(struct __test_metadata *_metadata,
			     struct ipcsock_test *t, unsigned int qopt,
			     unsigned int qlen)
{
	enum { LEN = 1000 };
	static unsigned char buf[LEN], rbuf[LEN + 64];
	struct ipcsock_payload p, batch[2];
	struct ipcsock_loop *loop;
	uint32_t n = 0, in_kernel = 0, got = 0, seq, junk = 0xdead;
	struct ipcsock *c;
	int remote, ret;
	uint64_t deadline;
	ssize_t len;

	loop = ctx_loop(_metadata, t, 0, qopt, 0);
	remote = ctx_raw_pair(_metadata, t, loop, &c);

	for (;;) {
		memcpy(buf, &n, sizeof(n));
		p = msg_of(buf, LEN, NULL, 0);
		ret = ipcsock_send(c, &p);
		if (ret == -ENOBUFS)
			break;
		ASSERT_EQ(0, ret);
		n++;
		ASSERT_GT(100000, n) TH_LOG("never -ENOBUFS");
		ipcsock_loop_dispatch(loop, 0);
	}
	/* Still full; a batch too, and it queues none of its messages. */
	EXPECT_EQ(-ENOBUFS, ipcsock_send(c, &p));
	batch[0] = msg_of(&junk, sizeof(junk), NULL, 0);
	batch[1] = batch[0];
	EXPECT_EQ(-ENOBUFS, ipcsock_send_batch(c, batch, 2));

	/* What the kernel holds, without letting the library move. */
	for (;;) {
		len = raw_recv_msg(remote, rbuf, sizeof(rbuf), NULL, 0, NULL,
			       NULL);
		if (len == -EAGAIN)
			break;
		ASSERT_EQ(TEST_WIRE_HDR_LEN + LEN, len);
		memcpy(&seq, rbuf + TEST_WIRE_HDR_LEN, sizeof(seq));
		EXPECT_EQ(got, seq);
		got++;
		in_kernel++;
	}
	TH_LOG("%u sent before -ENOBUFS, %u in the socket buffer", n,
	       in_kernel);
	/* The rest were exactly a full queue. */
	EXPECT_EQ(qlen, n - in_kernel);

	/* Drain: the queued ones follow, in order, then nothing else. */
	deadline = now_ms() + WAIT_MS;
	while (got < n && now_ms() < deadline) {
		len = raw_recv_msg(remote, rbuf, sizeof(rbuf), NULL, 0, NULL,
			       NULL);
		if (len == -EAGAIN) {
			ipcsock_loop_dispatch(loop, 5);
			continue;
		}
		ASSERT_EQ(TEST_WIRE_HDR_LEN + LEN, len);
		memcpy(&seq, rbuf + TEST_WIRE_HDR_LEN, sizeof(seq));
		EXPECT_EQ(got, seq);
		got++;
	}
	EXPECT_EQ(n, got);
	dispatch_for(loop, 20);
	EXPECT_EQ(-EAGAIN, raw_recv_msg(remote, rbuf, sizeof(rbuf), NULL, 0, NULL,
				    NULL));

	/* Room again. */
	memcpy(buf, &n, sizeof(n));
	p = msg_of(buf, LEN, NULL, 0);
	EXPECT_EQ(0, ipcsock_send(c, &p));
	EXPECT_TRUE(raw_wait_readable(loop, remote, WAIT_MS));
}

TEST_F(order, enobufs_at_queue_bound)
{
	enobufs_at_bound(_metadata, &self->t, 4, 4);
}

TEST_F(order, enobufs_at_default_queue_bound)
{
	enobufs_at_bound(_metadata, &self->t, 0, IPCSOCK_DEFAULT_SEND_QUEUE);
}

/*
 * A raw peer sends a datagram larger than the receiver's max_msg_size:
 * the messages before it are delivered, it is not (nor anything after
 * it), its fds are closed, and the channel fails with hangup(err < 0).
 */
static void oversize(struct __test_metadata *_metadata, struct ipcsock_test *t,
		     size_t max, size_t len, uint32_t hdr_len)
{
	struct test_wire_hdr hdr = {
		.len = hdr_len,
		.nr_fds = 2,
		.version = TEST_WIRE_VERSION,
	};
	struct ipcsock_loop *loop;
	struct rec rc;
	struct ipcsock *c;
	unsigned char *big;
	int remote, fds[2];
	uint32_t seq = 0;

	loop = ctx_loop(_metadata, t, max, 0, 0);
	remote = ctx_raw_pair(_metadata, t, loop, &c);
	rec_attach(&rc, c);
	rc.check_seq = true;
	big = calloc(1, len);
	ASSERT_NE(NULL, big);
	fds[0] = memfd_with("big-0", "0");
	fds[1] = memfd_with("big-1", "1");

	ASSERT_EQ(TEST_WIRE_HDR_LEN + 4, raw_send_msg(remote, &seq, 4, fds, 1));
	ASSERT_EQ(TEST_WIRE_HDR_LEN + len,
		  raw_send_hdr(remote, &hdr, big, len, fds, 2));
	seq = 1;
	ASSERT_EQ(TEST_WIRE_HDR_LEN + 4, raw_send_msg(remote, &seq, 4, NULL, 0));
	close_fds_array(fds, 2);
	free(big);

	ASSERT_TRUE(dispatch_until(loop, rc.hangup, WAIT_MS));
	dispatch_for(loop, 50);
	EXPECT_EQ(1, rc.hangup);
	EXPECT_GT(0, rc.hangup_err);
	EXPECT_EQ(1, rc.received);
	EXPECT_EQ(1, rc.fds);
	EXPECT_EQ(0, rc.bad);
	EXPECT_EQ(-EPIPE, send_str(c, "after"));
}

TEST_F(order, oversize_datagram_fails_channel)
{
	oversize(_metadata, &self->t, 1024, 4096, 4096);
}

TEST_F(order, oversize_by_one_byte)
{
	oversize(_metadata, &self->t, 1000, 1001, 1001);
}

TEST_F(order, oversize_with_lying_header)
{
	/* The header claims a small message; the datagram is truncated. */
	oversize(_metadata, &self->t, 1024, 8192, 100);
}

TEST_HARNESS_MAIN
