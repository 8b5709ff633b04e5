// SPDX-License-Identifier: MIT
/*
 * check-consumer.c - a program of a libipcsock user, which
 * scripts/check-consumer.sh builds against the installed library with
 * nothing but the flags `pkg-config ipcsock` gives, shared and static.
 *
 * On each backend: make a channel, send a message carrying bytes and the
 * write end of a pipe, receive it on the other end, and write through the
 * received descriptor to show that it is that pipe.
 *
 * Exits 0 on success, 1 on failure. io_uring may be missing or forbidden
 * here (then only the epoll backend runs), epoll may not.
 */
#include <errno.h>
#include <ipcsock.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int check(enum ipcsock_backend backend, const char *name)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = backend);
	struct ipcsock_payload msg, got;
	struct ipcsock_loop *loop;
	struct ipcsock *a, *b;
	int pipefd[2], fd, tries, err = 1;
	char c = 0;

	loop = ipcsock_loop_new(&opts);
	if (!loop) {
		printf("%s: no loop: %s\n", name, strerror(errno));
		return backend == IPCSOCK_BACKEND_URING ? -1 : 1;
	}
	a = ipcsock_new(loop);
	b = ipcsock_new(loop);
	if (!a || !b || pipe(pipefd)) {
		printf("%s: setup: %s\n", name, strerror(errno));
		goto out;
	}
	fd = ipcsock_create(a);
	if (fd < 0 || ipcsock_bind(b, fd)) {
		printf("%s: channel: %s\n", name,
		       strerror(fd < 0 ? -fd : errno));
		goto out_pipe;
	}

	msg = (struct ipcsock_payload){
		.data = "hello",
		.len = 5,
		.fds = &pipefd[1],
		.nr_fds = 1,
	};
	if (ipcsock_send(a, &msg)) {
		printf("%s: send failed\n", name);
		goto out_pipe;
	}
	for (tries = 0; ipcsock_receive(b, &got); tries++) {
		if (tries == 50 || ipcsock_loop_dispatch(loop, 100) < 0) {
			printf("%s: nothing received\n", name);
			goto out_pipe;
		}
	}
	if (got.len != 5 || memcmp(got.data, "hello", 5) || got.nr_fds != 1) {
		printf("%s: wrong message: %zu bytes, %u fds\n", name, got.len,
		       got.nr_fds);
		goto out_pipe;
	}
	if (write(got.fds[0], "x", 1) != 1 || read(pipefd[0], &c, 1) != 1 ||
	    c != 'x') {
		printf("%s: the fd received is not the pipe sent\n", name);
	} else {
		printf("%s: message and fd received\n", name);
		err = 0;
	}
	close(got.fds[0]);
out_pipe:
	close(pipefd[0]);
	close(pipefd[1]);
out:
	ipcsock_free(a);
	ipcsock_free(b);
	ipcsock_loop_free(loop);
	return err;
}

int main(void)
{
	int uring = check(IPCSOCK_BACKEND_URING, "io_uring");
	int epoll = check(IPCSOCK_BACKEND_EPOLL, "epoll");

	return uring > 0 || epoll ? 1 : 0;
}
