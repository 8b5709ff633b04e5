// SPDX-License-Identifier: GPL-2.0
/*
 * Object life cycle: loops, ipcsock_new/free, create/bind/close/is_bound,
 * bind errors (the fd stays the caller's), binding a socket with options
 * already set, close semantics (idempotent,
 * queued messages handed over, unreceived fds closed), rebinding, the
 * per-thread default loop, and CLOEXEC on everything the library opens.
 */
#include "helpers.h"

#include <pthread.h>
#include <stddef.h>
#include <sys/resource.h>

FIXTURE(lifecycle) {
	struct ipcsock_test t;
};

FIXTURE_VARIANT(lifecycle) {
	enum ipcsock_backend backend;
};

FIXTURE_VARIANT_ADD(lifecycle, uring) {
	.backend = IPCSOCK_BACKEND_URING,
};

FIXTURE_VARIANT_ADD(lifecycle, epoll) {
	.backend = IPCSOCK_BACKEND_EPOLL,
};

FIXTURE_VARIANT_ADD(lifecycle, uring_ring_sends) {
	.backend = BACKEND_URING_RING_SENDS,
};

FIXTURE_SETUP(lifecycle)
{
	ctx_setup(_metadata, &self->t, variant->backend);
}

FIXTURE_TEARDOWN(lifecycle)
{
	ctx_teardown(_metadata, &self->t);
}

/* Raw end: wait (dispatching @loop) until the peer's end is gone. */
static bool raw_wait_eof(struct ipcsock_loop *loop, int fd, int timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;
	char buf[256];
	int fds[8];
	unsigned int n = 0;
	ssize_t ret;

	while (now_ms() < deadline) {
		ret = raw_recv(fd, buf, sizeof(buf), fds, 8, &n, NULL);
		if (ret > 0) {
			close_fds_array(fds, n);
			continue;
		}
		if (ret == 0)
			return true;
		if (ret != -EAGAIN)
			return false;
		ipcsock_loop_dispatch(loop, 5);
	}
	return false;
}

/* Raw end sends @s; the library socket must hand it out whole. */
static void check_raw_to_lib(struct __test_metadata *_metadata,
			     struct ipcsock_loop *loop, struct ipcsock *sock,
			     int raw, const char *s)
{
	struct ipcsock_payload p;

	ASSERT_EQ((ssize_t)(TEST_WIRE_HDR_LEN + strlen(s)),
		  raw_send_msg(raw, s, strlen(s), NULL, 0));
	ASSERT_EQ(0, receive_wait(loop, sock, &p, WAIT_MS));
	ASSERT_EQ(strlen(s), p.len);
	ASSERT_EQ(0, memcmp(p.data, s, p.len));
	ASSERT_EQ(0, p.nr_fds);
}

TEST_F(lifecycle, new_free_unbound)
{
	struct ipcsock_payload p = msg_of("x", 1, NULL, 0);
	struct ipcsock *s;

	s = ctx_sock(_metadata, &self->t, self->t.loop);
	EXPECT_FALSE(ipcsock_is_bound(s));
	EXPECT_EQ(-ENOTCONN, ipcsock_send(s, &p));
	EXPECT_EQ(-ENOTCONN, ipcsock_send_batch(s, &p, 1));
	EXPECT_EQ(-ENOTCONN, ipcsock_receive(s, &p));
	/* Closing an unbound socket is harmless, twice too. */
	ipcsock_close(s);
	ipcsock_close(s);
	EXPECT_FALSE(ipcsock_is_bound(s));
	ctx_forget_sock(&self->t, s);
	ipcsock_free(s);
	EXPECT_EQ(self->t.fd_loop, count_open_fds());
}

TEST_F(lifecycle, create_returns_cloexec_seqpacket)
{
	int remote, val;
	socklen_t len;
	struct ipcsock *a;

	a = ctx_sock(_metadata, &self->t, self->t.loop);
	remote = ipcsock_create(a);
	ASSERT_LE(0, remote);
	ctx_fd(_metadata, &self->t, remote);
	EXPECT_TRUE(ipcsock_is_bound(a));

	EXPECT_TRUE(fd_is_cloexec(remote));
	len = sizeof(val);
	ASSERT_EQ(0, getsockopt(remote, SOL_SOCKET, SO_DOMAIN, &val, &len));
	EXPECT_EQ(AF_UNIX, val);
	len = sizeof(val);
	ASSERT_EQ(0, getsockopt(remote, SOL_SOCKET, SO_TYPE, &val, &len));
	EXPECT_EQ(SOCK_SEQPACKET, val);

	/* The remote end is connected to the local one. */
	check_raw_to_lib(_metadata, self->t.loop, a, remote, "hello");
}

