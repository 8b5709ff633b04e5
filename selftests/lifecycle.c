// SPDX-License-Identifier: GPL-2.0
/*
 * Object life cycle: loops, ipcsock_new/free, create/bind/close/is_bound,
 * bind errors (the fd stays the caller's), binding a socket with options
 * already set, close semantics (idempotent,
 * queued messages handed over, unreceived fds closed), rebinding, and
 * CLOEXEC on everything the library opens. The loop's options and the
 * default loop are loop_new.c's.
 */
#include "selftest.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>

CTX_FIXTURE(lifecycle);

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

/*
 * A failed ipcsock_bind() leaves the caller's socket as it was: the
 * options bind switches off (the kernel's own control messages), the
 * send buffer it raises for large messages, the close-on-exec flag.
 */
#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD		76
#endif
#ifndef SO_TIMESTAMP_OLD
#define SO_TIMESTAMP_OLD	29
#define SO_TIMESTAMPNS_OLD	35
#endif
#ifndef SO_TIMESTAMP_NEW
#define SO_TIMESTAMP_NEW	63
#define SO_TIMESTAMPNS_NEW	64
#endif

static const int bind_opts[] = {
	SO_PASSCRED, SO_PASSSEC, SO_PASSPIDFD, SO_TIMESTAMP_OLD,
	SO_TIMESTAMPNS_OLD, SO_TIMESTAMP_NEW, SO_TIMESTAMPNS_NEW,
};

struct sock_state {
	int opt[ARRAY_SIZE(bind_opts)];
	int sndbuf;
	int fd_flags;
};

static void sock_state_get(int fd, struct sock_state *st)
{
	socklen_t len;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bind_opts); i++) {
		len = sizeof(int);
		if (getsockopt(fd, SOL_SOCKET, bind_opts[i], &st->opt[i], &len))
			st->opt[i] = -errno;
	}
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &st->sndbuf, &len))
		st->sndbuf = -errno;
	st->fd_flags = fcntl(fd, F_GETFD);
}

/*
 * A connected pair whose sv[0] has what a launcher may have set: no
 * close-on-exec, and one of three dresses of credentials, a security
 * label, a pidfd and timestamps of each kind (one kind at a time: the
 * kernel keeps one). Options this kernel lacks stay off.
 */
#define NR_DRESSES	3

static bool dressed_pair(int sv[2], int how)
{
	static const int on[NR_DRESSES][3] = {
		{ SO_PASSCRED, SO_PASSSEC, SO_TIMESTAMP_OLD },
		{ SO_PASSPIDFD, SO_TIMESTAMPNS_NEW, SO_PASSCRED },
		{ SO_PASSSEC, SO_TIMESTAMPNS_OLD, SO_PASSPIDFD },
	};
	int one = 1, i;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv))
		return false;
	for (i = 0; i < 3; i++)
		setsockopt(sv[0], SOL_SOCKET, on[how][i], &one, sizeof(one));
	return true;
}

/* Compare; a mismatch is logged and counted. */
static int sock_state_diff(struct __test_metadata *_metadata,
			   const struct sock_state *a,
			   const struct sock_state *b)
{
	unsigned int i;
	int n = 0;

	for (i = 0; i < ARRAY_SIZE(bind_opts); i++) {
		if (a->opt[i] == b->opt[i])
			continue;
		TH_LOG("option %d was %d, is %d", bind_opts[i], a->opt[i],
		       b->opt[i]);
		n++;
	}
	if (a->sndbuf != b->sndbuf) {
		TH_LOG("SO_SNDBUF was %d, is %d", a->sndbuf, b->sndbuf);
		n++;
	}
	if (a->fd_flags != b->fd_flags) {
		TH_LOG("fd flags were %#x, are %#x", a->fd_flags, b->fd_flags);
		n++;
	}
	return n;
}

/*
 * Bind @sock to a dressed socket in every dress, expecting @want; returns
 * how many differences bind left behind (-1: set-up or other failure).
 */
