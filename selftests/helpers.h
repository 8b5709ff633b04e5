/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers of the libipcsock selftests: fd counting, bounded
 * dispatch loops, memfd helpers, a raw SOCK_SEQPACKET peer speaking the
 * wire format, and the common per-test context (loop, sockets, fd baseline)
 * that every fixture embeds so that teardown frees everything and checks
 * that no descriptor leaked.
 *
 * Include this first: it needs _GNU_SOURCE before any system header.
 */
#ifndef IPCSOCK_SELFTEST_HELPERS_H
#define IPCSOCK_SELFTEST_HELPERS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "ipcsock.h"

/*
 * The kselftest harness is written for the kernel's selftest flags, not
 * for -Wextra: its macros compare mixed signedness, its signal handler has
 * an unused parameter, and setjmp() around every test makes GCC warn about
 * clobbered locals. Silence exactly those, for the whole test program.
 */
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#ifndef __clang__
#pragma GCC diagnostic ignored "-Wclobbered"
#endif
#include "kselftest_harness.h"

/* Default bound for every wait in the tests. */
#define WAIT_MS		5000

/* The wire format (see the semantics; one datagram per message). */
struct test_wire_hdr {
	uint32_t len;
	uint16_t nr_fds;
	uint8_t version;
	uint8_t flags;
};

#define TEST_WIRE_VERSION	1
#define TEST_WIRE_HDR_LEN	sizeof(struct test_wire_hdr)

static inline uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Raise the soft RLIMIT_NOFILE towards the hard one until @need fds can be
 * open; false when the hard limit is lower (a test then skips: 1024 is a
 * common default, and the library rightly fails with EMFILE there).
 */
static inline bool nofile_at_least(rlim_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return false;
	if (rl.rlim_cur >= need)
		return true;
	if (rl.rlim_max < need)
		return false;
	rl.rlim_cur = need;
	return !setrlimit(RLIMIT_NOFILE, &rl);
}

/*
 * Running under valgrind, which emulates RLIMIT_NOFILE for the calls it
 * sees (the kernel never sees the limit) and holds signals during
 * io_uring_enter: tests that depend on either skip.
 */
static inline bool under_valgrind(void)
{
	const char *preload = getenv("LD_PRELOAD");

	return preload && strstr(preload, "vgpreload");
}

/* Number of open descriptors of this process. */
static inline int count_open_fds(void)
{
	struct dirent *de;
	DIR *dir;
	int n = 0;

	dir = opendir("/proc/self/fd");
	if (!dir)
		return -errno;
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.')
			n++;
	closedir(dir);
	return n - 1;	/* the directory's own descriptor */
}

/* Print every open descriptor and what it is, to explain a leak. */
static inline void dump_open_fds(const char *why)
{
	char path[64], target[256];
	struct dirent *de;
	DIR *dir;
	ssize_t n;

	dir = opendir("/proc/self/fd");
	if (!dir)
		return;
	fprintf(stderr, "# open fds (%s):\n", why);
	while ((de = readdir(dir))) {
		int fd = atoi(de->d_name);

		if (de->d_name[0] == '.' || fd == dirfd(dir))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, target, sizeof(target) - 1);
		target[n < 0 ? 0 : n] = '\0';
		fprintf(stderr, "#   %s -> %s\n", de->d_name, target);
	}
	closedir(dir);
}

static inline bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static inline bool fd_is_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	return fl >= 0 && (fl & FD_CLOEXEC);
}

static inline int fd_clear_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0)
		return -errno;
	return fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC) < 0 ? -errno : 0;
}

