// SPDX-License-Identifier: GPL-2.0
/*
 * ipcsock_send(), ipcsock_send_batch() and ipcsock_receive(): argument
 * checks (a failed send queues nothing), size and fd limits, the wire
 * format seen by a raw peer, data and fds arriving whole and unchanged,
 * fd ownership (the caller may close or reuse its fds and buffer as soon
 * as send returns), received fds being new FD_CLOEXEC descriptors of the
 * same files, and batches being all-or-nothing and ordered, and taking
 * every fd a single send takes, however many they carry in all.
 */
#include "selftest.h"

#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

FIXTURE(send_recv) {
	struct ipcsock_test t;
	struct ipcsock *a, *b;
};

BACKEND_VARIANTS(send_recv);

FIXTURE_SETUP(send_recv)
{
	ctx_setup(_metadata, &self->t, variant->backend);
	ctx_pair(_metadata, &self->t, self->t.loop, &self->a,
		 self->t.loop, &self->b);
}

FIXTURE_TEARDOWN(send_recv)
{
	ctx_teardown(_metadata, &self->t);
}

/*
 * Nothing arrives at @sock within a short while. Whatever does arrive is
 * drained and its fds closed, so that a failure here is reported once and
 * not again as a leak.
 */
static bool nothing_arrives(struct ipcsock_loop *loop, struct ipcsock *sock)
{
	struct ipcsock_payload p;
	int n = 0;

	dispatch_for(loop, 50);
	for (;;) {
		memset(&p, 0, sizeof(p));
		if (ipcsock_receive(sock, &p))
			break;
		close_fds_array(p.fds, p.nr_fds);
		n++;
	}
	return n == 0;
}

/* A descriptor number that is closed and that no dup() will hand out. */
static int closed_high_fd(int fd)
{
	int high = 1000;

	while (fd_is_open(high))
		high++;
	if (dup2(fd, high) != high)
		return -1;
	close(high);
	return high;
}

/* Open @n descriptors of one memfd; returns the array (caller frees). */
static int *dup_many(int fd, unsigned int n)
{
	int *fds = calloc(n, sizeof(int));
	unsigned int i;

	if (!fds)
		return NULL;
	for (i = 0; i < n; i++) {
		fds[i] = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (fds[i] < 0) {
			close_fds_array(fds, i);
			free(fds);
			return NULL;
		}
	}
	return fds;
}

static void fill_pattern(unsigned char *buf, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 8));
}

static bool check_pattern(const unsigned char *buf, size_t len,
			  unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (buf[i] != (unsigned char)(seed * 131 + i * 7 + (i >> 8)))
			return false;
	return true;
}

TEST_F(send_recv, receive_eagain_when_empty)
{
	struct ipcsock_payload p = { 0 };

	EXPECT_EQ(-EAGAIN, ipcsock_receive(self->b, &p));
	EXPECT_EQ(-EAGAIN, ipcsock_receive(self->a, &p));
	dispatch_for(self->t.loop, 20);
	EXPECT_EQ(-EAGAIN, ipcsock_receive(self->b, &p));

	ASSERT_EQ(0, send_str(self->a, "one"));
	ASSERT_EQ(0, receive_wait(self->t.loop, self->b, &p, WAIT_MS));
	EXPECT_EQ(3, p.len);
	EXPECT_EQ(-EAGAIN, ipcsock_receive(self->b, &p));
}

TEST_F(send_recv, send_einval)
{
	struct ipcsock_payload p;
	int mfd, *many;

	mfd = memfd_with("einval", "e");
	ctx_fd(_metadata, &self->t, mfd);

	EXPECT_EQ(-EINVAL, ipcsock_send(self->a, NULL));
	/* Empty message. */
	p = msg_of(NULL, 0, NULL, 0);
	EXPECT_EQ(-EINVAL, ipcsock_send(self->a, &p));
	p = msg_of("data", 0, NULL, 0);
	EXPECT_EQ(-EINVAL, ipcsock_send(self->a, &p));
	/* NULL data with len > 0. */
	p = msg_of(NULL, 5, NULL, 0);
	EXPECT_EQ(-EINVAL, ipcsock_send(self->a, &p));
	p = msg_of(NULL, 5, &mfd, 1);
	EXPECT_EQ(-EINVAL, ipcsock_send(self->a, &p));
	/* NULL fds with nr_fds > 0. */
	p = msg_of("x", 1, NULL, 1);
	EXPECT_EQ(-EINVAL, ipcsock_send(self->a, &p));
	p = msg_of(NULL, 0, NULL, 3);
	EXPECT_EQ(-EINVAL, ipcsock_send(self->a, &p));
	/* More fds than SCM_MAX_FD, every one of them valid. */
	many = dup_many(mfd, IPCSOCK_MAX_FDS + 1);
	ASSERT_NE(NULL, many);
	p = msg_of("x", 1, many, IPCSOCK_MAX_FDS + 1);
	EXPECT_EQ(-EINVAL, ipcsock_send(self->a, &p));
	p = msg_of("x", 1, many, 100000);
	EXPECT_EQ(-EINVAL, ipcsock_send(self->a, &p));
	/* The caller's fds are untouched by a failed send. */
	EXPECT_TRUE(fd_is_open(many[0]) && fd_is_open(many[IPCSOCK_MAX_FDS]));
	close_fds_array(many, IPCSOCK_MAX_FDS + 1);
	free(many);

	/* A failed send queues nothing. */
	EXPECT_TRUE(nothing_arrives(self->t.loop, self->b));
	EXPECT_TRUE(fd_is_open(mfd));
}

TEST_F(send_recv, send_ebadf)
{
	struct ipcsock_payload p;
	int mfd, fds[3], bad[3], before;
	unsigned int i;

	mfd = memfd_with("ebadf", "b");
	ctx_fd(_metadata, &self->t, mfd);
	bad[0] = -1;
	bad[1] = closed_high_fd(mfd);
	bad[2] = INT_MAX;
	ASSERT_LT(0, bad[1]);
	before = count_open_fds();

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		fds[0] = mfd;
		fds[1] = bad[i];
		p = msg_of("x", 1, fds, 2);
		EXPECT_EQ(-EBADF, ipcsock_send(self->a, &p)) TH_LOG("fd %d", bad[i]);
		fds[0] = bad[i];
		fds[1] = mfd;
		EXPECT_EQ(-EBADF, ipcsock_send(self->a, &p)) TH_LOG("fd %d", bad[i]);
		fds[0] = mfd;
		fds[1] = mfd;
		fds[2] = bad[i];
		p = msg_of(NULL, 0, fds, 3);
		EXPECT_EQ(-EBADF, ipcsock_send(self->a, &p)) TH_LOG("fd %d", bad[i]);
		/* The library's copies of the good fds are gone again. */
		EXPECT_EQ(before, count_open_fds());
	}

	EXPECT_TRUE(nothing_arrives(self->t.loop, self->b));
	EXPECT_TRUE(fd_is_open(mfd));
	EXPECT_FALSE(fd_is_open(bad[1]));
}