static int bind_fails_untouched(struct __test_metadata *_metadata,
				struct ipcsock *sock, int want)
{
	struct sock_state before, after;
	int sv[2], how, ret, diff = 0;
	char c;

	for (how = 0; how < NR_DRESSES; how++) {
		if (!dressed_pair(sv, how))
			return -1;
		sock_state_get(sv[0], &before);
		ret = ipcsock_bind(sock, sv[0]);
		if (ret != want) {
			TH_LOG("ipcsock_bind: %d, not %d", ret, want);
			if (!ret)
				ipcsock_close(sock);
			else
				close(sv[0]);
			close(sv[1]);
			return -1;
		}
		sock_state_get(sv[0], &after);
		diff += sock_state_diff(_metadata, &before, &after);
		/* Still the caller's, and still connected. */
		if (ipcsock_is_bound(sock) ||
		    send(sv[0], "x", 1, MSG_DONTWAIT) != 1 ||
		    recv(sv[1], &c, 1, MSG_DONTWAIT) != 1)
			diff++;
		close(sv[0]);
		close(sv[1]);
	}
	return diff;
}

/*
 * io_uring: the buffer group id the socket would get is the
 * application's on a shared ring (review/bindmod.c).
 */
TEST_F(lifecycle, failed_bind_bgid_taken)
{
	IPCSOCK_LOOP_OPTS(opts, .max_msg_size = 1 << 20,
			  .flags = self->t.backend == BACKEND_URING_RING_SENDS ?
				   IPCSOCK_LOOP_RING_SENDS : 0);
	struct io_uring_buf_reg reg = { .ring_entries = 8,
					.bgid = IPCSOCK_DEFAULT_BGID_BASE };
	struct ipcsock_loop *loop;
	struct io_uring ring;
	struct ipcsock *s;
	void *mem;

	if (self->t.backend == IPCSOCK_BACKEND_EPOLL)
		SKIP(return, "buffer groups are io_uring's");
	ASSERT_EQ(0, io_uring_queue_init(8, &ring, 0));
	mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	reg.ring_addr = (unsigned long)mem;
	ASSERT_EQ(0, io_uring_register_buf_ring(&ring, &reg, 0));
	loop = ipcsock_loop_new_shared(&ring, &opts);
	ASSERT_NE(NULL, loop);
	s = ipcsock_new(loop);
	ASSERT_NE(NULL, s);
	EXPECT_EQ(0, bind_fails_untouched(_metadata, s, -EEXIST));
	ipcsock_free(s);
	EXPECT_TRUE(ipcsock_loop_idle(loop));
	ipcsock_loop_free(loop);
	io_uring_unregister_buf_ring(&ring, reg.bgid);
	io_uring_queue_exit(&ring);
	munmap(mem, 4096);
}

/*
 * io_uring: no buffer group id left for the socket (bgid_base + its index
 * passes 0xffff), on the loop's own ring.
 */
TEST_F(lifecycle, failed_bind_no_bgid_left)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = IPCSOCK_BACKEND_URING,
			  .max_msg_size = 1 << 20, .bgid_base = 0xffff,
			  .flags = self->t.backend == BACKEND_URING_RING_SENDS ?
				   IPCSOCK_LOOP_RING_SENDS : 0);
	struct ipcsock_loop *loop;
	struct ipcsock *first, *s;
	int remote;

	if (self->t.backend == IPCSOCK_BACKEND_EPOLL)
		SKIP(return, "buffer groups are io_uring's");
	loop = ipcsock_loop_new(&opts);
	ASSERT_NE(NULL, loop);
	first = ipcsock_new(loop);
	s = ipcsock_new(loop);
	ASSERT_NE(NULL, first);
	ASSERT_NE(NULL, s);
	remote = ipcsock_create(first);
	ASSERT_LE(0, remote);
	EXPECT_EQ(0, bind_fails_untouched(_metadata, s, -EMFILE));
	ipcsock_free(s);
	ipcsock_free(first);
	ipcsock_loop_free(loop);
	close(remote);
}