/* Do two descriptors refer to the same file (not merely equal content)? */
static inline bool same_file(int a, int b)
{
	struct stat sa, sb;

	if (fstat(a, &sa) || fstat(b, &sb))
		return false;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* A memfd holding @content, file offset at 0. */
static inline int memfd_with(const char *name, const char *content)
{
	size_t len = content ? strlen(content) : 0;
	int fd;

	fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (len && write(fd, content, len) != (ssize_t)len) {
		close(fd);
		return -EIO;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* Whole content of a file from offset 0, NUL-terminated; -errno or length. */
static inline ssize_t fd_content(int fd, char *buf, size_t cap)
{
	ssize_t n = pread(fd, buf, cap - 1, 0);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return n;
}

static inline off_t fd_offset(int fd)
{
	return lseek(fd, 0, SEEK_CUR);
}

static inline void close_fds_array(const int *fds, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Largest open descriptor number below @below, or -1. */
static inline int max_open_fd(int below)
{
	struct dirent *de;
	int max = -1, fd;
	DIR *dir;

	dir = opendir("/proc/self/fd");
	if (!dir)
		return -1;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		fd = atoi(de->d_name);
		if (fd != dirfd(dir) && fd < below && fd > max)
			max = fd;
	}
	closedir(dir);
	return max;
}

/*
 * Descriptor snapshot: which fd numbers below FD_SNAP_MAX are open. Used to
 * find the descriptors the library opened between two points.
 */
#define FD_SNAP_MAX	4096

struct fd_snap {
	unsigned char open[FD_SNAP_MAX];
};

static inline void fd_snap_take(struct fd_snap *s)
{
	int fd;

	for (fd = 0; fd < FD_SNAP_MAX; fd++)
		s->open[fd] = fd_is_open(fd);
}

/*
 * A third test variant: the io_uring backend with every send on the ring
 * (IPCSOCK_LOOP_RING_SENDS), so that the SENDMSG chain path runs even
 * when the socket has room and the direct path would take the message.
 */
#define BACKEND_URING_RING_SENDS	((enum ipcsock_backend)0x100)

static inline enum ipcsock_backend real_backend(enum ipcsock_backend b)
{
	return b == BACKEND_URING_RING_SENDS ? IPCSOCK_BACKEND_URING : b;
}

static inline const char *backend_name(enum ipcsock_backend b)
{
	if (b == BACKEND_URING_RING_SENDS)
		return "io_uring (ring sends)";
	switch (b) {
	case IPCSOCK_BACKEND_AUTO:
		return "auto";
	case IPCSOCK_BACKEND_URING:
		return "io_uring";
	case IPCSOCK_BACKEND_EPOLL:
		return "epoll";
	}
	return "?";
}

/* Can this process set up an io_uring at all (containers may forbid it)? */
static inline bool uring_available(void)
{
	struct io_uring ring;

	if (io_uring_queue_init(2, &ring, 0))
		return false;
	io_uring_queue_exit(&ring);
	return true;
}

/*
 * Dispatch @loop until @cond holds or @timeout_ms passed; evaluates to the
 * final value of @cond. Every wait is bounded.
 */
#define dispatch_until(loop, cond, timeout_ms) ({			\
	uint64_t __deadline = now_ms() + (timeout_ms);			\
	bool __ok;							\
									\
	while (!(__ok = (cond)) && now_ms() < __deadline)		\
		ipcsock_loop_dispatch((loop), 5);			\
	__ok;								\
})

/* The same over two loops (both ends of a channel on different loops). */
#define dispatch2_until(l1, l2, cond, timeout_ms) ({			\
	uint64_t __deadline = now_ms() + (timeout_ms);			\
	bool __ok;							\
									\
	while (!(__ok = (cond)) && now_ms() < __deadline) {		\
		ipcsock_loop_dispatch((l1), 1);				\
		ipcsock_loop_dispatch((l2), 1);				\
	}								\
	__ok;								\
})

/* Dispatch for a while without a condition (to let stray callbacks show). */
static inline int dispatch_for(struct ipcsock_loop *loop, int ms)
{
	uint64_t deadline = now_ms() + ms;
	int ret, n = 0;

	while (now_ms() < deadline) {
		ret = ipcsock_loop_dispatch(loop, 5);
		if (ret > 0)
			n += ret;
	}
	return n;
}

/*
 * Receive one message, dispatching the loop until one is there or the time
 * is up. Returns what ipcsock_receive() last returned.
 */
