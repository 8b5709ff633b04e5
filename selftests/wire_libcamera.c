// SPDX-License-Identifier: GPL-2.0
/*
 * The libcamera wire mode (IPCSOCK_WIRE_LIBCAMERA): libcamera's
 * IPCUnixSocket format on a SOCK_DGRAM channel, a header datagram
 * { uint32_t data; uint8_t fds; } then a payload datagram with the fds.
 *
 * Between two library sockets: both directions, fds with their content,
 * payloads of no bytes (fds only), of max_msg_size, 10,000 messages in
 * order with both send queues full, -ENOBUFS. Against a raw SOCK_DGRAM
 * peer written here with plain socket calls: the format itself, the two
 * datagrams of a message never parted under back-pressure, and every
 * malformed sequence failing the channel with its fds closed and nothing
 * of it delivered. The end of a datagram channel: -ECONNREFUSED on the
 * send after the peer closed, no hangup while only receiving. Every
 * variant runs on every setup of ALL_SETUP_VARIANTS(): io_uring, epoll,
 * io_uring with ring sends, and an application's shared ring, plain,
 * DEFER_TASKRUN and SQPOLL, the last two also with ring sends.
 */
#include "selftest.h"

#include <stddef.h>
#include <sys/resource.h>
#include <sys/syscall.h>

struct lc_hdr {
	uint32_t data;
	uint8_t fds;
	uint8_t pad[3];
};

#define NR_FLOOD	10000
#define MAX_SOCKS	4

/* One test: its loop, sockets, recorders and raw peer. */
struct lc_test {
	struct ipcsock_test t;
	struct ipcsock_loop *loop;	/* t.loop */
	struct ipcsock *socks[MAX_SOCKS];
	struct ipcsock *a, *b;		/* a pair, when made */
	struct rec ra, rb;
	int raw;			/* a raw peer's end, or -1 */
	int memfds[3];
};

FIXTURE(lc) {
	struct lc_test l;
};

ALL_SETUP_VARIANTS(lc);

/* One turn of whatever drives the loop: up to @ms of waiting. */
static void turn(struct lc_test *l, int ms)
{
	loop_pump(l->loop, ms);
}

#define turn_until(l, cond, timeout_ms) ({				\
	uint64_t __deadline = now_ms() + (timeout_ms);			\
	bool __ok;							\
									\
	while (!(__ok = (cond)) && now_ms() < __deadline)		\
		turn((l), 2);					\
	__ok;								\
})

static void turn_for(struct lc_test *l, int ms)
{
	uint64_t deadline = now_ms() + ms;

	while (now_ms() < deadline)
		turn(l, 2);
}

static struct ipcsock *lc_sock(struct __test_metadata *_metadata,
			       struct lc_test *l)
{
	IPCSOCK_OPTS(opts, .wire = IPCSOCK_WIRE_LIBCAMERA);
	struct ipcsock *sock = ipcsock_new_opts(l->loop, &opts);
	int i;

	ASSERT_NE(NULL, sock) TH_LOG("ipcsock_new_opts: %s", strerror(errno));
	for (i = 0; i < MAX_SOCKS; i++) {
		if (!l->socks[i]) {
			l->socks[i] = sock;
			return sock;
		}
	}
	ipcsock_free(sock);
	ASSERT_TRUE(false);
	return NULL;
}

FIXTURE_SETUP(lc)
{
	struct lc_test *l = &self->l;
	int i;

	l->raw = -1;
	for (i = 0; i < 3; i++)
		l->memfds[i] = -1;
	ctx_setup_variant(_metadata, &l->t, variant->backend, variant->shared,
			  variant->ring_flags);
	l->loop = l->t.loop;
	for (i = 0; i < 3; i++) {
		char content[16];

		snprintf(content, sizeof(content), "memfd %d", i);
		l->memfds[i] = memfd_with("lc", content);
		ASSERT_LE(0, l->memfds[i]);
	}
}

FIXTURE_TEARDOWN(lc)
{
	struct lc_test *l = &self->l;
	int i;

	for (i = 0; i < MAX_SOCKS; i++)
		ipcsock_free(l->socks[i]);
	if (l->raw >= 0)
		close(l->raw);
	close_fds_array(l->memfds, 3);
	ctx_teardown(_metadata, &l->t);
}

/* a created, b bound to its other end, both recording. */
static void lc_pair(struct __test_metadata *_metadata,
		    struct lc_test *l)
{
	int fd, ret;

	l->a = lc_sock(_metadata, l);
	l->b = lc_sock(_metadata, l);
	fd = ipcsock_create(l->a);
	ASSERT_LE(0, fd) TH_LOG("create: %s", strerror(-fd));
	ret = ipcsock_bind(l->b, fd);
	if (ret)
		close(fd);
	ASSERT_EQ(0, ret) TH_LOG("bind: %s", strerror(-ret));
	rec_attach(&l->ra, l->a);
	rec_attach(&l->rb, l->b);
}

/* a against a raw DGRAM peer, l->raw. */
static void lc_raw(struct __test_metadata *_metadata,
		   struct lc_test *l)
{
	l->a = lc_sock(_metadata, l);
	l->raw = ipcsock_create(l->a);
	ASSERT_LE(0, l->raw) TH_LOG("create: %s", strerror(-l->raw));
	rec_attach(&l->ra, l->a);
	l->ra.check_seq = true;
}

/* Raw peer: one datagram, bytes and fds, never blocking. */
static ssize_t raw_dgram(int fd, const void *data, size_t len,
			 const int *fds, unsigned int nr_fds)
{
	return raw_send_hdr(fd, NULL, data, len, fds, nr_fds);
}

static ssize_t raw_header(int fd, uint32_t data, unsigned int nr_fds)
{
	struct lc_hdr hdr = { .data = data, .fds = nr_fds };

	return raw_dgram(fd, &hdr, sizeof(hdr), NULL, 0);
}

/* Raw peer: a whole message as libcamera sends it. */
static void raw_message(struct __test_metadata *_metadata, int fd,
			const void *data, size_t len, const int *fds,
			unsigned int nr_fds)
{
	ASSERT_EQ(sizeof(struct lc_hdr), raw_header(fd, len, nr_fds));
	ASSERT_EQ(len, raw_dgram(fd, data, len, fds, nr_fds));
}

