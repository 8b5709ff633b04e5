/* SPDX-License-Identifier: MIT */
/*
 * harness.hpp - a small test runner for the C++ selftests, which prints the
 * same TAP as the kernel's kselftest harness (that header does not compile
 * as C++), so that scripts/run-tests.sh adds them up.
 *
 * TEST(name, variants) { ... } registers a test that runs once on each of
 * the variants it names (VARIANT_URING, VARIANT_EPOLL, VARIANT_RING_SENDS:
 * io_uring with IPCSOCK_LOOP_RING_SENDS), as "<variant>.<name>", or once as
 * "<name>" with variants 0. Each run is a child process of its own, as in
 * kselftest: a crash, a sanitizer report at exit or a hang (killed after
 * TEST_TIMEOUT_S) fails that test only. The child counts its descriptors
 * before and after the test: any difference fails it.
 *
 * In a test: EXPECT*() records a failure and goes on, ASSERT*() records it
 * and returns from the enclosing function (a test body, a helper, or a
 * slot: never throws, since slots are called through the C library).
 * SKIP(why) ends the test as skipped. test_loop() is a new Loop with the
 * variant's options; test_opts() those options, to change some first.
 */
#ifndef IPCSOCK_CXX_HARNESS_HPP
#define IPCSOCK_CXX_HARNESS_HPP

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipcsock.hpp"

