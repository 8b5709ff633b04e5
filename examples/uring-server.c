// SPDX-License-Identifier: MIT
/*
 * uring-server - libipcsock embedded in an io_uring server that owns its
 * ring.
 *
 * The server's one io_uring carries its own work:
 *
 *   ACCEPT   multishot, on a listening AF_UNIX SOCK_SEQPACKET socket
 *   READ     of a signalfd: SIGCHLD (clients are reaped as they exit),
 *            SIGINT and SIGTERM (stop)
 *   TIMEOUT  a 100 ms tick that enforces the run's deadline
 *
 * and the library's: ipcsock_loop_new_shared() puts every channel on the
 * same ring. The server waits on the ring, gives each CQE to
 * ipcsock_loop_handle_cqe() first (1: it was the library's), handles its
 * own, then runs the library's callbacks with ipcsock_loop_dispatch(loop,
 * 0). Each accepted connection is bound with ipcsock_bind().
 *
 * The clients are forked processes, one connection and one loop each:
 * client 0 alone makes the "one channel" phase, clients 1..N (1,000 by
 * default) the "many channels" phase. In each round, each phase moves the
 * same number of messages: the server sends START, the client sends DATA
 * (its id, a sequence number, a check value) under a credit window the
 * server keeps open, then END. The server checks that every message of
 * every channel arrives, in order. Rounds alternate the phases, so that
 * both see the same machine; a phase's cost is its best round.
 *
 * Per-message cost is the server's CPU time from the first START to the
 * last END of a phase, divided by its messages. Connection set-up and
 * tear-down, forks and exits all happen outside those times. The target is
 * many channels within 1.2x of one.
 *
 * A thousand channels need care: the server raises RLIMIT_NOFILE's soft
 * limit to the hard limit, gives each channel only 8 receive buffers
 * (recv_buffers: the memory is channels x buffers) and forks the clients
 * before it has a ring, so that they inherit nothing of it.
 *
 * Exit status: 0 when every message arrived in order and every client
 * exited cleanly, 1 otherwise (with --strict, also when the cost ratio
 * misses the target), 4 (skip) where io_uring cannot be used.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include <ipcsock.h>

#define NSEC_PER_SEC	1000000000ull
#define MAX_ROUNDS	20

/* user_data of the server's own requests: small integers, never tagged. */
enum {
	UD_ACCEPT = 1,
	UD_SIGNAL,
	UD_TICK,
};

enum msg_type {
	MSG_HELLO = 1,	/* client -> server: which client this is */
	MSG_START,	/* server -> client: send DATA up to seq, then END */
	MSG_CREDIT,	/* server -> client: DATA may go up to seq < arg */
	MSG_DATA,	/* client -> server: one counted message */
	MSG_END,	/* client -> server: the round is done at seq */
	MSG_RESULT,	/* server -> client: arg 1 if all was well; exit */
};

/* Every message, both ways: 32 bytes. */
struct msg {
	uint32_t type;
	uint32_t client;
	uint64_t seq;
	uint64_t arg;
	uint64_t check;		/* DATA: derived from client and seq */
};

static uint64_t data_check(uint32_t client, uint64_t seq)
{
	return (seq * 0x9e3779b97f4a7c15ull) ^ client;
}

static uint64_t clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/* CPU time this process spent in user space (microsecond resolution). */
static uint64_t user_time_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec * NSEC_PER_SEC + ru.ru_utime.tv_usec * 1000;
}

/* ------------------------------------------------------------------ */
/* A client: a forked process with a plain loop of its own. */

#define CLIENT_BATCH	16

struct client {
	struct ipcsock *sock;
	uint64_t round_end;	/* send DATA while seq < round_end */
	uint64_t credit;	/* ... and seq < credit */
	bool in_round;
	bool result;
	bool ok;
	bool hung_up;
};

static void client_on_ready_read(struct ipcsock *sock, void *arg)
{
	struct client *c = arg;
	struct ipcsock_payload p;
	struct msg m;

	while (!ipcsock_receive(sock, &p)) {
		if (p.len != sizeof(m))
			continue;
		memcpy(&m, p.data, sizeof(m));
		switch (m.type) {
		case MSG_START:
			c->round_end = m.seq;
			c->in_round = true;
			if (m.arg > c->credit)
				c->credit = m.arg;
			break;
		case MSG_CREDIT:
			if (m.arg > c->credit)
				c->credit = m.arg;
			break;
		case MSG_RESULT:
			c->result = true;
			c->ok = m.arg == 1;
			break;
		}
	}
}