/*
 * Every backend: an unprivileged process cannot raise SO_SNDBUF past
 * net.core.wmem_max, so a loop whose max_msg_size needs more fails the
 * bind with EMSGSIZE, after it raised the buffer as far as it could.
 */
static int bind_emsgsize_child(struct __test_metadata *_metadata,
			       enum ipcsock_backend backend)
{
	struct ipcsock_loop *loop;
	struct ipcsock *s;
	int diff;

	/* Only stdio: the parent's loop is not ours to keep open. */
	syscall(SYS_close_range, 3, ~0u, 0);
	if (setgid(65534) || setuid(65534))
		return 100;
	loop = loop_new(backend, IPCSOCK_MAX_MSG_SIZE_LIMIT, 0, 0);
	s = loop ? ipcsock_new(loop) : NULL;
	if (!s)
		return 101;
	diff = bind_fails_untouched(_metadata, s, -EMSGSIZE);
	ipcsock_free(s);
	ipcsock_loop_free(loop);
	return diff < 0 ? 102 : diff;
}

static int wmem_max_rw(unsigned long *val, bool write)
{
	FILE *f = fopen("/proc/sys/net/core/wmem_max", write ? "w" : "r");
	int ok;

	if (!f)
		return -1;
	ok = write ? fprintf(f, "%lu\n", *val) > 0 : fscanf(f, "%lu", val) == 1;
	return fclose(f) || !ok ? -1 : 0;
}

/*
 * Where net.core.wmem_max lets anyone fit the limit (4 MiB here), the test
 * lowers it to the kernel's default for the child's bind and restores it:
 * root runs the selftests one at a time.
 */
