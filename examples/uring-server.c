// SPDX-License-Identifier: MIT
/*
 * uring-server - libipcsock embedded in a server that owns its io_uring:
 * the server's own multishot ACCEPT, signalfd READ and TIMEOUT tick next
 * to the library's channels on the same ring (ipcsock_loop_new_shared()).
 * See examples/README.md.
 *
 * Usage: uring-server [--clients N]
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include <ipcsock.h>

#include "echo.h"

#define MAX_CLIENTS	256
#define WINDOW		16	/* messages in flight per channel */
#define NR_MSGS		300	/* per client */
#define DEADLINE_S	30

/* user_data of the server's own requests: small integers, never tagged. */
enum { UD_ACCEPT = 1, UD_SIGNAL, UD_TICK };

struct server;

/* One accepted connection; its number is its place in the accept order. */
struct conn {
	struct server *srv;
	struct ipcsock *sock;
	unsigned int id;
	uint64_t sent;
	uint64_t echoed;
};

struct server {
	struct io_uring ring;
	struct ipcsock_loop *loop;
	int listen_fd;
	int signal_fd;
	struct signalfd_siginfo si;
	struct __kernel_timespec tick;
	time_t deadline;

	unsigned int nr_clients;
	struct conn *conns[MAX_CLIENTS];	/* until done or hung up */
	unsigned int accepted;
	unsigned int done;		/* connections that got every echo */
	unsigned int reaped;
	bool failed;
	uint64_t own_cqes, lib_cqes;	/* whose were the completions? */
};

static void fail(struct server *srv, const char *what)
{
	if (!srv->failed)
		fprintf(stderr, "uring-server: %s\n", what);
	srv->failed = true;
}

static void conn_free(struct conn *conn)
{
	conn->srv->conns[conn->id] = NULL;
	ipcsock_free(conn->sock);
	free(conn);
}

/* Keep WINDOW messages in flight until all are sent. */
static void conn_send(struct conn *conn)
{
	struct server *srv = conn->srv;

	while (conn->sent < NR_MSGS && conn->sent - conn->echoed < WINDOW) {
		if (echo_send(conn->sock, conn->id, conn->sent)) {
			fail(srv, "a send failed");
			return;
		}
		conn->sent++;
	}
}

static void conn_on_ready_read(struct ipcsock *sock, void *arg)
{
	struct conn *conn = arg;
	struct server *srv = conn->srv;
	struct ipcsock_payload p;

	while (!ipcsock_receive(sock, &p)) {
		if (!echo_ok(&p, conn->id, conn->echoed++))
			fail(srv, "an echo wrong or out of order");
		if (conn->echoed == NR_MSGS) {
			/* Our end closing tells the client to exit. */
			srv->done++;
			conn_free(conn);	/* a callback may free its socket */
			return;
		}
	}
	conn_send(conn);
}

static void conn_on_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct conn *conn = arg;

	(void)sock;
	fail(conn->srv, err ? "a channel failed" : "a client hung up early");
	conn_free(conn);
}

static void on_accept(struct server *srv, int fd)
{
	struct conn *conn = NULL;

	if (srv->accepted < srv->nr_clients)
		conn = calloc(1, sizeof(*conn));
	if (conn)
		conn->sock = ipcsock_new(srv->loop);
	if (!conn || !conn->sock || ipcsock_bind(conn->sock, fd)) {
		fail(srv, "cannot take a connection");
		if (conn)
			ipcsock_free(conn->sock);
		free(conn);
		close(fd);
		return;
	}
	conn->srv = srv;
	conn->id = srv->accepted++;
	srv->conns[conn->id] = conn;
	ipcsock_set_ready_read(conn->sock, conn_on_ready_read, conn);
	ipcsock_set_hangup(conn->sock, conn_on_hangup, conn);
	conn_send(conn);
}

static void arm(struct server *srv, uint64_t ud)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&srv->ring);

	if (!sqe) {
		io_uring_submit(&srv->ring);
		sqe = io_uring_get_sqe(&srv->ring);
	}
	if (ud == UD_ACCEPT)
		io_uring_prep_multishot_accept(sqe, srv->listen_fd, NULL, NULL,
					       SOCK_CLOEXEC);
	else if (ud == UD_SIGNAL)
		io_uring_prep_read(sqe, srv->signal_fd, &srv->si,
				   sizeof(srv->si), 0);
	else
		io_uring_prep_timeout(sqe, &srv->tick, 0, 0);
	io_uring_sqe_set_data64(sqe, ud);
}

static void reap_clients(struct server *srv)
{
	int status;

	while (waitpid(-1, &status, WNOHANG) > 0) {
		srv->reaped++;
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			fail(srv, "a client failed");
	}
}

/* The server's own completions. */
static void on_own_cqe(struct server *srv, const struct io_uring_cqe *cqe)
{
	switch (cqe->user_data) {
	case UD_ACCEPT:
		if (cqe->res >= 0)
			on_accept(srv, cqe->res);
		if (!(cqe->flags & IORING_CQE_F_MORE))
			arm(srv, UD_ACCEPT);
		break;
	case UD_SIGNAL:
		if (cqe->res == sizeof(srv->si) && srv->si.ssi_signo == SIGCHLD)
			reap_clients(srv);
		else if (cqe->res == sizeof(srv->si))
			fail(srv, strsignal(srv->si.ssi_signo));
		arm(srv, UD_SIGNAL);
		break;
	case UD_TICK:
		if (time(NULL) > srv->deadline)
			fail(srv, "deadline passed");
		arm(srv, UD_TICK);
		break;
	}
}