/*
 * A closed fd whose number is the lowest free one, after a good fd in the
 * same payload: the library's copy of the good fd must not make the bad
 * number valid (all fds are checked before any is copied).
 */
TEST_F(send_recv, send_ebadf_lowest_free_number)
{
	struct ipcsock_payload p;
	int mfd, fds[2], closed, before;

	mfd = memfd_with("ebadf-low", "b");
	ctx_fd(_metadata, &self->t, mfd);
	closed = dup(mfd);
	ASSERT_LE(0, closed);
	close(closed);
	before = count_open_fds();

	fds[0] = mfd;
	fds[1] = closed;
	p = msg_of("x", 1, fds, 2);
	EXPECT_EQ(-EBADF, ipcsock_send(self->a, &p));
	EXPECT_TRUE(nothing_arrives(self->t.loop, self->b));
	EXPECT_EQ(before, count_open_fds());
	EXPECT_FALSE(fd_is_open(closed));
}

/*
 * A send that finds the queue full first reaps completions, and reaping
 * can receive: the kernel installs a peer's fds at the lowest free
 * numbers. A closed fd of the caller's must be refused before that, or
 * its number would name a file the peer sent, which would go back out.
 */
TEST_F(send_recv, send_ebadf_when_reaping_would_receive_fds)
{
	static char kib[1000], buf[1100];
	struct ipcsock_payload p[2] = {
		{ .data = kib, .len = sizeof(kib) },
		{ .data = kib, .len = sizeof(kib) },
	};
	struct ipcsock_loop *loop;
	struct ipcsock *s;
	int sv[2], fds[4], memfd, closed, n = 0;
	unsigned int nr_fds;

	loop = ctx_loop(_metadata, &self->t, 1024, 2, 0);
	s = ctx_sock(_metadata, &self->t, loop);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
				sv));
	ctx_fd(_metadata, &self->t, sv[1]);
	ASSERT_EQ(0, ipcsock_bind(s, sv[0]));
	/* Socket and queue full: the next send reaps first. */
	while (!ipcsock_send(s, &p[0]))
		ASSERT_GT(100000, ++n);
	/* The peer makes room and sends an fd; the library saw neither. */
	while (raw_recv(sv[1], buf, sizeof(buf), fds, 4, &nr_fds, NULL) > 0)
		close_fds_array(fds, nr_fds);
	memfd = memfd_with("peer-file", "p");
	ASSERT_EQ(TEST_WIRE_HDR_LEN + 1, raw_send_msg(sv[1], "p", 1, &memfd,
						       1));
	close(memfd);

	closed = dup(0);
	ASSERT_LE(0, closed);
	close(closed);
	p[1].fds = &closed;
	p[1].nr_fds = 1;
	EXPECT_EQ(-EBADF, ipcsock_send(s, &p[1]));
	EXPECT_FALSE(fd_is_open(closed));
	EXPECT_EQ(-EBADF, ipcsock_send_batch(s, p, 2));
	EXPECT_FALSE(fd_is_open(closed));

	/* The peer's message still arrives, and nothing of ours came back. */
	ASSERT_EQ(0, receive_wait(loop, s, &p[0], WAIT_MS));
	EXPECT_EQ(1, p[0].nr_fds);
	close_fds_array(p[0].fds, p[0].nr_fds);
	while (raw_wait_readable(loop, sv[1], 100) &&
	       raw_recv(sv[1], buf, sizeof(buf), fds, 4, &nr_fds, NULL) > 0) {
		EXPECT_EQ(0, nr_fds);
		close_fds_array(fds, nr_fds);
	}
}

TEST_F(send_recv, send_emsgsize_default_max)
{
	const size_t max = IPCSOCK_DEFAULT_MAX_MSG_SIZE;
	struct ipcsock_payload p;
	unsigned char *buf;

	buf = malloc(max + 1);
	ASSERT_NE(NULL, buf);
	fill_pattern(buf, max + 1, 3);

	p = msg_of(buf, max + 1, NULL, 0);
	EXPECT_EQ(-EMSGSIZE, ipcsock_send(self->a, &p));
	p = msg_of(buf, SIZE_MAX, NULL, 0);
	EXPECT_EQ(-EMSGSIZE, ipcsock_send(self->a, &p));
	EXPECT_TRUE(nothing_arrives(self->t.loop, self->b));

	/* Exactly the maximum goes through whole. */
	p = msg_of(buf, max, NULL, 0);
	ASSERT_EQ(0, ipcsock_send(self->a, &p));
	memset(buf, 0, max + 1);
	ASSERT_EQ(0, receive_wait(self->t.loop, self->b, &p, WAIT_MS));
	EXPECT_EQ(max, p.len);
	EXPECT_TRUE(check_pattern(p.data, p.len, 3));
	free(buf);
}

TEST_F(send_recv, send_emsgsize_loop_option)
{
	unsigned char buf[101];
	struct ipcsock_loop *loop;
	struct ipcsock_payload p;
	struct ipcsock *a, *b;

	loop = ctx_loop(_metadata, &self->t, 100, 0, 0);
	ctx_pair(_metadata, &self->t, loop, &a, loop, &b);
	fill_pattern(buf, sizeof(buf), 9);

	p = msg_of(buf, 101, NULL, 0);
	EXPECT_EQ(-EMSGSIZE, ipcsock_send(a, &p));
	p = msg_of(buf, 100, NULL, 0);
	ASSERT_EQ(0, ipcsock_send(a, &p));
	ASSERT_EQ(0, receive_wait(loop, b, &p, WAIT_MS));
	EXPECT_EQ(100, p.len);
	EXPECT_TRUE(check_pattern(p.data, 100, 9));
	EXPECT_EQ(-EAGAIN, ipcsock_receive(b, &p));
}