TEST_F(lc, options)
{
	IPCSOCK_OPTS(bad, .wire = (enum ipcsock_wire)7);
	struct {
		struct ipcsock_opts o;
		char tail[8];
	} big = { .o = { .sz = sizeof(big) } };
	struct lc_test *l = &self->l;
	struct ipcsock *s;
	int sv[2];

	errno = 0;
	EXPECT_EQ(NULL, ipcsock_new_opts(l->loop, &bad));
	EXPECT_EQ(EINVAL, errno);
	big.tail[3] = 1;
	errno = 0;
	EXPECT_EQ(NULL, ipcsock_new_opts(l->loop, &big.o));
	EXPECT_EQ(EINVAL, errno);
	/* Zero past the known fields, and NULL options: the native mode. */
	big.tail[3] = 0;
	s = ipcsock_new_opts(l->loop, &big.o);
	ASSERT_NE(NULL, s);
	l->socks[0] = s;
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv));
	EXPECT_EQ(-EPROTOTYPE, ipcsock_bind(s, sv[0]));
	close(sv[0]);
	close(sv[1]);

	/* A libcamera-mode handle takes datagram sockets only. */
	s = lc_sock(_metadata, l);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
				sv));
	EXPECT_EQ(-EPROTOTYPE, ipcsock_bind(s, sv[0]));
	close(sv[0]);
	close(sv[1]);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv));
	EXPECT_EQ(0, ipcsock_bind(s, sv[0]));
	close(sv[1]);
	ipcsock_close(s);
	EXPECT_FALSE(ipcsock_is_bound(s));
}

TEST_F(lc, create_makes_dgram)
{
	struct lc_test *l = &self->l;
	int type = 0;
	socklen_t len = sizeof(type);

	lc_raw(_metadata, l);
	ASSERT_EQ(0, getsockopt(l->raw, SOL_SOCKET, SO_TYPE, &type, &len));
	EXPECT_EQ(SOCK_DGRAM, type);
	EXPECT_TRUE(fd_is_cloexec(l->raw));
}

TEST_F(lc, both_directions)
{
	struct lc_test *l = &self->l;
	struct ipcsock_payload p;
	char buf[32];
	int i;

	lc_pair(_metadata, l);
	l->ra.no_receive = true;
	l->rb.no_receive = true;
	for (i = 0; i < 3; i++) {
		snprintf(buf, sizeof(buf), "a to b %d", i);
		ASSERT_EQ(0, send_str(l->a, buf));
		snprintf(buf, sizeof(buf), "b to a %d", i);
		ASSERT_EQ(0, send_str(l->b, buf));
	}
	for (i = 0; i < 3; i++) {
		ASSERT_TRUE(turn_until(l, !ipcsock_receive(l->b, &p),
				       WAIT_MS));
		snprintf(buf, sizeof(buf), "a to b %d", i);
		ASSERT_EQ(strlen(buf), p.len);
		EXPECT_EQ(0, memcmp(buf, p.data, p.len));
		EXPECT_EQ(0, p.nr_fds);
		ASSERT_TRUE(turn_until(l, !ipcsock_receive(l->a, &p),
				       WAIT_MS));
		snprintf(buf, sizeof(buf), "b to a %d", i);
		ASSERT_EQ(strlen(buf), p.len);
		EXPECT_EQ(0, memcmp(buf, p.data, p.len));
	}
	EXPECT_EQ(-EAGAIN, ipcsock_receive(l->a, &p));
	EXPECT_EQ(-EAGAIN, ipcsock_receive(l->b, &p));
	EXPECT_EQ(0, l->ra.hangup);
	EXPECT_EQ(0, l->rb.hangup);
}

/* fds arrive as new, close-on-exec descriptors of the same files. */
static void check_fds(struct __test_metadata *_metadata,
		      struct lc_test *l,
		      const struct ipcsock_payload *p, unsigned int n)
{
	char want[16], got[16];
	unsigned int i;

	ASSERT_EQ(n, p->nr_fds);
	for (i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "memfd %u", i);
		EXPECT_TRUE(fd_is_cloexec(p->fds[i]));
		EXPECT_NE(l->memfds[i], p->fds[i]);
		EXPECT_TRUE(same_file(l->memfds[i], p->fds[i]));
		EXPECT_EQ((ssize_t)strlen(want),
			  fd_content(p->fds[i], got, sizeof(got)));
		EXPECT_STREQ(want, got);
		close(p->fds[i]);
	}
}

TEST_F(lc, fds_and_fds_only)
{
	struct lc_test *l = &self->l;
	struct ipcsock_payload p, m;
	int i;

	lc_pair(_metadata, l);
	l->rb.no_receive = true;
	/* Fds with bytes, fds alone (a payload datagram of 0 bytes), twice. */
	for (i = 0; i < 2; i++) {
		m = msg_of("with fds", 8, l->memfds, 3);
		ASSERT_EQ(0, ipcsock_send(l->a, &m));
		m = msg_of(NULL, 0, l->memfds, 2);
		ASSERT_EQ(0, ipcsock_send(l->a, &m));
		m = msg_of(NULL, 0, l->memfds, 1);
		ASSERT_EQ(0, ipcsock_send(l->a, &m));
		ASSERT_EQ(0, send_str(l->a, "after"));
	}
	for (i = 0; i < 2; i++) {
		ASSERT_TRUE(turn_until(l, !ipcsock_receive(l->b, &p),
				       WAIT_MS));
		ASSERT_EQ(8, p.len);
		EXPECT_EQ(0, memcmp("with fds", p.data, 8));
		check_fds(_metadata, l, &p, 3);
		ASSERT_TRUE(turn_until(l, !ipcsock_receive(l->b, &p),
				       WAIT_MS));
		EXPECT_EQ(0, p.len);
		check_fds(_metadata, l, &p, 2);
		ASSERT_TRUE(turn_until(l, !ipcsock_receive(l->b, &p),
				       WAIT_MS));
		EXPECT_EQ(0, p.len);
		check_fds(_metadata, l, &p, 1);
		ASSERT_TRUE(turn_until(l, !ipcsock_receive(l->b, &p),
				       WAIT_MS));
		ASSERT_EQ(5, p.len);
		EXPECT_EQ(0, memcmp("after", p.data, 5));
		EXPECT_EQ(0, p.nr_fds);
	}
	EXPECT_EQ(0, l->rb.hangup);
}

#define BURST_MSGS	64

/*
 * Turns a burst of BURST_MSGS messages of @len bytes and one fd each,
 * all sent before the first turn, takes to arrive whole at l->b.
 */