static inline int receive_wait(struct ipcsock_loop *loop, struct ipcsock *sock,
			       struct ipcsock_payload *p, int timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;
	int ret;

	for (;;) {
		memset(p, 0, sizeof(*p));
		ret = ipcsock_receive(sock, p);
		if (ret != -EAGAIN || now_ms() >= deadline)
			return ret;
		ipcsock_loop_dispatch(loop, 5);
	}
}

/* A message built on the stack for ipcsock_send(). */
static inline struct ipcsock_payload msg_of(const void *data, size_t len,
					    int *fds, unsigned int nr_fds)
{
	struct ipcsock_payload p = {
		.data = (void *)data,
		.len = len,
		.fds = fds,
		.nr_fds = nr_fds,
	};

	return p;
}

static inline int send_str(struct ipcsock *sock, const char *s)
{
	struct ipcsock_payload p = msg_of(s, strlen(s), NULL, 0);

	return ipcsock_send(sock, &p);
}

/*
 * Raw peer: send one datagram with an arbitrary header (or none when @hdr
 * is NULL), payload and fds. Never blocks, never raises SIGPIPE. Returns
 * bytes sent or -errno.
 */
static inline ssize_t raw_send_hdr(int fd, const struct test_wire_hdr *hdr,
				   const void *data, size_t len,
				   const int *fds, unsigned int nr_fds)
{
	static union {
		char buf[CMSG_SPACE(sizeof(int) * IPCSOCK_MAX_FDS)];
		struct cmsghdr align;
	} ctrl;
	struct msghdr msg = { 0 };
	struct iovec iov[2];
	struct cmsghdr *cmsg;
	int niov = 0;
	ssize_t n;

	if (hdr) {
		iov[niov].iov_base = (void *)hdr;
		iov[niov++].iov_len = sizeof(*hdr);
	}
	if (len) {
		iov[niov].iov_base = (void *)data;
		iov[niov++].iov_len = len;
	}
	msg.msg_iov = iov;
	msg.msg_iovlen = niov;
	if (nr_fds) {
		memset(&ctrl, 0, sizeof(ctrl));
		msg.msg_control = ctrl.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nr_fds);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nr_fds);
		memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nr_fds);
	}
	n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	return n < 0 ? -errno : n;
}

/* Raw peer: send one well-formed message. */
static inline ssize_t raw_send_msg(int fd, const void *data, size_t len,
				   const int *fds, unsigned int nr_fds)
{
	struct test_wire_hdr hdr = {
		.len = len,
		.nr_fds = nr_fds,
		.version = TEST_WIRE_VERSION,
		.flags = 0,
	};

	return raw_send_hdr(fd, &hdr, data, len, fds, nr_fds);
}

/*
 * Raw peer: receive one datagram without waiting. The header (if any) and
 * payload land in @buf; fds (MSG_CMSG_CLOEXEC) in @fds, up to @max_fds, the
 * count in *@nr_fds. Returns bytes, 0 at EOF, or -errno (-EAGAIN: none).
 */
static inline ssize_t raw_recv(int fd, void *buf, size_t cap, int *fds,
			       unsigned int max_fds, unsigned int *nr_fds,
			       int *msg_flags)
{
	static union {
		char buf[CMSG_SPACE(sizeof(int) * IPCSOCK_MAX_FDS)];
		struct cmsghdr align;
	} ctrl;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctrl.buf,
		.msg_controllen = sizeof(ctrl.buf),
	};
	struct cmsghdr *cmsg;
	unsigned int n = 0, i, cnt;
	ssize_t ret;

	if (nr_fds)
		*nr_fds = 0;
	if (msg_flags)
		*msg_flags = 0;
	ret = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (ret < 0)
		return -errno;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < cnt; i++) {
			int rfd;

			memcpy(&rfd, CMSG_DATA(cmsg) + i * sizeof(int),
			       sizeof(int));
			if (n < max_fds)
				fds[n++] = rfd;
			else
				close(rfd);
		}
	}
	if (nr_fds)
		*nr_fds = n;
	if (msg_flags)
		*msg_flags = msg.msg_flags;
	return ret;
}