/* A max_msg_size above the default socket buffer: the library makes room. */
TEST_F_TIMEOUT(send_recv, large_max_msg_size, 60)
{
	const size_t max = 1024 * 1024;
	struct ipcsock_loop *loop;
	struct ipcsock_payload p;
	struct ipcsock *a, *b;
	unsigned char *buf;
	unsigned int i;
	int mfd;

	loop = ctx_loop(_metadata, &self->t, max, 0, 0);
	ctx_pair(_metadata, &self->t, loop, &a, loop, &b);
	mfd = memfd_with("large", "L");
	ctx_fd(_metadata, &self->t, mfd);
	buf = malloc(max);
	ASSERT_NE(NULL, buf);

	for (i = 0; i < 8; i++) {
		fill_pattern(buf, max, i);
		p = msg_of(buf, max - i, &mfd, 1);
		ASSERT_EQ(0, ipcsock_send(a, &p)) TH_LOG("message %u", i);
	}
	memset(buf, 0, max);
	for (i = 0; i < 8; i++) {
		ASSERT_EQ(0, receive_wait(loop, b, &p, WAIT_MS))
			TH_LOG("message %u", i);
		EXPECT_EQ(max - i, p.len);
		EXPECT_TRUE(check_pattern(p.data, p.len, i));
		ASSERT_EQ(1, p.nr_fds);
		EXPECT_TRUE(same_file(mfd, p.fds[0]));
		close(p.fds[0]);
	}
	p = msg_of(buf, max + 1, NULL, 0);
	EXPECT_EQ(-EMSGSIZE, ipcsock_send(a, &p));
	free(buf);
}

/*
 * A channel takes in up to recv_buffers messages nobody has received yet,
 * and no more, however few buffers it started out using: the peer's
 * socket (SIOCOUTQ, what the socket holds unread) empties for the first
 * recv_buffers messages and keeps the next one.
 */
TEST_F(send_recv, takes_in_recv_buffers_unreceived)
{
	const unsigned int n = IPCSOCK_DEFAULT_RECV_BUFFERS;
	struct ipcsock_payload p;
	struct ipcsock *r;
	uint64_t deadline;
	unsigned int i;
	int peer, outq;

	peer = ctx_raw_pair(_metadata, &self->t, self->t.loop, &r);
	for (i = 0; i < n; i++)
		ASSERT_EQ((ssize_t)(TEST_WIRE_HDR_LEN + sizeof(i)),
			  raw_send_msg(peer, &i, sizeof(i), NULL, 0));
	deadline = now_ms() + WAIT_MS;
	do {
		ipcsock_loop_dispatch(self->t.loop, 2);
		ASSERT_EQ(0, ioctl(peer, SIOCOUTQ, &outq));
	} while (outq && now_ms() < deadline);
	EXPECT_EQ(0, outq);

	ASSERT_EQ((ssize_t)(TEST_WIRE_HDR_LEN + sizeof(i)),
		  raw_send_msg(peer, &i, sizeof(i), NULL, 0));
	for (i = 0; i < 20; i++)
		ipcsock_loop_dispatch(self->t.loop, 2);
	ASSERT_EQ(0, ioctl(peer, SIOCOUTQ, &outq));
	EXPECT_LT(0, outq) TH_LOG("took in more than recv_buffers");

	for (i = 0; i <= n; i++) {
		unsigned int v;

		ASSERT_EQ(0, receive_wait(self->t.loop, r, &p, WAIT_MS))
			TH_LOG("message %u", i);
		ASSERT_EQ(sizeof(v), p.len);
		memcpy(&v, p.data, sizeof(v));
		EXPECT_EQ(i < n ? i : n, v);
	}
	EXPECT_EQ(-EAGAIN, ipcsock_receive(r, &p));
}

/* Small messages before and after a 1 MiB one reuse the same slots. */
TEST_F_TIMEOUT(send_recv, large_between_small, 60)
{
	const size_t max = 1024 * 1024;
	const size_t sizes[] = { 1, 64, max, 64, 1, max, 100 };
	struct ipcsock_loop *loop;
	struct ipcsock_payload p;
	struct ipcsock *a, *b;
	unsigned char *buf;
	unsigned int i, round;

	loop = ctx_loop(_metadata, &self->t, max, 0, 0);
	ctx_pair(_metadata, &self->t, loop, &a, loop, &b);
	buf = malloc(max);
	ASSERT_NE(NULL, buf);
	for (round = 0; round < 3; round++) {
		for (i = 0; i < ARRAY_SIZE(sizes); i++) {
			fill_pattern(buf, sizes[i], i + round);
			p = msg_of(buf, sizes[i], NULL, 0);
			ASSERT_EQ(0, ipcsock_send(a, &p));
		}
		for (i = 0; i < ARRAY_SIZE(sizes); i++) {
			ASSERT_EQ(0, receive_wait(loop, b, &p, WAIT_MS))
				TH_LOG("round %u message %u", round, i);
			EXPECT_EQ(sizes[i], p.len);
			EXPECT_TRUE(check_pattern(p.data, p.len, i + round));
		}
	}
	EXPECT_EQ(-EAGAIN, ipcsock_receive(b, &p));
	free(buf);
}

/*
 * The largest message a loop may be configured for goes through whole, as
 * two in a row: IPCSOCK_MAX_MSG_SIZE_LIMIT must stay within what AF_UNIX
 * carries in one datagram (one kernel allocation; larger ones are refused
 * with ENOBUFS, which a sender would read as a full queue forever).
 */
TEST_F_TIMEOUT(send_recv, limit_sized_messages, 60)
{
	const size_t max = IPCSOCK_MAX_MSG_SIZE_LIMIT;
	struct ipcsock_loop *loop;
	struct ipcsock_payload p;
	struct ipcsock *a, *b;
	unsigned char *buf;
	unsigned int i;

	loop = ctx_loop(_metadata, &self->t, max, 4, 0);
	ctx_pair(_metadata, &self->t, loop, &a, loop, &b);
	buf = malloc(max);
	ASSERT_NE(NULL, buf);
	for (i = 0; i < 2; i++) {
		fill_pattern(buf, max, i);
		p = msg_of(buf, max, NULL, 0);
		ASSERT_EQ(0, ipcsock_send(a, &p));
	}
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, receive_wait(loop, b, &p, WAIT_MS))
			TH_LOG("message %u", i);
		EXPECT_EQ(max, p.len);
		EXPECT_TRUE(check_pattern(p.data, p.len, i));
	}
	EXPECT_EQ(-EAGAIN, ipcsock_receive(b, &p));
	free(buf);
}

