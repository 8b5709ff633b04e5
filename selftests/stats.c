// SPDX-License-Identifier: GPL-2.0
/*
 * ipcsock_get_stats(): every counter, checked exactly after known traffic,
 * on each backend and on a shared ring: messages, bytes and fds both ways,
 * datagrams that are no messages (the reset notice, a protocol error),
 * the send paths (direct, queued, on the ring) under back-pressure from a
 * peer that does not read, -ENOBUFS refusals, the queued messages lost
 * when that peer goes away, the receive buffers a slow reader keeps busy,
 * the end of the channel, and the size versioning.
 */
#include "selftest.h"

/* The loop's limits: small, so that the tests reach them. */
#define QUEUE_LEN	4
#define RECV_BUFS	4
/* Two never share a record (16 KiB at most): a datagram each. */
#define BIG		8192

/* A fourth variant: a loop inside the test's own io_uring. */
#define BACKEND_SHARED_RING	((enum ipcsock_backend)0x200)

FIXTURE(stats)
{
	struct ipcsock_test t;
	struct io_uring ring;
	bool shared;
	bool ring_sends;
	struct ipcsock_loop *loop;
};

BACKEND_VARIANTS(stats);
FIXTURE_VARIANT_ADD(stats, shared_ring)
{
	.backend = BACKEND_SHARED_RING,
};

FIXTURE_SETUP(stats)
{
	IPCSOCK_LOOP_OPTS(opts, .send_queue_len = QUEUE_LEN,
			  .recv_buffers = RECV_BUFS);
	int ret;

	self->shared = variant->backend == BACKEND_SHARED_RING;
	self->ring_sends = variant->backend == BACKEND_URING_RING_SENDS;
	ctx_setup(_metadata, &self->t, self->shared ? IPCSOCK_BACKEND_URING :
			     variant->backend);
	if (!self->shared) {
		self->loop = ctx_loop(_metadata, &self->t, 0, QUEUE_LEN,
				      RECV_BUFS);
		return;
	}
	ret = io_uring_queue_init(64, &self->ring, 0);
	ASSERT_EQ(0, ret) TH_LOG("io_uring_queue_init: %s", strerror(-ret));
	self->loop = ipcsock_loop_new_shared(&self->ring, &opts);
	if (!self->loop && errno == EOPNOTSUPP) {
		io_uring_queue_exit(&self->ring);
		self->shared = false;
		SKIP(return, "no shared-ring mode on this kernel");
	}
	ASSERT_NE(NULL, self->loop) TH_LOG("%s", strerror(errno));
}

/* One turn of the loop; a shared ring is the test's to wait on. */
#define pump(self, ms)							\
	loop_turn((self)->loop, (self)->shared ? &(self)->ring : NULL, (ms))

#define pump_until(self, cond) ({					\
	uint64_t __deadline = now_ms() + WAIT_MS;			\
	bool __ok;							\
									\
	while (!(__ok = (cond)) && now_ms() < __deadline)		\
		pump((self), 1);					\
	__ok;								\
})

FIXTURE_TEARDOWN(stats)
{
	int i;

	if (self->shared) {
		/* A shared loop goes idle, then free, before its ring. */
		for (i = 0; i < CTX_SOCKS; i++) {
			ipcsock_free(self->t.socks[i]);
			self->t.socks[i] = NULL;
		}
		EXPECT_TRUE(pump_until(self, ipcsock_loop_idle(self->loop)));
		ipcsock_loop_free(self->loop);
		io_uring_queue_exit(&self->ring);
	}
	ctx_teardown(_metadata, &self->t);
}

static struct ipcsock_stats get(struct __test_metadata *_metadata,
				struct ipcsock *sock)
{
	struct ipcsock_stats st;

	memset(&st, 0xa5, sizeof(st));
	EXPECT_EQ(sizeof(st), ipcsock_get_stats(sock, &st, sizeof(st)));
	return st;
}

static uint64_t tx_datagrams(struct ipcsock *sock)
{
	struct ipcsock_stats st = { 0 };

	ipcsock_get_stats(sock, &st, sizeof(st));
	return st.tx_datagrams;
}

static uint64_t rx_msgs(struct ipcsock *sock)
{
	struct ipcsock_stats st = { 0 };

	ipcsock_get_stats(sock, &st, sizeof(st));
	return st.rx_msgs;
}

static bool ended(struct ipcsock *sock)
{
	struct ipcsock_stats st = { 0 };

	ipcsock_get_stats(sock, &st, sizeof(st));
	return st.ended;
}

