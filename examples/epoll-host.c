// SPDX-License-Identifier: MIT
/*
 * epoll-host - libipcsock inside an application's own epoll loop.
 *
 * The application keeps its event loop: one epoll_wait() over everything
 * it waits for - here a timerfd that paces its work and a signalfd for
 * SIGINT and SIGTERM - and ipcsock_loop_fd(), which polls readable whenever
 * the library has work to do. Then ipcsock_loop_dispatch(loop, 0), which
 * never blocks, runs the library's callbacks.
 *
 * The peer is a forked child that echoes every message back, with its own
 * loop (a child must not touch its parent's loop). On every tick the host
 * sends a burst of requests; every eighth carries a memfd holding the
 * request's sequence number, which the child reads back through the fd
 * it received. The host checks that every reply arrives, in order, with
 * the right contents.
 *
 * Runs once per backend (io_uring, then epoll) unless --backend says
 * which. Exit status 0 when every reply was right, 1 otherwise.
 *
 * Usage: epoll-host [--duration MS] [--backend io_uring|epoll]
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ipcsock.h>

#define TICK_US		1000	/* the application's timer */
#define BURST		16	/* requests per tick */
#define FD_EVERY	8	/* every n-th request carries a memfd */

/* Every message, both ways. */
struct echo_msg {
	uint64_t seq;
	uint64_t fd_value;	/* reply: what the child read from the fd */
	char text[48];
};

/* ------------------------------------------------------------------ */
/* The peer: a plain loop of its own, echoing until the host hangs up. */

struct echo_peer {
	bool done;
	int err;
};

static void peer_on_ready_read(struct ipcsock *sock, void *arg)
{
	struct echo_peer *peer = arg;
	struct ipcsock_payload msg, reply;
	struct echo_msg m;
	unsigned int i;

	while (!ipcsock_receive(sock, &msg)) {
		if (msg.len != sizeof(m) || msg.nr_fds > 1) {
			peer->err = -EPROTO;
			peer->done = true;
		}
		memcpy(&m, msg.data, sizeof(m) < msg.len ? sizeof(m) : msg.len);
		m.fd_value = 0;
		if (msg.nr_fds == 1 &&
		    pread(msg.fds[0], &m.fd_value, sizeof(m.fd_value), 0) !=
		    sizeof(m.fd_value))
			m.fd_value = UINT64_MAX;
		for (i = 0; i < msg.nr_fds; i++)
			close(msg.fds[i]);
		reply = (struct ipcsock_payload){ .data = &m, .len = sizeof(m) };
		if (!peer->done && ipcsock_send(sock, &reply)) {
			peer->err = -EIO;
			peer->done = true;
		}
	}
}

static void peer_on_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct echo_peer *peer = arg;

	(void)sock;
	peer->done = true;
	if (err)
		peer->err = err;
}

/* The child: fd 3 is its end of the channel, nothing else is open. */
static int echo_peer_main(enum ipcsock_backend backend)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = backend);
	struct echo_peer peer = { 0 };
	struct ipcsock_loop *loop = ipcsock_loop_new(&opts);
	struct ipcsock *sock = ipcsock_new(loop);

	if (!sock || ipcsock_bind(sock, 3))
		return 1;
	ipcsock_set_ready_read(sock, peer_on_ready_read, &peer);
	ipcsock_set_hangup(sock, peer_on_hangup, &peer);
	/* The host closing its end, or dying, ends this with a hangup. */
	while (!peer.done)
		if (ipcsock_loop_dispatch(loop, -1) < 0)
			return 1;
	ipcsock_free(sock);
	ipcsock_loop_free(loop);
	return peer.err ? 1 : 0;
}

/* fork the peer with the channel's far end as its fd 3, and only that. */
static pid_t spawn_peer(int fd, enum ipcsock_backend backend)
{
	pid_t pid;

	/* Or the child would inherit, and may flush, what is buffered. */
	fflush(stdout);
	pid = fork();

	if (pid)
		return pid;
	if (dup2(fd, 3) < 0)
		_exit(1);
	close_range(4, ~0u, 0);
	_exit(echo_peer_main(backend));
}

/* ------------------------------------------------------------------ */
/* The host. */

struct host {
	struct ipcsock_loop *loop;
	struct ipcsock *sock;
	uint64_t next_seq;	/* next request to send */
	uint64_t next_reply;	/* next reply expected */
	uint64_t bad;		/* replies out of order or wrong */
	uint64_t fds_sent;
	bool hung_up;
};

