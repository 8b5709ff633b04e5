// SPDX-License-Identifier: GPL-2.0
/*
 * A raw peer (plain SOCK_SEQPACKET, not the library) sends datagrams that
 * break the wire format: wrong version or flags, a length or fd count that
 * disagrees with the datagram, a short or zero-length datagram, fds with
 * no header, and fds that cannot all be installed (RLIMIT_NOFILE, so
 * MSG_CTRUNC). Each time the messages before it are delivered, the bad
 * one is not, its fds are closed, and the channel fails exactly once with
 * hangup(err < 0); sends afterwards give -EPIPE.
 */
#include "selftest.h"

#include <sys/resource.h>

/* A library end, its raw peer, and the fds the peer sends. */
struct wire_chan {
	struct ipcsock_test t;
	struct ipcsock *c;
	int remote;
	struct rec rc;
	int fds[3];		/* the raw peer's memfds */
};

FIXTURE(wire) {
	struct wire_chan w;
	int *fillers;		/* descriptors that use up fd numbers */
	int nr_fillers;
};

BACKEND_VARIANTS(wire);

FIXTURE_SETUP(wire)
{
	int i;

	ctx_setup(_metadata, &self->w.t, variant->backend);
	self->w.remote = ctx_raw_pair(_metadata, &self->w.t, self->w.t.loop,
				    &self->w.c);
	rec_attach(&self->w.rc, self->w.c);
	self->w.rc.check_seq = true;
	for (i = 0; i < 3; i++) {
		self->w.fds[i] = memfd_with("wire", "w");
		ASSERT_LE(0, self->w.fds[i]);
	}
}

FIXTURE_TEARDOWN(wire)
{
	close_fds_array(self->w.fds, 3);
	if (self->fillers)
		close_fds_array(self->fillers, self->nr_fillers);
	free(self->fillers);
	ctx_teardown(_metadata, &self->w.t);
}

/* One good message (seq 0, one fd) ahead of the bad datagram. */
static void send_good(struct __test_metadata *_metadata, struct wire_chan *w)
{
	uint32_t seq = 0;

	ASSERT_EQ(TEST_WIRE_HDR_LEN + sizeof(seq),
		  raw_send_msg(w->remote, &seq, sizeof(seq), w->fds, 1));
}

/* After the bad datagram: one failure, only the good message delivered. */
static void expect_failed(struct __test_metadata *_metadata,
			  struct wire_chan *w)
{
	struct rec *rc = &w->rc;
	uint32_t seq = 1;

	/* Something good after the bad one must not be delivered either. */
	raw_send_msg(w->remote, &seq, sizeof(seq), NULL, 0);

	ASSERT_TRUE(dispatch_until(w->t.loop, rc->hangup, WAIT_MS))
		TH_LOG("no hangup; %d messages received", rc->received);
	dispatch_for(w->t.loop, 50);
	EXPECT_EQ(1, rc->hangup);
	EXPECT_GT(0, rc->hangup_err);
	EXPECT_EQ(1, rc->received);
	EXPECT_EQ(1, rc->fds);
	EXPECT_EQ(0, rc->bad);
	EXPECT_EQ(0, rc->recv_err);
	EXPECT_TRUE(ipcsock_is_bound(w->c));
	EXPECT_EQ(-EPIPE, send_str(w->c, "after"));
}

static void bad_header(struct __test_metadata *_metadata,
		       struct wire_chan *w, struct test_wire_hdr hdr,
		       size_t len, unsigned int nr_fds)
{
	static const char data[64] = "payload";

	send_good(_metadata, w);
	ASSERT_EQ(TEST_WIRE_HDR_LEN + len,
		  raw_send_hdr(w->remote, &hdr, data, len, w->fds,
			       nr_fds));
	expect_failed(_metadata, w);
}

TEST_F(wire, bad_version)
{
	bad_header(_metadata, &self->w, (struct test_wire_hdr){
		.len = 5, .nr_fds = 1, .version = 2 }, 5, 1);
}

TEST_F(wire, version_zero)
{
	bad_header(_metadata, &self->w, (struct test_wire_hdr){
		.len = 5, .nr_fds = 0, .version = 0 }, 5, 0);
}