static void expect_zero_rx(struct __test_metadata *_metadata,
			   const struct ipcsock_stats *st)
{
	EXPECT_EQ(0, st->rx_msgs);
	EXPECT_EQ(0, st->rx_bytes);
	EXPECT_EQ(0, st->rx_fds);
	EXPECT_EQ(0, st->rx_datagrams);
	EXPECT_EQ(0, st->rx_records);
	EXPECT_EQ(0, st->rx_bufs);
	EXPECT_EQ(0, st->rx_bufs_max);
}

/*
 * Four messages a -> b (two single sends, one batch of two; 30 bytes and
 * three fds in all), b holding them unreceived, then receiving them.
 */
TEST_F(stats, counts_messages_bytes_and_fds_both_ways)
{
	struct ipcsock *a, *b;
	struct ipcsock_payload p[2], got;
	struct ipcsock_stats st;
	int fds[2], i, n = 0, nfds = 0;
	size_t bytes = 0;

	ctx_pair(_metadata, &self->t, self->loop, &a, self->loop, &b);
	fds[0] = memfd_with("stats0", "x");
	fds[1] = memfd_with("stats1", "y");
	ASSERT_LE(0, fds[0]);
	ASSERT_LE(0, fds[1]);

	p[0] = msg_of("0123456789", 10, NULL, 0);
	ASSERT_EQ(0, ipcsock_send(a, &p[0]));
	/* Each call's messages out before the next: a known queue depth. */
	ASSERT_TRUE(pump_until(self, tx_datagrams(a) == 1));
	p[0] = msg_of(NULL, 0, fds, 2);
	ASSERT_EQ(0, ipcsock_send(a, &p[0]));
	ASSERT_TRUE(pump_until(self, tx_datagrams(a) == 2));
	p[0] = msg_of("abcdefghijklmnopqrs", 19, NULL, 0);
	p[1] = msg_of("z", 1, fds, 1);
	/* The batch is one record. */
	ASSERT_EQ(2, ipcsock_send_batch(a, p, 2));
	close_fds_array(fds, 2);
	ASSERT_TRUE(pump_until(self, tx_datagrams(a) == 3));
	ASSERT_TRUE(pump_until(self, rx_msgs(b) == 4));

	st = get(_metadata, a);
	EXPECT_EQ(4, st.tx_msgs);
	EXPECT_EQ(30, st.tx_bytes);
	EXPECT_EQ(3, st.tx_fds);
	EXPECT_EQ(3, st.tx_datagrams);
	EXPECT_EQ(1, st.tx_records);
	EXPECT_EQ(self->ring_sends ? 0 : 4, st.tx_direct);
	EXPECT_EQ(self->ring_sends ? 4 : 0, st.tx_queued);
	EXPECT_EQ(self->ring_sends ? 3 : 0, st.tx_ring);
	EXPECT_EQ(0, st.tx_nobufs);
	EXPECT_EQ(self->ring_sends ? 2 : 0, st.tx_queue_max);
	EXPECT_EQ(0, st.ended);
	EXPECT_EQ(0, st.hangup_err);
	expect_zero_rx(_metadata, &st);

	st = get(_metadata, b);
	EXPECT_EQ(0, st.tx_msgs);
	EXPECT_EQ(0, st.tx_datagrams);
	EXPECT_EQ(4, st.rx_msgs);
	EXPECT_EQ(30, st.rx_bytes);
	EXPECT_EQ(3, st.rx_fds);
	EXPECT_EQ(3, st.rx_datagrams);
	EXPECT_EQ(1, st.rx_records);
	EXPECT_EQ(3, st.rx_bufs);
	EXPECT_EQ(3, st.rx_bufs_max);

	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, ipcsock_receive(b, &got));
		bytes += got.len;
		nfds += got.nr_fds;
		close_fds_array(got.fds, got.nr_fds);
		n++;
		/* The one handed out stays busy until the next receive. */
		st = get(_metadata, b);
		/* The record's buffer until its last message is out. */
		EXPECT_EQ(i < 3 ? 3 - i : 1, st.rx_bufs);
	}
	EXPECT_EQ(-EAGAIN, ipcsock_receive(b, &got));
	EXPECT_EQ(4, n);
	EXPECT_EQ(30, bytes);
	EXPECT_EQ(3, nfds);
	st = get(_metadata, b);
	EXPECT_EQ(0, st.rx_bufs);
	EXPECT_EQ(3, st.rx_bufs_max);
	EXPECT_EQ(4, st.rx_msgs);
}

/*
 * A peer that never reads: sends go direct until the socket is full, then
 * queue until the queue is, then fail with -ENOBUFS. Once the peer reads,
 * the queue drains, on the ring with IPCSOCK_LOOP_RING_SENDS.
 */