static void host_on_ready_read(struct ipcsock *sock, void *arg)
{
	struct host *h = arg;
	struct ipcsock_payload msg;
	struct echo_msg m;
	char text[sizeof(m.text)];

	while (!ipcsock_receive(sock, &msg)) {
		if (msg.len != sizeof(m) || msg.nr_fds) {
			h->bad++;
			continue;
		}
		memcpy(&m, msg.data, sizeof(m));
		snprintf(text, sizeof(text), "request %llu",
			 (unsigned long long)h->next_reply);
		if (m.seq != h->next_reply || strcmp(m.text, text) ||
		    m.fd_value != (m.seq % FD_EVERY ? 0 : m.seq))
			h->bad++;
		h->next_reply++;
	}
}

static void host_on_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct host *h = arg;

	(void)sock;
	(void)err;
	h->hung_up = true;
}

/* A memfd holding @value: the peer reads it through the fd it receives. */
static int value_fd(uint64_t value)
{
	int fd = memfd_create("echo-value", MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (pwrite(fd, &value, sizeof(value), 0) != sizeof(value)) {
		close(fd);
		return -EIO;
	}
	return fd;
}

/* One timer tick's work: a burst of requests, as far as the queue takes. */
static int send_burst(struct host *h)
{
	struct ipcsock_payload p;
	struct echo_msg m;
	int fd, ret, i;

	for (i = 0; i < BURST; i++) {
		memset(&m, 0, sizeof(m));
		m.seq = h->next_seq;
		snprintf(m.text, sizeof(m.text), "request %llu",
			 (unsigned long long)m.seq);
		p = (struct ipcsock_payload){ .data = &m, .len = sizeof(m) };
		fd = -1;
		if (m.seq % FD_EVERY == 0) {
			fd = value_fd(m.seq);
			if (fd < 0)
				return fd;
			p.fds = &fd;
			p.nr_fds = 1;
		}
		ret = ipcsock_send(h->sock, &p);
		/* The library took its own reference: ours can go now. */
		if (fd >= 0)
			close(fd);
		if (ret == -ENOBUFS)
			return 0;	/* the queue is full: more next tick */
		if (ret)
			return ret;
		h->fds_sent += fd >= 0;
		h->next_seq++;
	}
	return 0;
}

static int add_fd(int epfd, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

enum { TAG_IPCSOCK = 1, TAG_TIMER, TAG_SIGNAL };

static const char *backend_name(enum ipcsock_backend b)
{
	return b == IPCSOCK_BACKEND_URING ? "io_uring" : "epoll";
}

/*
 * The application's loop: send on timer ticks for @duration_ms, then
 * stop sending and wait until every reply is in (at most a second more).
 */
static int host_run(struct host *h, int epfd, int tfd, int sfd,
		    int duration_ms)
{
	struct timespec t0, now;
	struct signalfd_siginfo si;
	struct epoll_event ev[8];
	uint64_t ticks, elapsed_ms, wakeups = 0;
	bool sending = true;
	int n, i, ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		elapsed_ms = (now.tv_sec - t0.tv_sec) * 1000 +
			     (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (elapsed_ms >= (uint64_t)duration_ms)
			sending = false;
		if (!sending && h->next_reply == h->next_seq)
			break;
		if (elapsed_ms >= (uint64_t)duration_ms + 1000) {
			fprintf(stderr, "epoll-host: %llu replies missing\n",
				(unsigned long long)(h->next_seq - h->next_reply));
			return -ETIMEDOUT;
		}
		if (h->hung_up) {
			fprintf(stderr, "epoll-host: the peer hung up\n");
			return -EPIPE;
		}
		n = epoll_wait(epfd, ev, 8, 100);
		if (n < 0 && errno == EINTR)
			continue;	/* io_uring task work can do this */
		if (n < 0)
			return -errno;
		for (i = 0; i < n; i++) {
			switch (ev[i].data.u64) {
			case TAG_IPCSOCK:
				wakeups++;
				ret = ipcsock_loop_dispatch(h->loop, 0);
				if (ret < 0)
					return ret;
				break;
			case TAG_TIMER:
				if (read(tfd, &ticks, sizeof(ticks)) < 0)
					break;
				ret = sending ? send_burst(h) : 0;
				if (ret < 0)
					return ret;
				break;
			case TAG_SIGNAL:
				if (read(sfd, &si, sizeof(si)) != sizeof(si))
					break;
				fprintf(stderr, "epoll-host: %s\n",
					strsignal(si.ssi_signo));
				return -EINTR;
			}
		}
	}
	printf("  %s: %llu requests echoed in order (%llu with an fd), %llu loop-fd wake-ups\n",
	       backend_name(ipcsock_loop_backend(h->loop)),
	       (unsigned long long)h->next_reply,
	       (unsigned long long)h->fds_sent, (unsigned long long)wakeups);
	return h->bad ? -EPROTO : 0;
}

static int run_backend(enum ipcsock_backend backend, int sfd, int duration_ms)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = backend);
	struct itimerspec its = {
		.it_interval.tv_nsec = TICK_US * 1000,
		.it_value.tv_nsec = TICK_US * 1000,
	};
	struct host h = { 0 };
	int epfd = -1, tfd = -1, status = 0, fd, lfd, ret;
	pid_t pid;

	h.loop = ipcsock_loop_new(&opts);
	if (!h.loop) {
		if (backend == IPCSOCK_BACKEND_URING) {
			printf("  io_uring: not available (%s), skipped\n",
			       strerror(errno));
			return 0;
		}
		return -errno;
	}
	h.sock = ipcsock_new(h.loop);
	fd = h.sock ? ipcsock_create(h.sock) : -ENOMEM;
	if (fd < 0) {
		ipcsock_loop_free(h.loop);
		return fd;
	}
	pid = spawn_peer(fd, backend);
	close(fd);
	if (pid < 0) {
		ret = -errno;
		goto out;
	}
	ipcsock_set_ready_read(h.sock, host_on_ready_read, &h);
	ipcsock_set_hangup(h.sock, host_on_hangup, &h);

	/* The application's own fds, and the library's, in one epoll set. */
	epfd = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	lfd = ipcsock_loop_fd(h.loop);
	if (epfd < 0 || tfd < 0 || lfd < 0 ||
	    timerfd_settime(tfd, 0, &its, NULL)) {
		ret = lfd < 0 ? lfd : -errno;
		goto out;
	}
	ret = add_fd(epfd, lfd, TAG_IPCSOCK);
	if (!ret)
		ret = add_fd(epfd, tfd, TAG_TIMER);
	if (!ret)
		ret = add_fd(epfd, sfd, TAG_SIGNAL);
	if (!ret)
		ret = host_run(&h, epfd, tfd, sfd, duration_ms);
out:
	/* Closing our end is the peer's signal to exit. */
	ipcsock_free(h.sock);
	ipcsock_loop_free(h.loop);
	if (epfd >= 0)
		close(epfd);
	if (tfd >= 0)
		close(tfd);
	if (pid > 0) {
		waitpid(pid, &status, 0);
		if (!ret && (!WIFEXITED(status) || WEXITSTATUS(status))) {
			fprintf(stderr, "epoll-host: peer status 0x%x\n",
				status);
			ret = -ECHILD;
		}
	}
	return ret;
}