static int burst_turns(struct __test_metadata *_metadata, struct lc_test *l,
		       size_t len)
{
	uint64_t deadline;
	int before = l->rb.received, n = 0;
	uint32_t i;

	for (i = 0; i < BURST_MSGS; i++) {
		struct ipcsock_payload m = msg_of(&i, len, l->memfds, 1);

		EXPECT_EQ(0, ipcsock_send(l->a, &m));
	}
	deadline = now_ms() + WAIT_MS;
	while (l->rb.received - before < BURST_MSGS && now_ms() < deadline) {
		turn(l, 2);
		n++;
	}
	EXPECT_EQ(BURST_MSGS, l->rb.received - before);
	return n;
}

/*
 * A payload datagram of no bytes (a message of fds alone) reads as 0
 * bytes, which ends a multishot receive, as the end of file would. The
 * receive must be armed again at once, not at the next turn: a burst of
 * such messages arrives in about as few turns as one with bytes.
 */
TEST_F(lc, fds_only_burst_few_turns)
{
	struct lc_test *l = &self->l;
	int bytes, fds_only;

	/*
	 * The thread takes the receive armed again after the turn's wait
	 * ended. Measured there: 9 turns with bytes, 64 without.
	 */
	if (variant->ring_flags & IORING_SETUP_SQPOLL)
		SKIP(return, "SQPOLL: turns count the thread's pace");
	lc_pair(_metadata, l);
	bytes = burst_turns(_metadata, l, 4);
	fds_only = burst_turns(_metadata, l, 0);
	EXPECT_GE(bytes + 4, fds_only)
		TH_LOG("turns for %d messages with 1 fd: 4 bytes %d, none %d",
		       BURST_MSGS, bytes, fds_only);
	EXPECT_EQ(2 * BURST_MSGS, l->rb.fds);
	EXPECT_EQ(0, l->rb.bad);
	EXPECT_EQ(0, l->rb.hangup);
}

/* As in libcamera, a message with neither bytes nor fds is refused. */
TEST_F(lc, empty_message_refused)
{
	struct lc_test *l = &self->l;
	struct ipcsock_payload m = msg_of(NULL, 0, NULL, 0);

	lc_pair(_metadata, l);
	EXPECT_EQ(-EINVAL, ipcsock_send(l->a, &m));
	EXPECT_EQ(0, send_str(l->a, "still usable"));
	EXPECT_TRUE(turn_until(l, l->rb.received == 1, WAIT_MS));
}

TEST_F(lc, max_msg_size)
{
	struct lc_test *l = &self->l;
	static const size_t sizes[] = { 1, 4095, 4096, 65535,
					IPCSOCK_DEFAULT_MAX_MSG_SIZE };
	unsigned char *buf = malloc(IPCSOCK_DEFAULT_MAX_MSG_SIZE + 1);
	struct ipcsock_payload p, m;
	unsigned int i;
	size_t j;

	ASSERT_NE(NULL, buf);
	lc_pair(_metadata, l);
	l->rb.no_receive = true;
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		for (j = 0; j < sizes[i]; j++)
			buf[j] = (unsigned char)(i * 31 + j * 7);
		m = msg_of(buf, sizes[i], l->memfds, i % 2);
		EXPECT_EQ(0, ipcsock_send(l->a, &m));
	}
	m = msg_of(buf, IPCSOCK_DEFAULT_MAX_MSG_SIZE + 1, NULL, 0);
	EXPECT_EQ(-EMSGSIZE, ipcsock_send(l->a, &m));
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		ASSERT_TRUE(turn_until(l, !ipcsock_receive(l->b, &p),
				       WAIT_MS));
		ASSERT_EQ(sizes[i], p.len);
		for (j = 0; j < sizes[i]; j++)
			if (((const unsigned char *)p.data)[j] !=
			    (unsigned char)(i * 31 + j * 7))
				break;
		EXPECT_EQ(sizes[i], j);
		EXPECT_EQ(i % 2, p.nr_fds);
		close_fds_array(p.fds, p.nr_fds);
	}
	free(buf);
}

/*
 * Flood: each side sends NR_FLOOD numbered messages, of varying size and
 * some with an fd, as fast as its send queue takes them (-ENOBUFS means
 * turn the loop), while receiving the other's: both queues and both
 * socket buffers fill, and messages are split across the send paths.
 */
struct flood {
	struct ipcsock *sock;
	uint32_t sent;
	int enobufs;
};

static int flood_send(struct flood *f, int fd)
{
	static unsigned char buf[3000];
	struct ipcsock_payload m;
	size_t len;
	int ret;

	while (f->sent < NR_FLOOD) {
		len = 4 + (f->sent * 37) % (sizeof(buf) - 4);
		memcpy(buf, &f->sent, 4);
		m = msg_of(buf, len, &fd, f->sent % 50 == 0);
		ret = ipcsock_send(f->sock, &m);
		if (ret == -ENOBUFS) {
			f->enobufs++;
			return 0;
		}
		if (ret)
			return ret;
		f->sent++;
	}
	return 0;
}

TEST_F(lc, flood_both_ways)
{
	struct lc_test *l = &self->l;
	struct flood fa = { 0 }, fb = { 0 };
	uint64_t deadline = now_ms() + 60000;

	lc_pair(_metadata, l);
	l->ra.check_seq = true;
	l->rb.check_seq = true;
	/* Receive a few at a time: the peer's queue stays under pressure. */
	l->ra.per_call = 8;
	l->rb.per_call = 8;
	fa.sock = l->a;
	fb.sock = l->b;
	while ((l->ra.received < NR_FLOOD || l->rb.received < NR_FLOOD) &&
	       now_ms() < deadline) {
		ASSERT_EQ(0, flood_send(&fa, l->memfds[0]));
		ASSERT_EQ(0, flood_send(&fb, l->memfds[1]));
		turn(l, 1);
		ASSERT_EQ(0, l->ra.bad + l->rb.bad);
		ASSERT_EQ(0, l->ra.hangup + l->rb.hangup)
			TH_LOG("hangup %d/%d", l->ra.hangup_err,
			       l->rb.hangup_err);
	}
	EXPECT_EQ(NR_FLOOD, l->rb.received);
	EXPECT_EQ(NR_FLOOD, l->ra.received);
	EXPECT_EQ(NR_FLOOD / 50, l->rb.fds);
	EXPECT_EQ(NR_FLOOD / 50, l->ra.fds);
	EXPECT_LT(0, fa.enobufs);
	EXPECT_LT(0, fb.enobufs);
	EXPECT_EQ(0, l->ra.recv_err + l->rb.recv_err);
}

/*
 * The raw peer speaks the format by hand: its messages arrive, and ours
 * come to it as header then payload, fds on the payload.
 */
