// SPDX-License-Identifier: MIT
/*
 * epoll-host - libipcsock inside an application's own epoll loop: the
 * library's ipcsock_loop_fd() next to the application's timerfd and
 * signalfd, and ipcsock_loop_dispatch(loop, 0) when it polls readable.
 * See examples/README.md.
 *
 * Usage: epoll-host [--duration MS]
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ipcsock.h>

#include "echo.h"

#define TICK_US		1000	/* the application's timer */
#define BURST		16	/* requests per tick */

struct host {
	struct ipcsock_loop *loop;
	struct ipcsock *sock;
	uint64_t next_seq;	/* next request to send */
	uint64_t next_reply;	/* next echo expected */
	uint64_t bad;		/* echoes out of order or wrong */
	bool hung_up;
};

static void host_on_ready_read(struct ipcsock *sock, void *arg)
{
	struct host *h = arg;
	struct ipcsock_payload msg;

	while (!ipcsock_receive(sock, &msg))
		if (!echo_ok(&msg, 0, h->next_reply++))
			h->bad++;
}

static void host_on_hangup(struct ipcsock *sock, int err, void *arg)
{
	(void)sock;
	(void)err;
	((struct host *)arg)->hung_up = true;
}

/* One timer tick's work: a burst of requests, as far as the queue takes. */
static int send_burst(struct host *h)
{
	int i, ret;

	for (i = 0; i < BURST; i++) {
		ret = echo_send(h->sock, 0, h->next_seq);
		if (ret == -ENOBUFS)
			return 0;	/* the queue is full: more next tick */
		if (ret)
			return ret;
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

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

/*
 * The application's loop: send on timer ticks for @duration_ms, then
 * stop sending and wait until every echo is in (at most a second more).
 */
static int host_run(struct host *h, int epfd, int tfd, int sfd,
		    int duration_ms)
{
	uint64_t ticks, elapsed, t0 = now_ms();
	struct signalfd_siginfo si;
	struct epoll_event ev[8];
	int n, i, ret;

	for (;;) {
		elapsed = now_ms() - t0;
		if (elapsed >= (uint64_t)duration_ms &&
		    h->next_reply == h->next_seq)
			break;
		if (elapsed >= (uint64_t)duration_ms + 1000) {
			fprintf(stderr, "epoll-host: %llu echoes missing\n",
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
				ret = ipcsock_loop_dispatch(h->loop, 0);
				if (ret < 0)
					return ret;
				break;
			case TAG_TIMER:
				if (read(tfd, &ticks, sizeof(ticks)) < 0)
					break;
				ret = elapsed < (uint64_t)duration_ms ?
				      send_burst(h) : 0;
				if (ret < 0)
					return ret;
				break;
			case TAG_SIGNAL:
				if (read(sfd, &si, sizeof(si)) == sizeof(si))
					fprintf(stderr, "epoll-host: %s\n",
						strsignal(si.ssi_signo));
				return -EINTR;
			}
		}
	}
	return h->bad ? -EPROTO : 0;
}

static const char *backend_name(enum ipcsock_backend b)
{
	return b == IPCSOCK_BACKEND_URING ? "io_uring" : "epoll";
}

static int run_backend(enum ipcsock_backend backend, int sfd, int duration_ms)
{
	struct itimerspec its = {
		.it_interval.tv_nsec = TICK_US * 1000,
		.it_value.tv_nsec = TICK_US * 1000,
	};
	struct host h = { 0 };
	int epfd = -1, tfd = -1, lfd, ret, err;
	pid_t pid;

	pid = echo_host_start(backend, &h.loop, &h.sock);
	if (pid < 0 && !h.loop && backend == IPCSOCK_BACKEND_URING) {
		printf("  io_uring: not available (%s), skipped\n",
		       strerror(-pid));
		return 0;
	}
	if (pid < 0)
		return pid;
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
	if (!ret)
		printf("  %s: %llu requests echoed in order, every %dth with an fd\n",
		       backend_name(backend), (unsigned long long)h.next_reply,
		       ECHO_FD_EVERY);
out:
	/* Closing our end is the peer's signal to exit. */
	ipcsock_free(h.sock);
	ipcsock_loop_free(h.loop);
	if (epfd >= 0)
		close(epfd);
	if (tfd >= 0)
		close(tfd);
	err = echo_peer_wait(pid, "epoll-host");
	return ret ? ret : err;
}

int main(int argc, char **argv)
{
	enum ipcsock_backend backends[] = {
		IPCSOCK_BACKEND_URING, IPCSOCK_BACKEND_EPOLL,
	};
	int duration_ms = 1000, ret = 0, sfd;
	unsigned int i;
	sigset_t mask;

	if (argc == 3 && !strcmp(argv[1], "--duration"))
		duration_ms = atoi(argv[2]);
	if ((argc != 1 && argc != 3) || duration_ms <= 0) {
		fprintf(stderr, "usage: %s [--duration MS]\n", argv[0]);
		return 2;
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
	for (i = 0; i < 2 && !ret; i++) {
		ret = run_backend(backends[i], sfd, duration_ms);
		if (ret)
			fprintf(stderr, "epoll-host: %s: %s\n",
				backend_name(backends[i]), strerror(-ret));
	}
	close(sfd);
	printf("epoll-host: %s\n", ret ? "FAILED" : "ok");
	return ret ? 1 : 0;
}