TEST_F(lifecycle, create_when_bound_ebusy)
{
	struct ipcsock *a;
	int remote;

	a = ctx_sock(_metadata, &self->t, self->t.loop);
	remote = ipcsock_create(a);
	ASSERT_LE(0, remote);
	ctx_fd(_metadata, &self->t, remote);

	EXPECT_EQ(-EBUSY, ipcsock_create(a));
	EXPECT_TRUE(ipcsock_is_bound(a));
	/* The first channel is untouched. */
	check_raw_to_lib(_metadata, self->t.loop, a, remote, "still here");
}

TEST_F(lifecycle, bind_when_bound_ebusy)
{
	struct ipcsock *a;
	int remote, sv[2];

	a = ctx_sock(_metadata, &self->t, self->t.loop);
	remote = ipcsock_create(a);
	ASSERT_LE(0, remote);
	ctx_fd(_metadata, &self->t, remote);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	ctx_fd(_metadata, &self->t, sv[0]);
	ctx_fd(_metadata, &self->t, sv[1]);

	EXPECT_EQ(-EBUSY, ipcsock_bind(a, sv[0]));
	/* The fd is still the caller's and still works. */
	EXPECT_TRUE(fd_is_open(sv[0]));
	EXPECT_EQ(3, send(sv[0], "abc", 3, MSG_DONTWAIT));
	check_raw_to_lib(_metadata, self->t.loop, a, remote, "old channel");
}

TEST_F(lifecycle, bind_bad_fd)
{
	struct ipcsock *s;
	int fd;

	s = ctx_sock(_metadata, &self->t, self->t.loop);
	EXPECT_EQ(-EBADF, ipcsock_bind(s, -1));
	EXPECT_FALSE(ipcsock_is_bound(s));

	/* A number that was open a moment ago. */
	fd = dup(0);
	ASSERT_LE(0, fd);
	close(fd);
	EXPECT_EQ(-EBADF, ipcsock_bind(s, fd));
	EXPECT_FALSE(ipcsock_is_bound(s));
	EXPECT_EQ(-ENOTCONN, ipcsock_receive(s, &(struct ipcsock_payload){0}));
}

TEST_F(lifecycle, bind_not_a_socket)
{
	struct ipcsock *s;
	int pfd[2], mfd;
	char c = 0, buf[4];

	s = ctx_sock(_metadata, &self->t, self->t.loop);
	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	ctx_fd(_metadata, &self->t, pfd[0]);
	ctx_fd(_metadata, &self->t, pfd[1]);
	mfd = memfd_with("notsock", "data");
	ctx_fd(_metadata, &self->t, mfd);

	EXPECT_EQ(-ENOTSOCK, ipcsock_bind(s, pfd[0]));
	EXPECT_FALSE(ipcsock_is_bound(s));
	EXPECT_EQ(-ENOTSOCK, ipcsock_bind(s, mfd));
	EXPECT_FALSE(ipcsock_is_bound(s));

	/* Still open and usable by the caller. */
	EXPECT_EQ(1, write(pfd[1], "z", 1));
	EXPECT_EQ(1, read(pfd[0], &c, 1));
	EXPECT_EQ('z', c);
	EXPECT_EQ(4, pread(mfd, buf, 4, 0));
}

TEST_F(lifecycle, bind_wrong_socket_type)
{
	static const int types[] = { SOCK_DGRAM, SOCK_STREAM };
	struct ipcsock *s;
	unsigned int i;
	char buf[4];
	int sv[2], ret, fd;

	s = ctx_sock(_metadata, &self->t, self->t.loop);
	for (i = 0; i < ARRAY_SIZE(types); i++) {
		ASSERT_EQ(0, socketpair(AF_UNIX, types[i] | SOCK_CLOEXEC, 0,
					sv));
		ret = ipcsock_bind(s, sv[0]);
		EXPECT_GT(0, ret) TH_LOG("AF_UNIX type %d accepted", types[i]);
		EXPECT_FALSE(ipcsock_is_bound(s));
		/* The fd is still the caller's, open and working. */
		EXPECT_TRUE(fd_is_open(sv[0]));
		EXPECT_EQ(3, send(sv[0], "abc", 3, MSG_DONTWAIT));
		EXPECT_EQ(3, recv(sv[1], buf, 3, MSG_DONTWAIT));
		if (ret == 0)
			ipcsock_close(s);	/* do not double-close */
		else
			close(sv[0]);
		close(sv[1]);
	}

	/* Not AF_UNIX at all (skipped where the sandbox has no inet). */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		ret = ipcsock_bind(s, fd);
		EXPECT_GT(0, ret);
		EXPECT_FALSE(ipcsock_is_bound(s));
		EXPECT_TRUE(fd_is_open(fd));
		if (ret == 0)
			ipcsock_close(s);
		else
			close(fd);
	}
}