int main(int argc, char **argv)
{
	enum ipcsock_backend backends[2] = {
		IPCSOCK_BACKEND_URING, IPCSOCK_BACKEND_EPOLL,
	};
	unsigned int i, nr = 2;
	int duration_ms = 1000, ret = 0, sfd, opt;
	sigset_t mask;
	char *end;

	for (opt = 1; opt < argc; opt++) {
		if (!strcmp(argv[opt], "--duration") && opt + 1 < argc) {
			duration_ms = strtol(argv[++opt], &end, 10);
			if (*end || duration_ms <= 0 || duration_ms > 3600000)
				goto usage;
		} else if (!strcmp(argv[opt], "--backend") && opt + 1 < argc) {
			opt++;
			nr = 1;
			if (!strcmp(argv[opt], "epoll"))
				backends[0] = IPCSOCK_BACKEND_EPOLL;
			else if (strcmp(argv[opt], "io_uring"))
				goto usage;
		} else {
			goto usage;
		}
	}

	/* SIGINT and SIGTERM become events of the application's loop. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		perror("epoll-host: signalfd");
		return 1;
	}

	printf("epoll-host: %d ms per backend, %d requests every %d us\n",
	       duration_ms, BURST, TICK_US);
	for (i = 0; i < nr && !ret; i++) {
		ret = run_backend(backends[i], sfd, duration_ms);
		if (ret)
			fprintf(stderr, "epoll-host: %s: %s\n",
				backend_name(backends[i]), strerror(-ret));
	}
	close(sfd);
	printf("epoll-host: %s\n", ret ? "FAILED" : "ok");
	return ret ? 1 : 0;
usage:
	fprintf(stderr, "usage: %s [--duration MS] [--backend io_uring|epoll]\n",
		argv[0]);
	return 2;
}