TEST_F(lc, raw_peer)
{
	struct lc_test *l = &self->l;
	struct lc_hdr hdr;
	char buf[64];
	unsigned int nr;
	uint32_t seq;
	int fds[4], flags;
	struct ipcsock_payload m;

	lc_raw(_metadata, l);
	for (seq = 0; seq < 3; seq++)
		raw_message(_metadata, l->raw, &seq, sizeof(seq),
			    l->memfds, seq);
	ASSERT_TRUE(turn_until(l, l->ra.received == 3, WAIT_MS));
	EXPECT_EQ(0 + 1 + 2, l->ra.fds);
	EXPECT_EQ(0, l->ra.bad);

	m = msg_of("hello", 5, l->memfds, 2);
	ASSERT_EQ(0, ipcsock_send(l->a, &m));
	m = msg_of(NULL, 0, l->memfds, 1);
	ASSERT_EQ(0, ipcsock_send(l->a, &m));
	ASSERT_TRUE(turn_until(l, fd_wait_readable(l->raw, 0), WAIT_MS));

	memset(&hdr, 0xff, sizeof(hdr));
	ASSERT_EQ(sizeof(hdr), raw_recv(l->raw, &hdr, sizeof(hdr), fds, 4,
					&nr, &flags));
	EXPECT_EQ(5, hdr.data);
	EXPECT_EQ(2, hdr.fds);
	EXPECT_EQ(0, hdr.pad[0] | hdr.pad[1] | hdr.pad[2]);
	EXPECT_EQ(0, nr);
	ASSERT_TRUE(turn_until(l, fd_wait_readable(l->raw, 0), WAIT_MS));
	ASSERT_EQ(5, raw_recv(l->raw, buf, sizeof(buf), fds, 4, &nr,
			      &flags));
	EXPECT_EQ(0, memcmp("hello", buf, 5));
	ASSERT_EQ(2, nr);
	EXPECT_TRUE(same_file(fds[0], l->memfds[0]));
	EXPECT_TRUE(same_file(fds[1], l->memfds[1]));
	close_fds_array(fds, nr);

	ASSERT_TRUE(turn_until(l, fd_wait_readable(l->raw, 0), WAIT_MS));
	ASSERT_EQ(sizeof(hdr), raw_recv(l->raw, &hdr, sizeof(hdr), fds, 4,
					&nr, &flags));
	EXPECT_EQ(0, hdr.data);
	EXPECT_EQ(1, hdr.fds);
	ASSERT_TRUE(turn_until(l, fd_wait_readable(l->raw, 0), WAIT_MS));
	ASSERT_EQ(0, raw_recv(l->raw, buf, sizeof(buf), fds, 4, &nr,
			      &flags));
	ASSERT_EQ(1, nr);
	EXPECT_TRUE(same_file(fds[0], l->memfds[0]));
	close_fds_array(fds, nr);
	EXPECT_EQ(-EAGAIN, raw_recv(l->raw, buf, sizeof(buf), fds, 4, &nr,
				    &flags));
}

/*
 * Lone messages, one after another, each read by the raw peer before the
 * loop turns: a send with nothing queued before it hands the message to
 * the kernel before it returns, whichever way it takes (sendmmsg, a ring
 * chain), header first, the fds on the payload.
 */
TEST_F(lc, lone_message_out_before_send_returns)
{
	struct lc_test *l = &self->l;
	struct ipcsock_payload m;
	struct lc_hdr hdr;
	unsigned int nr, i;
	int fds[2], flags;
	char buf[16];

	/*
	 * ipcsock_send(3): with ring sends every message is a request on
	 * the ring. On a shared one the next chain waits for the last one's
	 * completions, which only the application hands over, and an SQPOLL
	 * thread sends after the call returned.
	 */
	if (variant->shared && variant->backend == BACKEND_URING_RING_SENDS)
		SKIP(return, "shared ring, ring sends: waits for a hand-over");
	lc_raw(_metadata, l);
	for (i = 0; i < 8; i++) {
		m = msg_of(&i, sizeof(i), l->memfds, i & 1);
		ASSERT_EQ(0, ipcsock_send(l->a, &m));
		ASSERT_EQ(sizeof(hdr), raw_recv(l->raw, &hdr, sizeof(hdr), fds,
						2, &nr, &flags));
		EXPECT_EQ(sizeof(i), hdr.data);
		EXPECT_EQ(i & 1, hdr.fds);
		EXPECT_EQ(0, nr);
		ASSERT_EQ(sizeof(i), raw_recv(l->raw, buf, sizeof(buf), fds, 2,
					      &nr, &flags));
		EXPECT_EQ(0, memcmp(&i, buf, sizeof(i)));
		ASSERT_EQ(i & 1, nr);
		if (nr)
			EXPECT_TRUE(same_file(fds[0], l->memfds[0]));
		close_fds_array(fds, nr);
	}
	EXPECT_EQ(-EAGAIN, raw_recv(l->raw, buf, sizeof(buf), fds, 2, &nr,
				    &flags));
}

/*
 * A callback that answers every message with NR_REPLIES of its own, each
 * carrying its number; the first and every third an fd.
 */
#define NR_REPLIES	40

struct replier {
	struct lc_test *l;
	unsigned int calls, failed;
};

static void reply_ready_read(struct ipcsock *sock, void *arg)
{
	struct replier *r = arg;
	struct ipcsock_payload in, m;
	unsigned int i;

	while (ipcsock_receive(sock, &in) == 0) {
		r->calls++;
		for (i = 0; i < NR_REPLIES; i++) {
			m = msg_of(&i, sizeof(i), r->l->memfds, i % 3 == 0);
			r->failed += ipcsock_send(sock, &m) != 0;
		}
	}
}

/*
 * Replies sent from a callback are with the peer once that dispatch
 * returns, however many: on our own ring the first goes as a ring pair
 * and the rest queue behind that chain, which dispatch end must then
 * drive, not leave for the next dispatch (that one may never come to a
 * loop whose fd shows nothing due). More replies than one ring-sends
 * chain takes.
 */