TEST_F(wire, bad_flags)
{
	bad_header(_metadata, &self->w, (struct test_wire_hdr){
		.len = 5, .nr_fds = 2, .version = TEST_WIRE_VERSION,
		.flags = 1 }, 5, 2);
}

TEST_F(wire, len_larger_than_datagram)
{
	bad_header(_metadata, &self->w, (struct test_wire_hdr){
		.len = 10, .nr_fds = 1, .version = TEST_WIRE_VERSION }, 5, 1);
}

TEST_F(wire, len_smaller_than_datagram)
{
	bad_header(_metadata, &self->w, (struct test_wire_hdr){
		.len = 3, .nr_fds = 1, .version = TEST_WIRE_VERSION }, 5, 1);
}

TEST_F(wire, more_fds_announced_than_attached)
{
	bad_header(_metadata, &self->w, (struct test_wire_hdr){
		.len = 5, .nr_fds = 3, .version = TEST_WIRE_VERSION }, 5, 2);
}

TEST_F(wire, fewer_fds_announced_than_attached)
{
	bad_header(_metadata, &self->w, (struct test_wire_hdr){
		.len = 5, .nr_fds = 1, .version = TEST_WIRE_VERSION }, 5, 3);
}

TEST_F(wire, fds_announced_none_attached)
{
	bad_header(_metadata, &self->w, (struct test_wire_hdr){
		.len = 0, .nr_fds = 2, .version = TEST_WIRE_VERSION }, 0, 0);
}

TEST_F(wire, short_datagram)
{
	static const uint32_t half = 0x01000005;

	send_good(_metadata, &self->w);
	ASSERT_EQ(4, raw_send_hdr(self->w.remote, NULL, &half, sizeof(half),
				  self->w.fds, 2));
	expect_failed(_metadata, &self->w);
}

/* Fds with a zero-length datagram: neither EOF nor a message. */
TEST_F(wire, fds_without_header)
{
	send_good(_metadata, &self->w);
	ASSERT_EQ(0, raw_send_hdr(self->w.remote, NULL, NULL, 0, self->w.fds,
				  3));
	expect_failed(_metadata, &self->w);
}

/*
 * A zero-length datagram from a peer that is still there reads like EOF;
 * the library must not take it for an orderly close.
 */
TEST_F(wire, zero_length_datagram)
{
	send_good(_metadata, &self->w);
	ASSERT_EQ(0, raw_send_hdr(self->w.remote, NULL, NULL, 0, NULL, 0));
	expect_failed(_metadata, &self->w);
}

/*
 * The receiver cannot install every fd of a message (RLIMIT_NOFILE): the
 * kernel sets MSG_CTRUNC and closes the rest; the library must close the
 * ones that did arrive and fail the channel instead of handing out a
 * short fd array.
 */
TEST_F(wire, fds_truncated_at_rlimit)
{
	int more[8], probe[4], i, top;
	struct rlimit rl;

	/*
	 * Valgrind emulates RLIMIT_NOFILE for the calls it sees; the fds the
	 * kernel installs in recvmsg() are not among them.
	 */
	if (under_valgrind())
		SKIP(return, "RLIMIT_NOFILE is emulated under valgrind");

	for (i = 0; i < 8; i++) {
		more[i] = memfd_with("ctrunc", "c");
		ASSERT_LE(0, more[i]);
	}
	/* Let everything the library needs exist before the limit drops. */
	dispatch_for(self->w.t.loop, 20);
	send_good(_metadata, &self->w);
	ASSERT_TRUE(dispatch_until(self->w.t.loop, self->w.rc.received == 1,
				   WAIT_MS));

	/*
	 * RLIMIT_NOFILE bounds fd numbers, not their count: put the limit
	 * just above the highest open descriptor, use up every free number
	 * below it (there may be none), then let exactly 3 more numbers
	 * exist. (Valgrind keeps its own descriptors above the limit it
	 * shows us: only look below that.)
	 */
	ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &rl));
	top = max_open_fd(rl.rlim_cur);
	ASSERT_LT(0, top);
	rl.rlim_cur = top + 1;
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl));
	self->fillers = calloc(top + 1, sizeof(int));
	ASSERT_NE(NULL, self->fillers);
	while (self->nr_fillers <= top) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			break;
		self->fillers[self->nr_fillers++] = fd;
	}
	ASSERT_EQ(EMFILE, errno);
	rl.rlim_cur = top + 4;
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl));
	/* Exactly 3 can be opened. */
	for (i = 0; i < 4; i++)
		probe[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	close_fds_array(probe, 4);
	ASSERT_LE(0, probe[2]);
	ASSERT_EQ(-1, probe[3]);

	ASSERT_EQ(TEST_WIRE_HDR_LEN + 2,
		  raw_send_msg(self->w.remote, "8!", 2, more, 8));
	/* Closing them now would free 8 numbers for the receiver. */
	expect_failed(_metadata, &self->w);
	close_fds_array(more, 8);
}