TEST_F(lifecycle, bind_takes_ownership)
{
	struct ipcsock *s;
	int sv[2];

	s = ctx_sock(_metadata, &self->t, self->t.loop);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	ctx_fd(_metadata, &self->t, sv[1]);
	ASSERT_EQ(0, ipcsock_bind(s, sv[0]));
	EXPECT_TRUE(ipcsock_is_bound(s));
	check_raw_to_lib(_metadata, self->t.loop, s, sv[1], "bound");

	/* close() closes the fd it took: the raw peer sees end-of-file. */
	ipcsock_close(s);
	EXPECT_FALSE(ipcsock_is_bound(s));
	EXPECT_TRUE(raw_wait_eof(self->t.loop, sv[1], WAIT_MS));
	/* fd count: setup + the raw end only (sv[0] is gone). */
	EXPECT_EQ(self->t.fd_loop + 1, count_open_fds());
}

/* Send message @seq of a stream checked by struct rec, with @nr_fds fds. */
static int send_seq_fds(struct ipcsock *sock, uint32_t seq, int *fds,
			unsigned int nr_fds)
{
	struct ipcsock_payload p = msg_of(&seq, sizeof(seq), fds, nr_fds);

	return ipcsock_send(sock, &p);
}

/*
 * A pair bound to the two ends of a socketpair that has SO_PASSCRED and,
 * where the kernel lets us, SO_PASSSEC set on both ends, with recorders
 * that check the sequence numbers.
 */
static void passcred_pair(struct __test_metadata *_metadata,
			  struct ipcsock_test *t, struct ipcsock **a,
			  struct ipcsock **b, struct rec *ra, struct rec *rb)
{
	int sv[2], one = 1, ret, i;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(0, setsockopt(sv[i], SOL_SOCKET, SO_PASSCRED, &one,
					sizeof(one)));
		if (setsockopt(sv[i], SOL_SOCKET, SO_PASSSEC, &one,
			       sizeof(one)))
			TH_LOG("SO_PASSSEC: %s", strerror(errno));
	}
	*a = ctx_sock(_metadata, t, t->loop);
	*b = ctx_sock(_metadata, t, t->loop);
	ret = ipcsock_bind(*a, sv[0]);
	if (ret) {
		close(sv[0]);
		close(sv[1]);
	}
	ASSERT_EQ(0, ret);
	ret = ipcsock_bind(*b, sv[1]);
	if (ret)
		close(sv[1]);
	ASSERT_EQ(0, ret);
	rec_attach(ra, *a);
	rec_attach(rb, *b);
	ra->check_seq = true;
	rb->check_seq = true;
}

/*
 * A socket handed to ipcsock_bind() may come with SO_PASSCRED (and
 * SO_PASSSEC) set, by a launcher say. The kernel then adds
 * SCM_CREDENTIALS (SCM_SECURITY, where an LSM labels sockets) to every
 * datagram it delivers there: that is no protocol error of the peer's.
 * Messages with and without fds still arrive normally, both ways, and the
 * channel stays up.
 */
TEST_F(lifecycle, bind_socket_with_passcred)
{
	struct ipcsock *a, *b;
	struct rec ra, rb;
	int mfd;

	passcred_pair(_metadata, &self->t, &a, &b, &ra, &rb);
	mfd = memfd_with("passcred", "p");
	ctx_fd(_metadata, &self->t, mfd);
	EXPECT_EQ(0, send_seq_fds(a, 0, NULL, 0));
	EXPECT_EQ(0, send_seq_fds(a, 1, &mfd, 1));
	EXPECT_EQ(0, send_seq_fds(b, 0, NULL, 0));
	EXPECT_EQ(0, send_seq_fds(b, 1, &mfd, 1));

	EXPECT_TRUE(dispatch_until(self->t.loop,
				   (rb.received == 2 && ra.received == 2) ||
				   ra.hangup || rb.hangup, WAIT_MS));
	dispatch_for(self->t.loop, 20);
	EXPECT_EQ(0, rb.hangup) TH_LOG("hangup err %d", rb.hangup_err);
	EXPECT_EQ(0, ra.hangup) TH_LOG("hangup err %d", ra.hangup_err);
	EXPECT_EQ(2, rb.received);
	EXPECT_EQ(1, rb.fds);
	EXPECT_EQ(2, ra.received);
	EXPECT_EQ(1, ra.fds);
	EXPECT_EQ(0, ra.bad + rb.bad + ra.recv_err + rb.recv_err);
}

/*
 * The same with a message of IPCSOCK_MAX_FDS fds: the credentials come
 * first in the control data, and the fds after them must still all fit
 * (the receive side sized for SCM_RIGHTS alone would truncate them).
 */
TEST_F(lifecycle, bind_socket_with_passcred_max_fds)
{
	int mfd, many[IPCSOCK_MAX_FDS], i;
	struct ipcsock *a, *b;
	struct rec ra, rb;

	/* The receiver holds a whole message's fds, ring sends a copy. */
	if (!nofile_at_least(1024))
		SKIP(return, "RLIMIT_NOFILE hard limit below 1024");
	passcred_pair(_metadata, &self->t, &a, &b, &ra, &rb);
	mfd = memfd_with("passcred", "p");
	ctx_fd(_metadata, &self->t, mfd);
	for (i = 0; i < IPCSOCK_MAX_FDS; i++)
		many[i] = mfd;
	EXPECT_EQ(0, send_seq_fds(a, 0, many, IPCSOCK_MAX_FDS));
	EXPECT_EQ(0, send_seq_fds(a, 1, NULL, 0));

	EXPECT_TRUE(dispatch_until(self->t.loop, rb.received == 2 || rb.hangup,
				   WAIT_MS));
	dispatch_for(self->t.loop, 20);
	EXPECT_EQ(0, rb.hangup) TH_LOG("hangup err %d", rb.hangup_err);
	EXPECT_EQ(2, rb.received);
	EXPECT_EQ(IPCSOCK_MAX_FDS, rb.fds);
	EXPECT_EQ(0, rb.bad + rb.recv_err);
}