TEST_F(lc, callback_replies_out_at_dispatch_end)
{
	struct lc_test *l = &self->l;
	struct replier r = { .l = l };
	unsigned int nr, i, v;
	struct lc_hdr hdr;
	int fds[2], flags;
	char buf[16];

	/*
	 * Dispatch end drives the chains on our own ring only: on a shared
	 * ring the first reply's chain has to complete, and its completions
	 * be handed over, before the rest go (an SQPOLL thread takes even
	 * the first one later).
	 */
	if (variant->shared && variant->backend == BACKEND_URING_RING_SENDS)
		SKIP(return, "shared ring, ring sends: waits for a hand-over");
	lc_raw(_metadata, l);
	ipcsock_set_ready_read(l->a, reply_ready_read, &r);
	raw_message(_metadata, l->raw, "ping", 4, NULL, 0);
	ASSERT_TRUE(turn_until(l, r.calls, WAIT_MS));
	EXPECT_EQ(0, r.failed);
	/* The loop does not turn again from here. */
	for (i = 0; i < NR_REPLIES; i++) {
		ASSERT_EQ(sizeof(hdr), raw_recv(l->raw, &hdr, sizeof(hdr), fds,
						2, &nr, &flags))
			TH_LOG("reply %u of %u not sent", i, NR_REPLIES);
		EXPECT_EQ(sizeof(v), hdr.data);
		EXPECT_EQ(i % 3 == 0, hdr.fds);
		ASSERT_EQ(sizeof(v), raw_recv(l->raw, buf, sizeof(buf), fds, 2,
					      &nr, &flags));
		memcpy(&v, buf, sizeof(v));
		EXPECT_EQ(i, v);
		ASSERT_EQ(i % 3 == 0, nr);
		close_fds_array(fds, nr);
	}
	EXPECT_EQ(-EAGAIN, raw_recv(l->raw, buf, sizeof(buf), fds, 2, &nr,
				    &flags));
}

/*
 * Our sends under back-pressure, read datagram by datagram: always a
 * header, then exactly the payload it announced, never another message's
 * datagram between the two, in order.
 */
TEST_F(lc, raw_peer_never_parted)
{
	struct lc_test *l = &self->l;
	static unsigned char big[40000];
	unsigned char *buf = malloc(sizeof(big));
	struct flood f = { .sock = NULL };
	uint32_t next = 0, seq;
	struct lc_hdr hdr;
	bool want_hdr = true;
	unsigned int nr;
	int fds[2], flags;
	uint64_t deadline = now_ms() + 60000;
	ssize_t n;

	ASSERT_NE(NULL, buf);
	lc_raw(_metadata, l);
	f.sock = l->a;
	while (next < 2000 && now_ms() < deadline) {
		/* Larger messages than flood_send's: the socket fills fast. */
		while (f.sent < 2000) {
			struct ipcsock_payload m;
			int ret;

			memcpy(big, &f.sent, 4);
			m = msg_of(big, 4 + (f.sent * 7919) % (sizeof(big) - 4),
				   l->memfds, f.sent % 3 == 0);
			ret = ipcsock_send(l->a, &m);
			if (ret == -ENOBUFS) {
				f.enobufs++;
				break;
			}
			ASSERT_EQ(0, ret);
			f.sent++;
		}
		turn(l, 0);
		/* Read a little at a time, so that sends meet a full socket. */
		for (int k = 0; k < 3; k++) {
			n = raw_recv(l->raw, want_hdr ? (void *)&hdr : buf,
				     want_hdr ? sizeof(hdr) : sizeof(big), fds,
				     2, &nr, &flags);
			if (n == -EAGAIN)
				break;
			ASSERT_LE(0, n);
			ASSERT_EQ(0, flags & (MSG_TRUNC | MSG_CTRUNC));
			if (want_hdr) {
				ASSERT_EQ(sizeof(hdr), n);
				ASSERT_EQ(0, nr);
				want_hdr = false;
				continue;
			}
			ASSERT_EQ(hdr.data, n) TH_LOG("message %u", next);
			ASSERT_EQ(hdr.fds, nr);
			memcpy(&seq, buf, 4);
			ASSERT_EQ(next, seq);
			ASSERT_EQ(next % 3 == 0, nr);
			close_fds_array(fds, nr);
			next++;
			want_hdr = true;
		}
		ASSERT_EQ(0, l->ra.hangup);
	}
	EXPECT_EQ(2000, next);
	EXPECT_LT(0, f.enobufs);
	free(buf);
}

/*
 * The socket fills between the two halves of a message: whatever path
 * sends first (a direct sendmmsg of header and payload, a drain, a ring
 * chain) may get the header out and meet a full socket with the payload.
 * Round after round the library sends small messages until its queue is
 * full (so the socket filled before it, somewhere in a message), then the
 * raw peer reads everything: each message must come as its header and
 * then its payload, in order, none twice.
 */
TEST_F(lc, full_between_halves)
{
	struct lc_test *l = &self->l;
	unsigned char buf[512];
	uint32_t sent = 0, next = 0, seq;
	struct lc_hdr hdr;
	unsigned int round, nr;
	int fds[2], flags, ret;
	ssize_t n;

	lc_raw(_metadata, l);
	for (round = 0; round < 40; round++) {
		for (;;) {
			struct ipcsock_payload m;

			memset(buf, 0, sizeof(buf));
			memcpy(buf, &sent, 4);
			m = msg_of(buf, 4 + (sent * 13 + round) % 300,
				   l->memfds, sent % 4 == 0);
			ret = ipcsock_send(l->a, &m);
			if (ret == -ENOBUFS)
				break;
			ASSERT_EQ(0, ret);
			sent++;
		}
		while (next < sent) {
			n = raw_recv(l->raw, &hdr, sizeof(hdr), fds, 2, &nr,
				     &flags);
			if (n == -EAGAIN) {
				turn(l, 1);
				ASSERT_EQ(0, l->ra.hangup);
				continue;
			}
			ASSERT_EQ(sizeof(hdr), n) TH_LOG("message %u", next);
			ASSERT_EQ(0, nr);
			ASSERT_TRUE(turn_until(l, fd_wait_readable(l->raw, 0),
					       WAIT_MS));
			n = raw_recv(l->raw, buf, sizeof(buf), fds, 2, &nr,
				     &flags);
			ASSERT_EQ(hdr.data, n) TH_LOG("message %u", next);
			ASSERT_EQ(hdr.fds, nr);
			close_fds_array(fds, nr);
			memcpy(&seq, buf, 4);
			ASSERT_EQ(next, seq);
			next++;
		}
	}
	turn_for(l, 10);
	EXPECT_EQ(-EAGAIN, raw_recv(l->raw, buf, sizeof(buf), fds, 2, &nr,
				    &flags));
}

/*
 * Hostile sequences from the raw peer. Before each, a good message
 * (seq 0, one fd) that must be delivered; after it, another good one
 * that must not. The channel fails once, with @err, and every fd that
 * came with the bad datagrams is closed.
 */