TEST_F(lifecycle, failed_bind_sndbuf_too_small)
{
	unsigned long wmem_max = 0, low = 212992;
	bool lowered = false;

	if (geteuid())
		SKIP(return, "needs root to become an unprivileged user");
	ASSERT_EQ(0, wmem_max_rw(&wmem_max, false));
	if (2 * wmem_max >= IPCSOCK_MAX_MSG_SIZE_LIMIT + 64) {
		if (wmem_max_rw(&low, true))
			SKIP(return, "net.core.wmem_max fits the limit, and is read-only");
		lowered = true;
	}
	expect_child_exit(_metadata, bind_emsgsize_child, self->t.backend, 0);
	if (lowered)
		EXPECT_EQ(0, wmem_max_rw(&wmem_max, true));
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

/*
 * fork(): the child shares its parent's epoll set, io_uring and sockets,
 * so the loops it inherits are not its own. The outside review's forkdef:
 * ipcsock_loop_default() in the child returned the parent's loop, binding
 * failed with -EEXIST on io_uring, and on epoll the child worked in the
 * parent's epoll set. The child must get a default loop of its own.
 */
static void setenv_backend(enum ipcsock_backend b)
{
	setenv("IPCSOCK_BACKEND", real_backend(b) == IPCSOCK_BACKEND_EPOLL ?
	       "epoll" : "io_uring", 1);
}

static bool payload_is(const struct ipcsock_payload *p, const char *s)
{
	return p->len == strlen(s) && !memcmp(p->data, s, p->len);
}

/* Exit codes of fork_default_child(), one per check. */
enum {
	FDC_OK,
	FDC_NO_LOOP,
	FDC_PARENTS_LOOP,
	FDC_BACKEND,
	FDC_NOT_SAME,
	FDC_BIND,
	FDC_RECEIVE,
	FDC_SEND,
	FDC_INHERITED_USED,
	FDC_LEAK,
};

/* What the child of fork_child_gets_own_default_loop inherits. */
struct fork_default {
	struct ipcsock_test *t;
	struct ipcsock_loop *parents;
	struct ipcsock *keep;
	int keep_peer;
};

static int fork_default_child(const struct fork_default *fd_of,
			      enum ipcsock_backend backend, int fd)
{
	struct ipcsock_loop *parents = fd_of->parents;
	struct ipcsock_payload p;
	struct ipcsock_loop *loop;
	struct ipcsock *s;
	int fds = count_open_fds();

	loop = ipcsock_loop_default();
	if (!loop)
		return FDC_NO_LOOP;
	if (loop == parents)
		return FDC_PARENTS_LOOP;
	if (ipcsock_loop_backend(loop) != real_backend(backend))
		return FDC_BACKEND;
	s = ipcsock_new(NULL);
	if (ipcsock_loop_default() != loop || !s)
		return FDC_NOT_SAME;
	if (ipcsock_bind(s, fd))
		return FDC_BIND;
	if (receive_wait(loop, s, &p, WAIT_MS) || !payload_is(&p, "ping"))
		return FDC_RECEIVE;
	if (send_str(s, "pong"))
		return FDC_SEND;
	/* The parent's default loop is still there, and not ours. */
	if (ipcsock_loop_dispatch(parents, 0) != -ECHILD)
		return FDC_INHERITED_USED;
	ipcsock_free(s);		/* hands "pong" over, closes fd */
	ipcsock_loop_free(loop);
	if (count_open_fds() != fds - 1)
		return FDC_LEAK;
	/* What it inherited goes too, as copies: back to the test's start. */
	ipcsock_free(fd_of->keep);
	close(fd_of->keep_peer);
	ipcsock_loop_free(parents);
	ipcsock_loop_free(fd_of->t->loop);
	return count_open_fds() == fd_of->t->fd_base ? FDC_OK : FDC_LEAK;
}

TEST_F(lifecycle, fork_child_gets_own_default_loop)
{
	struct fork_default fd_of = { .t = &self->t };
	struct ipcsock *keep, *p;
	struct ipcsock_loop *def;
	struct ipcsock_payload m;
	int before, keep_peer, sv[2], status;
	char buf[64];
	pid_t pid;

	before = count_open_fds();
	setenv_backend(self->t.backend);
	def = ipcsock_loop_default();
	ASSERT_NE(NULL, def);
	/* A channel of the parent's on its default loop, before the fork. */
	keep = ipcsock_new(NULL);
	ASSERT_NE(NULL, keep);
	keep_peer = ipcsock_create(keep);
	ASSERT_LE(0, keep_peer);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
				sv));
	fd_of.parents = def;
	fd_of.keep = keep;
	fd_of.keep_peer = keep_peer;
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(sv[1]);
		_exit(fork_default_child(&fd_of, self->t.backend, sv[0]));
	}
	close(sv[0]);
	p = ipcsock_new(NULL);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, ipcsock_bind(p, sv[1]));
	ASSERT_EQ(0, send_str(p, "ping"));
	EXPECT_EQ(0, receive_wait(def, p, &m, WAIT_MS));
	EXPECT_TRUE(payload_is(&m, "pong"));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(FDC_OK, WEXITSTATUS(status));

	/* The parent's channel on its default loop works as before. */
	ASSERT_EQ(0, send_str(keep, "kept"));
	EXPECT_EQ(TEST_WIRE_HDR_LEN + 4,
		  raw_recv(keep_peer, buf, sizeof(buf), NULL, 0, NULL, NULL));
	ASSERT_EQ(TEST_WIRE_HDR_LEN + 4, raw_send_msg(keep_peer, "back", 4,
						      NULL, 0));
	EXPECT_EQ(0, receive_wait(def, keep, &m, WAIT_MS));
	EXPECT_TRUE(payload_is(&m, "back"));

	ipcsock_free(p);
	ipcsock_free(keep);
	close(keep_peer);
	ipcsock_loop_free(def);
	unsetenv("IPCSOCK_BACKEND");
	EXPECT_EQ(before, count_open_fds());
}

/* Exit codes of fork_inherited_child(), one per check. */
enum {
	FIC_OK,
	FIC_DISPATCH,
	FIC_LOOP_FD,
	FIC_FLUSH,
	FIC_NEW,
	FIC_CREATE,
	FIC_BIND,
	FIC_SEND,
	FIC_RECEIVE,
	FIC_HANDLE_CQE,
	FIC_CLOSE,
	FIC_LEAK,
};

static void fic_ready(struct ipcsock *sock, void *arg)
{
	(void)sock;
	(void)arg;
	_exit(100);	/* no callback of the parent's may run here */
}