TEST_F(lifecycle, close_idempotent)
{
	struct ipcsock_payload p = msg_of("x", 1, NULL, 0);
	struct ipcsock *a;
	int remote;

	remote = ctx_raw_pair(_metadata, &self->t, self->t.loop, &a);
	ipcsock_close(a);
	EXPECT_FALSE(ipcsock_is_bound(a));
	ipcsock_close(a);
	EXPECT_FALSE(ipcsock_is_bound(a));
	EXPECT_EQ(-ENOTCONN, ipcsock_send(a, &p));
	EXPECT_EQ(-ENOTCONN, ipcsock_receive(a, &p));
	EXPECT_TRUE(raw_wait_eof(self->t.loop, remote, WAIT_MS));
	ipcsock_close(a);
	EXPECT_EQ(self->t.fd_loop + 1, count_open_fds());
}

TEST_F(lifecycle, rebind_after_close)
{
	struct ipcsock *a;
	int r1, r2, sv[2];
	char buf[64];

	r1 = ctx_raw_pair(_metadata, &self->t, self->t.loop, &a);
	check_raw_to_lib(_metadata, self->t.loop, a, r1, "first");
	ipcsock_close(a);
	EXPECT_TRUE(raw_wait_eof(self->t.loop, r1, WAIT_MS));

	/* create() again on the same object. */
	r2 = ipcsock_create(a);
	ASSERT_LE(0, r2);
	ctx_fd(_metadata, &self->t, r2);
	EXPECT_TRUE(ipcsock_is_bound(a));
	check_raw_to_lib(_metadata, self->t.loop, a, r2, "second");
	ipcsock_close(a);
	EXPECT_TRUE(raw_wait_eof(self->t.loop, r2, WAIT_MS));

	/* And bind() after that. */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	ctx_fd(_metadata, &self->t, sv[1]);
	ASSERT_EQ(0, ipcsock_bind(a, sv[0]));
	check_raw_to_lib(_metadata, self->t.loop, a, sv[1], "third");
	/* The old remote ends saw nothing more than EOF. */
	EXPECT_EQ(0, raw_recv(r1, buf, sizeof(buf), NULL, 0, NULL, NULL));
}

TEST_F(lifecycle, free_while_bound)
{
	struct ipcsock *a;
	int remote;

	remote = ctx_raw_pair(_metadata, &self->t, self->t.loop, &a);
	check_raw_to_lib(_metadata, self->t.loop, a, remote, "x");
	ctx_forget_sock(&self->t, a);
	ipcsock_free(a);
	EXPECT_TRUE(raw_wait_eof(self->t.loop, remote, WAIT_MS));
	EXPECT_EQ(self->t.fd_loop + 1, count_open_fds());
}

/* send(X); close() delivers X (and its fd) before the hang-up. */
TEST_F(lifecycle, close_delivers_queued_message)
{
	struct ipcsock *a, *b;
	struct ipcsock_payload p;
	struct rec rb;
	char buf[32];
	int mfd;

	ctx_pair(_metadata, &self->t, self->t.loop, &a, self->t.loop, &b);
	rec_attach(&rb, b);
	rb.no_receive = true;
	mfd = memfd_with("close-msg", "payload-of-close");
	ctx_fd(_metadata, &self->t, mfd);

	p = msg_of("CLOSE", 5, &mfd, 1);
	ASSERT_EQ(0, ipcsock_send(a, &p));
	ipcsock_close(a);
	EXPECT_FALSE(ipcsock_is_bound(a));

	ASSERT_EQ(0, receive_wait(self->t.loop, b, &p, WAIT_MS));
	ASSERT_EQ(5, p.len);
	EXPECT_EQ(0, memcmp(p.data, "CLOSE", 5));
	ASSERT_EQ(1, p.nr_fds);
	EXPECT_TRUE(same_file(mfd, p.fds[0]));
	EXPECT_EQ(16, fd_content(p.fds[0], buf, sizeof(buf)));
	EXPECT_STREQ("payload-of-close", buf);
	close(p.fds[0]);

	EXPECT_TRUE(dispatch_until(self->t.loop, rb.hangup, WAIT_MS));
	EXPECT_EQ(1, rb.hangup);
	EXPECT_EQ(0, rb.hangup_err);
	EXPECT_EQ(0, rb.bad);
}

