// SPDX-License-Identifier: GPL-2.0
/*
 * The selftests' shared helpers, built once and linked into every selftest
 * program: fd counting, bounded dispatch loops, memfd helpers, a raw
 * SOCK_SEQPACKET peer speaking the wire format, the per-test context's
 * bookkeeping and the callback recorder. helpers.h declares them.
 *
 * Nothing here uses the kselftest harness: its header defines global
 * symbols, so only the test programs themselves include it (selftest.h),
 * and what asserts stays there.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <liburing.h>

#include "helpers.h"

uint64_t now_ms(void)
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
bool nofile_at_least(rlim_t need)
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
bool under_valgrind(void)
{
	const char *preload = getenv("LD_PRELOAD");

	return preload && strstr(preload, "vgpreload");
}

/*
 * Whether pidfd_open(2) works here: valgrind 3.19 (Debian 12) does not know
 * the system call and fails it with ENOSYS.
 */
bool pidfd_usable(void)
{
	int fd = syscall(SYS_pidfd_open, getpid(), 0);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* Number of open descriptors of this process. */
int count_open_fds(void)
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
void dump_open_fds(const char *why)
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

bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

bool fd_is_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	return fl >= 0 && (fl & FD_CLOEXEC);
}

int fd_clear_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0)
		return -errno;
	return fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC) < 0 ? -errno : 0;
}

/* Do two descriptors refer to the same file (not merely equal content)? */
bool same_file(int a, int b)
{
	struct stat sa, sb;

	if (fstat(a, &sa) || fstat(b, &sb))
		return false;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* A memfd holding @content, file offset at 0. */
int memfd_with(const char *name, const char *content)
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
ssize_t fd_content(int fd, char *buf, size_t cap)
{
	ssize_t n = pread(fd, buf, cap - 1, 0);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return n;
}

off_t fd_offset(int fd)
{
	return lseek(fd, 0, SEEK_CUR);
}

void close_fds_array(const int *fds, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Largest open descriptor number below @below, or -1. */
int max_open_fd(int below)
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

void fd_snap_take(struct fd_snap *s)
{
	int fd;

	for (fd = 0; fd < FD_SNAP_MAX; fd++)
		s->open[fd] = fd_is_open(fd);
}

enum ipcsock_backend real_backend(enum ipcsock_backend b)
{
	return b == BACKEND_URING_RING_SENDS ? IPCSOCK_BACKEND_URING : b;
}

const char *backend_name(enum ipcsock_backend b)
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
bool uring_available(void)
{
	struct io_uring ring;

	if (io_uring_queue_init(2, &ring, 0))
		return false;
	io_uring_queue_exit(&ring);
	return true;
}

/*
 * One turn of @loop: a loop on the shared @ring (NULL: its own ring or
 * epoll) needs the application's wait and hand-over of every CQE first.
 */
void loop_turn(struct ipcsock_loop *loop, struct io_uring *ring, int ms)
{
	struct __kernel_timespec ts = { .tv_nsec = ms * 1000000L };
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	if (!ring) {
		ipcsock_loop_dispatch(loop, ms);
		return;
	}
	io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);
	io_uring_for_each_cqe(ring, head, cqe) {
		ipcsock_loop_handle_cqe(loop, cqe);
		n++;
	}
	io_uring_cq_advance(ring, n);
	ipcsock_loop_dispatch(loop, 0);
}

#define SHARED_LOOPS	(CTX_LOOPS + 1)

static struct {
	struct ipcsock_loop *loop;
	struct io_uring *ring;
} shared_loops[SHARED_LOOPS];

/* Remember that @loop lives in @ring; -ENOSPC when full. */
int shared_loop_add(struct ipcsock_loop *loop, struct io_uring *ring)
{
	int i;

	for (i = 0; i < SHARED_LOOPS; i++) {
		if (!shared_loops[i].loop) {
			shared_loops[i].loop = loop;
			shared_loops[i].ring = ring;
			return 0;
		}
	}
	return -ENOSPC;
}

void shared_loop_del(struct ipcsock_loop *loop)
{
	int i;

	for (i = 0; i < SHARED_LOOPS; i++)
		if (shared_loops[i].loop == loop)
			shared_loops[i].loop = NULL;
}

struct io_uring *shared_ring_of(struct ipcsock_loop *loop)
{
	int i;

	for (i = 0; loop && i < SHARED_LOOPS; i++)
		if (shared_loops[i].loop == loop)
			return shared_loops[i].ring;
	return NULL;
}

/*
 * Wait up to @ms on @ring, then hand every completion to the loop it
 * belongs to: the application's part when several loops share a ring.
 */
static void ring_reap(struct io_uring *ring, int ms)
{
	struct __kernel_timespec ts = { .tv_nsec = ms * 1000000L };
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	int i;

	io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);
	io_uring_for_each_cqe(ring, head, cqe) {
		for (i = 0; i < SHARED_LOOPS; i++)
			if (shared_loops[i].ring == ring &&
			    shared_loops[i].loop &&
			    ipcsock_loop_handle_cqe(shared_loops[i].loop, cqe))
				break;
		n++;
	}
	io_uring_cq_advance(ring, n);
}