static void fic_hangup(struct ipcsock *sock, int err, void *arg)
{
	(void)sock;
	(void)err;
	(void)arg;
	_exit(101);
}

/*
 * A child that touches the loop it inherited gets -ECHILD, and freeing
 * what it inherited only drops its own memory and descriptors: no epoll_ctl
 * on the parent's set, no submission to the parent's ring, no send.
 */
static int fork_inherited_child(struct ipcsock_loop *loop, struct ipcsock *a,
				struct ipcsock *b, struct ipcsock *u,
				int fd_base)
{
	struct io_uring_cqe cqe = { .user_data = IPCSOCK_USER_DATA_TAG << 48 };
	struct ipcsock_payload p = msg_of("child", 5, NULL, 0);
	int sv[2], ret;

	if (ipcsock_loop_dispatch(loop, 0) != -ECHILD)
		return FIC_DISPATCH;
	if (ipcsock_loop_fd(loop) != -ECHILD)
		return FIC_LOOP_FD;
	if (ipcsock_loop_flush(loop) != -ECHILD)
		return FIC_FLUSH;
	errno = 0;
	if (ipcsock_new(loop) || errno != ECHILD)
		return FIC_NEW;
	if (ipcsock_create(u) != -ECHILD)
		return FIC_CREATE;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return FIC_BIND;
	ret = ipcsock_bind(u, sv[0]);
	close(sv[0]);
	close(sv[1]);
	if (ret != -ECHILD)
		return FIC_BIND;
	if (ipcsock_send(a, &p) != -ECHILD ||
	    ipcsock_send_batch(a, &p, 1) != -ECHILD)
		return FIC_SEND;
	if (ipcsock_receive(b, &p) != -ECHILD)
		return FIC_RECEIVE;
	if (ipcsock_loop_handle_cqe(loop, &cqe))
		return FIC_HANDLE_CQE;
	ipcsock_set_ready_read(b, fic_ready, NULL);
	ipcsock_set_hangup(b, fic_hangup, NULL);
	ipcsock_close(a);
	if (ipcsock_is_bound(a))
		return FIC_CLOSE;
	ipcsock_free(a);
	ipcsock_free(b);
	ipcsock_free(u);
	ipcsock_loop_free(loop);
	if (count_open_fds() != fd_base) {
		dump_open_fds("child after freeing what it inherited");
		return FIC_LEAK;
	}
	return FIC_OK;
}

TEST_F(lifecycle, fork_child_cannot_use_inherited_loop)
{
	struct ipcsock_loop *loop = self->t.loop;
	struct ipcsock *a, *b, *u;
	struct ipcsock_payload m;
	uint32_t seq;
	struct rec rb;
	int lfd, status;
	pid_t pid;

	ctx_pair(_metadata, &self->t, loop, &a, loop, &b);
	u = ctx_sock(_metadata, &self->t, loop);
	lfd = ipcsock_loop_fd(loop);
	ASSERT_LE(0, lfd);
	/* Sent before the fork, not yet dispatched: the parent's to take. */
	seq = 0;
	m = msg_of(&seq, sizeof(seq), NULL, 0);
	ASSERT_EQ(0, ipcsock_send(a, &m));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(fork_inherited_child(loop, a, b, u, self->t.fd_base));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(FIC_OK, WEXITSTATUS(status));

	/* The parent's loop, epoll set or ring, and channel are intact. */
	rec_attach(&rb, b);
	rb.check_seq = true;
	EXPECT_TRUE(fd_wait_readable(lfd, WAIT_MS));
	for (seq = 1; seq < 8; seq++)
		ASSERT_EQ(0, ipcsock_send(a, &m));
	EXPECT_TRUE(dispatch_until(loop, rb.received == 8, WAIT_MS));
	EXPECT_EQ(0, rb.bad);
	EXPECT_EQ(0, rb.hangup);
	ASSERT_EQ(0, send_str(b, "back"));
	EXPECT_EQ(0, receive_wait(loop, a, &m, WAIT_MS));
	EXPECT_TRUE(payload_is(&m, "back"));
	EXPECT_TRUE(ipcsock_is_bound(a));
	EXPECT_EQ(-EAGAIN, ipcsock_receive(a, &m));
}