static void client_on_hangup(struct ipcsock *sock, int err, void *arg)
{
	(void)sock;
	(void)err;
	((struct client *)arg)->hung_up = true;
}

/* Queue a message, waiting for room if the send queue is full. */
static int client_send(struct ipcsock_loop *loop, struct client *c,
		       const struct ipcsock_payload *p, unsigned int n)
{
	int ret;

	while ((ret = ipcsock_send_batch(c->sock, p, n)) == -ENOBUFS)
		if (ipcsock_loop_dispatch(loop, -1) < 0)
			return -1;
	return ret < 0 ? -1 : 0;
}

static int client_main(const struct sockaddr_un *addr, socklen_t addr_len,
		       uint32_t id)
{
	IPCSOCK_LOOP_OPTS(opts, .max_msg_size = 256, .recv_buffers = 4,
			  .ring_entries = 64);
	struct ipcsock_payload p[CLIENT_BATCH];
	struct msg m[CLIENT_BATCH];
	struct client c = { 0 };
	struct ipcsock_loop *loop;
	uint64_t seq = 0;
	unsigned int i, n;
	int fd;

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)addr, addr_len))
		return 1;
	loop = ipcsock_loop_new(&opts);
	c.sock = ipcsock_new(loop);
	if (!c.sock || ipcsock_bind(c.sock, fd))
		return 1;
	ipcsock_set_ready_read(c.sock, client_on_ready_read, &c);
	ipcsock_set_hangup(c.sock, client_on_hangup, &c);

	memset(m, 0, sizeof(m));
	for (i = 0; i < CLIENT_BATCH; i++) {
		m[i].client = id;
		p[i] = (struct ipcsock_payload){ .data = &m[i],
						 .len = sizeof(m[i]) };
	}
	m[0].type = MSG_HELLO;
	if (client_send(loop, &c, p, 1))
		return 1;

	while (!c.result) {
		/* Nothing to do: wait for START, CREDIT or RESULT. */
		if (!c.in_round || seq >= c.credit) {
			if (c.hung_up || ipcsock_loop_dispatch(loop, -1) < 0)
				return 1;
			continue;
		}
		if (seq == c.round_end) {
			m[0].type = MSG_END;
			m[0].seq = seq;
			if (client_send(loop, &c, p, 1))
				return 1;
			c.in_round = false;
			continue;
		}
		n = CLIENT_BATCH;
		if (n > c.round_end - seq)
			n = c.round_end - seq;
		if (n > c.credit - seq)
			n = c.credit - seq;
		for (i = 0; i < n; i++) {
			m[i].type = MSG_DATA;
			m[i].seq = seq + i;
			m[i].check = data_check(id, seq + i);
		}
		if (client_send(loop, &c, p, n))
			return 1;
		seq += n;
	}
	ipcsock_free(c.sock);
	ipcsock_loop_free(loop);
	return c.ok ? 0 : 1;
}

/* ------------------------------------------------------------------ */
/* The server. */

struct server;

/* One accepted connection. */
struct conn {
	struct server *srv;
	struct ipcsock *sock;
	uint32_t client;
	uint64_t next_seq;	/* the DATA expected next */
	uint64_t round_end;
	bool hello;
	bool ok;
};

/* A phase: some clients, and what its rounds measured. */
struct phase {
	const char *name;
	unsigned int first;	/* its clients' ids: first .. first + nr - 1 */
	unsigned int nr;
	uint64_t msgs_per_client;	/* per round */
	uint64_t cpu_ns[MAX_ROUNDS];	/* the server's, user + system */
	uint64_t user_ns[MAX_ROUNDS];	/* user only: library and server */
	uint64_t wall_ns[MAX_ROUNDS];
};

struct server {
	struct io_uring ring;
	struct ipcsock_loop *loop;
	int listen_fd;
	int signal_fd;
	struct signalfd_siginfo si;
	struct __kernel_timespec tick;
	struct sockaddr_un addr;
	socklen_t addr_len;

