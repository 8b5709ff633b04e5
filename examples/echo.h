/* SPDX-License-Identifier: MIT */
/*
 * echo.h - what epoll-host, glib-host and uring-server send over their
 * channels, and the process at the other end: numbered messages, every
 * ECHO_FD_EVERY-th with a memfd, and a peer that sends each one back with
 * its fds. See examples/README.md.
 */
#ifndef ECHO_H
#define ECHO_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ipcsock.h>

#define ECHO_FD_EVERY	8

struct echo_msg {
	uint64_t chan;		/* which channel, so that a mix-up shows */
	uint64_t seq;
	uint64_t check;		/* derived from both; the memfd holds it too */
};

static inline uint64_t echo_check_value(uint64_t chan, uint64_t seq)
{
	return (seq * 0x9e3779b97f4a7c15ull) ^ (chan << 32) ^ chan;
}

/* Send message @seq of channel @chan: 0, or ipcsock_send()'s error. */
static inline int echo_send(struct ipcsock *sock, uint64_t chan, uint64_t seq)
{
	struct echo_msg m = {
		.chan = chan, .seq = seq, .check = echo_check_value(chan, seq),
	};
	struct ipcsock_payload p = { .data = &m, .len = sizeof(m) };
	int fd = -1, ret;

	if (seq % ECHO_FD_EVERY == 0) {
		fd = memfd_create("echo", MFD_CLOEXEC);
		if (fd < 0)
			return -errno;
		if (pwrite(fd, &m.check, sizeof(m.check), 0) != sizeof(m.check)) {
			close(fd);
			return -EIO;
		}
		p.fds = &fd;
		p.nr_fds = 1;
	}
	ret = ipcsock_send(sock, &p);
	/* The library took its own reference to the fd. */
	if (fd >= 0)
		close(fd);
	return ret;
}

/*
 * Is @p the echo of message @seq of channel @chan, with the same file
 * behind its fd? Closes the fds it came with either way.
 */
static inline bool echo_ok(struct ipcsock_payload *p, uint64_t chan,
			   uint64_t seq)
{
	struct echo_msg m;
	uint64_t v = 0;
	bool ok;

	ok = p->len == sizeof(m) && p->nr_fds == (seq % ECHO_FD_EVERY == 0);
	if (ok) {
		memcpy(&m, p->data, sizeof(m));
		ok = m.chan == chan && m.seq == seq &&
		     m.check == echo_check_value(chan, seq);
	}
	if (ok && p->nr_fds)
		ok = pread(p->fds[0], &v, sizeof(v), 0) == sizeof(v) &&
		     v == m.check;
	while (p->nr_fds)
		close(p->fds[--p->nr_fds]);
	return ok;
}

/* ------------------------------------------------------------------ */
/* The peer: a loop of its own, echoing until the other end hangs up. */

struct echo_peer {
	bool done;
	int err;
};

static inline void echo_peer_on_ready_read(struct ipcsock *sock, void *arg)
{
	struct echo_peer *peer = arg;
	struct ipcsock_payload msg;
	int ret;

	while (!ipcsock_receive(sock, &msg)) {
		/* The same bytes and fds back: the library copies both. */
		ret = ipcsock_send(sock, &msg);
		while (msg.nr_fds)
			close(msg.fds[--msg.nr_fds]);
		if (ret && !peer->err)
			peer->err = ret;
	}
}

static inline void echo_peer_on_hangup(struct ipcsock *sock, int err,
				       void *arg)
{
	struct echo_peer *peer = arg;

	(void)sock;
	peer->done = true;
	if (err && !peer->err)
		peer->err = err;
}

/* Echo on @fd until a hangup or an error; an exit status. */
static inline int echo_peer_run(int fd, enum ipcsock_backend backend)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = backend);
	struct ipcsock_loop *loop = ipcsock_loop_new(&opts);
	struct echo_peer peer = { 0 };
	struct ipcsock *sock;

	sock = loop ? ipcsock_new(loop) : NULL;
	if (!sock || ipcsock_bind(sock, fd))
		return 1;
	ipcsock_set_ready_read(sock, echo_peer_on_ready_read, &peer);
	ipcsock_set_hangup(sock, echo_peer_on_hangup, &peer);
	while (!peer.done && !peer.err)
		if (ipcsock_loop_dispatch(loop, -1) < 0)
			return 1;
	ipcsock_free(sock);
	ipcsock_loop_free(loop);
	return peer.err ? 1 : 0;
}

/*
 * A child process echoing on @fd, its fd 3, with nothing else of this
 * process open (a child must not touch its parent's loop) and no signal
 * blocked.
 */
static inline pid_t echo_peer_fork(int fd, enum ipcsock_backend backend)
{
	sigset_t none;
	pid_t pid;

	/* Or the child would inherit what is buffered, and print it too. */
	fflush(stdout);
	pid = fork();
	if (pid)
		return pid;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(fd, 3) < 0)
		_exit(1);
	close_range(4, ~0u, 0);
	_exit(echo_peer_run(3, backend));
}

/*
 * The host's side: a loop on @backend, a channel on it, and an echo peer
 * forked on the channel's other end. The peer's pid, with *@loop and
 * *@sock set; or a negative errno with nothing left open, *@loop NULL.
 */
static inline pid_t echo_host_start(enum ipcsock_backend backend,
				    struct ipcsock_loop **loop,
				    struct ipcsock **sock)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = backend);
	pid_t pid;
	int fd, err;

	*sock = NULL;
	*loop = ipcsock_loop_new(&opts);
	if (!*loop)
		return -errno;
	*sock = ipcsock_new(*loop);
	err = fd = *sock ? ipcsock_create(*sock) : -ENOMEM;
	if (fd < 0)
		goto fail;
	pid = echo_peer_fork(fd, backend);
	err = -errno;
	close(fd);
	if (pid > 0)
		return pid;
fail:
	ipcsock_free(*sock);
	ipcsock_loop_free(*loop);
	*sock = NULL;
	*loop = NULL;
	return err;
}

/* Reap the peer: 0 if it exited with status 0, else -ECHILD (and why). */
static inline int echo_peer_wait(pid_t pid, const char *prog)
{
	int status;

	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (WIFEXITED(status) && !WEXITSTATUS(status))
		return 0;
	fprintf(stderr, "%s: peer status 0x%x\n", prog, status);
	return -ECHILD;
}

#endif /* ECHO_H */
