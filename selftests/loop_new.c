// SPDX-License-Identifier: GPL-2.0
/*
 * What ipcsock_loop_new() makes of its options, the environment and the
 * machine, and the per-thread default loop. Backend choice: AUTO takes
 * io_uring where it can be set up and epoll where it cannot (seccomp in
 * containers, kernel.io_uring_disabled), and the IPCSOCK_BACKEND
 * environment variable steers AUTO. The options: NULL, out-of-range
 * values, libbpf-style sizes, unknown fields.
 */
#include "selftest.h"

#include <pthread.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <liburing.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static int install_filter(struct sock_filter *filter, unsigned short len)
{
	struct sock_fprog prog = { .len = len, .filter = filter };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return -errno;
	return 0;
}

/* Make io_uring_setup fail with EPERM, as container runtimes do. */
static int block_io_uring(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};

	return install_filter(filter, ARRAY_SIZE(filter));
}

/* The low 32 bits of syscall argument @n, whatever the byte order. */
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define ARG_LO(n) (offsetof(struct seccomp_data, args[n]) + 4)
#else
#define ARG_LO(n) offsetof(struct seccomp_data, args[n])
#endif

/*
 * Make IORING_REGISTER_PROBE fail: the ring can be set up but cannot say
 * which opcodes it has, as on a kernel too old for the library.
 */
static int block_probe(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register,
			 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(1)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IORING_REGISTER_PROBE,
			 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};

	return install_filter(filter, ARRAY_SIZE(filter));
}

/* A round trip of bytes and one fd on @loop; 0 when it worked. */
static int round_trip(struct ipcsock_loop *loop)
{
	struct ipcsock *a = ipcsock_new(loop), *b = ipcsock_new(loop);
	struct ipcsock_payload in = { 0 }, out;
	int fd, memfd, ret = -1;
	char buf[16] = { 0 };

	memfd = memfd_with("fallback", "payload");
	if (!a || !b || memfd < 0)
		goto out;
	fd = ipcsock_create(a);
	if (fd < 0 || ipcsock_bind(b, fd))
		goto out;
	out = msg_of("ping", 4, &memfd, 1);
	if (ipcsock_send(a, &out))
		goto out;
	if (receive_wait(loop, b, &in, WAIT_MS) || in.len != 4 ||
	    memcmp(in.data, "ping", 4) || in.nr_fds != 1)
		goto out;
	if (fd_content(in.fds[0], buf, sizeof(buf)) == 7 &&
	    !strcmp(buf, "payload"))
		ret = 0;
	close(in.fds[0]);
out:
	if (memfd >= 0)
		close(memfd);
	ipcsock_free(a);
	ipcsock_free(b);
	return ret;
}

/*
 * AUTO, in a child that io_uring failed, must give a working epoll loop
 * and leave no fd behind (@fds were open before). Returns 0, or @code
 * plus the number of the check that failed.
 */
static int auto_is_working_epoll(int fds, int code)
{
	struct ipcsock_loop *loop;

	loop = ipcsock_loop_new(NULL);
	if (!loop)
		return code;
	if (ipcsock_loop_backend(loop) != IPCSOCK_BACKEND_EPOLL)
		return code + 1;
	if (round_trip(loop))
		return code + 2;
	ipcsock_loop_free(loop);
	if (count_open_fds() != fds)
		return code + 3;
	return 0;
}

/*
 * Runs in a child so that the seccomp filter does not outlive the test.
 * Exit codes name the check that failed.
 */
static int blocked_child(struct __test_metadata *_metadata,
			 enum ipcsock_backend unused)
{
	IPCSOCK_LOOP_OPTS(uring, .backend = IPCSOCK_BACKEND_URING);
	struct ipcsock_loop *loop;
	int fds = count_open_fds();

	if (block_io_uring())
		return 10;
	if (uring_available())
		return 11;
	/* Asking for io_uring explicitly fails, and says why. */
	loop = ipcsock_loop_new(&uring);
	if (loop || errno != EPERM)
		return 12;
	return auto_is_working_epoll(fds, 13);
}

TEST(auto_falls_back_to_epoll_when_io_uring_is_blocked)
{
	expect_child_exit(_metadata, blocked_child, IPCSOCK_BACKEND_AUTO, 0);
}

/*
 * A ring that sets up but lacks what the backend needs (multishot RECVMSG
 * came in 6.0) must not be used: the explicit and shared forms fail with
 * EOPNOTSUPP, AUTO falls back to epoll.
 */
static int too_old_child(struct __test_metadata *_metadata,
			 enum ipcsock_backend unused)
{
	IPCSOCK_LOOP_OPTS(uring, .backend = IPCSOCK_BACKEND_URING);
	struct ipcsock_loop *loop;
	int fds = count_open_fds();
	struct io_uring ring;

	if (block_probe())
		return 10;
	if (io_uring_queue_init(8, &ring, 0))
		return 11;
	loop = ipcsock_loop_new(&uring);
	if (loop || errno != EOPNOTSUPP)
		return 12;
	loop = ipcsock_loop_new_shared(&ring, NULL);
	if (loop || errno != EOPNOTSUPP)
		return 13;
	io_uring_queue_exit(&ring);
	return auto_is_working_epoll(fds, 14);
}