	unsigned int window;	/* DATA a client may have unanswered */
	unsigned int nr_rounds;
	struct phase phases[2];
	unsigned int step;	/* round * 2 + phase running now */
	struct phase *ph;	/* that phase, NULL between phases */
	unsigned int ends;	/* END messages of the phase running */
	uint64_t t0, cpu0, user0;

	struct conn **conns;	/* by client id, from HELLO to hangup */
	pid_t *pids;		/* by client id */
	unsigned int nr_clients;
	unsigned int hellos;
	unsigned int accepted;
	unsigned int closed;
	unsigned int reaped;
	unsigned int clients_failed;
	uint64_t bad;		/* messages wrong or out of order */
	bool done;		/* every round over, RESULTs sent */
	bool failed;
	bool stop;
	uint64_t deadline;

	/* The ring is shared: whose completions were they? */
	uint64_t own_cqes;
	uint64_t lib_cqes;
};

static void fail(struct server *srv, const char *what, unsigned int id)
{
	if (!srv->failed)
		fprintf(stderr, "uring-server: client %u: %s\n", id, what);
	srv->failed = true;
}

static void send_msg(struct conn *conn, uint32_t type, uint64_t seq,
		     uint64_t arg)
{
	struct msg m = {
		.type = type, .client = conn->client, .seq = seq, .arg = arg,
	};
	struct ipcsock_payload p = { .data = &m, .len = sizeof(m) };

	if (ipcsock_send(conn->sock, &p))
		fail(conn->srv, "send failed", conn->client);
}

/*
 * The next step: START the next phase's clients, or after the last round
 * send every client its RESULT. Runs from callbacks: what it sends goes
 * out together when dispatch returns.
 */
static void next_step(struct server *srv)
{
	struct phase *ph;
	struct conn *conn;
	unsigned int i;

	if (srv->step == srv->nr_rounds * 2) {
		for (i = 0; i < srv->nr_clients; i++)
			send_msg(srv->conns[i], MSG_RESULT, 0,
				 srv->conns[i]->ok && !srv->failed);
		srv->ph = NULL;
		srv->done = true;
		return;
	}
	ph = &srv->phases[srv->step % 2];
	srv->ph = ph;
	srv->ends = 0;
	srv->t0 = clock_ns(CLOCK_MONOTONIC);
	srv->cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	srv->user0 = user_time_ns();
	for (i = ph->first; i < ph->first + ph->nr; i++) {
		conn = srv->conns[i];
		conn->round_end = conn->next_seq + ph->msgs_per_client;
		send_msg(conn, MSG_START, conn->round_end,
			 conn->next_seq + srv->window);
	}
}

/* Every client of the phase has sent END: the phase's round is over. */
static void end_step(struct server *srv)
{
	struct phase *ph = srv->ph;
	unsigned int round = srv->step / 2;

	ph->cpu_ns[round] = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - srv->cpu0;
	ph->user_ns[round] = user_time_ns() - srv->user0;
	ph->wall_ns[round] = clock_ns(CLOCK_MONOTONIC) - srv->t0;
	srv->step++;
	next_step(srv);
}

static void on_msg(struct conn *conn, const struct msg *m)
{
	struct server *srv = conn->srv;

	switch (m->type) {
	case MSG_DATA:
		if (!srv->ph || m->client != conn->client ||
		    m->seq != conn->next_seq ||
		    conn->next_seq >= conn->round_end ||
		    m->check != data_check(m->client, m->seq)) {
			srv->bad++;
			conn->ok = false;
		}
		conn->next_seq++;
		/* Half the window used: open it again. */
		if (conn->next_seq % (srv->window / 2) == 0)
			send_msg(conn, MSG_CREDIT, 0,
				 conn->next_seq + srv->window);
		return;
	case MSG_HELLO:
		if (conn->hello || m->client >= srv->nr_clients ||
		    srv->conns[m->client])
			break;
		conn->hello = true;
		conn->client = m->client;
		srv->conns[m->client] = conn;
		/* Everyone is here: the first round starts. */
		if (++srv->hellos == srv->nr_clients)
			next_step(srv);
		return;
	case MSG_END:
		if (!srv->ph)
			break;
		if (m->seq != conn->round_end ||
		    conn->next_seq != conn->round_end)
			conn->ok = false;
		if (++srv->ends == srv->ph->nr)
			end_step(srv);
		return;
	}
	fail(srv, "unexpected message", conn->client);
}