/*
 * One turn of @loop, waiting up to @ms: ipcsock_loop_dispatch() alone, or
 * for a loop in a ring of the context's, the application's wait and
 * hand-over first (the other loops of that ring get their completions but
 * run no callbacks, as on rings of their own). Returns what dispatch did.
 */
int loop_pump(struct ipcsock_loop *loop, int ms)
{
	struct io_uring *ring = shared_ring_of(loop);

	if (ring)
		ring_reap(ring, ms);
	return ipcsock_loop_dispatch(loop, ring ? 0 : ms);
}

/* Dispatch for a while without a condition (to let stray callbacks show). */
int dispatch_for(struct ipcsock_loop *loop, int ms)
{
	uint64_t deadline = now_ms() + ms;
	int ret, n = 0;

	while (now_ms() < deadline) {
		ret = loop_pump(loop, 5);
		if (ret > 0)
			n += ret;
	}
	return n;
}

/*
 * Receive one message, dispatching the loop until one is there or the time
 * is up. Returns what ipcsock_receive() last returned.
 */
int receive_wait(struct ipcsock_loop *loop, struct ipcsock *sock,
		 struct ipcsock_payload *p, int timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;
	int ret;

	for (;;) {
		memset(p, 0, sizeof(*p));
		ret = ipcsock_receive(sock, p);
		if (ret != -EAGAIN || now_ms() >= deadline)
			return ret;
		loop_pump(loop, 5);
	}
}