/*
 * close() with more queued than the socket buffer takes: the peer gets a
 * gap-free prefix of whole messages, then EOF; the dropped messages' fds
 * are closed (the teardown's leak check).
 */
TEST_F(lifecycle, close_drops_unsendable)
{
	enum { N = 100, LEN = 16 * 1024 };
	static unsigned char data[LEN], buf[LEN + 64];
	struct ipcsock_payload p;
	struct test_wire_hdr hdr;
	unsigned int nfds, i;
	struct ipcsock *a;
	int remote, mfd, fds[4], got = 0, eof = 0;
	uint64_t deadline;
	uint32_t seq;
	ssize_t n;

	remote = ctx_raw_pair(_metadata, &self->t, self->t.loop, &a);
	mfd = memfd_with("queued", "q");
	ctx_fd(_metadata, &self->t, mfd);

	for (i = 0; i < N; i++) {
		memset(data, i & 0xff, LEN);
		memcpy(data, &i, sizeof(i));
		p = msg_of(data, LEN, &mfd, 1);
		ASSERT_EQ(0, ipcsock_send(a, &p)) TH_LOG("send %u", i);
	}
	ipcsock_close(a);

	deadline = now_ms() + WAIT_MS;
	while (!eof && now_ms() < deadline) {
		n = raw_recv(remote, buf, sizeof(buf), fds, 4, &nfds, NULL);
		if (n == -EAGAIN) {
			ipcsock_loop_dispatch(self->t.loop, 5);
			continue;
		}
		ASSERT_LE(0, n);
		if (n == 0) {
			eof = 1;
			break;
		}
		ASSERT_EQ(TEST_WIRE_HDR_LEN + LEN, n);
		memcpy(&hdr, buf, sizeof(hdr));
		EXPECT_EQ(LEN, hdr.len);
		EXPECT_EQ(1, hdr.nr_fds);
		EXPECT_EQ(1, nfds);
		if (nfds >= 1)
			EXPECT_TRUE(same_file(mfd, fds[0]));
		close_fds_array(fds, nfds);
		memcpy(&seq, buf + TEST_WIRE_HDR_LEN, sizeof(seq));
		EXPECT_EQ(got, seq);
		EXPECT_EQ((unsigned char)(got & 0xff), buf[TEST_WIRE_HDR_LEN + 100]);
		got++;
	}
	EXPECT_TRUE(eof);
	EXPECT_LT(0, got);
	EXPECT_GE(N, got);
}

/*
 * close() with a queue while the peer is already gone: the queue goes to
 * a dead socket, which must not raise SIGPIPE (SIG_DFL here), and its fds
 * are closed.
 */
TEST_F(lifecycle, close_with_queue_to_dead_peer)
{
	enum { LEN = 16 * 1024 };
	static unsigned char data[LEN];
	struct ipcsock_payload p;
	struct ipcsock *a;
	int remote, mfd, i;

	remote = ctx_raw_pair(_metadata, &self->t, self->t.loop, &a);
	mfd = memfd_with("dead-peer", "d");
	ctx_fd(_metadata, &self->t, mfd);
	for (i = 0; i < 60; i++) {
		p = msg_of(data, LEN, &mfd, 1);
		ASSERT_EQ(0, ipcsock_send(a, &p));
	}
	ctx_close_fd(&self->t, remote);
	ipcsock_close(a);
	dispatch_for(self->t.loop, 50);
	EXPECT_FALSE(ipcsock_is_bound(a));
	EXPECT_EQ(self->t.fd_loop + 1, count_open_fds());
}

/* Messages received by the library but not by the caller: fds closed. */
static void unreceived_fds_closed(struct __test_metadata *_metadata,
				  struct ipcsock_test *t, bool use_free)
{
	struct ipcsock *a, *b;
	struct ipcsock_payload p;
	int fds[2], before, i;

	ctx_pair(_metadata, t, t->loop, &a, t->loop, &b);
	fds[0] = memfd_with("unrecv-0", "zero");
	fds[1] = memfd_with("unrecv-1", "one");
	ctx_fd(_metadata, t, fds[0]);
	ctx_fd(_metadata, t, fds[1]);
	before = count_open_fds();

	for (i = 0; i < 10; i++) {
		p = msg_of("m", 1, fds, 2);
		ASSERT_EQ(0, ipcsock_send(a, &p));
	}
	/* Let b's side take them in (and a's side finish sending). */
	dispatch_for(t->loop, 100);

	if (use_free) {
		ctx_forget_sock(t, b);
		ipcsock_free(b);
	} else {
		ipcsock_close(b);
	}
	dispatch_for(t->loop, 50);
	/* Only b's socket went away; none of the 20 received fds stayed. */
	EXPECT_EQ(before - 1, count_open_fds());
	if (count_open_fds() != before - 1)
		dump_open_fds("after closing a socket with unreceived fds");
}

TEST_F(lifecycle, close_closes_unreceived_fds)
{
	unreceived_fds_closed(_metadata, &self->t, false);
}