static void conn_on_ready_read(struct ipcsock *sock, void *arg)
{
	struct conn *conn = arg;
	struct ipcsock_payload p;
	struct msg m;

	while (!ipcsock_receive(sock, &p)) {
		while (p.nr_fds--)
			close(p.fds[p.nr_fds]);
		if (p.len != sizeof(m)) {
			fail(conn->srv, "bad message size", conn->client);
			continue;
		}
		memcpy(&m, p.data, sizeof(m));
		on_msg(conn, &m);
	}
}

static void conn_on_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct conn *conn = arg;
	struct server *srv = conn->srv;

	if (!srv->done)
		fail(srv, err ? "channel failed" : "hung up too early",
		     conn->client);
	else if (!conn->ok)
		fail(srv, "messages lost or out of order", conn->client);
	if (conn->hello)
		srv->conns[conn->client] = NULL;
	srv->closed++;
	/* A callback may free its own socket. */
	ipcsock_free(sock);
	free(conn);
}

static void on_accept(struct server *srv, int fd)
{
	struct conn *conn = calloc(1, sizeof(*conn));
	int ret = -ENOMEM;

	if (conn) {
		conn->srv = srv;
		conn->ok = true;
		conn->sock = ipcsock_new(srv->loop);
		ret = conn->sock ? ipcsock_bind(conn->sock, fd) : -ENOMEM;
	}
	if (ret) {
		fprintf(stderr, "uring-server: bind: %s\n", strerror(-ret));
		srv->failed = true;
		close(fd);
		if (conn)
			ipcsock_free(conn->sock);
		free(conn);
		return;
	}
	ipcsock_set_ready_read(conn->sock, conn_on_ready_read, conn);
	ipcsock_set_hangup(conn->sock, conn_on_hangup, conn);
	srv->accepted++;
}

static int arm(struct server *srv, uint64_t ud)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&srv->ring);

	if (!sqe) {
		io_uring_submit(&srv->ring);
		sqe = io_uring_get_sqe(&srv->ring);
		if (!sqe)
			return -EBUSY;
	}
	switch (ud) {
	case UD_ACCEPT:
		io_uring_prep_multishot_accept(sqe, srv->listen_fd, NULL, NULL,
					       SOCK_CLOEXEC);
		break;
	case UD_SIGNAL:
		io_uring_prep_read(sqe, srv->signal_fd, &srv->si,
				   sizeof(srv->si), 0);
		break;
	case UD_TICK:
		io_uring_prep_timeout(sqe, &srv->tick, 0, 0);
		break;
	}
	io_uring_sqe_set_data64(sqe, ud);
	return 0;
}

static void reap_clients(struct server *srv)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		srv->reaped++;
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			srv->clients_failed++;
			srv->failed = true;
		}
	}
}

/* The server's own completions. */
static void on_own_cqe(struct server *srv, const struct io_uring_cqe *cqe)
{
	srv->own_cqes++;
	switch (cqe->user_data) {
	case UD_ACCEPT:
		if (cqe->res >= 0)
			on_accept(srv, cqe->res);
		else if (cqe->res != -EINTR && cqe->res != -ECANCELED)
			fprintf(stderr, "uring-server: accept: %s\n",
				strerror(-cqe->res));
		if (!(cqe->flags & IORING_CQE_F_MORE))
			arm(srv, UD_ACCEPT);
		break;
	case UD_SIGNAL:
		if (cqe->res == sizeof(srv->si)) {
			if (srv->si.ssi_signo == SIGCHLD) {
				reap_clients(srv);
			} else {
				fprintf(stderr, "uring-server: %s\n",
					strsignal(srv->si.ssi_signo));
				srv->failed = true;
				srv->stop = true;
			}
		}
		arm(srv, UD_SIGNAL);
		break;
	case UD_TICK:
		/* SIGCHLDs merge: reap here too, in case one was missed. */
		reap_clients(srv);
		if (clock_ns(CLOCK_MONOTONIC) > srv->deadline) {
			fprintf(stderr, "uring-server: deadline passed: %u of %u clients connected, step %u of %u\n",
				srv->hellos, srv->nr_clients, srv->step,
				srv->nr_rounds * 2);
			srv->failed = true;
			srv->stop = true;
		}
		arm(srv, UD_TICK);
		break;
	}
}