/* Wait up to @timeout_ms for POLLIN on @fd; true if readable. */
static inline bool fd_wait_readable(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, timeout_ms) == 1 && (pfd.revents & POLLIN);
}

/* Wait for POLLIN on a raw @fd while dispatching @loop; true if readable. */
static inline bool raw_wait_readable(struct ipcsock_loop *loop, int fd,
				     int timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;

	while (!fd_wait_readable(fd, 0)) {
		if (now_ms() >= deadline)
			return false;
		ipcsock_loop_dispatch(loop, 2);
	}
	return true;
}

/* Loop with explicit options; NULL and errno on failure. */
static inline struct ipcsock_loop *loop_new(enum ipcsock_backend backend,
					    unsigned int max_msg_size,
					    unsigned int send_queue_len,
					    unsigned int recv_buffers)
{
	IPCSOCK_LOOP_OPTS(opts,
		.backend = real_backend(backend),
		.max_msg_size = max_msg_size,
		.send_queue_len = send_queue_len,
		.recv_buffers = recv_buffers,
		.flags = backend == BACKEND_URING_RING_SENDS ?
			 IPCSOCK_LOOP_RING_SENDS : 0,
	);

	return ipcsock_loop_new(&opts);
}

/*
 * Common per-test context. Every fixture embeds one; the setup creates the
 * loop on the variant's backend and records the fd baseline, the teardown
 * frees what is left (sockets, raw fds, extra loops, children) and checks
 * that the descriptor count is back to the baseline.
 */
#define CTX_SOCKS	4
#define CTX_LOOPS	2
#define CTX_FDS		4

struct ipcsock_test {
	enum ipcsock_backend backend;
	int fd_base;		/* open fds before the loop existed */
	int fd_loop;		/* open fds once the loop exists */
	struct ipcsock_loop *loop;
	/* Extra loops (other options), freed after the sockets. */
	struct ipcsock_loop *loops[CTX_LOOPS];
	/* Sockets freed by teardown; set to NULL when a test frees one. */
	struct ipcsock *socks[CTX_SOCKS];
	/* Raw descriptors closed by teardown; -1 when unused. */
	int fds[CTX_FDS];
	/* A child process killed and reaped by teardown; 0 when none. */
	pid_t child;
};

static inline void ctx_setup(struct __test_metadata *_metadata,
			     struct ipcsock_test *t,
			     enum ipcsock_backend backend)
{
	int i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < CTX_FDS; i++)
		t->fds[i] = -1;
	t->backend = backend;

	/* A library that raises SIGPIPE kills the test: prove it does not. */
	signal(SIGPIPE, SIG_DFL);

	if (real_backend(backend) == IPCSOCK_BACKEND_URING &&
	    !uring_available())
		SKIP(return, "io_uring is not available to this process");

	t->fd_base = count_open_fds();
	ASSERT_LT(0, t->fd_base);

	t->loop = loop_new(backend, 0, 0, 0);
	ASSERT_NE(NULL, t->loop) {
		TH_LOG("ipcsock_loop_new(%s): %s", backend_name(backend),
		       strerror(errno));
	}
	ASSERT_EQ(real_backend(backend), ipcsock_loop_backend(t->loop));
	t->fd_loop = count_open_fds();
}

static inline void ctx_teardown(struct __test_metadata *_metadata,
				struct ipcsock_test *t)
{
	int i, now, status;

	for (i = 0; i < CTX_SOCKS; i++) {
		if (t->socks[i])
			ipcsock_free(t->socks[i]);
		t->socks[i] = NULL;
	}
	for (i = 0; i < CTX_FDS; i++) {
		if (t->fds[i] >= 0)
			close(t->fds[i]);
		t->fds[i] = -1;
	}
	for (i = 0; i < CTX_LOOPS; i++) {
		if (t->loops[i])
			ipcsock_loop_free(t->loops[i]);
		t->loops[i] = NULL;
	}
	if (t->loop)
		ipcsock_loop_free(t->loop);
	t->loop = NULL;
	if (t->child > 0) {
		kill(t->child, SIGKILL);
		waitpid(t->child, &status, 0);
		t->child = 0;
	}
	if (!t->fd_base)
		return;	/* skipped before the baseline was taken */