TEST_F(lifecycle, free_closes_unreceived_fds)
{
	unreceived_fds_closed(_metadata, &self->t, true);
}

TEST_F(lifecycle, loop_new_null_opts)
{
	struct ipcsock_loop *loop;
	enum ipcsock_backend be;
	int fd;

	unsetenv("IPCSOCK_BACKEND");
	loop = ipcsock_loop_new(NULL);
	ASSERT_NE(NULL, loop);
	be = ipcsock_loop_backend(loop);
	EXPECT_TRUE(be == IPCSOCK_BACKEND_URING || be == IPCSOCK_BACKEND_EPOLL);
	if (uring_available())
		EXPECT_EQ(IPCSOCK_BACKEND_URING, be);
	fd = ipcsock_loop_fd(loop);
	EXPECT_LE(0, fd);
	EXPECT_EQ(fd, ipcsock_loop_fd(loop));
	EXPECT_EQ(0, ipcsock_loop_dispatch(loop, 0));
	ipcsock_loop_free(loop);
}

TEST_F(lifecycle, loop_new_bad_opts)
{
	struct ipcsock_loop *loop;

	errno = 0;
	loop = loop_new(self->t.backend, IPCSOCK_MAX_MSG_SIZE_LIMIT + 1, 0, 0);
	EXPECT_EQ(NULL, loop);
	EXPECT_EQ(EINVAL, errno);
	if (loop)
		ipcsock_loop_free(loop);

	/* The limit itself is accepted. */
	loop = loop_new(self->t.backend, IPCSOCK_MAX_MSG_SIZE_LIMIT, 0, 0);
	EXPECT_NE(NULL, loop);
	if (loop)
		ipcsock_loop_free(loop);
}

/*
 * libbpf-style options: a caller built against an older, smaller struct
 * gets defaults for the fields it does not know; a newer, larger one is
 * fine while the fields this library does not know are zero.
 */
TEST_F(lifecycle, loop_opts_sz)
{
	static unsigned char buf[2000];
	struct {
		struct ipcsock_loop_opts o;
		unsigned char tail[16];
	} big;
	struct ipcsock_loop *loop;
	struct ipcsock_payload p;
	struct ipcsock *a, *b;

	/* Old caller: sz ends before max_msg_size, whatever follows. */
	memset(&big, 0, sizeof(big));
	big.o.sz = offsetof(struct ipcsock_loop_opts, max_msg_size);
	big.o.backend = real_backend(self->t.backend);
	big.o.max_msg_size = 100;
	loop = ipcsock_loop_new(&big.o);
	ASSERT_NE(NULL, loop);
	EXPECT_EQ(real_backend(self->t.backend), ipcsock_loop_backend(loop));
	a = ipcsock_new(loop);
	b = ipcsock_new(loop);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, ipcsock_bind(b, ipcsock_create(a)));
	p = msg_of(buf, sizeof(buf), NULL, 0);
	EXPECT_EQ(0, ipcsock_send(a, &p)) TH_LOG("max_msg_size not default");
	EXPECT_EQ(0, receive_wait(loop, b, &p, WAIT_MS));
	EXPECT_EQ(sizeof(buf), p.len);
	ipcsock_free(a);
	ipcsock_free(b);
	ipcsock_loop_free(loop);

	/* Newer caller, unknown fields zero. */
	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big);
	big.o.backend = real_backend(self->t.backend);
	loop = ipcsock_loop_new(&big.o);
	ASSERT_NE(NULL, loop);
	ipcsock_loop_free(loop);

	/* Newer caller using a field this library does not have. */
	big.tail[3] = 1;
	errno = 0;
	loop = ipcsock_loop_new(&big.o);
	EXPECT_EQ(NULL, loop);
	EXPECT_EQ(EINVAL, errno);
	if (loop)
		ipcsock_loop_free(loop);

	/* No such backend. */
	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big.o);
	big.o.backend = 42;
	errno = 0;
	loop = ipcsock_loop_new(&big.o);
	EXPECT_EQ(NULL, loop);
	EXPECT_EQ(EINVAL, errno);
	if (loop)
		ipcsock_loop_free(loop);
}

TEST_F(lifecycle, backend_from_env)
{
	struct ipcsock_loop *loop;

	ASSERT_EQ(0, setenv("IPCSOCK_BACKEND", "epoll", 1));
	loop = ipcsock_loop_new(NULL);
	ASSERT_NE(NULL, loop);
	EXPECT_EQ(IPCSOCK_BACKEND_EPOLL, ipcsock_loop_backend(loop));
	ipcsock_loop_free(loop);

	/* An explicit backend in the options wins over the environment. */
	loop = loop_new(self->t.backend, 0, 0, 0);
	ASSERT_NE(NULL, loop);
	EXPECT_EQ(real_backend(self->t.backend), ipcsock_loop_backend(loop));
	ipcsock_loop_free(loop);
	unsetenv("IPCSOCK_BACKEND");
}