TEST_F(send_recv, roundtrip_data_and_fds)
{
	struct ipcsock_payload p;
	char buf[16];
	int fds[2], i;

	fds[0] = memfd_with("Foo", "Foo");
	fds[1] = memfd_with("Bar", "Bar");
	ctx_fd(_metadata, &self->t, fds[0]);
	ctx_fd(_metadata, &self->t, fds[1]);

	p = msg_of("hello", 5, fds, 2);
	ASSERT_EQ(0, ipcsock_send(self->a, &p));
	ASSERT_EQ(0, receive_wait(self->t.loop, self->b, &p, WAIT_MS));
	ASSERT_EQ(5, p.len);
	EXPECT_EQ(0, memcmp(p.data, "hello", 5));
	ASSERT_EQ(2, p.nr_fds);
	ASSERT_NE(NULL, p.fds);
	for (i = 0; i < 2; i++) {
		EXPECT_NE(fds[0], p.fds[i]);
		EXPECT_NE(fds[1], p.fds[i]);
		EXPECT_TRUE(fd_is_cloexec(p.fds[i]));
		EXPECT_TRUE(same_file(fds[i], p.fds[i]));
		EXPECT_EQ(3, fd_content(p.fds[i], buf, sizeof(buf)));
		EXPECT_STREQ(i ? "Bar" : "Foo", buf);
	}
	close_fds_array(p.fds, p.nr_fds);

	/* And the other way. */
	p = msg_of("back", 4, &fds[1], 1);
	ASSERT_EQ(0, ipcsock_send(self->b, &p));
	ASSERT_EQ(0, receive_wait(self->t.loop, self->a, &p, WAIT_MS));
	ASSERT_EQ(4, p.len);
	EXPECT_EQ(0, memcmp(p.data, "back", 4));
	ASSERT_EQ(1, p.nr_fds);
	EXPECT_TRUE(same_file(fds[1], p.fds[0]));
	EXPECT_TRUE(fd_is_cloexec(p.fds[0]));
	close(p.fds[0]);

	EXPECT_EQ(-EAGAIN, ipcsock_receive(self->a, &p));
	EXPECT_EQ(-EAGAIN, ipcsock_receive(self->b, &p));
}

/* Sizes around every boundary a buffer scheme could get wrong. */
TEST_F(send_recv, message_sizes)
{
	static const size_t sizes[] = {
		1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 255, 256, 4088, 4095,
		4096, 4097, 8192, 16383, 32768, 65535,
		IPCSOCK_DEFAULT_MAX_MSG_SIZE,
	};
	static unsigned char buf[IPCSOCK_DEFAULT_MAX_MSG_SIZE];
	struct ipcsock_payload p;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		fill_pattern(buf, sizes[i], i);
		p = msg_of(buf, sizes[i], NULL, 0);
		ASSERT_EQ(0, ipcsock_send(self->a, &p));
	}
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		ASSERT_EQ(0, receive_wait(self->t.loop, self->b, &p, WAIT_MS));
		EXPECT_EQ(sizes[i], p.len);
		EXPECT_EQ(0, p.nr_fds);
		EXPECT_TRUE(check_pattern(p.data, p.len, i))
			TH_LOG("size %zu corrupted", sizes[i]);
	}
}

/*
 * The raw message in @rbuf (@n bytes, @nr_fds fds) carries @data and one
 * file holding the four bytes @content.
 */
static void expect_data_and_file(struct __test_metadata *_metadata,
				 const unsigned char *rbuf, ssize_t n,
				 unsigned int nr_fds, const int *fds,
				 const char *data, const char *content)
{
	ssize_t len = strlen(data);
	char got[16];

	EXPECT_EQ(TEST_WIRE_HDR_LEN + len, n);
	EXPECT_EQ(0, memcmp(rbuf + TEST_WIRE_HDR_LEN, data, len));
	ASSERT_EQ(1, nr_fds);
	EXPECT_EQ(4, fd_content(fds[0], got, sizeof(got)));
	EXPECT_STREQ(content, got);
}

/*
 * The caller owns its buffer and fds again when send returns: it may
 * overwrite the bytes, close the fd and get the same fd number back for
 * another file, and the peer still receives the original bytes and file.
 * Run while the socket buffer is full, so the message sits in the
 * library's queue (or in flight) when the caller does it.
 */
static void reuse_after_send(struct __test_metadata *_metadata,
			     struct ipcsock_test *t, unsigned int fillers)
{
	enum { FILL = 8 * 1024 };
	static unsigned char fill[FILL], rbuf[FILL + 64];
	struct test_wire_hdr hdr;
	struct ipcsock_payload p;
	struct ipcsock *a;
	char data[32];
	int remote, fa, fb, num_a, rfds[4], seen = 0;
	unsigned int i, nfds, expect = fillers + 2;
	uint64_t deadline;
	ssize_t n;

	remote = ctx_raw_pair(_metadata, t, t->loop, &a);
	for (i = 0; i < fillers; i++) {
		memset(fill, 'f', FILL);
		p = msg_of(fill, FILL, NULL, 0);
		ASSERT_EQ(0, ipcsock_send(a, &p)) TH_LOG("filler %u", i);
	}

	snprintf(data, sizeof(data), "ORIGINAL-DATA");
	fa = memfd_with("file-A", "AAAA");
	ASSERT_LE(0, fa);
	num_a = fa;
	p = msg_of(data, strlen(data), &fa, 1);
	ASSERT_EQ(0, ipcsock_send(a, &p));
	/* Take everything back at once. */
	close(fa);
	memset(data, 'X', sizeof(data) - 1);
	fb = memfd_with("file-B", "BBBB");
	ASSERT_LE(0, fb);
	p = msg_of("SECOND", 6, &fb, 1);
	ASSERT_EQ(0, ipcsock_send(a, &p));
	close(fb);
	if (fb != num_a)
		TH_LOG("fd number not reused (%d, %d)", num_a, fb);