/* One turn of the server's loop: wait, hand out the CQEs, callbacks. */
static int server_turn(struct server *srv)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	int ret;

	ret = io_uring_submit_and_wait(&srv->ring, 1);
	if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
		return ret;
	io_uring_for_each_cqe(&srv->ring, head, cqe) {
		if (ipcsock_loop_handle_cqe(srv->loop, cqe))
			srv->lib_cqes++;
		else
			on_own_cqe(srv, cqe);
		n++;
	}
	io_uring_cq_advance(&srv->ring, n);
	ret = ipcsock_loop_dispatch(srv->loop, 0);
	return ret < 0 ? ret : 0;
}

/* 1,000 connections plus the ring need more fds than the usual 1,024. */
/*
 * Up to the hard limit; past it too where the process may (root with
 * CAP_SYS_RESOURCE, e.g. a CI container whose hard limit is 1024).
 */
static int raise_nofile(unsigned int need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	if (rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max < need) {
		struct rlimit more = { .rlim_cur = need, .rlim_max = need };

		if (!setrlimit(RLIMIT_NOFILE, &more))
			return 0;
	}
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	return rl.rlim_cur >= need ? 0 : -EMFILE;
}

/*
 * The clients are forked before the server has a ring or a loop: they
 * inherit nothing of the kind, and the server's memory is small when
 * copied. Each connects at once; the listen backlog holds them until
 * the ring accepts.
 */
static int fork_clients(struct server *srv)
{
	sigset_t none;
	unsigned int i;
	pid_t pid;

	fflush(stdout);
	for (i = 0; i < srv->nr_clients; i++) {
		pid = fork();
		if (pid < 0)
			return -errno;
		if (!pid) {
			close_range(3, ~0u, 0);
			sigemptyset(&none);
			sigprocmask(SIG_SETMASK, &none, NULL);
			_exit(client_main(&srv->addr, srv->addr_len, i));
		}
		srv->pids[i] = pid;
	}
	return 0;
}

static int server_setup(struct server *srv)
{
	/* Every channel's receive buffers: nr_clients x recv_buffers. */
	IPCSOCK_LOOP_OPTS(opts, .max_msg_size = 256, .recv_buffers = 8);
	struct io_uring_params p;
	sigset_t mask;
	int ret;

	/* An abstract address: nothing to clean up in the file system. */
	srv->addr.sun_family = AF_UNIX;
	ret = snprintf(srv->addr.sun_path + 1, sizeof(srv->addr.sun_path) - 1,
		       "ipcsock-uring-server-%d", (int)getpid());
	srv->addr_len = offsetof(struct sockaddr_un, sun_path) + 1 + ret;
	srv->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (srv->listen_fd < 0 ||
	    bind(srv->listen_fd, (struct sockaddr *)&srv->addr, srv->addr_len) ||
	    listen(srv->listen_fd, srv->nr_clients))
		return -errno;

	/* Blocked before the forks, so that no SIGCHLD is lost. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	ret = fork_clients(srv);
	if (ret)
		return ret;
	srv->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (srv->signal_fd < 0)
		return -errno;

	/*
	 * The server's ring; the library only adds to it. A big CQ, since a
	 * thousand channels complete a lot at once (an overflow loses
	 * nothing, but costs).
	 */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER |
		  IORING_SETUP_DEFER_TASKRUN;
	p.cq_entries = 16384;
	ret = io_uring_queue_init_params(1024, &srv->ring, &p);
	if (ret == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = 16384;
		ret = io_uring_queue_init_params(1024, &srv->ring, &p);
	}
	if (ret)
		return ret;
	printf("  server ring: %u SQEs, %u CQEs%s; the library shares it: recv_buffers 8 per channel, buffer groups from 0x%x\n",
	       p.sq_entries, p.cq_entries,
	       p.flags & IORING_SETUP_DEFER_TASKRUN ? ", DEFER_TASKRUN" : "",
	       IPCSOCK_DEFAULT_BGID_BASE);
	srv->loop = ipcsock_loop_new_shared(&srv->ring, &opts);
	if (!srv->loop) {
		ret = -errno;
		io_uring_queue_exit(&srv->ring);
		return ret;
	}

	srv->tick.tv_nsec = 100 * 1000 * 1000;
	ret = arm(srv, UD_ACCEPT);
	if (!ret)
		ret = arm(srv, UD_SIGNAL);
	if (!ret)
		ret = arm(srv, UD_TICK);
	if (!ret)
		ret = io_uring_submit(&srv->ring);
	return ret < 0 ? ret : 0;
}