	now = count_open_fds();
	if (now != t->fd_base) {
		TH_LOG("descriptor leak: %d open at setup, %d at teardown",
		       t->fd_base, now);
		dump_open_fds("leak check at teardown");
	}
	EXPECT_EQ(t->fd_base, now);
}

/* A new socket on @loop, remembered in the context for teardown. */
static inline struct ipcsock *ctx_sock(struct __test_metadata *_metadata,
				       struct ipcsock_test *t,
				       struct ipcsock_loop *loop)
{
	struct ipcsock *sock;
	int i;

	sock = ipcsock_new(loop);
	ASSERT_NE(NULL, sock);
	for (i = 0; i < CTX_SOCKS; i++) {
		if (!t->socks[i]) {
			t->socks[i] = sock;
			return sock;
		}
	}
	ipcsock_free(sock);
	ASSERT_TRUE(false) TH_LOG("too many sockets in one test");
	return NULL;
}

/* Forget a socket the test freed itself. */
static inline void ctx_forget_sock(struct ipcsock_test *t,
				   struct ipcsock *sock)
{
	int i;

	for (i = 0; i < CTX_SOCKS; i++)
		if (t->socks[i] == sock)
			t->socks[i] = NULL;
}

/* Remember a raw fd for teardown; returns its slot. */
static inline int ctx_fd(struct __test_metadata *_metadata,
			 struct ipcsock_test *t, int fd)
{
	int i;

	ASSERT_LE(0, fd);
	for (i = 0; i < CTX_FDS; i++) {
		if (t->fds[i] < 0) {
			t->fds[i] = fd;
			return i;
		}
	}
	close(fd);
	ASSERT_TRUE(false) TH_LOG("too many raw fds in one test");
	return -1;
}

/* Close a raw fd the context holds. */
static inline void ctx_close_fd(struct ipcsock_test *t, int fd)
{
	int i;

	for (i = 0; i < CTX_FDS; i++) {
		if (t->fds[i] == fd) {
			close(fd);
			t->fds[i] = -1;
			return;
		}
	}
	close(fd);
}

/* An extra loop with other options, freed by teardown. */
static inline struct ipcsock_loop *ctx_loop(struct __test_metadata *_metadata,
					    struct ipcsock_test *t,
					    unsigned int max_msg_size,
					    unsigned int send_queue_len,
					    unsigned int recv_buffers)
{
	struct ipcsock_loop *loop;
	int i;

	loop = loop_new(t->backend, max_msg_size, send_queue_len,
			recv_buffers);
	ASSERT_NE(NULL, loop) {
		TH_LOG("ipcsock_loop_new(%s): %s", backend_name(t->backend),
		       strerror(errno));
	}
	ASSERT_EQ(real_backend(t->backend), ipcsock_loop_backend(loop));
	for (i = 0; i < CTX_LOOPS; i++) {
		if (!t->loops[i]) {
			t->loops[i] = loop;
			return loop;
		}
	}
	ipcsock_loop_free(loop);
	ASSERT_TRUE(false) TH_LOG("too many loops in one test");
	return NULL;
}

/*
 * A connected pair: *a created (local end), *b bound to a's remote end.
 * The two may live on different loops.
 */
static inline void ctx_pair(struct __test_metadata *_metadata,
			    struct ipcsock_test *t,
			    struct ipcsock_loop *la, struct ipcsock **a,
			    struct ipcsock_loop *lb, struct ipcsock **b)
{
	int remote, ret;

	*a = ctx_sock(_metadata, t, la);
	*b = ctx_sock(_metadata, t, lb);
	remote = ipcsock_create(*a);
	ASSERT_LE(0, remote) TH_LOG("create: %s", strerror(-remote));
	ret = ipcsock_bind(*b, remote);
	if (ret)
		close(remote);
	ASSERT_EQ(0, ret) TH_LOG("bind: %s", strerror(-ret));
	ASSERT_TRUE(ipcsock_is_bound(*a));
	ASSERT_TRUE(ipcsock_is_bound(*b));
}