	deadline = now_ms() + WAIT_MS;
	while (seen < (int)expect && now_ms() < deadline) {
		n = raw_recv_msg(remote, rbuf, sizeof(rbuf), rfds, 4, &nfds, NULL);
		if (n == -EAGAIN) {
			ipcsock_loop_dispatch(t->loop, 5);
			continue;
		}
		ASSERT_LT(0, n);
		memcpy(&hdr, rbuf, sizeof(hdr));
		if (seen < (int)fillers) {
			EXPECT_EQ(TEST_WIRE_HDR_LEN + FILL, n);
			EXPECT_EQ(0, nfds);
		} else if (seen == (int)fillers) {
			expect_data_and_file(_metadata, rbuf, n, nfds, rfds,
					     "ORIGINAL-DATA", "AAAA");
		} else {
			expect_data_and_file(_metadata, rbuf, n, nfds, rfds,
					     "SECOND", "BBBB");
		}
		close_fds_array(rfds, nfds);
		seen++;
	}
	EXPECT_EQ(expect, seen);
}

TEST_F(send_recv, caller_may_reuse_after_send)
{
	reuse_after_send(_metadata, &self->t, 0);
}

TEST_F(send_recv, caller_may_reuse_after_send_queued)
{
	/* 60 x 8 KiB is well over the default 208 KiB socket buffer. */
	reuse_after_send(_metadata, &self->t, 60);
}

TEST_F(send_recv, zero_len_with_fds)
{
	struct ipcsock_payload p;
	int mfd;

	mfd = memfd_with("zero-len", "only an fd");
	ctx_fd(_metadata, &self->t, mfd);

	p = msg_of(NULL, 0, &mfd, 1);
	ASSERT_EQ(0, ipcsock_send(self->a, &p));
	/* Non-NULL data with len 0 is the same message. */
	p = msg_of("ignored", 0, &mfd, 1);
	ASSERT_EQ(0, ipcsock_send(self->a, &p));
	ASSERT_EQ(0, send_str(self->a, "after"));

	ASSERT_EQ(0, receive_wait(self->t.loop, self->b, &p, WAIT_MS));
	EXPECT_EQ(0, p.len);
	ASSERT_EQ(1, p.nr_fds);
	EXPECT_TRUE(same_file(mfd, p.fds[0]));
	close(p.fds[0]);
	ASSERT_EQ(0, receive_wait(self->t.loop, self->b, &p, WAIT_MS));
	EXPECT_EQ(0, p.len);
	ASSERT_EQ(1, p.nr_fds);
	EXPECT_TRUE(same_file(mfd, p.fds[0]));
	close(p.fds[0]);
	/* The channel goes on: no EOF confusion. */
	ASSERT_EQ(0, receive_wait(self->t.loop, self->b, &p, WAIT_MS));
	EXPECT_EQ(5, p.len);
	EXPECT_EQ(0, memcmp(p.data, "after", 5));
	EXPECT_EQ(0, p.nr_fds);
}

TEST_F(send_recv, max_fds_per_message)
{
	struct ipcsock_payload p;
	int mfd, *many, i, j;
	unsigned char *big;
	struct stat st;

	/* 254 fds here, 3 x 253 queued copies, 253 received at a time. */
	if (!nofile_at_least(1536))
		SKIP(return, "RLIMIT_NOFILE hard limit below 1536");
	mfd = memfd_with("max-fds", "m");
	ctx_fd(_metadata, &self->t, mfd);
	many = dup_many(mfd, IPCSOCK_MAX_FDS + 1);
	ASSERT_NE(NULL, many);

	p = msg_of("253", 3, many, IPCSOCK_MAX_FDS + 1);
	EXPECT_EQ(-EINVAL, ipcsock_send(self->a, &p));
	p = msg_of("253", 3, many, IPCSOCK_MAX_FDS);
	EXPECT_EQ(0, ipcsock_send(self->a, &p));
	p = msg_of(NULL, 0, many, IPCSOCK_MAX_FDS);
	EXPECT_EQ(0, ipcsock_send(self->a, &p));
	/* The largest message of all: max bytes and max fds. */
	big = malloc(IPCSOCK_DEFAULT_MAX_MSG_SIZE);
	ASSERT_NE(NULL, big);
	fill_pattern(big, IPCSOCK_DEFAULT_MAX_MSG_SIZE, 253);
	p = msg_of(big, IPCSOCK_DEFAULT_MAX_MSG_SIZE, many, IPCSOCK_MAX_FDS);
	EXPECT_EQ(0, ipcsock_send(self->a, &p));
	free(big);
	close_fds_array(many, IPCSOCK_MAX_FDS + 1);
	free(many);

	ASSERT_EQ(0, fstat(mfd, &st));
	for (j = 0; j < 3; j++) {
		ASSERT_EQ(0, receive_wait(self->t.loop, self->b, &p, WAIT_MS));
		EXPECT_EQ(j == 0 ? 3 : j == 1 ? 0 : IPCSOCK_DEFAULT_MAX_MSG_SIZE,
			  p.len);
		if (j == 2)
			EXPECT_TRUE(check_pattern(p.data, p.len, 253));
		ASSERT_EQ(IPCSOCK_MAX_FDS, p.nr_fds);
		for (i = 0; i < IPCSOCK_MAX_FDS; i++) {
			EXPECT_TRUE(same_file(mfd, p.fds[i]));
			EXPECT_TRUE(fd_is_cloexec(p.fds[i]));
		}
		close_fds_array(p.fds, p.nr_fds);
	}
	EXPECT_EQ(-EAGAIN, ipcsock_receive(self->b, &p));
}

/* Many messages with fds and none left unreceived: nothing leaks. */
TEST_F(send_recv, many_fds_no_leak)
{
	struct ipcsock_payload p;
	int fds[10], i, got = 0, nfds = 0;

	for (i = 0; i < 10; i++) {
		fds[i] = memfd_with("many", "x");
		ASSERT_LE(0, fds[i]);
	}
	for (i = 0; i < 200; i++) {
		p = msg_of(&i, sizeof(i), fds, i % 11);
		ASSERT_EQ(0, ipcsock_send(self->a, &p));
		while (ipcsock_receive(self->b, &p) == 0) {
			EXPECT_EQ(got % 11, p.nr_fds);
			nfds += p.nr_fds;
			close_fds_array(p.fds, p.nr_fds);
			got++;
		}
		ipcsock_loop_dispatch(self->t.loop, 0);
	}
	while (got < 200 && receive_wait(self->t.loop, self->b, &p,
					 WAIT_MS) == 0) {
		EXPECT_EQ(got % 11, p.nr_fds);
		nfds += p.nr_fds;
		close_fds_array(p.fds, p.nr_fds);
		got++;
	}
	EXPECT_EQ(200, got);
	close_fds_array(fds, 10);
	/* Sum of i % 11 over 0..199. */
	EXPECT_EQ(18 * 55 + (0 + 1), nfds);
}