/* Until every round is done, every client gone, every channel closed. */
static void server_run(struct server *srv)
{
	int ret;

	while (!srv->stop && (!srv->done || srv->reaped < srv->nr_clients ||
			      srv->closed < srv->accepted)) {
		ret = server_turn(srv);
		if (ret) {
			fprintf(stderr, "uring-server: %s\n", strerror(-ret));
			srv->failed = true;
			srv->stop = true;
		}
	}
}

/*
 * Closed channels may still have operations on the ring: keep handing it
 * CQEs until the loop is idle, then free the loop, then the ring (which
 * takes the server's own requests with it).
 */
static void server_teardown(struct server *srv)
{
	unsigned int i;

	if (srv->loop) {
		srv->deadline = clock_ns(CLOCK_MONOTONIC) + 5 * NSEC_PER_SEC;
		for (i = 0; i < srv->nr_clients; i++) {
			if (srv->conns[i]) {
				ipcsock_free(srv->conns[i]->sock);
				free(srv->conns[i]);
			}
		}
		for (i = 0; i < 100 && !ipcsock_loop_idle(srv->loop); i++)
			server_turn(srv);
		ipcsock_loop_free(srv->loop);
		io_uring_queue_exit(&srv->ring);
	}
	if (srv->signal_fd >= 0)
		close(srv->signal_fd);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	/* After a failure, clients may be left: take them down. */
	if (srv->reaped < srv->nr_clients) {
		for (i = 0; i < srv->nr_clients; i++)
			if (srv->pids[i] > 0)
				kill(srv->pids[i], SIGKILL);
		while (waitpid(-1, NULL, 0) > 0)
			;
	}
}

/* A phase's best round: the one that cost the server least CPU. */
static unsigned int best_round(const struct server *srv,
			       const struct phase *ph)
{
	unsigned int i, best = 0;

	for (i = 1; i < srv->nr_rounds; i++)
		if (ph->cpu_ns[i] < ph->cpu_ns[best])
			best = i;
	return best;
}

static bool report(struct server *srv, bool strict)
{
	uint64_t msgs = srv->phases[0].msgs_per_client;
	double cpu[2], user[2], wall, ratio;
	struct phase *ph;
	unsigned int i, r;

	/* Both phases move the same number of messages per round. */
	printf("  %-14s %8s %9s %8s %10s %25s\n", "phase", "channels",
	       "messages", "time", "msgs/s",
	       "server CPU/msg (user)");
	for (i = 0; i < 2; i++) {
		ph = &srv->phases[i];
		r = best_round(srv, ph);
		cpu[i] = (double)ph->cpu_ns[r] / msgs;
		user[i] = (double)ph->user_ns[r] / msgs;
		wall = ph->wall_ns[r] / 1e9;
		printf("  %-14s %8u %9llu %6.3f s %10.0f %10.2f us (%.2f us)\n",
		       ph->name, ph->nr, (unsigned long long)msgs, wall,
		       msgs / wall, cpu[i] / 1000, user[i] / 1000);
	}
	printf("  (best of %u rounds each; server's own CQEs: %llu, the library's: %llu)\n",
	       srv->nr_rounds, (unsigned long long)srv->own_cqes,
	       (unsigned long long)srv->lib_cqes);
	printf("  every message of every channel arrived, in order\n");
	ratio = cpu[1] / cpu[0];
	printf("  per-message cost, %u channels against one: %.2fx (user space alone: %.2fx; target: within 1.2x)%s\n",
	       srv->phases[1].nr, ratio, user[1] / user[0],
	       ratio <= 1.2 ? "" : " - missed");
	return !strict || ratio <= 1.2;
}

/*
 * Without io_uring (an old kernel, seccomp, kernel.io_uring_disabled) or
 * without multishot receive there is nothing to show: skip.
 */