static void expect_failed(struct __test_metadata *_metadata,
			  struct lc_test *l, int fds_before, int err)
{
	struct rec *rc = &l->ra;
	uint32_t seq = 1;

	raw_message(_metadata, l->raw, &seq, sizeof(seq), NULL, 0);
	ASSERT_TRUE(turn_until(l, rc->hangup, WAIT_MS))
		TH_LOG("no hangup; %d messages received", rc->received);
	turn_for(l, 50);
	EXPECT_EQ(1, rc->hangup);
	EXPECT_EQ(err, rc->hangup_err);
	EXPECT_EQ(1, rc->received);
	EXPECT_EQ(1, rc->fds);
	EXPECT_EQ(0, rc->bad);
	EXPECT_EQ(0, rc->recv_err);
	/* The fds of the good message were closed by rec; no others came. */
	EXPECT_EQ(fds_before, count_open_fds());
	EXPECT_TRUE(ipcsock_is_bound(l->a));
	EXPECT_EQ(-EPIPE, send_str(l->a, "after"));
}

static int hostile_start(struct __test_metadata *_metadata,
			 struct lc_test *l)
{
	uint32_t seq = 0;
	int n;

	lc_raw(_metadata, l);
	/* Before anything is sent: a ring may receive at any syscall. */
	n = count_open_fds();
	raw_message(_metadata, l->raw, &seq, sizeof(seq), l->memfds, 1);
	return n;
}

TEST_F(lc, hostile_size_mismatch)
{
	struct lc_test *l = &self->l;
	int n = hostile_start(_metadata, l);

	ASSERT_EQ(sizeof(struct lc_hdr), raw_header(l->raw, 10, 2));
	ASSERT_EQ(5, raw_dgram(l->raw, "12345", 5, l->memfds, 2));
	expect_failed(_metadata, l, n, -EPROTO);
}

TEST_F(lc, hostile_more_fds_than_announced)
{
	struct lc_test *l = &self->l;
	int n = hostile_start(_metadata, l);

	ASSERT_EQ(sizeof(struct lc_hdr), raw_header(l->raw, 5, 1));
	ASSERT_EQ(5, raw_dgram(l->raw, "12345", 5, l->memfds, 3));
	expect_failed(_metadata, l, n, -EPROTO);
}

TEST_F(lc, hostile_fewer_fds_than_announced)
{
	struct lc_test *l = &self->l;
	int n = hostile_start(_metadata, l);

	ASSERT_EQ(sizeof(struct lc_hdr), raw_header(l->raw, 0, 3));
	ASSERT_EQ(0, raw_dgram(l->raw, NULL, 0, l->memfds, 2));
	expect_failed(_metadata, l, n, -EPROTO);
}

TEST_F(lc, hostile_payload_without_header)
{
	struct lc_test *l = &self->l;
	int n = hostile_start(_metadata, l);

	ASSERT_EQ(5, raw_dgram(l->raw, "12345", 5, l->memfds, 3));
	expect_failed(_metadata, l, n, -EPROTO);
}

TEST_F(lc, hostile_fds_only_without_header)
{
	struct lc_test *l = &self->l;
	int n = hostile_start(_metadata, l);

	ASSERT_EQ(0, raw_dgram(l->raw, NULL, 0, l->memfds, 1));
	expect_failed(_metadata, l, n, -EPROTO);
}

TEST_F(lc, hostile_second_header)
{
	struct lc_test *l = &self->l;
	int n = hostile_start(_metadata, l);

	ASSERT_EQ(sizeof(struct lc_hdr), raw_header(l->raw, 100, 1));
	ASSERT_EQ(sizeof(struct lc_hdr), raw_header(l->raw, 5, 0));
	expect_failed(_metadata, l, n, -EPROTO);
}

TEST_F(lc, hostile_header_with_fds)
{
	struct lc_test *l = &self->l;
	struct lc_hdr hdr = { .data = 4 };
	int n = hostile_start(_metadata, l);

	ASSERT_EQ(sizeof(hdr), raw_dgram(l->raw, &hdr, sizeof(hdr),
					 l->memfds, 3));
	expect_failed(_metadata, l, n, -EPROTO);
}

TEST_F(lc, hostile_empty_header)
{
	struct lc_test *l = &self->l;
	int n = hostile_start(_metadata, l);

	ASSERT_EQ(sizeof(struct lc_hdr), raw_header(l->raw, 0, 0));
	expect_failed(_metadata, l, n, -EPROTO);
}

TEST_F(lc, hostile_empty_datagram)
{
	struct lc_test *l = &self->l;
	int n = hostile_start(_metadata, l);

	ASSERT_EQ(0, raw_dgram(l->raw, NULL, 0, NULL, 0));
	expect_failed(_metadata, l, n, -EPROTO);
}

TEST_F(lc, hostile_short_header)
{
	struct lc_test *l = &self->l;
	int n = hostile_start(_metadata, l);

	ASSERT_EQ(5, raw_dgram(l->raw, "\5\0\0\0\0", 5, NULL, 0));
	expect_failed(_metadata, l, n, -EPROTO);
}

TEST_F(lc, hostile_header_over_max)
{
	struct lc_test *l = &self->l;
	int n = hostile_start(_metadata, l);

	ASSERT_EQ(sizeof(struct lc_hdr),
		  raw_header(l->raw, IPCSOCK_DEFAULT_MAX_MSG_SIZE + 1, 0));
	expect_failed(_metadata, l, n, -EMSGSIZE);
}

/*
 * A payload larger than a receive buffer (max_msg_size and then some) is
 * truncated by the kernel: its header claims the size, but what came is
 * not it.
 */