TEST_F(stats, back_pressure_queues_then_refuses)
{
	static char buf[BIG + TEST_WIRE_HDR_LEN];
	struct ipcsock_payload p[2];
	unsigned int sent = 0, got = 0;
	struct ipcsock_stats st;
	struct ipcsock *a;
	uint64_t bytes = 0, deadline;
	int raw, ret;
	ssize_t n;

	raw = ctx_raw_pair(_metadata, &self->t, self->loop, &a);
	p[0] = msg_of(buf, BIG, NULL, 0);
	p[1] = p[0];
	while ((ret = ipcsock_send(a, &p[0])) == 0 && sent < 100000)
		sent++;
	ASSERT_EQ(-ENOBUFS, ret);
	EXPECT_EQ(-ENOBUFS, ipcsock_send_batch(a, p, 2));
	ASSERT_LT(QUEUE_LEN, sent);

	st = get(_metadata, a);
	EXPECT_EQ(sent, st.tx_msgs);
	EXPECT_EQ((uint64_t)sent * BIG, st.tx_bytes);
	EXPECT_EQ(0, st.tx_fds);
	/* A full queue: everything before it is in the kernel. */
	EXPECT_EQ(sent - QUEUE_LEN, st.tx_datagrams);
	EXPECT_EQ(self->ring_sends ? 0 : sent - QUEUE_LEN, st.tx_direct);
	EXPECT_EQ(self->ring_sends ? sent : QUEUE_LEN, st.tx_queued);
	EXPECT_EQ(self->ring_sends ? sent - QUEUE_LEN : 0, st.tx_ring);
	EXPECT_EQ(2, st.tx_nobufs);
	EXPECT_EQ(QUEUE_LEN, st.tx_queue_max);

	/* The peer reads everything; the queue drains behind it. */
	deadline = now_ms() + WAIT_MS;
	while (got < sent && now_ms() < deadline) {
		n = raw_recv(raw, buf, sizeof(buf), NULL, 0, NULL, NULL);
		if (n == -EAGAIN) {
			pump(self, 1);
			continue;
		}
		ASSERT_EQ(TEST_WIRE_HDR_LEN + BIG, n);
		bytes += n - TEST_WIRE_HDR_LEN;
		got++;
	}
	ASSERT_EQ(sent, got);
	ASSERT_TRUE(pump_until(self, tx_datagrams(a) == sent));
	EXPECT_EQ((uint64_t)sent * BIG, bytes);
	st = get(_metadata, a);
	EXPECT_EQ(sent, st.tx_msgs);
	EXPECT_EQ(sent, st.tx_datagrams);
	EXPECT_EQ(self->ring_sends ? sent : 0, st.tx_ring);
	EXPECT_EQ(st.tx_msgs, st.tx_direct + st.tx_queued);
	EXPECT_EQ(2, st.tx_nobufs);
	EXPECT_EQ(QUEUE_LEN, st.tx_queue_max);
	expect_zero_rx(_metadata, &st);
}

/*
 * A full send queue, then the peer closes without reading: the queued
 * messages can never go, and tx_dropped says how many were lost; what
 * went out before is not in it.
 */
TEST_F(stats, peer_gone_counts_the_queued_as_dropped)
{
	static char buf[BIG];
	struct ipcsock_payload p;
	struct ipcsock_stats st;
	unsigned int sent = 0;
	struct ipcsock *a;
	int raw, ret;

	raw = ctx_raw_pair(_metadata, &self->t, self->loop, &a);
	p = msg_of(buf, BIG, NULL, 0);
	while ((ret = ipcsock_send(a, &p)) == 0 && sent < 100000)
		sent++;
	ASSERT_EQ(-ENOBUFS, ret);
	st = get(_metadata, a);
	EXPECT_EQ(0, st.tx_dropped);
	ASSERT_EQ(sent - QUEUE_LEN, st.tx_datagrams);

	ctx_close_fd(&self->t, raw);
	ASSERT_TRUE(pump_until(self, ended(a)));
	st = get(_metadata, a);
	EXPECT_EQ(sent, st.tx_msgs);
	EXPECT_EQ(sent - QUEUE_LEN, st.tx_datagrams);
	EXPECT_EQ(QUEUE_LEN, st.tx_dropped);
}

/*
 * A reader slower than its peer: RECV_BUFS messages take every receive
 * buffer, the rest wait in the socket until the application receives.
 */