/*
 * A thread with a default loop forks; in the child that thread, the only
 * one, ends, and its default loop's TLS destructor frees the inherited
 * loop: that must not close, cancel or reap anything of the parent's.
 */
struct fork_thread {
	enum ipcsock_backend backend;
	struct ipcsock_loop *loop;
	int status;
	int received;
	bool bound;
};

/*
 * What the child's only thread leaves allocated when it ends (the test's
 * loop and the handles; the parent frees its own), kept reachable so that
 * LeakSanitizer, which checks the child at its exit, takes it for no leak
 * (not static: stores to a static that nothing reads would be dropped).
 */
struct {
	struct ipcsock_loop *test_loop;
	struct ipcsock *a, *b;
} fork_thread_kept;

static void *fork_thread_main(void *arg)
{
	struct fork_thread *ft = arg;
	struct ipcsock *a, *b;
	struct ipcsock_payload m;
	int fd, i;
	pid_t pid;

	ft->loop = ipcsock_loop_default();
	a = ipcsock_new(NULL);
	b = ipcsock_new(NULL);
	fd = a && b ? ipcsock_create(a) : -1;
	if (fd < 0 || ipcsock_bind(b, fd))
		return NULL;
	ft->bound = true;
	fork_thread_kept.a = a;
	fork_thread_kept.b = b;
	send_str(a, "before");
	pid = fork();
	if (!pid)
		return NULL;	/* the child's thread ends: TLS destructors */
	if (pid < 0 || waitpid(pid, &ft->status, 0) != pid)
		ft->status = -1;
	for (i = 0; i < 3; i++) {
		if (i)
			send_str(a, "after");
		if (!receive_wait(ft->loop, b, &m, WAIT_MS))
			ft->received++;
	}
	ipcsock_free(a);
	ipcsock_free(b);
	return NULL;
}

TEST_F(lifecycle, fork_in_thread_child_exit)
{
	struct fork_thread ft = { .backend = self->t.backend };
	int before = count_open_fds();
	pthread_t th;

	/*
	 * The child's only thread ends without freeing what the test and
	 * glibc made for it (its TLS block): valgrind, which checks the
	 * child at exit, would take that for a leak.
	 */
	if (under_valgrind())
		SKIP(return, "valgrind checks the child for leaks at its exit");
	fork_thread_kept.test_loop = self->t.loop;
	setenv_backend(self->t.backend);
	ASSERT_EQ(0, pthread_create(&th, NULL, fork_thread_main, &ft));
	ASSERT_EQ(0, pthread_join(th, NULL));
	unsetenv("IPCSOCK_BACKEND");
	ASSERT_TRUE(ft.bound);
	EXPECT_TRUE(WIFEXITED(ft.status) && !WEXITSTATUS(ft.status));
	EXPECT_EQ(3, ft.received);
	/* The thread's default loop went with the thread. */
	EXPECT_EQ(before, count_open_fds());
}

/*
 * The same on a shared ring: the child inherits the application's ring
 * with the loop in it. Nothing the child does with the loop may submit
 * to or reap from that ring, which is the parent's too.
 */