static bool uring_usable(void)
{
	struct io_uring_probe *probe;
	struct io_uring ring;
	int ret;

	ret = io_uring_queue_init(2, &ring, 0);
	if (ret) {
		printf("uring-server: io_uring not available (%s): skipped\n",
		       strerror(-ret));
		return false;
	}
	probe = io_uring_get_probe_ring(&ring);
	ret = probe && io_uring_opcode_supported(probe, IORING_OP_RECVMSG);
	io_uring_free_probe(probe);
	io_uring_queue_exit(&ring);
	if (!ret)
		printf("uring-server: io_uring without RECVMSG: skipped\n");
	return ret;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *v)
{
	char *end;

	errno = 0;
	*v = strtoul(s, &end, 10);
	return errno || *end || end == s || !*v || *v > max ? -1 : 0;
}

int main(int argc, char **argv)
{
	unsigned long nr_channels = 1000, per_channel = 200, window = 32;
	unsigned long rounds = 3, timeout_s = 60;
	struct server srv = { .listen_fd = -1, .signal_fd = -1 };
	bool strict = false, ok;
	int i, ret;

	for (i = 1; i < argc; i++) {
		ret = -1;
		if (!strcmp(argv[i], "--strict")) {
			strict = true;
			ret = 0;
		} else if (i + 1 == argc) {
			/* An option without its value. */
		} else if (!strcmp(argv[i], "--channels")) {
			ret = parse_uint(argv[++i], 30000, &nr_channels);
		} else if (!strcmp(argv[i], "--messages")) {
			ret = parse_uint(argv[++i], 1000000, &per_channel);
		} else if (!strcmp(argv[i], "--window")) {
			ret = parse_uint(argv[++i], 4096, &window);
		} else if (!strcmp(argv[i], "--rounds")) {
			ret = parse_uint(argv[++i], MAX_ROUNDS, &rounds);
		} else if (!strcmp(argv[i], "--timeout")) {
			ret = parse_uint(argv[++i], 3600, &timeout_s);
		}
		if (ret || window < 2)
			goto usage;
	}

	srv.window = window & ~1ul;
	srv.nr_rounds = rounds;
	srv.nr_clients = 1 + nr_channels;
	srv.phases[0] = (struct phase){
		.name = "one channel", .first = 0, .nr = 1,
		.msgs_per_client = nr_channels * per_channel,
	};
	srv.phases[1] = (struct phase){
		.name = "many channels", .first = 1, .nr = nr_channels,
		.msgs_per_client = per_channel,
	};
	srv.conns = calloc(srv.nr_clients, sizeof(*srv.conns));
	srv.pids = calloc(srv.nr_clients, sizeof(*srv.pids));
	if (!srv.conns || !srv.pids)
		return 1;
	srv.deadline = clock_ns(CLOCK_MONOTONIC) + timeout_s * NSEC_PER_SEC;

	printf("uring-server: %lu channels x %lu messages, against one channel x %lu; window %lu, %lu rounds\n",
	       nr_channels, per_channel, nr_channels * per_channel, window,
	       rounds);
	ret = raise_nofile(srv.nr_clients + 64);
	if (ret) {
		/* Not a failure of the library: this machine can't run it. */
		fprintf(stderr, "uring-server: RLIMIT_NOFILE too low for %u channels, skipped\n",
			srv.nr_clients);
		return 4;
	}
	if (!uring_usable())
		return 4;
	ret = server_setup(&srv);
	if (ret) {
		fprintf(stderr, "uring-server: setup: %s\n", strerror(-ret));
		server_teardown(&srv);
		return 1;
	}
	server_run(&srv);
	server_teardown(&srv);

	ok = !srv.failed && !srv.bad && srv.done;
	if (ok)
		ok = report(&srv, strict);
	else
		printf("  FAIL: %llu messages wrong or out of order, %u of %u clients failed\n",
		       (unsigned long long)srv.bad, srv.clients_failed,
		       srv.nr_clients);
	free(srv.conns);
	free(srv.pids);
	printf("uring-server: %s\n", ok ? "ok" : "FAILED");
	return ok ? 0 : 1;
usage:
	fprintf(stderr,
		"usage: %s [--channels N] [--messages PER_CHANNEL] [--window N]\n"
		"       [--rounds N] [--timeout S] [--strict]\n", argv[0]);
	return 2;
}