#define WIRE_BUF	256

/*
 * Wait for the next datagram on the raw end @remote and read it into @buf
 * (WIRE_BUF bytes) and @rfds (4): a header saying @len bytes and @nr_fds fds,
 * and the @len bytes after it. Returns the header.
 */
static struct test_wire_hdr
raw_next_hdr(struct __test_metadata *_metadata, struct ipcsock_loop *loop,
	     int remote, unsigned char *buf, int *rfds, unsigned int *nfds,
	     uint32_t len, uint32_t nr_fds)
{
	struct test_wire_hdr hdr = { 0 };
	ssize_t n;

	ASSERT_TRUE(raw_wait_readable(loop, remote, WAIT_MS));
	n = raw_recv(remote, buf, WIRE_BUF, rfds, 4, nfds, NULL);
	ASSERT_EQ(TEST_WIRE_HDR_LEN + len, n);
	memcpy(&hdr, buf, sizeof(hdr));
	EXPECT_EQ(len, hdr.len);
	EXPECT_EQ(nr_fds, hdr.nr_fds);
	return hdr;
}

TEST_F(send_recv, wire_format_one_datagram_per_message)
{
	unsigned char buf[WIRE_BUF];
	struct test_wire_hdr hdr;
	struct ipcsock_payload p;
	struct ipcsock *c;
	unsigned int nfds;
	int remote, mfd, fds[2], rfds[4];

	remote = ctx_raw_pair(_metadata, &self->t, self->t.loop, &c);
	mfd = memfd_with("wire", "w");
	ctx_fd(_metadata, &self->t, mfd);
	fds[0] = fds[1] = mfd;

	p = msg_of("abc", 3, fds, 2);
	ASSERT_EQ(0, ipcsock_send(c, &p));
	p = msg_of(NULL, 0, fds, 1);
	ASSERT_EQ(0, ipcsock_send(c, &p));
	ASSERT_EQ(0, send_str(c, "z"));

	hdr = raw_next_hdr(_metadata, self->t.loop, remote, buf, rfds, &nfds,
			   3, 2);
	EXPECT_EQ(TEST_WIRE_VERSION, hdr.version);
	EXPECT_EQ(0, hdr.flags);
	EXPECT_EQ(0, memcmp(buf + TEST_WIRE_HDR_LEN, "abc", 3));
	ASSERT_EQ(2, nfds);
	EXPECT_TRUE(same_file(mfd, rfds[0]) && same_file(mfd, rfds[1]));
	close_fds_array(rfds, nfds);

	/* len 0 + fds is a header-only datagram, never a zero-length one. */
	hdr = raw_next_hdr(_metadata, self->t.loop, remote, buf, rfds, &nfds,
			   0, 1);
	EXPECT_EQ(TEST_WIRE_VERSION, hdr.version);
	ASSERT_EQ(1, nfds);
	close_fds_array(rfds, nfds);

	hdr = raw_next_hdr(_metadata, self->t.loop, remote, buf, rfds, &nfds,
			   1, 0);
	EXPECT_EQ(0, nfds);
	EXPECT_EQ('z', buf[TEST_WIRE_HDR_LEN]);

	dispatch_for(self->t.loop, 20);
	EXPECT_EQ(-EAGAIN, raw_recv(remote, buf, sizeof(buf), rfds, 4, &nfds,
				    NULL));
}

/*
 * "A send made outside any callback is submitted before send returns":
 * with room in the socket buffer, every message reaches the peer without
 * any further call into the library (a sender may block elsewhere, e.g.
 * in waitpid() or on another fd, right after sending).
 */
TEST_F(send_recv, sends_progress_without_dispatch)
{
	unsigned char buf[64];
	struct ipcsock *c;
	int remote, i, got = 0;
	uint64_t deadline;
	uint32_t v;
	ssize_t n;

	remote = ctx_raw_pair(_metadata, &self->t, self->t.loop, &c);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, ipcsock_send(c, &(struct ipcsock_payload){
			.data = &i, .len = sizeof(i) }));

	deadline = now_ms() + 2000;
	while (got < 3 && now_ms() < deadline) {
		if (!fd_wait_readable(remote, 100))
			continue;
		n = raw_recv(remote, buf, sizeof(buf), NULL, 0, NULL, NULL);
		ASSERT_EQ(TEST_WIRE_HDR_LEN + sizeof(v), n);
		memcpy(&v, buf + TEST_WIRE_HDR_LEN, sizeof(v));
		EXPECT_EQ(got, v);
		got++;
	}
	EXPECT_EQ(3, got) TH_LOG("only %d of 3 sends reached the peer", got);
}

/* A raw peer speaking the documented wire format is understood. */
TEST_F(send_recv, raw_peer_to_library)
{
	struct ipcsock_payload p;
	struct ipcsock *c;
	int remote, fds[3], i;
	char buf[8];

	remote = ctx_raw_pair(_metadata, &self->t, self->t.loop, &c);
	fds[0] = memfd_with("raw-0", "r0");
	fds[1] = memfd_with("raw-1", "r1");
	fds[2] = memfd_with("raw-2", "r2");
	ASSERT_EQ(TEST_WIRE_HDR_LEN + 4, raw_send_msg(remote, "raw!", 4, fds, 3));
	ASSERT_EQ(TEST_WIRE_HDR_LEN, raw_send_msg(remote, NULL, 0, fds, 1));
	ASSERT_EQ(TEST_WIRE_HDR_LEN + 2, raw_send_msg(remote, "ok", 2, NULL, 0));

	ASSERT_EQ(0, receive_wait(self->t.loop, c, &p, WAIT_MS));
	EXPECT_EQ(4, p.len);
	EXPECT_EQ(0, memcmp(p.data, "raw!", 4));
	ASSERT_EQ(3, p.nr_fds);
	for (i = 0; i < 3; i++) {
		EXPECT_TRUE(same_file(fds[i], p.fds[i]));
		EXPECT_TRUE(fd_is_cloexec(p.fds[i]));
		EXPECT_EQ(2, fd_content(p.fds[i], buf, sizeof(buf)));
	}
	close_fds_array(p.fds, p.nr_fds);
	ASSERT_EQ(0, receive_wait(self->t.loop, c, &p, WAIT_MS));
	EXPECT_EQ(0, p.len);
	ASSERT_EQ(1, p.nr_fds);
	EXPECT_TRUE(same_file(fds[0], p.fds[0]));
	close(p.fds[0]);
	ASSERT_EQ(0, receive_wait(self->t.loop, c, &p, WAIT_MS));
	EXPECT_EQ(2, p.len);
	EXPECT_EQ(0, p.nr_fds);
	close_fds_array(fds, 3);
}