TEST(fork_shared_loop)
{
	struct ipcsock_payload m = msg_of("child", 5, NULL, 0);
	static struct uid_app app;
	int fds = count_open_fds(), status;
	uint64_t deadline;
	uint32_t seq;
	pid_t pid;

	if (!uring_available())
		SKIP(return, "io_uring is not available to this process");
	ASSERT_EQ(0, io_uring_queue_init(64, &app.ring, 0));
	app.l1 = ipcsock_loop_new_shared(&app.ring, NULL);
	ASSERT_NE(NULL, app.l1);
	uid_pair(_metadata, app.l1, &app.a1, &app.b1, &app.r1);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (ipcsock_loop_dispatch(app.l1, 0) != -ECHILD ||
		    ipcsock_send(app.a1, &m) != -ECHILD ||
		    ipcsock_loop_flush(app.l1) != -ECHILD)
			_exit(1);
		ipcsock_free(app.a1);
		ipcsock_free(app.b1);
		ipcsock_loop_free(app.l1);
		io_uring_queue_exit(&app.ring);
		_exit(count_open_fds() == fds ? 0 : 2);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));

	for (seq = 0; seq < UID_MSGS; seq++) {
		m = msg_of(&seq, sizeof(seq), NULL, 0);
		ASSERT_EQ(0, ipcsock_send(app.a1, &m));
	}
	deadline = now_ms() + WAIT_MS;
	while (app.r1.received < UID_MSGS && now_ms() < deadline)
		uid_turn(&app);
	EXPECT_EQ(UID_MSGS, app.r1.received);
	EXPECT_EQ(0, app.r1.bad);
	EXPECT_EQ(0, app.r1.hangup);
	EXPECT_EQ(0, app.dropped);
	ipcsock_free(app.a1);
	ipcsock_free(app.b1);
	for (seq = 0; seq < 100 && !ipcsock_loop_idle(app.l1); seq++)
		uid_turn(&app);
	EXPECT_TRUE(ipcsock_loop_idle(app.l1));
	ipcsock_loop_free(app.l1);
	io_uring_queue_exit(&app.ring);
	EXPECT_EQ(fds, count_open_fds());
}

/*
 * A ready_read callback forks, and the child returns into dispatch: it
 * must run no other callback there, submit nothing and free nothing of
 * the parent's, and dispatch tells it -ECHILD.
 */
struct fork_cb {
	struct rec *other;
	int other_at_fork;
	int calls;
	pid_t pid;
};

static void fork_in_ready_read(struct ipcsock *sock, void *arg)
{
	struct fork_cb *f = arg;
	struct ipcsock_payload p;

	while (!ipcsock_receive(sock, &p))
		f->calls++;
	if (f->pid)
		return;
	f->other_at_fork = f->other->ready;
	f->pid = fork();
}

TEST_F(lifecycle, fork_in_callback)
{
	struct ipcsock_loop *loop = self->t.loop;
	struct ipcsock *a, *b, *c, *d;
	pid_t parent = getpid();
	struct fork_cb f = { 0 };
	uint64_t deadline;
	struct rec rd;
	int ret, status;

	ctx_pair(_metadata, &self->t, loop, &a, loop, &b);
	ctx_pair(_metadata, &self->t, loop, &c, loop, &d);
	rec_attach(&rd, d);
	f.other = &rd;
	ipcsock_set_ready_read(b, fork_in_ready_read, &f);
	ASSERT_EQ(0, send_str(a, "b1"));
	ASSERT_EQ(0, send_str(c, "d1"));
	ASSERT_EQ(0, send_str(c, "d2"));
	deadline = now_ms() + WAIT_MS;
	while (!f.pid && now_ms() < deadline) {
		ret = ipcsock_loop_dispatch(loop, 5);
		if (getpid() == parent)
			continue;
		if (ret != -ECHILD || rd.ready != f.other_at_fork)
			_exit(1);
		/* d's channel may still be due: the lists must hold. */
		ipcsock_free(d);
		ipcsock_free(c);
		ipcsock_free(b);
		ipcsock_free(a);
		ipcsock_loop_free(loop);
		_exit(count_open_fds() == self->t.fd_base ? 0 : 2);
	}
	ASSERT_LT(0, f.pid);
	ASSERT_EQ(f.pid, waitpid(f.pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));

	EXPECT_TRUE(dispatch_until(loop, rd.received == 2, WAIT_MS));
	ASSERT_EQ(0, send_str(a, "b2"));
	ASSERT_EQ(0, send_str(c, "d3"));
	EXPECT_TRUE(dispatch_until(loop, f.calls == 2 && rd.received == 3,
				   WAIT_MS));
	EXPECT_EQ(0, rd.hangup);
	EXPECT_EQ(0, rd.bad);
}

TEST_HARNESS_MAIN