/* One turn: wait, hand every CQE to the library or the server, callbacks. */
static int server_turn(struct server *srv)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	int ret;

	ret = io_uring_submit_and_wait(&srv->ring, 1);
	if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
		return ret;
	io_uring_for_each_cqe(&srv->ring, head, cqe) {
		if (ipcsock_loop_handle_cqe(srv->loop, cqe)) {
			srv->lib_cqes++;
		} else {
			srv->own_cqes++;
			on_own_cqe(srv, cqe);
		}
		n++;
	}
	io_uring_cq_advance(&srv->ring, n);
	ret = ipcsock_loop_dispatch(srv->loop, 0);
	return ret < 0 ? ret : 0;
}

/* A client connects, then echoes until the server closes its end. */
static pid_t fork_client(const struct sockaddr_un *addr, socklen_t len)
{
	sigset_t none;
	pid_t pid;
	int fd;

	fflush(stdout);
	pid = fork();
	if (pid)
		return pid;
	close_range(3, ~0u, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)addr, len))
		_exit(1);
	_exit(echo_peer_run(fd, IPCSOCK_BACKEND_AUTO));
}

/*
 * The listening socket, the clients and the signalfd. The clients are
 * forked before the ring exists, so that they get no copy of it; they wait
 * in the listen backlog until the ring accepts them.
 */
static int server_setup(struct server *srv)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	socklen_t len;
	sigset_t mask;
	unsigned int i;

	/* An abstract address: nothing to clean up in the file system. */
	len = offsetof(struct sockaddr_un, sun_path) + 1 +
	      snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1,
		       "ipcsock-uring-server-%d", (int)getpid());
	srv->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (srv->listen_fd < 0 ||
	    bind(srv->listen_fd, (struct sockaddr *)&addr, len) ||
	    listen(srv->listen_fd, srv->nr_clients))
		return -errno;

	/* Blocked before the forks, so that no SIGCHLD is lost. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	for (i = 0; i < srv->nr_clients; i++)
		if (fork_client(&addr, len) < 0)
			return -errno;
	srv->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
	return srv->signal_fd < 0 ? -errno : 0;
}

/*
 * The server's ring, DEFER_TASKRUN where the kernel has it, the library's
 * loop on it, and the server's own requests.
 */
static int ring_setup(struct server *srv)
{
	struct io_uring_params p = {
		.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	};
	int ret;

	ret = io_uring_queue_init_params(256, &srv->ring, &p);
	if (ret == -EINVAL)
		ret = io_uring_queue_init(256, &srv->ring, 0);
	if (ret)
		return ret;
	srv->loop = ipcsock_loop_new_shared(&srv->ring, NULL);
	if (!srv->loop) {
		ret = -errno;
		io_uring_queue_exit(&srv->ring);
		return ret;
	}
	srv->tick.tv_nsec = 100 * 1000 * 1000;
	arm(srv, UD_ACCEPT);
	arm(srv, UD_SIGNAL);
	arm(srv, UD_TICK);
	return 0;
}

/*
 * Closed channels may still have operations on the ring: keep handing it
 * CQEs until the loop is idle, then free the loop, then the ring. Every
 * client left sees its channel hang up, or its connection reset when the
 * listening socket closes, and exits.
 */
static void server_teardown(struct server *srv)
{
	unsigned int i;

	if (srv->loop) {
		for (i = 0; i < srv->nr_clients; i++)
			if (srv->conns[i])
				conn_free(srv->conns[i]);
		for (i = 0; i < 100 && !ipcsock_loop_idle(srv->loop); i++)
			server_turn(srv);
		ipcsock_loop_free(srv->loop);
		io_uring_queue_exit(&srv->ring);
	}
	if (srv->signal_fd >= 0)
		close(srv->signal_fd);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	while (waitpid(-1, NULL, 0) > 0)
		;
}

int main(int argc, char **argv)
{
	struct server srv = { .listen_fd = -1, .signal_fd = -1, .nr_clients = 16 };
	int ret;

	if (argc == 3 && !strcmp(argv[1], "--clients"))
		srv.nr_clients = atoi(argv[2]);
	if ((argc != 1 && argc != 3) || !srv.nr_clients ||
	    srv.nr_clients > MAX_CLIENTS) {
		fprintf(stderr, "usage: %s [--clients 1-%d]\n", argv[0],
			MAX_CLIENTS);
		return 2;
	}
	printf("uring-server: %u clients x %d messages, %d in flight each\n",
	       srv.nr_clients, NR_MSGS, WINDOW);
	srv.deadline = time(NULL) + DEADLINE_S;
	ret = server_setup(&srv);
	if (!ret) {
		ret = ring_setup(&srv);
		/* Missing, forbidden (seccomp, io_uring_disabled), too old. */
		if (ret && ret != -ENOMEM) {
			printf("  no usable io_uring here (%s): skipped\n",
			       strerror(-ret));
			server_teardown(&srv);
			return 4;
		}
	}
	/* Until every client has had all its echoes and has exited. */
	while (!ret && !srv.failed &&
	       (srv.done < srv.nr_clients || srv.reaped < srv.nr_clients))
		ret = server_turn(&srv);
	if (ret)
		fprintf(stderr, "uring-server: %s\n", strerror(-ret));
	server_teardown(&srv);

	if (!ret && !srv.failed)
		printf("  every echo in order, every %dth with its fd; CQEs on the ring: %llu the server's, %llu the library's\n",
		       ECHO_FD_EVERY, (unsigned long long)srv.own_cqes,
		       (unsigned long long)srv.lib_cqes);
	printf("uring-server: %s\n", ret || srv.failed ? "FAILED" : "ok");
	return ret || srv.failed ? 1 : 0;
}