/*
 * The reset notice: a header-only datagram with IPCSOCK_WIRE_F_RESET that
 * a closing end sends last when its application left messages of ours
 * unreceived. The receiving end reports hangup(-ECONNRESET) after every
 * message before it; anything malformed about it, or any datagram after
 * it, is a protocol error. Every other flag stays refused.
 */
static const struct test_wire_hdr reset_notice = {
	.version = TEST_WIRE_VERSION,
	.flags = TEST_WIRE_F_RESET,
};

TEST_F(wire, reset_notice_then_close)
{
	struct rec *rc = &self->w.rc;

	send_good(_metadata, &self->w);
	ASSERT_EQ(TEST_WIRE_HDR_LEN, raw_send_hdr(self->w.remote, &reset_notice,
						  NULL, 0, NULL, 0));
	ctx_close_fd(&self->w.t, self->w.remote);
	ASSERT_TRUE(dispatch_until(self->w.t.loop, rc->hangup, WAIT_MS));
	dispatch_for(self->w.t.loop, 20);
	EXPECT_EQ(1, rc->hangup);
	EXPECT_EQ(-ECONNRESET, rc->hangup_err);
	EXPECT_EQ(1, rc->received);
	EXPECT_EQ(1, rc->received_at_hangup);
	EXPECT_EQ(1, rc->fds);
	EXPECT_EQ(0, rc->bad + rc->recv_err);
	EXPECT_EQ(-EPIPE, send_str(self->w.c, "after"));
}

TEST_F(wire, reset_notice_with_bytes)
{
	bad_header(_metadata, &self->w, (struct test_wire_hdr){
		.len = 5, .version = TEST_WIRE_VERSION,
		.flags = TEST_WIRE_F_RESET }, 5, 0);
	EXPECT_EQ(-EPROTO, self->w.rc.hangup_err);
}

TEST_F(wire, reset_notice_with_fds)
{
	bad_header(_metadata, &self->w, (struct test_wire_hdr){
		.nr_fds = 1, .version = TEST_WIRE_VERSION,
		.flags = TEST_WIRE_F_RESET }, 0, 1);
	EXPECT_EQ(-EPROTO, self->w.rc.hangup_err);
}

TEST_F(wire, reset_notice_bad_version)
{
	bad_header(_metadata, &self->w, (struct test_wire_hdr){
		.version = TEST_WIRE_VERSION + 1,
		.flags = TEST_WIRE_F_RESET }, 0, 0);
	EXPECT_EQ(-EPROTO, self->w.rc.hangup_err);
}

TEST_F(wire, reset_notice_with_other_flags)
{
	bad_header(_metadata, &self->w, (struct test_wire_hdr){
		.version = TEST_WIRE_VERSION,
		.flags = TEST_WIRE_F_RESET | 0x80 }, 0, 0);
	EXPECT_EQ(-EPROTO, self->w.rc.hangup_err);
}

TEST_F(wire, unknown_flag_without_payload)
{
	bad_header(_metadata, &self->w, (struct test_wire_hdr){
		.version = TEST_WIRE_VERSION, .flags = 0x02 }, 0, 0);
	EXPECT_EQ(-EPROTO, self->w.rc.hangup_err);
}

