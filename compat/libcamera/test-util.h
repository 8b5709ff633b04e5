/* SPDX-License-Identifier: MIT */
/*
 * test-util.h - what the test programs of compat/libcamera share: TAP
 * results with a kselftest-style "# Totals:" line (scripts/run-tests.sh
 * adds those up), counting open fds, and memfds whose contents are checked.
 */
#ifndef IPCSOCK_COMPAT_LIBCAMERA_TEST_UTIL_H
#define IPCSOCK_COMPAT_LIBCAMERA_TEST_UTIL_H

#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

inline unsigned int tap_nr, tap_pass, tap_fail, tap_skip;

static inline void result(bool ok, const char *name)
{
	tap_nr++;
	if (ok)
		tap_pass++;
	else
		tap_fail++;
	printf("%sok %u %s\n", ok ? "" : "not ", tap_nr, name);
	fflush(stdout);
}

/* The plan and the totals, last; the exit status. */
static inline int tap_finish(void)
{
	printf("1..%u\n", tap_nr);
	printf("# Totals: pass:%u fail:%u xfail:0 xpass:0 skip:%u error:0\n",
	       tap_pass, tap_fail, tap_skip);
	return tap_fail ? 1 : 0;
}

static inline int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the directory's own */
}

/* A memfd holding @text, or -1. */
static inline int memfd_with(const char *text)
{
	int fd = memfd_create("compat-libcamera", MFD_CLOEXEC);
	ssize_t len = strlen(text);

	if (fd >= 0 && write(fd, text, len) != len) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* The file holds @text at @off (and, if @whole, nothing else). */
static inline bool holds_at(int fd, off_t off, const char *text, bool whole)
{
	char buf[64];
	ssize_t len = strlen(text);
	ssize_t n = pread(fd, buf, sizeof(buf), off);

	return (whole ? n == len : n >= len) && !memcmp(buf, text, len);
}

static inline bool fd_holds(int fd, const char *text)
{
	return holds_at(fd, 0, text, true);
}

static inline bool same_file(int a, int b)
{
	struct stat sa, sb;

	return !fstat(a, &sa) && !fstat(b, &sb) && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/*
 * fork+exec `@path @arg 3` with @fd as fd 3 and nothing else open, as
 * libcamera's process launcher keeps only the fds it passes (and its
 * socket pair has no FD_CLOEXEC). Returns the child's pid, or -1.
 */
static inline pid_t spawn_with_fd(const char *path, const char *arg, int fd)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	if (dup2(fd, 3) != 3)
		_exit(127);
	closefrom(4);
	execl(path, path, arg, "3", (char *)NULL);
	_exit(127);
}

#endif /* IPCSOCK_COMPAT_LIBCAMERA_TEST_UTIL_H */