/* Everything the library opens is close-on-exec. */
TEST_F(lifecycle, library_fds_are_cloexec)
{
	static struct fd_snap before;
	struct ipcsock_loop *loop;
	struct ipcsock_payload p;
	struct ipcsock *a, *b;
	int fd, mfd, remote;

	mfd = memfd_with("cloexec", "c");
	ctx_fd(_metadata, &self->t, mfd);
	fd_snap_take(&before);

	loop = ctx_loop(_metadata, &self->t, 0, 0, 0);
	EXPECT_LE(0, ipcsock_loop_fd(loop));
	EXPECT_LE(0, ipcsock_loop_fd(self->t.loop));
	ctx_pair(_metadata, &self->t, loop, &a, self->t.loop, &b);
	remote = ctx_raw_pair(_metadata, &self->t, loop, &a);
	p = msg_of("x", 1, &mfd, 1);
	ASSERT_EQ(0, ipcsock_send(b, &p));
	ASSERT_EQ(TEST_WIRE_HDR_LEN + 1, raw_send_msg(remote, "y", 1, &mfd, 1));
	dispatch_for(loop, 20);
	dispatch_for(self->t.loop, 20);

	for (fd = 0; fd < FD_SNAP_MAX; fd++) {
		if (before.open[fd] || !fd_is_open(fd))
			continue;
		EXPECT_TRUE(fd_is_cloexec(fd)) {
			char path[64], target[128] = "";

			snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
			if (readlink(path, target, sizeof(target) - 1) < 0)
				target[0] = '\0';
			TH_LOG("fd %d (%s) lacks FD_CLOEXEC", fd, target);
		}
	}
}

/* The default loop: one per thread, used by ipcsock_new(NULL). */
struct thread_loop {
	struct ipcsock_loop *loop;
	struct ipcsock_loop *again;
};

static void *thread_default_loop(void *arg)
{
	struct thread_loop *tl = arg;

	tl->loop = ipcsock_loop_default();
	tl->again = ipcsock_loop_default();
	return NULL;
}

TEST_F(lifecycle, default_loop_per_thread)
{
	struct ipcsock_loop *def;
	struct thread_loop tl = { 0 };
	struct ipcsock_payload p;
	struct ipcsock *a, *b;
	int remote, before, mid;
	pthread_t th;

	before = count_open_fds();
	/* The environment picks the default loop's backend. */
	ASSERT_EQ(0, setenv("IPCSOCK_BACKEND",
			    self->t.backend == IPCSOCK_BACKEND_EPOLL ?
			    "epoll" : "io_uring", 1));
	def = ipcsock_loop_default();
	ASSERT_NE(NULL, def);
	EXPECT_EQ(def, ipcsock_loop_default());
	EXPECT_EQ(real_backend(self->t.backend), ipcsock_loop_backend(def));

	mid = count_open_fds();
	ASSERT_EQ(0, pthread_create(&th, NULL, thread_default_loop, &tl));
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_NE(NULL, tl.loop);
	EXPECT_EQ(tl.loop, tl.again);
	EXPECT_NE(def, tl.loop);
	/* A thread's default loop goes with the thread. */
	EXPECT_EQ(mid, count_open_fds());

	/* ipcsock_new(NULL) lands on this thread's default loop. */
	a = ctx_sock(_metadata, &self->t, NULL);
	b = ctx_sock(_metadata, &self->t, NULL);
	remote = ipcsock_create(a);
	ASSERT_LE(0, remote);
	ASSERT_EQ(0, ipcsock_bind(b, remote));
	p = msg_of("dflt", 4, NULL, 0);
	ASSERT_EQ(0, ipcsock_send(a, &p));
	ASSERT_EQ(0, receive_wait(def, b, &p, WAIT_MS));
	EXPECT_EQ(4, p.len);
	EXPECT_EQ(0, memcmp(p.data, "dflt", 4));
	unsetenv("IPCSOCK_BACKEND");

	/*
	 * This thread's default loop would stay for the process's life:
	 * free it, with its sockets first, so that every fd it held is
	 * closed (valgrind --track-fds counts what is open at exit).
	 */
	ctx_forget_sock(&self->t, a);
	ctx_forget_sock(&self->t, b);
	ipcsock_free(a);
	ipcsock_free(b);
	ipcsock_loop_free(def);
	EXPECT_EQ(before, count_open_fds());
}

/*
 * Loops on one shared ring tell their completions apart by a 16-bit loop
 * number in user_data. A process that made 65,536 loops before (a daemon
 * with a default loop per thread, say) must still give a new shared loop
 * a number no live loop has: the outside review's uidwrap, where the old
 * loop took the new loop's completions and failed with -EPROTO. Loops of
 * both kinds are made and freed in between: 65,535 epoll loops, as in the
 * review (with the old global counter, that many put the next loop on the
 * live one's number), and 65,536 shared ones, so that the numbers shared
 * loops take go round once past the live one.
 */
#define UID_MSGS	16