/* The peer said it is closing: a message after that is not believable. */
TEST_F(wire, message_after_reset_notice)
{
	send_good(_metadata, &self->w);
	ASSERT_EQ(TEST_WIRE_HDR_LEN, raw_send_hdr(self->w.remote, &reset_notice,
						  NULL, 0, NULL, 0));
	expect_failed(_metadata, &self->w);
	EXPECT_EQ(-EPROTO, self->w.rc.hangup_err);
}

/*
 * The peer is the library, on a loop of its own. We send it @nr messages;
 * its loop runs (@peer_runs: it takes them into its receive buffers) or
 * not, its application receives @received of them, replies or not, and
 * closes. Returns the err of the one hangup we get.
 */
static int peer_closes(struct __test_metadata *_metadata,
		       struct wire_chan *w, int nr, bool peer_runs,
		       int received, bool reply)
{
	struct ipcsock_loop *lp = ctx_loop(_metadata, &w->t, 0, 0, 0);
	struct ipcsock *b, *peer;
	struct ipcsock_payload p;
	struct rec rb;
	int i;

	ctx_pair(_metadata, &w->t, w->t.loop, &b, lp, &peer);
	rec_attach(&rb, b);
	for (i = 0; i < nr; i++)
		ASSERT_EQ(0, send_str(b, "request"));
	if (peer_runs)
		dispatch_for(lp, 50);
	for (i = 0; i < received; i++) {
		ASSERT_EQ(0, receive_wait(lp, peer, &p, WAIT_MS));
		ASSERT_EQ(7, p.len);
	}
	if (reply)
		ASSERT_EQ(0, send_str(peer, "reply"));
	ctx_forget_sock(&w->t, peer);
	ipcsock_free(peer);
	ASSERT_TRUE(dispatch_until(w->t.loop, rb.hangup, WAIT_MS));
	dispatch_for(w->t.loop, 20);
	EXPECT_EQ(1, rb.hangup);
	EXPECT_EQ(reply, rb.received);
	EXPECT_EQ(reply, rb.received_at_hangup);
	EXPECT_EQ(0, rb.bad + rb.recv_err);
	EXPECT_EQ(-EPIPE, send_str(b, "after"));
	return rb.hangup_err;
}

/* The reproducer's three cases (review/connreset.c). */
TEST_F(wire, connreset_peer_loop_never_ran)
{
	EXPECT_EQ(-ECONNRESET, peer_closes(_metadata, &self->w, 5, false, 0,
					   false));
}

TEST_F(wire, connreset_peer_loop_ran)
{
	EXPECT_EQ(-ECONNRESET, peer_closes(_metadata, &self->w, 5, true, 0,
					   false));
}

TEST_F(wire, connreset_peer_loop_ran_buffers_full)
{
	EXPECT_EQ(-ECONNRESET, peer_closes(_metadata, &self->w, 40, true, 0,
					   false));
}

/* The last message received is the one it returned: received, not all. */
TEST_F(wire, connreset_peer_received_some)
{
	EXPECT_EQ(-ECONNRESET, peer_closes(_metadata, &self->w, 5, true, 3,
					   false));
}

/*
 * The reply goes out before the notice; with ring sends it is submitted
 * with a wait for completions, which takes our messages in without
 * anything reaping them: those count as unreceived too.
 */
TEST_F(wire, connreset_peer_replied)
{
	EXPECT_EQ(-ECONNRESET, peer_closes(_metadata, &self->w, 5, true, 0,
					   true));
}

TEST_F(wire, connreset_peer_replied_loop_never_ran)
{
	EXPECT_EQ(-ECONNRESET, peer_closes(_metadata, &self->w, 5, false, 0,
					   true));
}

TEST_F(wire, peer_received_all_then_closed)
{
	EXPECT_EQ(0, peer_closes(_metadata, &self->w, 5, true, 5, true));
}

/*
 * The same with the peer on a shared ring, plain and DEFER_TASKRUN: its
 * loop took our messages in, its application never received them.
 */