/* A library socket *a whose peer is a raw SOCK_SEQPACKET fd, returned. */
static inline int ctx_raw_pair(struct __test_metadata *_metadata,
			       struct ipcsock_test *t,
			       struct ipcsock_loop *loop, struct ipcsock **a)
{
	int remote;

	*a = ctx_sock(_metadata, t, loop);
	remote = ipcsock_create(*a);
	ASSERT_LE(0, remote) TH_LOG("create: %s", strerror(-remote));
	ctx_fd(_metadata, t, remote);
	return remote;
}

/*
 * A callback recorder: counts calls, checks the socket and argument it is
 * given, and (optionally) receives messages, up to @per_call per
 * ready_read call (0: all pending). Received messages are checked against
 * a sequence number in their first 4 bytes when @check_seq is set; their
 * fds are counted and closed.
 */
struct rec {
	struct ipcsock *sock;
	int ready;		/* ready_read calls */
	int hangup;		/* hangup calls */
	int hangup_err;
	int received;		/* messages received in callbacks */
	int received_at_hangup;	/* messages received when hangup ran */
	int fds;		/* fds received (and closed) */
	int bad;		/* wrong socket/arg, bad fds, bad order */
	int recv_err;		/* unexpected ipcsock_receive() error */
	unsigned int per_call;	/* 0: receive all in one call */
	bool no_receive;	/* ready_read receives nothing */
	bool check_seq;
	bool receive_in_hangup;	/* drain in the hangup callback */
	uint32_t next_seq;
	bool close_in_hangup;	/* ipcsock_close() from hangup */
};

static inline int rec_drain(struct rec *r, struct ipcsock *sock,
			    unsigned int max)
{
	struct ipcsock_payload p;
	unsigned int n = 0, i;
	uint32_t seq;
	int ret;

	while (!max || n < max) {
		memset(&p, 0, sizeof(p));
		ret = ipcsock_receive(sock, &p);
		if (ret == -EAGAIN)
			break;
		if (ret < 0) {
			r->recv_err = ret;
			break;
		}
		n++;
		r->received++;
		for (i = 0; i < p.nr_fds; i++) {
			if (!fd_is_cloexec(p.fds[i]))
				r->bad++;
			close(p.fds[i]);
			r->fds++;
		}
		if (r->check_seq) {
			if (p.len < sizeof(seq)) {
				r->bad++;
				continue;
			}
			memcpy(&seq, p.data, sizeof(seq));
			if (seq != r->next_seq)
				r->bad++;
			r->next_seq = seq + 1;
		}
	}
	return n;
}

static inline void rec_ready_read(struct ipcsock *sock, void *arg)
{
	struct rec *r = arg;

	r->ready++;
	if (sock != r->sock)
		r->bad++;
	if (r->no_receive)
		return;
	rec_drain(r, sock, r->per_call);
}

static inline void rec_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct rec *r = arg;

	r->hangup++;
	r->hangup_err = err;
	if (sock != r->sock)
		r->bad++;
	if (r->receive_in_hangup)
		rec_drain(r, sock, 0);
	r->received_at_hangup = r->received;
	if (r->close_in_hangup)
		ipcsock_close(sock);
}

static inline void rec_attach(struct rec *r, struct ipcsock *sock)
{
	memset(r, 0, sizeof(*r));
	r->sock = sock;
	ipcsock_set_ready_read(sock, rec_ready_read, r);
	ipcsock_set_hangup(sock, rec_hangup, r);
}

/*
 * Helpers that take a fixture's data spell FIXTURE_DATA(name) out as
 * struct _test_data_<name>: checkpatch reads "FIXTURE_DATA(name) *self"
 * as a multiplication.
 */

#endif /* IPCSOCK_SELFTEST_HELPERS_H */