/* A message built on the stack for ipcsock_send(). */
struct ipcsock_payload msg_of(const void *data, size_t len,
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

int send_str(struct ipcsock *sock, const char *s)
{
	struct ipcsock_payload p = msg_of(s, strlen(s), NULL, 0);

	return ipcsock_send(sock, &p);
}

/*
 * Raw peer: send one datagram with an arbitrary header (or none when @hdr
 * is NULL), payload and fds. Never blocks, never raises SIGPIPE. Returns
 * bytes sent or -errno.
 */
ssize_t raw_send_hdr(int fd, const struct test_wire_hdr *hdr,
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
ssize_t raw_send_msg(int fd, const void *data, size_t len,
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
ssize_t raw_recv(int fd, void *buf, size_t cap, int *fds,
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

/*
 * The last record raw_recv_msg() read, and how far it was split; and how
 * many datagrams it read in all.
 */
static struct {
	unsigned long datagrams;
	int fd;
	unsigned char data[1 << 18];
	struct test_wire_split split;
	int fds[IPCSOCK_MAX_FDS];
	unsigned int nr_fds;
} raw_rec = { .fd = -1 };

/*
 * The next message from a raw @fd, as raw_recv() gives a version 1
 * datagram: a message of a record comes as its own datagram would, its
 * header then the payload. A record that breaks a rule of the format
 * (test_wire_check()) is -EPROTO, its fds closed. A test reads every
 * message of a record before it reads another fd.
 */
ssize_t raw_recv_msg(int fd, void *buf, size_t cap, int *fds,
		     unsigned int max_fds, unsigned int *nr_fds,
		     int *msg_flags)
{
	struct test_wire_hdr hdr;
	struct test_wire_msg m;
	unsigned int i;
	ssize_t ret;

	if (raw_rec.fd != fd || !raw_rec.split.left) {
		raw_rec.fd = -1;
		ret = raw_recv(fd, raw_rec.data, sizeof(raw_rec.data),
			       raw_rec.fds, IPCSOCK_MAX_FDS, &raw_rec.nr_fds,
			       msg_flags);
		raw_rec.datagrams += ret > 0;
		if (ret < (ssize_t)TEST_WIRE_REC_HDR_LEN ||
		    raw_rec.data[6] != TEST_WIRE_RECORD) {
			if (ret > 0)
				memcpy(buf, raw_rec.data,
				       (size_t)ret < cap ? (size_t)ret : cap);
			for (i = 0; i < raw_rec.nr_fds; i++)
				if (i < max_fds)
					fds[i] = raw_rec.fds[i];
				else
					close(raw_rec.fds[i]);
			if (nr_fds)
				*nr_fds = raw_rec.nr_fds < max_fds ?
					  raw_rec.nr_fds : max_fds;
			return ret;
		}
		if (test_wire_check(&raw_rec.split, raw_rec.data, ret,
				    raw_rec.nr_fds, SIZE_MAX, true)) {
			close_fds_array(raw_rec.fds, raw_rec.nr_fds);
			raw_rec.split.left = 0;
			return -EPROTO;
		}
		raw_rec.fd = fd;
	}
	if (!test_wire_next(&raw_rec.split, &m))
		return -EPROTO;
	hdr.len = m.len;
	hdr.nr_fds = m.nr_fds;
	hdr.version = TEST_WIRE_VERSION;
	hdr.flags = 0;
	memcpy(buf, &hdr, sizeof(hdr));
	memcpy((char *)buf + sizeof(hdr), m.data,
	       m.len < cap - sizeof(hdr) ? m.len : cap - sizeof(hdr));
	for (i = 0; i < m.nr_fds; i++)
		if (i < max_fds)
			fds[i] = raw_rec.fds[m.fd_off + i];
		else
			close(raw_rec.fds[m.fd_off + i]);
	if (nr_fds)
		*nr_fds = m.nr_fds < max_fds ? m.nr_fds : max_fds;
	return sizeof(hdr) + m.len;
}

/* Datagrams raw_recv_msg() has read so far, records or not. */
unsigned long raw_recv_datagrams(void)
{
	return raw_rec.datagrams;
}

/* Wait up to @timeout_ms for POLLIN on @fd; true if readable. */
bool fd_wait_readable(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, timeout_ms) == 1 && (pfd.revents & POLLIN);
}

/* Wait for POLLIN on a raw @fd while dispatching @loop; true if readable. */
bool raw_wait_readable(struct ipcsock_loop *loop, int fd, int timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;

	/* The rest of a record raw_recv_msg() read is readable too. */
	if (raw_rec.fd == fd && raw_rec.split.left)
		return true;
	while (!fd_wait_readable(fd, 0)) {
		if (now_ms() >= deadline)
			return false;
		loop_pump(loop, 2);
	}
	return true;
}

/* Loop with explicit options; NULL and errno on failure. */
struct ipcsock_loop *loop_new(enum ipcsock_backend backend,
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

/* Whether every loop of the context is idle. */
static bool ctx_idle(struct ipcsock_test *t)
{
	int i;

	for (i = 0; i < CTX_LOOPS; i++)
		if (t->loops[i] && !ipcsock_loop_idle(t->loops[i]))
			return false;
	return !t->loop || ipcsock_loop_idle(t->loop);
}

static void ctx_loop_free(struct ipcsock_loop *loop)
{
	shared_loop_del(loop);
	ipcsock_loop_free(loop);
}

/*
 * Free what the context still holds: sockets, raw fds, extra loops, the
 * loop, a child. Loops in the context's ring are first driven until idle
 * (bounded; t->not_idle tells when they were not), and the ring goes
 * last, as the rules of a shared ring ask. Returns the open descriptor
 * count afterwards, for the leak check against t->fd_base.
 */
int ctx_release(struct ipcsock_test *t)
{
	uint64_t deadline = now_ms() + WAIT_MS;
	int i, status;

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
	if (t->ring) {
		while (!ctx_idle(t) && now_ms() < deadline) {
			ring_reap(t->ring, 2);
			for (i = 0; i < CTX_LOOPS; i++)
				if (t->loops[i])
					ipcsock_loop_dispatch(t->loops[i], 0);
			if (t->loop)
				ipcsock_loop_dispatch(t->loop, 0);
		}
		t->not_idle = !ctx_idle(t);
	}
	for (i = 0; i < CTX_LOOPS; i++) {
		if (t->loops[i])
			ctx_loop_free(t->loops[i]);
		t->loops[i] = NULL;
	}
	if (t->loop)
		ctx_loop_free(t->loop);
	t->loop = NULL;
	if (t->ring) {
		io_uring_queue_exit(t->ring);
		free(t->ring);
		t->ring = NULL;
	}
	if (t->child > 0) {
		kill(t->child, SIGKILL);
		waitpid(t->child, &status, 0);
		t->child = 0;
	}
	return count_open_fds();
}

/*
 * Set up the ring of a shared-ring setup, which the context's loops will
 * live in: 0 or -errno.
 */
int ctx_ring_init(struct ipcsock_test *t, unsigned int ring_flags)
{
	struct io_uring_params p = { .flags = ring_flags };
	int ret;

	t->ring = calloc(1, sizeof(*t->ring));
	if (!t->ring)
		return -ENOMEM;
	ret = io_uring_queue_init_params(256, t->ring, &p);
	if (ret) {
		free(t->ring);
		t->ring = NULL;
		return ret;
	}
	t->ring_flags = ring_flags;
	return 0;
}

/*
 * A loop of the context, in its ring when it has one: @slot -1 for the
 * main loop, else the extra loop's slot, which keeps the buffer group ids
 * of loops sharing the ring apart. NULL and errno on failure.
 */
struct ipcsock_loop *ctx_loop_new(struct ipcsock_test *t, int slot,
				  unsigned int max_msg_size,
				  unsigned int send_queue_len,
				  unsigned int recv_buffers)
{
	IPCSOCK_LOOP_OPTS(opts,
		.backend = IPCSOCK_BACKEND_URING,
		.max_msg_size = max_msg_size,
		.send_queue_len = send_queue_len,
		.recv_buffers = recv_buffers,
		.bgid_base = IPCSOCK_DEFAULT_BGID_BASE + 0x1000 * (slot + 1),
		.flags = t->backend == BACKEND_URING_RING_SENDS ?
			 IPCSOCK_LOOP_RING_SENDS : 0,
	);
	struct ipcsock_loop *loop;

	if (!t->ring)
		return loop_new(t->backend, max_msg_size, send_queue_len,
				recv_buffers);
	loop = ipcsock_loop_new_shared(t->ring, &opts);
	if (loop && shared_loop_add(loop, t->ring)) {
		ipcsock_loop_free(loop);
		errno = ENOSPC;
		return NULL;
	}
	return loop;
}

/* Remember @sock for teardown; -ENOSPC (and @sock freed) when full. */
int ctx_keep_sock(struct ipcsock_test *t, struct ipcsock *sock)
{
	int i;

	for (i = 0; i < CTX_SOCKS; i++) {
		if (!t->socks[i]) {
			t->socks[i] = sock;
			return 0;
		}
	}
	ipcsock_free(sock);
	return -ENOSPC;
}

/* Forget a socket the test freed itself. */
void ctx_forget_sock(struct ipcsock_test *t, struct ipcsock *sock)
{
	int i;

	for (i = 0; i < CTX_SOCKS; i++)
		if (t->socks[i] == sock)
			t->socks[i] = NULL;
}

/* Remember a raw fd for teardown; its slot, or -ENOSPC (@fd closed). */
int ctx_keep_fd(struct ipcsock_test *t, int fd)
{
	int i;

	for (i = 0; i < CTX_FDS; i++) {
		if (t->fds[i] < 0) {
			t->fds[i] = fd;
			return i;
		}
	}
	close(fd);
	return -ENOSPC;
}

/* Close a raw fd the context holds. */
void ctx_close_fd(struct ipcsock_test *t, int fd)
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

/* Remember an extra loop for teardown; -ENOSPC (@loop freed) when full. */
int ctx_keep_loop(struct ipcsock_test *t, struct ipcsock_loop *loop)
{
	int i;

	for (i = 0; i < CTX_LOOPS; i++) {
		if (!t->loops[i]) {
			t->loops[i] = loop;
			return 0;
		}
	}
	ctx_loop_free(loop);
	return -ENOSPC;
}

/* Receive up to @max messages (0: all pending) into the recorder. */
int rec_drain(struct rec *r, struct ipcsock *sock, unsigned int max)
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

void rec_ready_read(struct ipcsock *sock, void *arg)
{
	struct rec *r = arg;

	r->ready++;
	if (sock != r->sock)
		r->bad++;
	if (r->no_receive)
		return;
	rec_drain(r, sock, r->per_call);
}

void rec_hangup(struct ipcsock *sock, int err, void *arg)
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

void rec_attach(struct rec *r, struct ipcsock *sock)
{
	memset(r, 0, sizeof(*r));
	r->sock = sock;
	ipcsock_set_ready_read(sock, rec_ready_read, r);
	ipcsock_set_hangup(sock, rec_hangup, r);
}

/* In a forked child: only stdio and @keep; the parent's fds must not linger. */
void child_close_other_fds(int keep)
{
	if (keep > 3)
		syscall(SYS_close_range, 3, keep - 1, 0);
	syscall(SYS_close_range, keep + 1, ~0u, 0);
}