static void shared_peer_closes(struct __test_metadata *_metadata,
			       struct wire_chan *w,
			       unsigned int ring_flags, int received)
{
	struct io_uring_params prm = { .flags = ring_flags };
	struct ipcsock_loop *lp;
	struct ipcsock *b, *peer;
	struct ipcsock_payload p;
	struct io_uring ring;
	struct rec rb;
	int i, remote;

	if (!uring_available())
		SKIP(return, "io_uring is not available to this process");
	ASSERT_EQ(0, io_uring_queue_init_params(64, &ring, &prm));
	lp = ipcsock_loop_new_shared(&ring, NULL);
	ASSERT_NE(NULL, lp);
	peer = ipcsock_new(lp);
	ASSERT_NE(NULL, peer);
	b = ctx_sock(_metadata, &w->t, w->t.loop);
	remote = ipcsock_create(b);
	ASSERT_LE(0, remote);
	ASSERT_EQ(0, ipcsock_bind(peer, remote));
	rec_attach(&rb, b);
	for (i = 0; i < 5; i++)
		ASSERT_EQ(0, send_str(b, "request"));
	for (i = 0; i < 10; i++)
		loop_turn(lp, &ring, 5);
	for (i = 0; i < received; i++)
		ASSERT_EQ(0, ipcsock_receive(peer, &p));
	ipcsock_free(peer);
	for (i = 0; i < 200 && !ipcsock_loop_idle(lp); i++)
		loop_turn(lp, &ring, 5);
	EXPECT_TRUE(ipcsock_loop_idle(lp));
	ipcsock_loop_free(lp);
	io_uring_queue_exit(&ring);
	ASSERT_TRUE(dispatch_until(w->t.loop, rb.hangup, WAIT_MS));
	EXPECT_EQ(1, rb.hangup);
	EXPECT_EQ(received == 5 ? 0 : -ECONNRESET, rb.hangup_err);
}

TEST_F(wire, connreset_peer_on_shared_ring)
{
	shared_peer_closes(_metadata, &self->w, 0, 0);
}

TEST_F(wire, connreset_peer_on_shared_defer_taskrun_ring)
{
	shared_peer_closes(_metadata, &self->w, IORING_SETUP_SINGLE_ISSUER |
			   IORING_SETUP_DEFER_TASKRUN, 0);
}

TEST_F(wire, peer_on_shared_ring_received_all_then_closed)
{
	shared_peer_closes(_metadata, &self->w, 0, 5);
}

/*
 * Close must see every message the kernel took out of the socket for us,
 * also one whose completion waits in the CQ's overflow list: 32 messages
 * to another channel fill a ring_entries 8 loop's CQ (32 entries), the one
 * message to the closed channel overflows. Its peer must get the reset
 * notice, not a clean end of file.
 */
TEST(reset_notice_after_cq_overflow)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = IPCSOCK_BACKEND_URING,
			  .ring_entries = 8);
	struct {
		struct test_wire_hdr hdr;
		char data[4];
	} m = { .hdr = { .len = 4, .version = 1 }, .data = "abc" };
	int fds = count_open_fds(), py, pz, i, notices = 0;
	struct test_wire_hdr got;
	struct ipcsock_loop *loop;
	struct ipcsock *y, *z;
	ssize_t n;

	loop = ipcsock_loop_new(&opts);
	if (!loop)
		SKIP(return, "no io_uring loop here");
	y = ipcsock_new(loop);
	z = ipcsock_new(loop);
	ASSERT_NE(NULL, y);
	ASSERT_NE(NULL, z);
	py = ipcsock_create(y);
	pz = ipcsock_create(z);
	ASSERT_LE(0, py);
	ASSERT_LE(0, pz);
	for (i = 0; i < 32; i++)
		ASSERT_EQ(sizeof(m), send(py, &m, sizeof(m), 0));
	ASSERT_EQ(sizeof(m), send(pz, &m, sizeof(m), 0));
	ipcsock_loop_dispatch(loop, 0);
	ipcsock_close(z);
	while ((n = recv(pz, &got, sizeof(got), MSG_DONTWAIT)) > 0)
		if (n == sizeof(got) && got.flags == TEST_WIRE_F_RESET)
			notices++;
	EXPECT_EQ(1, notices);
	ipcsock_free(y);
	ipcsock_free(z);
	ipcsock_loop_free(loop);
	close(py);
	close(pz);
	EXPECT_EQ(fds, count_open_fds());
}

TEST_HARNESS_MAIN