TEST_F(stats, receive_buffers_in_use_and_their_high_water_mark)
{
	struct ipcsock_payload got;
	struct ipcsock_stats st;
	struct ipcsock *a;
	unsigned int i, n = 0;
	uint32_t seq;
	int raw;

	raw = ctx_raw_pair(_metadata, &self->t, self->loop, &a);
	for (seq = 0; seq < RECV_BUFS + 2; seq++)
		ASSERT_EQ(TEST_WIRE_HDR_LEN + sizeof(seq),
			  raw_send_msg(raw, &seq, sizeof(seq), NULL, 0));
	ASSERT_TRUE(pump_until(self, rx_msgs(a) == RECV_BUFS));
	for (i = 0; i < 20; i++)
		pump(self, 1);
	st = get(_metadata, a);
	EXPECT_EQ(RECV_BUFS, st.rx_msgs);
	EXPECT_EQ(RECV_BUFS, st.rx_datagrams);
	EXPECT_EQ(RECV_BUFS, st.rx_bufs);
	EXPECT_EQ(RECV_BUFS, st.rx_bufs_max);

	while (n < RECV_BUFS + 2) {
		if (ipcsock_receive(a, &got)) {
			pump(self, 1);
			continue;
		}
		ASSERT_EQ(sizeof(seq), got.len);
		memcpy(&seq, got.data, sizeof(seq));
		EXPECT_EQ(n, seq);
		n++;
	}
	EXPECT_EQ(-EAGAIN, ipcsock_receive(a, &got));
	st = get(_metadata, a);
	EXPECT_EQ(RECV_BUFS + 2, st.rx_msgs);
	EXPECT_EQ((RECV_BUFS + 2) * sizeof(seq), st.rx_bytes);
	EXPECT_EQ(0, st.rx_fds);
	EXPECT_EQ(RECV_BUFS + 2, st.rx_datagrams);
	EXPECT_EQ(0, st.rx_bufs);
	EXPECT_EQ(RECV_BUFS, st.rx_bufs_max);
	EXPECT_EQ(0, st.tx_msgs);
}

/*
 * b closes with a message of a's unreceived: its reset notice is one
 * datagram more than the messages, and a's end says -ECONNRESET.
 */
TEST_F(stats, reset_notice_is_a_datagram_and_the_end_is_reported)
{
	struct ipcsock *a, *b;
	struct ipcsock_stats st;

	ctx_pair(_metadata, &self->t, self->loop, &a, self->loop, &b);
	ASSERT_EQ(0, send_str(a, "unread"));
	ASSERT_TRUE(pump_until(self, rx_msgs(b) == 1));
	ASSERT_EQ(0, send_str(b, "one"));
	ASSERT_EQ(0, send_str(b, "two"));
	ipcsock_close(b);
	EXPECT_EQ(-ENOTCONN, ipcsock_get_stats(b, &st, sizeof(st)));
	ASSERT_TRUE(pump_until(self, ended(a)));

	st = get(_metadata, a);
	EXPECT_EQ(1, st.ended);
	EXPECT_EQ(-ECONNRESET, st.hangup_err);
	EXPECT_EQ(2, st.rx_msgs);
	EXPECT_EQ(6, st.rx_bytes);
	EXPECT_EQ(3, st.rx_datagrams);
	EXPECT_EQ(1, st.tx_msgs);
	EXPECT_EQ(1, st.tx_datagrams);

	/* A new binding counts from zero. */
	ipcsock_close(a);
	ctx_fd(_metadata, &self->t, ipcsock_create(a));
	st = get(_metadata, a);
	EXPECT_EQ(0, st.tx_msgs);
	EXPECT_EQ(0, st.tx_datagrams);
	EXPECT_EQ(0, st.ended);
	expect_zero_rx(_metadata, &st);
}

/* A datagram that breaks the wire format is counted, and ends the channel. */
TEST_F(stats, protocol_error_counts_the_datagram)
{
	struct test_wire_hdr hdr = { .len = 1, .version = 99 };
	struct ipcsock_stats st;
	struct ipcsock *a;
	int raw;

	raw = ctx_raw_pair(_metadata, &self->t, self->loop, &a);
	ASSERT_EQ(TEST_WIRE_HDR_LEN + 1, raw_send_hdr(raw, &hdr, "x", 1,
						       NULL, 0));
	ASSERT_TRUE(pump_until(self, ended(a)));
	st = get(_metadata, a);
	EXPECT_EQ(1, st.ended);
	EXPECT_EQ(-EPROTO, st.hangup_err);
	EXPECT_EQ(1, st.rx_datagrams);
	EXPECT_EQ(0, st.rx_msgs);
	EXPECT_EQ(0, st.rx_bytes);
	EXPECT_EQ(0, st.rx_bufs);
}

/*
 * The libcamera wire mode sends a message as two datagrams, a header and
 * the payload: the messages count once, the datagrams twice.
 */