TEST_F(lc, hostile_truncated_payload)
{
	struct lc_test *l = &self->l;
	size_t len = IPCSOCK_DEFAULT_MAX_MSG_SIZE * 2;
	char *big = calloc(1, len);
	int sndbuf = 4 * len;
	int n;

	ASSERT_NE(NULL, big);
	n = hostile_start(_metadata, l);
	setsockopt(l->raw, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	ASSERT_EQ(sizeof(struct lc_hdr),
		  raw_header(l->raw, IPCSOCK_DEFAULT_MAX_MSG_SIZE, 2));
	ASSERT_EQ((ssize_t)len, raw_dgram(l->raw, big, len, l->memfds,
					  2));
	expect_failed(_metadata, l, n, -EPROTO);
	free(big);
}

/*
 * More fds than this process may open: the kernel installs what fits,
 * closes the rest and says MSG_CTRUNC.
 */
TEST_F(lc, hostile_ctrunc)
{
	struct lc_test *l = &self->l;
	int fillers[256], nr_fillers = 0, n, top;
	struct rlimit old, rl;

	if (under_valgrind())
		SKIP(return, "valgrind emulates RLIMIT_NOFILE");
	n = hostile_start(_metadata, l);
	ASSERT_TRUE(turn_until(l, l->ra.received == 1, WAIT_MS));
	/*
	 * The limit bounds fd numbers: just above the highest open one, use
	 * up the free numbers below it, then let exactly 2 more exist.
	 */
	ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &old));
	top = max_open_fd(old.rlim_cur);
	ASSERT_LT(0, top);
	ASSERT_GT(ARRAY_SIZE(fillers), top);
	rl = old;
	rl.rlim_cur = top + 1;
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl));
	while (nr_fillers <= top) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			break;
		fillers[nr_fillers++] = fd;
	}
	rl.rlim_cur = top + 3;
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl));
	ASSERT_EQ(sizeof(struct lc_hdr), raw_header(l->raw, 3, 3));
	ASSERT_EQ(3, raw_dgram(l->raw, "abc", 3, l->memfds, 3));
	turn_until(l, l->ra.hangup, WAIT_MS);
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &old));
	close_fds_array(fillers, nr_fillers);
	expect_failed(_metadata, l, n, -EMFILE);
}

/*
 * A datagram channel has no end of file: the peer's close shows only when
 * a send is refused, which ends the channel with -ECONNREFUSED.
 */
TEST_F(lc, peer_close_econnrefused)
{
	struct lc_test *l = &self->l;
	int ret;

	lc_pair(_metadata, l);
	ASSERT_EQ(0, send_str(l->b, "from b"));
	ASSERT_TRUE(turn_until(l, l->ra.received == 1, WAIT_MS));
	ipcsock_free(l->b);
	l->socks[1] = NULL;
	turn_for(l, 50);
	EXPECT_EQ(0, l->ra.hangup);
	ret = send_str(l->a, "to nobody");
	EXPECT_TRUE(ret == 0 || ret == -EPIPE) TH_LOG("send: %d", ret);
	ASSERT_TRUE(turn_until(l, l->ra.hangup, WAIT_MS));
	EXPECT_EQ(-ECONNREFUSED, l->ra.hangup_err);
	EXPECT_EQ(-EPIPE, send_str(l->a, "again"));
	turn_for(l, 20);
	EXPECT_EQ(1, l->ra.hangup);
}

/* The same against a raw peer whose fd is simply closed. */
TEST_F(lc, raw_close_econnrefused)
{
	struct lc_test *l = &self->l;

	lc_raw(_metadata, l);
	close(l->raw);
	l->raw = -1;
	turn_for(l, 30);
	EXPECT_EQ(0, l->ra.hangup);
	send_str(l->a, "to nobody");
	ASSERT_TRUE(turn_until(l, l->ra.hangup, WAIT_MS));
	EXPECT_EQ(-ECONNREFUSED, l->ra.hangup_err);
}

/*
 * What a datagram channel cannot tell, a pidfd can: the peer process
 * exits while we only receive, and the channel ends with -ESRCH after the
 * messages it sent.
 */
TEST_F(lc, watch_pidfd_sees_exit)
{
	struct lc_test *l = &self->l;
	pid_t pid;
	int pidfd, status;

	if (!pidfd_usable())
		SKIP(return, "pidfd_open(2) unavailable (valgrind 3.19 lacks it)");
	lc_raw(_metadata, l);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		uint32_t seq = 0;
		struct lc_hdr hdr = { .data = sizeof(seq) };

		send(l->raw, &hdr, sizeof(hdr), 0);
		send(l->raw, &seq, sizeof(seq), 0);
		_exit(0);
	}
	pidfd = syscall(SYS_pidfd_open, pid, 0);
	ASSERT_LE(0, pidfd);
	ASSERT_EQ(0, ipcsock_watch_pidfd(l->a, pidfd));
	close(pidfd);
	/* Our copy of the peer's end stays open: no sign from the socket. */
	ASSERT_TRUE(turn_until(l, l->ra.hangup, WAIT_MS));
	waitpid(pid, &status, 0);
	EXPECT_EQ(-ESRCH, l->ra.hangup_err);
	EXPECT_EQ(1, l->ra.received);
	EXPECT_EQ(1, l->ra.received_at_hangup);
}

/* Our close: what the socket took goes out whole; the peer is not told. */
TEST_F(lc, close_sends_queued)
{
	struct lc_test *l = &self->l;
	struct ipcsock_payload m;
	int i;

	lc_pair(_metadata, l);
	l->rb.check_seq = true;
	for (i = 0; i < 20; i++) {
		m = msg_of(&i, sizeof(i), l->memfds, i % 2);
		ASSERT_EQ(0, ipcsock_send(l->a, &m));
	}
	ipcsock_close(l->a);
	ASSERT_TRUE(turn_until(l, l->rb.received == 20, WAIT_MS));
	turn_for(l, 30);
	EXPECT_EQ(0, l->rb.hangup);
	EXPECT_EQ(10, l->rb.fds);
	EXPECT_EQ(0, l->rb.bad);
}

/* A full send queue refuses with -ENOBUFS and takes nothing. */
TEST_F(lc, enobufs)
{
	struct lc_test *l = &self->l;
	int i, ret = 0;

	lc_pair(_metadata, l);
	l->rb.no_receive = true;
	for (i = 0; i < 100000; i++) {
		ret = send_str(l->a, "0123456789012345678901234567890123");
		if (ret)
			break;
	}
	EXPECT_EQ(-ENOBUFS, ret);
	EXPECT_LE(IPCSOCK_DEFAULT_SEND_QUEUE, i);
}

/* A closed fd's number: dup one, close the dup. */
static int closed_fd(struct __test_metadata *_metadata, int of)
{
	int fd = dup(of);

	ASSERT_LE(0, fd);
	close(fd);
	return fd;
}

/*
 * A lone message with a closed fd after a good one: refused whole, with
 * nothing sent, where the kernel would have stopped its payload after
 * its header; the channel goes on.
 */