TEST(auto_falls_back_to_epoll_when_io_uring_is_too_old)
{
	if (!uring_available())
		SKIP(return, "io_uring cannot be set up here");
	expect_child_exit(_metadata, too_old_child, IPCSOCK_BACKEND_AUTO, 0);
}

TEST(auto_prefers_io_uring)
{
	struct ipcsock_loop *loop;
	int fds = count_open_fds();

	if (!uring_available())
		SKIP(return, "io_uring cannot be set up here");
	unsetenv("IPCSOCK_BACKEND");
	loop = ipcsock_loop_new(NULL);
	ASSERT_NE(NULL, loop);
	EXPECT_EQ(IPCSOCK_BACKEND_URING, ipcsock_loop_backend(loop));
	EXPECT_EQ(0, round_trip(loop));
	ipcsock_loop_free(loop);
	EXPECT_EQ(fds, count_open_fds());
}

TEST(environment_chooses_for_auto_only)
{
	IPCSOCK_LOOP_OPTS(uring, .backend = IPCSOCK_BACKEND_URING);
	struct ipcsock_loop *loop;

	if (!uring_available())
		SKIP(return, "io_uring cannot be set up here");
	ASSERT_EQ(0, setenv("IPCSOCK_BACKEND", "epoll", 1));
	loop = ipcsock_loop_new(NULL);
	ASSERT_NE(NULL, loop);
	EXPECT_EQ(IPCSOCK_BACKEND_EPOLL, ipcsock_loop_backend(loop));
	ipcsock_loop_free(loop);
	/* An explicit option wins over the environment. */
	loop = ipcsock_loop_new(&uring);
	ASSERT_NE(NULL, loop);
	EXPECT_EQ(IPCSOCK_BACKEND_URING, ipcsock_loop_backend(loop));
	ipcsock_loop_free(loop);
	unsetenv("IPCSOCK_BACKEND");
}

TEST(options_are_checked)
{
	struct {
		struct ipcsock_loop_opts opts;
		char newer_field;
	} big = { .opts.sz = sizeof(big), .newer_field = 1 };
	IPCSOCK_LOOP_OPTS(huge, .max_msg_size = IPCSOCK_MAX_MSG_SIZE_LIMIT + 1);
	struct ipcsock_loop_opts tiny = { .sz = 1 };

	/* Fields this library does not know must be zero. */
	EXPECT_EQ(NULL, ipcsock_loop_new(&big.opts));
	EXPECT_EQ(EINVAL, errno);
	big.newer_field = 0;
	ipcsock_loop_free(ipcsock_loop_new(&big.opts));
	EXPECT_EQ(NULL, ipcsock_loop_new(&huge));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, ipcsock_loop_new(&tiny));
	EXPECT_EQ(EINVAL, errno);
}

TEST(default_loop_is_per_thread)
{
	struct ipcsock_loop *loop = ipcsock_loop_default();
	struct ipcsock *sock;

	ASSERT_NE(NULL, loop);
	EXPECT_EQ(loop, ipcsock_loop_default());
	sock = ipcsock_new(NULL);
	ASSERT_NE(NULL, sock);
	EXPECT_EQ(0, round_trip(loop));
	ipcsock_free(sock);
	ipcsock_loop_free(loop);
	/* Freed: the next call makes a new one. */
	loop = ipcsock_loop_default();
	ASSERT_NE(NULL, loop);
	ipcsock_loop_free(loop);
}

/* The options, the environment and the default loop, on each backend. */
CTX_FIXTURE(loop_new);

TEST_F(loop_new, loop_new_null_opts)
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

TEST_F(loop_new, loop_new_bad_opts)
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

/* ipcsock_loop_new() refuses @opts with EINVAL. */
static void expect_opts_refused(struct __test_metadata *_metadata,
				const struct ipcsock_loop_opts *opts)
{
	struct ipcsock_loop *loop;

	errno = 0;
	loop = ipcsock_loop_new(opts);
	EXPECT_EQ(NULL, loop);
	EXPECT_EQ(EINVAL, errno);
	if (loop)
		ipcsock_loop_free(loop);
}

/*
 * libbpf-style options: a caller built against an older, smaller struct
 * gets defaults for the fields it does not know; a newer, larger one is
 * fine while the fields this library does not know are zero.
 */
TEST_F(loop_new, loop_opts_sz)
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
	expect_opts_refused(_metadata, &big.o);

	/* No such backend. */
	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big.o);
	big.o.backend = 42;
	expect_opts_refused(_metadata, &big.o);
}

TEST_F(loop_new, backend_from_env)
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

TEST_F(loop_new, default_loop_per_thread)
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

TEST(option_limits)
{
	IPCSOCK_LOOP_OPTS(bufs, .recv_buffers = 0x80000001u);
	IPCSOCK_LOOP_OPTS(ring, .ring_entries = 32768);

	/* Used to hang rounding up to a power of two. */
	EXPECT_EQ(NULL, ipcsock_loop_new(&bufs));
	EXPECT_EQ(EINVAL, errno);
	/* Used to fall back to epoll silently when the kernel said no. */
	EXPECT_EQ(NULL, ipcsock_loop_new(&ring));
	EXPECT_EQ(EINVAL, errno);
}

TEST_HARNESS_MAIN