namespace harness {

enum : unsigned int {
	VARIANT_URING = 1u << 0,
	VARIANT_EPOLL = 1u << 1,
	VARIANT_RING_SENDS = 1u << 2,
	VARIANT_ALL = VARIANT_URING | VARIANT_EPOLL | VARIANT_RING_SENDS,
	/* Tests of the default loop, whose options only the environment sets. */
	VARIANT_BACKENDS = VARIANT_URING | VARIANT_EPOLL,
};

constexpr int WAIT_MS = 5000;

struct Context {
	unsigned int variant;
	struct ipcsock_loop_opts opts;
	bool failed;
	bool skipped;
};

inline Context &ctx()
{
	static Context c;

	return c;
}

struct Test {
	const char *name;
	unsigned int variants;
	void (*fn)();
};

inline std::vector<Test> &registry()
{
	static std::vector<Test> tests;

	return tests;
}

struct Register {
	Register(const char *name, unsigned int variants, void (*fn)())
	{
		registry().push_back(Test{ name, variants, fn });
	}
};

#define TEST(name, variants)						\
	static void test_##name();					\
	static const harness::Register register_##name(#name, variants,	\
						       test_##name);	\
	static void test_##name()

template<typename T>
std::string show(const T &v)
{
	std::ostringstream os;

	if constexpr (std::is_pointer_v<T>)
		os << static_cast<const void *>(v);
	else if constexpr (std::is_enum_v<T>)
		os << static_cast<long long>(v);
	else if constexpr (std::is_same_v<T, bool>)
		os << (v ? "true" : "false");
	else if constexpr (std::is_integral_v<T> && sizeof(T) == 1)
		os << static_cast<int>(v);
	else
		os << v;
	return os.str();
}

inline void fail(const char *file, int line, const std::string &what)
{
	std::printf("# %s:%d: %s\n", file, line, what.c_str());
	ctx().failed = true;
}

template<typename A, typename B>
bool expect_op(bool ok, const A &a, const B &b, const char *as,
	       const char *op, const char *bs, const char *file, int line)
{
	if (!ok)
		fail(file, line, std::string("expected ") + as + " " + op +
			  " " + bs + ": " + show(a) + " vs " + show(b));
	return ok;
}

#define HARNESS_OP(a, op, b)						\
	([&]() {							\
		const auto &a_ = (a);					\
		const auto &b_ = (b);					\
		return harness::expect_op(a_ op b_, a_, b_, #a, #op, #b,	\
					  __FILE__, __LINE__);		\
	}())

#define EXPECT_EQ(a, b)		HARNESS_OP(a, ==, b)
#define EXPECT_NE(a, b)		HARNESS_OP(a, !=, b)
#define EXPECT_LT(a, b)		HARNESS_OP(a, <, b)
#define EXPECT_LE(a, b)		HARNESS_OP(a, <=, b)
#define EXPECT_GE(a, b)		HARNESS_OP(a, >=, b)
#define EXPECT_TRUE(c)							\
	((c) ? true : (harness::fail(__FILE__, __LINE__,		\
				     "expected " #c), false))
#define EXPECT_FALSE(c)							\
	(!(c) ? true : (harness::fail(__FILE__, __LINE__,		\
				      "expected !(" #c ")"), false))

#define ASSERT_EQ(a, b)		do { if (!EXPECT_EQ(a, b)) return; } while (0)
#define ASSERT_NE(a, b)		do { if (!EXPECT_NE(a, b)) return; } while (0)
#define ASSERT_LE(a, b)		do { if (!EXPECT_LE(a, b)) return; } while (0)
#define ASSERT_GE(a, b)		do { if (!EXPECT_GE(a, b)) return; } while (0)
#define ASSERT_TRUE(c)		do { if (!EXPECT_TRUE(c)) return; } while (0)
#define ASSERT_FALSE(c)		do { if (!EXPECT_FALSE(c)) return; } while (0)

#define SKIP(why)							\
	do {								\
		std::printf("# SKIP %s\n", why);			\
		harness::ctx().skipped = true;				\
		return;							\
	} while (0)

inline struct ipcsock_loop_opts test_opts()
{
	return ctx().opts;
}

inline libipcsock::Loop test_loop()
{
	return libipcsock::Loop(ctx().opts);
}

inline const char *variant_name(unsigned int v)
{
	switch (v) {
	case VARIANT_URING:
		return "uring";
	case VARIANT_EPOLL:
		return "epoll";
	case VARIANT_RING_SENDS:
		return "uring_ring_sends";
	}
	return "";
}

/* The value IPCSOCK_BACKEND takes to give the default loop this variant. */
inline const char *variant_env(unsigned int v)
{
	return v == VARIANT_EPOLL ? "epoll" : "io_uring";
}

inline enum ipcsock_backend variant_backend(unsigned int v)
{
	return v == VARIANT_EPOLL ? IPCSOCK_BACKEND_EPOLL :
				    IPCSOCK_BACKEND_URING;
}

inline int count_open_fds()
{
	struct dirent *de;
	DIR *dir = opendir("/proc/self/fd");
	int n = 0;

	if (!dir)
		return -errno;
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.')
			n++;
	closedir(dir);
	return n - 1;	/* the directory's own */
}

inline void dump_open_fds()
{
	char path[64], target[256];
	struct dirent *de;
	DIR *dir = opendir("/proc/self/fd");

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(dir))
			continue;
		std::snprintf(path, sizeof(path), "/proc/self/fd/%d",
			      atoi(de->d_name));
		ssize_t n = readlink(path, target, sizeof(target) - 1);

		target[n < 0 ? 0 : n] = '\0';
		std::printf("#   fd %s -> %s\n", de->d_name, target);
	}
	closedir(dir);
}

inline bool under_valgrind()
{
	const char *preload = std::getenv("LD_PRELOAD");

	return preload && std::strstr(preload, "vgpreload");
}

inline long long now_ms()
{
	using namespace std::chrono;

	return duration_cast<milliseconds>(
		steady_clock::now().time_since_epoch()).count();
}

/*
 * Dispatch @loop until @cond holds or @ms passed; returns @cond's last
 * value. Every wait in the tests is bounded by this.
 */
inline bool dispatch_until(libipcsock::Loop &loop,
			   const std::function<bool()> &cond,
			   int ms = WAIT_MS)
{
	long long deadline = now_ms() + ms;

	while (!cond()) {
		if (now_ms() >= deadline)
			return cond();
		int ret = loop.dispatch(10);

		if (ret < 0 && ret != -EINTR) {
			fail(__FILE__, __LINE__, "dispatch: " +
			     std::string(std::strerror(-ret)));
			return cond();
		}
	}
	return true;
}

/* Is @fd readable right now? */
inline bool readable(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

inline bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

inline bool fd_is_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	return fl >= 0 && (fl & FD_CLOEXEC);
}

inline bool same_file(int a, int b)
{
	struct stat sa, sb;

	return !fstat(a, &sa) && !fstat(b, &sb) && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* A memfd holding @content; invalid on failure. */
inline libipcsock::UniqueFD memfd_with(const std::string &content)
{
	libipcsock::UniqueFD fd(memfd_create("cxx-test", MFD_CLOEXEC));

	if (fd.isValid() &&
	    write(fd.get(), content.data(), content.size()) !=
	    static_cast<ssize_t>(content.size()))
		fd.reset();
	return fd;
}

/* The whole content of @fd from offset 0. */
inline std::string fd_content(int fd)
{
	std::string s;
	char buf[4096];
	off_t off = 0;
	ssize_t n;

	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		s.append(buf, n);
		off += n;
	}
	return s;
}

inline libipcsock::IPCUnixSocket::Payload payload(const std::string &s)
{
	libipcsock::IPCUnixSocket::Payload p;

	p.data.assign(s.begin(), s.end());
	return p;
}

inline std::string text(const libipcsock::IPCUnixSocket::Payload &p)
{
	return std::string(p.data.begin(), p.data.end());
}

inline void close_fds(libipcsock::IPCUnixSocket::Payload &p)
{
	for (int fd : p.fds)
		close(fd);
	p.fds.clear();
}

/* Exit statuses of a test child. */
enum { RUN_PASS = 0, RUN_FAIL = 1, RUN_SKIP = 4 };

/* Runs in the child: the test, its fd count, its exit status. */
inline int run_child(const Test &t, unsigned int variant)
{
	Context &c = ctx();

	c = Context();
	c.variant = variant;
	c.opts = ipcsock_loop_opts();
	c.opts.sz = sizeof(c.opts);
	if (variant) {
		c.opts.backend = variant_backend(variant);
		if (variant == VARIANT_RING_SENDS)
			c.opts.flags = IPCSOCK_LOOP_RING_SENDS;
		if (setenv("IPCSOCK_BACKEND", variant_env(variant), 1))
			return RUN_FAIL;
		libipcsock::Loop probe(c.opts);

		if (!probe.isValid()) {
			int err = -probe.error();

			std::printf("# %s loop: %s\n", variant_name(variant),
				    std::strerror(err));
			return err == ENOSYS || err == EPERM ||
			       err == EOPNOTSUPP ? RUN_SKIP : RUN_FAIL;
		}
	}

	int before = count_open_fds();

	t.fn();

	int after = count_open_fds();

	if (before != after) {
		std::printf("# %d fds open before the test, %d after\n",
			    before, after);
		dump_open_fds();
		c.failed = true;
	}
	if (c.failed)
		return RUN_FAIL;
	return c.skipped ? RUN_SKIP : RUN_PASS;
}

inline int main()
{
	unsigned int timeout = under_valgrind() ? 600 : 60;
	int pass = 0, failed = 0, skip = 0, n = 0, plan = 0;
	static const unsigned int variants[] = {
		VARIANT_URING, VARIANT_EPOLL, VARIANT_RING_SENDS,
	};

	for (const Test &t : registry()) {
		if (!t.variants)
			plan++;
		for (unsigned int v : variants)
			plan += !!(t.variants & v);
	}
	std::printf("TAP version 13\n1..%d\n", plan);
	for (const Test &t : registry()) {
		for (unsigned int i = 0; i <= 3; i++) {
			unsigned int v = i ? variants[i - 1] : 0;
			std::string name;

			if (v ? !(t.variants & v) : t.variants != 0)
				continue;
			name = v ? std::string(variant_name(v)) + "." + t.name :
				   std::string(t.name);
			n++;
			std::printf("# RUN %s ...\n", name.c_str());
			std::fflush(stdout);

			pid_t pid = fork();
			int status = 0;

			if (pid < 0) {
				std::printf("not ok %d %s # fork: %s\n", n,
					    name.c_str(), std::strerror(errno));
				failed++;
				continue;
			}
			if (!pid) {
				alarm(timeout);
				int rc = run_child(t, v);

				std::fflush(stdout);
				/* exit(): LeakSanitizer and atexit run. */
				std::exit(rc);
			}
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			if (WIFEXITED(status) &&
			    WEXITSTATUS(status) == RUN_PASS) {
				std::printf("ok %d %s\n", n, name.c_str());
				pass++;
			} else if (WIFEXITED(status) &&
				   WEXITSTATUS(status) == RUN_SKIP) {
				std::printf("ok %d %s # SKIP\n", n, name.c_str());
				skip++;
			} else {
				if (WIFSIGNALED(status))
					std::printf("# killed by signal %d%s\n",
						    WTERMSIG(status),
						    WTERMSIG(status) == SIGALRM ?
						    " (timeout)" : "");
				else
					std::printf("# exit status %d\n",
						    WEXITSTATUS(status));
				std::printf("not ok %d %s\n", n, name.c_str());
				failed++;
			}
		}
	}
	std::printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:%d error:0\n",
		    pass, failed, skip);
	return failed ? 1 : 0;
}

} /* namespace harness */

#define TEST_MAIN							\
	int main()							\
	{								\
		return harness::main();					\
	}

#endif /* IPCSOCK_CXX_HARNESS_HPP */