TEST_F(lc, closed_fd_sends_nothing)
{
	struct lc_test *l = &self->l;
	struct ipcsock_payload p;
	unsigned char buf[64];
	int fds[2], got[2], flags;
	unsigned int nr;

	lc_raw(_metadata, l);
	fds[0] = l->memfds[0];
	fds[1] = closed_fd(_metadata, l->memfds[0]);
	p = msg_of("bad", 3, fds, 2);
	EXPECT_EQ(-EBADF, ipcsock_send(l->a, &p));
	turn_for(l, 10);
	EXPECT_FALSE(fd_wait_readable(l->raw, 0));
	ASSERT_EQ(0, send_str(l->a, "after"));
	ASSERT_TRUE(turn_until(l, fd_wait_readable(l->raw, 0), WAIT_MS));
	ASSERT_EQ(sizeof(struct lc_hdr),
		  raw_recv(l->raw, buf, sizeof(buf), got, 2, &nr, &flags));
	ASSERT_TRUE(turn_until(l, fd_wait_readable(l->raw, 0), WAIT_MS));
	EXPECT_EQ(5, raw_recv(l->raw, buf, sizeof(buf), got, 2, &nr, &flags));
	EXPECT_EQ(0, memcmp(buf, "after", 5));
	EXPECT_EQ(0, l->ra.hangup);
}

/*
 * A descriptor the kernel will not pass (an io_uring's) is found only
 * when the payload goes, after its header: the peer holds a header no
 * payload can follow, so the channel fails with the kernel's error (the
 * call says -EPIPE, or 0 when the pair goes as a ring chain after it)
 * and every later send gets -EPIPE.
 */
TEST_F(lc, unpassable_fd_fails_the_channel)
{
	struct lc_test *l = &self->l;
	struct ipcsock_payload p;
	struct io_uring ring;
	int ret;

	ASSERT_EQ(0, io_uring_queue_init(4, &ring, 0));
	lc_raw(_metadata, l);
	p = msg_of("ring", 4, &ring.ring_fd, 1);
	ret = ipcsock_send(l->a, &p);
	/*
	 * The call sends it itself on epoll and plain shared rings; on the
	 * loop's own ring it is a chain, and with ring sends queued: later.
	 */
	EXPECT_EQ(variant->backend == IPCSOCK_BACKEND_EPOLL ||
		  (variant->shared &&
		   variant->backend == IPCSOCK_BACKEND_URING) ? -EPIPE : 0,
		  ret);
	ASSERT_TRUE(turn_until(l, l->ra.hangup, WAIT_MS));
	EXPECT_EQ(-EINVAL, l->ra.hangup_err);
	EXPECT_EQ(-EPIPE, send_str(l->a, "after"));
	io_uring_queue_exit(&ring);
}

/* The raw peer reads what a's sends of 4-byte sequence numbers give. */
struct seq_reader {
	uint32_t next;
	bool in_message;	/* its header read, its payload next */
};

static bool read_dgram(struct __test_metadata *_metadata,
		       struct lc_test *l, struct seq_reader *r)
{
	unsigned char buf[64];
	int got[2], flags;
	unsigned int nr;
	uint32_t seq;
	ssize_t n;

	n = raw_recv(l->raw, buf, sizeof(buf), got, 2, &nr, &flags);
	if (n == -EAGAIN)
		return false;
	if (!r->in_message) {
		EXPECT_EQ(sizeof(struct lc_hdr), n) TH_LOG("message %u", r->next);
	} else {
		EXPECT_EQ(4, n) TH_LOG("message %u", r->next);
		memcpy(&seq, buf, 4);
		EXPECT_EQ(r->next, seq);
		r->next++;
	}
	r->in_message = !r->in_message;
	return true;
}

/*
 * A message half sent (its header out, the peer's queue full for its
 * payload): a later send that fails is that call's failure alone, with
 * the channel intact, and one queued behind it counts as queued, not
 * sent at once. Everything arrives in order once the peer reads.
 */
TEST_F(lc, failed_send_behind_a_half_sent_message)
{
	struct ipcsock_stats st0, st = { 0 };
	struct lc_test *l = &self->l;
	struct seq_reader r = { 0 };
	struct ipcsock_payload p;
	uint64_t deadline;
	uint32_t sent = 0;
	unsigned char buf[64];
	int fds[2], ret;
	unsigned int i;
	bool full;

	lc_raw(_metadata, l);
	/*
	 * Fill the peer's queue, then read a datagram a send: sooner or
	 * later room for one is taken by a header alone.
	 */
	for (i = 0; i < 4000 && !(st.tx_datagrams % 2); i++) {
		if (i > 200)
			read_dgram(_metadata, l, &r);
		/* Room in the queue for the one sent behind it below. */
		full = st.tx_msgs - st.tx_datagrams / 2 + 2 >=
		       IPCSOCK_DEFAULT_SEND_QUEUE;
		memcpy(buf, &sent, 4);
		p = msg_of(buf, 4, NULL, 0);
		ret = full ? -ENOBUFS : ipcsock_send(l->a, &p);
		if (ret != -ENOBUFS) {
			ASSERT_EQ(0, ret);
			sent++;
		}
		turn(l, 0);
		ASSERT_EQ(sizeof(st), ipcsock_get_stats(l->a, &st, sizeof(st)));
	}
	/*
	 * On a shared ring with ring sends, the application hands over a
	 * chain's completions together: a header was never seen alone.
	 */
	if (!(st.tx_datagrams % 2) && variant->shared &&
	    variant->backend == BACKEND_URING_RING_SENDS)
		SKIP(return, "no half-sent message seen on a shared ring's chains");
	ASSERT_EQ(1, st.tx_datagrams % 2) TH_LOG("no half-sent message");
	st0 = st;
	fds[0] = l->memfds[0];
	fds[1] = closed_fd(_metadata, l->memfds[0]);
	p = msg_of(buf, 4, fds, 2);
	EXPECT_EQ(-EBADF, ipcsock_send(l->a, &p));
	memcpy(buf, &sent, 4);
	p = msg_of(buf, 4, NULL, 0);
	ASSERT_EQ(0, ipcsock_send(l->a, &p));
	sent++;
	ASSERT_EQ(sizeof(st), ipcsock_get_stats(l->a, &st, sizeof(st)));
	EXPECT_EQ(st0.tx_direct, st.tx_direct);
	EXPECT_EQ(st0.tx_queued + 1, st.tx_queued);
	EXPECT_EQ(0, st.ended);

	deadline = now_ms() + WAIT_MS;
	while (r.next < sent && now_ms() < deadline)
		if (!read_dgram(_metadata, l, &r))
			turn(l, 1);
	EXPECT_EQ(sent, r.next);
	EXPECT_EQ(0, l->ra.hangup);
}

TEST_HARNESS_MAIN