struct uid_app {
	struct io_uring ring;
	struct ipcsock_loop *l1, *l2;
	struct ipcsock *a1, *b1, *a2, *b2;
	struct rec r1, r2;
	unsigned int dropped;
};

static void uid_turn(struct uid_app *app)
{
	struct __kernel_timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	io_uring_submit_and_wait_timeout(&app->ring, &cqe, 1, &ts, NULL);
	io_uring_for_each_cqe(&app->ring, head, cqe) {
		if (!ipcsock_loop_handle_cqe(app->l1, cqe) &&
		    !ipcsock_loop_handle_cqe(app->l2, cqe) &&
		    IPCSOCK_USER_DATA_IS_OURS(cqe->user_data))
			app->dropped++;
		n++;
	}
	io_uring_cq_advance(&app->ring, n);
	ipcsock_loop_dispatch(app->l1, 0);
	ipcsock_loop_dispatch(app->l2, 0);
}

static void uid_pair(struct __test_metadata *_metadata,
		     struct ipcsock_loop *loop, struct ipcsock **a,
		     struct ipcsock **b, struct rec *r)
{
	int fd;

	*a = ipcsock_new(loop);
	*b = ipcsock_new(loop);
	ASSERT_NE(NULL, *a);
	ASSERT_NE(NULL, *b);
	fd = ipcsock_create(*a);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ipcsock_bind(*b, fd));
	rec_attach(r, *b);
	r->check_seq = true;
}

TEST(shared_loop_numbers_unique)
{
	IPCSOCK_LOOP_OPTS(o1, .bgid_base = 0x7000);
	IPCSOCK_LOOP_OPTS(o2, .bgid_base = 0x8000);
	IPCSOCK_LOOP_OPTS(oe, .backend = IPCSOCK_BACKEND_EPOLL);
	static struct uid_app app;
	struct ipcsock_loop *loop;
	uint64_t start, deadline;
	int fds = count_open_fds();
	unsigned int i;

	if (!uring_available())
		SKIP(return, "io_uring is not available to this process");
	ASSERT_EQ(0, io_uring_queue_init(64, &app.ring, 0));
	app.l1 = ipcsock_loop_new_shared(&app.ring, &o1);
	ASSERT_NE(NULL, app.l1);
	uid_pair(_metadata, app.l1, &app.a1, &app.b1, &app.r1);

	start = now_ms();
	for (i = 0; i < 65535; i++) {
		loop = ipcsock_loop_new(&oe);
		ASSERT_NE(NULL, loop) TH_LOG("epoll loop %u: %s", i,
					     strerror(errno));
		ipcsock_loop_free(loop);
	}
	for (i = 0; i < 65536; i++) {
		loop = ipcsock_loop_new_shared(&app.ring, NULL);
		ASSERT_NE(NULL, loop) TH_LOG("shared loop %u: %s", i,
					     strerror(errno));
		ipcsock_loop_free(loop);
	}
	TH_LOG("131,071 loops made and freed in %llu ms",
	       (unsigned long long)(now_ms() - start));

	app.l2 = ipcsock_loop_new_shared(&app.ring, &o2);
	ASSERT_NE(NULL, app.l2);
	uid_pair(_metadata, app.l2, &app.a2, &app.b2, &app.r2);
	for (i = 0; i < UID_MSGS; i++) {
		struct ipcsock_payload p = msg_of(&i, sizeof(i), NULL, 0);

		ASSERT_EQ(0, ipcsock_send(app.a1, &p));
		ASSERT_EQ(0, ipcsock_send(app.a2, &p));
	}
	deadline = now_ms() + WAIT_MS;
	while ((app.r1.received < UID_MSGS || app.r2.received < UID_MSGS) &&
	       now_ms() < deadline)
		uid_turn(&app);
	EXPECT_EQ(UID_MSGS, app.r1.received);
	EXPECT_EQ(UID_MSGS, app.r2.received);
	EXPECT_EQ(0, app.r1.hangup) TH_LOG("loop 1: hangup %d",
					   app.r1.hangup_err);
	EXPECT_EQ(0, app.r2.hangup) TH_LOG("loop 2: hangup %d",
					   app.r2.hangup_err);
	EXPECT_EQ(0, app.r1.bad + app.r2.bad);
	EXPECT_EQ(0, app.dropped);

	ipcsock_free(app.a1);
	ipcsock_free(app.b1);
	ipcsock_free(app.a2);
	ipcsock_free(app.b2);
	for (i = 0; i < 100 && !(ipcsock_loop_idle(app.l1) &&
				 ipcsock_loop_idle(app.l2)); i++)
		uid_turn(&app);
	EXPECT_TRUE(ipcsock_loop_idle(app.l1));
	EXPECT_TRUE(ipcsock_loop_idle(app.l2));
	ipcsock_loop_free(app.l1);
	ipcsock_loop_free(app.l2);
	io_uring_queue_exit(&app.ring);
	EXPECT_EQ(fds, count_open_fds());
}

TEST_HARNESS_MAIN