TEST_F(send_recv, send_batch_ordered)
{
	struct ipcsock_payload batch[32], p;
	uint32_t seq[32];
	int fds[3], i;

	for (i = 0; i < 3; i++) {
		fds[i] = memfd_with("batch", "b");
		ASSERT_LE(0, fds[i]);
	}
	for (i = 0; i < 32; i++) {
		seq[i] = 1000 + i;
		batch[i] = msg_of(&seq[i], sizeof(seq[i]), fds, i % 4);
	}
	ASSERT_EQ(32, ipcsock_send_batch(self->a, batch, 32));
	/* The caller's array and fds are free at once. */
	memset(seq, 0, sizeof(seq));
	close_fds_array(fds, 3);

	for (i = 0; i < 32; i++) {
		uint32_t v;

		ASSERT_EQ(0, receive_wait(self->t.loop, self->b, &p, WAIT_MS));
		ASSERT_EQ(sizeof(v), p.len);
		memcpy(&v, p.data, sizeof(v));
		EXPECT_EQ(1000 + i, v);
		EXPECT_EQ(i % 4, p.nr_fds);
		close_fds_array(p.fds, p.nr_fds);
	}
	EXPECT_EQ(-EAGAIN, ipcsock_receive(self->b, &p));
}

/* One bad payload anywhere in a batch: error, and nothing is queued. */
TEST_F(send_recv, send_batch_all_or_nothing)
{
	static unsigned char big[IPCSOCK_DEFAULT_MAX_MSG_SIZE + 1];
	struct ipcsock_payload batch[8], saved;
	int mfd, closed, many_n = IPCSOCK_MAX_FDS + 1, *many;
	struct {
		int at;
		struct ipcsock_payload bad;
		int err;
	} cases[6];
	unsigned int i, j;

	mfd = memfd_with("batch-bad", "x");
	ctx_fd(_metadata, &self->t, mfd);
	closed = closed_high_fd(mfd);
	ASSERT_LT(0, closed);
	many = dup_many(mfd, many_n);
	ASSERT_NE(NULL, many);

	cases[0].at = 0;
	cases[0].bad = msg_of(NULL, 4, NULL, 0);
	cases[0].err = -EINVAL;
	cases[1].at = 7;
	cases[1].bad = msg_of(NULL, 0, NULL, 0);
	cases[1].err = -EINVAL;
	cases[2].at = 3;
	cases[2].bad = msg_of("x", 1, &closed, 1);
	cases[2].err = -EBADF;
	cases[3].at = 7;
	cases[3].bad = msg_of(big, sizeof(big), NULL, 0);
	cases[3].err = -EMSGSIZE;
	cases[4].at = 5;
	cases[4].bad = msg_of("x", 1, many, many_n);
	cases[4].err = -EINVAL;
	cases[5].at = 6;
	cases[5].bad = msg_of("x", 1, NULL, 2);
	cases[5].err = -EINVAL;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		for (j = 0; j < ARRAY_SIZE(batch); j++)
			batch[j] = msg_of("good", 4, &mfd, 1);
		saved = batch[cases[i].at];
		batch[cases[i].at] = cases[i].bad;
		EXPECT_EQ(cases[i].err,
			  ipcsock_send_batch(self->a, batch, ARRAY_SIZE(batch)))
			TH_LOG("case %u", i);
		batch[cases[i].at] = saved;
	}
	EXPECT_EQ(-EINVAL, ipcsock_send_batch(self->a, NULL, 1));
	close_fds_array(many, many_n);
	free(many);

	EXPECT_TRUE(nothing_arrives(self->t.loop, self->b));

	/* The channel is fine afterwards. */
	for (j = 0; j < ARRAY_SIZE(batch); j++)
		batch[j] = msg_of("good", 4, &mfd, 1);
	ASSERT_EQ(ARRAY_SIZE(batch),
		  ipcsock_send_batch(self->a, batch, ARRAY_SIZE(batch)));
	for (j = 0; j < ARRAY_SIZE(batch); j++) {
		struct ipcsock_payload p;

		ASSERT_EQ(0, receive_wait(self->t.loop, self->b, &p, WAIT_MS));
		EXPECT_EQ(4, p.len);
		ASSERT_EQ(1, p.nr_fds);
		close(p.fds[0]);
	}
}

/*
 * An O_PATH descriptor can travel in SCM_RIGHTS (the kernel takes it with
 * fget_raw()), and ipcsock_send() passes one. ipcsock_send_batch() must
 * accept it just the same: its up-front check of the batch's fds may not
 * refuse what sendmsg takes (poll(2) reports POLLNVAL for O_PATH files).
 */
TEST_F(send_recv, send_batch_o_path_fd)
{
	static const char *const data[] = { "single", "batch-0", "batch-1" };
	struct ipcsock_payload p[2];
	int pfd, ret;
	unsigned int i;

	pfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	ctx_fd(_metadata, &self->t, pfd);

	p[0] = msg_of(data[0], strlen(data[0]), &pfd, 1);
	ASSERT_EQ(0, ipcsock_send(self->a, &p[0]));
	p[0] = msg_of(data[1], strlen(data[1]), &pfd, 1);
	p[1] = msg_of(data[2], strlen(data[2]), &pfd, 1);
	ret = ipcsock_send_batch(self->a, p, 2);
	ASSERT_EQ(2, ret) TH_LOG("send_batch: %s", strerror(-ret));

	for (i = 0; i < ARRAY_SIZE(data); i++) {
		ASSERT_EQ(0, receive_wait(self->t.loop, self->b, &p[0],
					  WAIT_MS)) TH_LOG("message %u", i);
		EXPECT_EQ(strlen(data[i]), p[0].len);
		EXPECT_EQ(0, memcmp(p[0].data, data[i], p[0].len));
		ASSERT_EQ(1, p[0].nr_fds);
		EXPECT_TRUE(same_file(pfd, p[0].fds[0]));
		EXPECT_EQ(O_PATH, fcntl(p[0].fds[0], F_GETFL) & O_PATH);
		EXPECT_TRUE(fd_is_cloexec(p[0].fds[0]));
		close(p[0].fds[0]);
	}
	EXPECT_TRUE(nothing_arrives(self->t.loop, self->b));
}