TEST_F(stats, libcamera_wire_counts_two_datagrams_a_message)
{
	IPCSOCK_OPTS(opts, .wire = IPCSOCK_WIRE_LIBCAMERA);
	struct ipcsock_payload p = msg_of("abc", 3, NULL, 0), got;
	struct ipcsock *a, *b;
	struct ipcsock_stats st;
	bool chain = self->ring_sends ||
		     variant->backend == IPCSOCK_BACKEND_URING;
	int remote;

	a = ipcsock_new_opts(self->loop, &opts);
	b = ipcsock_new_opts(self->loop, &opts);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, ctx_keep_sock(&self->t, a));
	ASSERT_EQ(0, ctx_keep_sock(&self->t, b));
	remote = ipcsock_create(a);
	ASSERT_LE(0, remote);
	ASSERT_EQ(0, ipcsock_bind(b, remote));
	ASSERT_EQ(0, ipcsock_send(a, &p));
	ASSERT_EQ(0, ipcsock_send(a, &p));
	ASSERT_TRUE(pump_until(self, tx_datagrams(a) == 4));
	ASSERT_TRUE(pump_until(self, rx_msgs(b) == 2));
	ASSERT_EQ(0, ipcsock_receive(b, &got));
	ASSERT_EQ(0, ipcsock_receive(b, &got));
	EXPECT_EQ(-EAGAIN, ipcsock_receive(b, &got));

	st = get(_metadata, a);
	EXPECT_EQ(2, st.tx_msgs);
	EXPECT_EQ(6, st.tx_bytes);
	EXPECT_EQ(4, st.tx_datagrams);
	/* A lone libcamera message on our own ring is a ring chain. */
	EXPECT_EQ(chain ? 0 : 2, st.tx_direct);
	EXPECT_EQ(chain ? 2 : 0, st.tx_queued);
	EXPECT_EQ(chain ? 4 : 0, st.tx_ring);
	st = get(_metadata, b);
	EXPECT_EQ(2, st.rx_msgs);
	EXPECT_EQ(6, st.rx_bytes);
	EXPECT_EQ(4, st.rx_datagrams);
	EXPECT_EQ(0, st.rx_bufs);
	EXPECT_EQ(2, st.rx_bufs_max);
}

/*
 * An older caller's smaller structure gets the fields it knows and nothing
 * written past them; a newer caller's larger one gets ours and zeroes.
 */
TEST_F(stats, size_versioning)
{
	struct {
		struct ipcsock_stats st;
		uint64_t newer[3];
	} big;
	struct ipcsock_stats st;
	struct ipcsock *a, *b;
	unsigned int i;

	ctx_pair(_metadata, &self->t, self->loop, &a, self->loop, &b);
	ASSERT_EQ(0, send_str(a, "hello"));
	ASSERT_TRUE(pump_until(self, tx_datagrams(a) == 1));

	memset(&st, 0xa5, sizeof(st));
	EXPECT_EQ(offsetof(struct ipcsock_stats, tx_fds),
		  ipcsock_get_stats(a, &st, offsetof(struct ipcsock_stats,
						     tx_fds)));
	EXPECT_EQ(1, st.tx_msgs);
	EXPECT_EQ(5, st.tx_bytes);
	EXPECT_EQ(0xa5a5a5a5a5a5a5a5ull, st.tx_fds);
	EXPECT_EQ(0xa5a5a5a5a5a5a5a5ull, st.rx_bufs_max);

	memset(&big, 0xa5, sizeof(big));
	EXPECT_EQ(sizeof(big.st), ipcsock_get_stats(a, &big.st, sizeof(big)));
	EXPECT_EQ(1, big.st.tx_msgs);
	EXPECT_EQ(0, big.st.tx_fds);
	EXPECT_EQ(0, big.st.hangup_err);
	for (i = 0; i < ARRAY_SIZE(big.newer); i++)
		EXPECT_EQ(0, big.newer[i]);

	EXPECT_EQ(-EINVAL, ipcsock_get_stats(a, &st, sizeof(uint64_t) - 1));
	EXPECT_EQ(-EINVAL, ipcsock_get_stats(a, NULL, sizeof(st)));
	EXPECT_EQ(-EINVAL, ipcsock_get_stats(NULL, &st, sizeof(st)));
	EXPECT_EQ(sizeof(uint64_t),
		  ipcsock_get_stats(a, &st, sizeof(uint64_t)));
	ipcsock_close(a);
	EXPECT_EQ(-ENOTCONN, ipcsock_get_stats(a, &st, sizeof(st)));
}

TEST_HARNESS_MAIN
