/* SPDX-License-Identifier: MIT */
/*
 * spawn.h - start a worker process with the peer's end of a channel, as
 * the camera examples do: fork, then exec with only that fd crossing exec.
 */
#ifndef EXAMPLES_SPAWN_H
#define EXAMPLES_SPAWN_H

#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

/*
 * fork+exec @path with @argv, @fd open in the child under its own number
 * (ipcsock_create() makes it close-on-exec: the child clears that flag on
 * it alone) and every other fd marked close-on-exec first. Returns the
 * child's pid, or -1 with errno set if fork failed.
 */
static inline pid_t spawn_with_fd(const char *path, char *const argv[], int fd)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	/* Between fork and exec: system calls only. */
	if (fd > 3)
		close_range(3, fd - 1, CLOSE_RANGE_CLOEXEC);
	close_range(fd + 1, ~0u, CLOSE_RANGE_CLOEXEC);
	if (fcntl(fd, F_SETFD, 0) == 0)
		execv(path, argv);
	_exit(127);
}

#endif /* EXAMPLES_SPAWN_H */