/* Exit codes of batch_over_rlimit_child(), one per check. */
enum {
	BRC_OK,
	BRC_SETUP,
	BRC_SEND,
	BRC_NOT_DELIVERED,
	BRC_LEAK,
};

#define BRC_LIMIT	48
#define BRC_FDS		30

/*
 * The child of send_batch_more_fds_than_rlimit, which lowers its soft
 * RLIMIT_NOFILE to BRC_LIMIT with every descriptor number below it. A
 * batch of two messages with the same BRC_FDS descriptors each carries
 * more fds in all than the limit; the kernel takes them (it limits fds in
 * flight, and only an unprivileged sender, and only once more than the
 * limit already are), so the library must too, and the peer gets both
 * messages whole.
 */
static int batch_over_rlimit_child(struct __test_metadata *_metadata,
				   enum ipcsock_backend backend)
{
	struct ipcsock_payload p[2];
	struct ipcsock_loop *loop;
	struct ipcsock *sock;
	int remote, mfd, fds, ret, i, flags;
	int dups[BRC_FDS], rfds[BRC_FDS + 1];
	unsigned int j, nr;
	struct rlimit rl;
	char buf[64];
	ssize_t n;

	/* Only stdio: the parent's descriptors would use up numbers. */
	syscall(SYS_close_range, 3, ~0u, 0);
	fds = count_open_fds();
	loop = loop_new(backend, 0, 0, 0);
	sock = loop ? ipcsock_new(loop) : NULL;
	remote = sock ? ipcsock_create(sock) : -1;
	mfd = memfd_with("over-rlimit", "o");
	if (remote < 0 || mfd < 0)
		return BRC_SETUP;
	for (i = 0; i < BRC_FDS; i++) {
		dups[i] = fcntl(mfd, F_DUPFD_CLOEXEC, 0);
		if (dups[i] < 0)
			return BRC_SETUP;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) ||
	    max_open_fd(rl.rlim_cur) >= BRC_LIMIT)
		return BRC_SETUP;
	rl.rlim_cur = BRC_LIMIT;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		return BRC_SETUP;

	p[0] = msg_of("first", 5, dups, BRC_FDS);
	p[1] = msg_of("second", 6, dups, BRC_FDS);
	ret = ipcsock_send_batch(sock, p, 2);
	if (ret != 2) {
		TH_LOG("send_batch of 2 x %d fds under RLIMIT_NOFILE %d: %d (%s)",
		       BRC_FDS, BRC_LIMIT, ret, strerror(-ret));
		return BRC_SEND;
	}
	/* The kernel (or the library) has its own references now. */
	close_fds_array(dups, BRC_FDS);
	/*
	 * The batch may be one record, whose fds the peer takes in one
	 * receive: let it, this process being the peer too.
	 */
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		return BRC_SETUP;
	for (i = 0; i < 2; i++) {
		if (!raw_wait_readable(loop, remote, WAIT_MS))
			return BRC_NOT_DELIVERED;
		n = raw_recv_msg(remote, buf, sizeof(buf), rfds, BRC_FDS + 1,
				 &nr, &flags);
		ret = n == (ssize_t)(TEST_WIRE_HDR_LEN + p[i].len) &&
		      !memcmp(buf + TEST_WIRE_HDR_LEN, p[i].data, p[i].len) &&
		      nr == BRC_FDS && !(flags & MSG_CTRUNC);
		for (j = 0; j < nr; j++)
			ret = ret && same_file(mfd, rfds[j]);
		close_fds_array(rfds, nr);
		if (!ret) {
			TH_LOG("message %d: %zd bytes, %u fds, flags %#x", i,
			       n, nr, flags);
			return BRC_NOT_DELIVERED;
		}
	}
	ipcsock_free(sock);
	ipcsock_loop_free(loop);
	close(remote);
	close(mfd);
	return count_open_fds() == fds ? BRC_OK : BRC_LEAK;
}

TEST_F(send_recv, send_batch_more_fds_than_rlimit)
{
	/*
	 * With ring sends every message is queued, and the library's own
	 * duplicate of each fd needs a number below the limit.
	 */
	if (variant->backend == BACKEND_URING_RING_SENDS)
		SKIP(return, "ring sends duplicate every fd");
	/* Valgrind emulates RLIMIT_NOFILE: the kernel never sees the limit. */
	if (under_valgrind())
		SKIP(return, "RLIMIT_NOFILE is emulated under valgrind");
	expect_child_exit(_metadata, batch_over_rlimit_child, variant->backend,
			  BRC_OK);
}

/* Received data stays valid until the next receive on that socket. */
TEST_F(send_recv, data_valid_until_next_receive)
{
	struct ipcsock_payload p1, p2;
	char copy[8];

	ASSERT_EQ(0, send_str(self->a, "first"));
	ASSERT_EQ(0, send_str(self->a, "second"));
	ASSERT_EQ(0, receive_wait(self->t.loop, self->b, &p1, WAIT_MS));
	/* More traffic on the loop must not touch the held message. */
	ASSERT_EQ(0, send_str(self->a, "third"));
	ASSERT_EQ(0, send_str(self->b, "other way"));
	dispatch_for(self->t.loop, 30);
	ASSERT_EQ(5, p1.len);
	memcpy(copy, p1.data, 5);
	EXPECT_EQ(0, memcmp(copy, "first", 5));
	ASSERT_EQ(0, receive_wait(self->t.loop, self->b, &p2, WAIT_MS));
	EXPECT_EQ(6, p2.len);
	EXPECT_EQ(0, memcmp(p2.data, "second", 6));
	ASSERT_EQ(0, receive_wait(self->t.loop, self->b, &p2, WAIT_MS));
	EXPECT_EQ(0, memcmp(p2.data, "third", 5));
	ASSERT_EQ(0, receive_wait(self->t.loop, self->a, &p2, WAIT_MS));
	EXPECT_EQ(0, memcmp(p2.data, "other way", 9));
}

TEST_HARNESS_MAIN
