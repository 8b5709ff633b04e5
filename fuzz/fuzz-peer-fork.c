// SPDX-License-Identifier: MIT
/*
 * fuzz-peer: a forked child on its default loop. OP_FORK makes a socket
 * pair, binds one end to a socket on the input's loop, and forks; the
 * child takes its default loop (ipcsock_loop_default(), which must be a
 * loop of its own, not the parent's: ipcsock(7) says loops do not survive
 * fork), binds the other end on it, sends a message and waits for the
 * reply, which the parent's ready_read sends. The parent keeps a default
 * loop of its own for the child to inherit. With arg bit 0 the child then
 * also calls into what it inherited, the input's loop and the
 * conversation's socket, each call of which must fail with ECHILD, and
 * frees them, which must release its own copies only (ipcsock(7)).
 * Afterwards the parent's loop and the conversation go on as before:
 * every invariant still holds, and the process has exactly the fds it
 * had.
 *
 * A fork of this process and the child's exit take 20-80 ms, 10-30
 * inputs' worth, so OP_FORK acts only with a magic byte after it, once
 * per input at most, and once every FZ_FORK_EVERY_MS: the first one of a
 * process always, so that an input reproduces on its own
 * (IPCSOCK_FUZZ_FORK_EVERY_MS=0: every time).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz-peer.h"

#define FZ_FORK_MAGIC		0xa5
#define FZ_FORK_MS		5000
#define FZ_FORK_EVERY_MS	2000

#define FORK_MSG_LEN		23
#define FORK_MSG_SEED		0x5c
#define FORK_REPLY_LEN		17
#define FORK_REPLY_SEED		0xc5

/* The child's exit status: what failed. */
enum {
	FORK_OK,
	FORK_EX_LOOP = 10,	/* ipcsock_loop_default() */
	FORK_EX_NEW,		/* ipcsock_new(NULL) */
	FORK_EX_BIND,
	FORK_EX_SEND,
	FORK_EX_DISPATCH,
	FORK_EX_TIMEOUT,	/* no reply */
	FORK_EX_REPLY,		/* not the reply sent */
	FORK_EX_HANGUP,
	FORK_EX_PARENT,		/* a call on the parent's did not fail */
};

static const char * const fork_what[] = {
	[FORK_EX_LOOP - FORK_EX_LOOP] = "ipcsock_loop_default() failed",
	[FORK_EX_NEW - FORK_EX_LOOP] = "ipcsock_new(NULL) failed",
	[FORK_EX_BIND - FORK_EX_LOOP] = "ipcsock_bind() on its default loop failed",
	[FORK_EX_SEND - FORK_EX_LOOP] = "ipcsock_send() failed",
	[FORK_EX_DISPATCH - FORK_EX_LOOP] = "ipcsock_loop_dispatch() failed",
	[FORK_EX_TIMEOUT - FORK_EX_LOOP] = "no reply from the parent",
	[FORK_EX_REPLY - FORK_EX_LOOP] = "the reply was not the one sent",
	[FORK_EX_HANGUP - FORK_EX_LOOP] = "its channel hung up",
	[FORK_EX_PARENT - FORK_EX_LOOP] = "a call on the parent's loop or socket did not fail with ECHILD",
};

struct fork_end {
	struct ipcsock *sock;
	unsigned int got;
	bool bad;
	unsigned int hups;
	int hup_err;
};

static bool forked;		/* in this input */
static unsigned long forks;
static uint64_t fork_ms, fork_last_ms;

/* Not too often: see above. */
static bool fork_due(void)
{
	static long every = -1;
	const char *env;

	if (every < 0) {
		env = getenv("IPCSOCK_FUZZ_FORK_EVERY_MS");
		every = env ? atol(env) : FZ_FORK_EVERY_MS;
	}
	if (forks && now_ms() - fork_last_ms < (uint64_t)every)
		return false;
	fork_last_ms = now_ms();
	return true;
}

void fork_totals(void)
{
	fprintf(stderr, "fuzz-peer: %lu forks in %llu ms\n", forks,
		(unsigned long long)fork_ms);
}

void fork_reset(void)
{
	forked = false;
}

static int end_send(struct ipcsock *sock, unsigned int len, unsigned int seed)
{
	uint8_t buf[32];
	struct ipcsock_payload p = { .data = buf, .len = len };

	fill_pattern(buf, len, seed);
	return ipcsock_send(sock, &p);
}

static void end_ready(struct ipcsock *sock, void *arg, unsigned int len,
		      unsigned int seed, bool reply)
{
	struct fork_end *e = arg;
	struct ipcsock_payload p;

	while (!ipcsock_receive(sock, &p)) {
		if (p.len != len || p.nr_fds || !check_pattern(p.data, len, seed))
			e->bad = true;
		e->got++;
		if (reply && end_send(sock, FORK_REPLY_LEN, FORK_REPLY_SEED))
			e->bad = true;
	}
}

static void child_ready(struct ipcsock *sock, void *arg)
{
	end_ready(sock, arg, FORK_REPLY_LEN, FORK_REPLY_SEED, false);
}

static void parent_ready(struct ipcsock *sock, void *arg)
{
	end_ready(sock, arg, FORK_MSG_LEN, FORK_MSG_SEED, true);
}

static void end_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct fork_end *e = arg;

	e->hups++;
	e->hup_err = err;
	(void)sock;
}

static __attribute__((noreturn)) void child_exit(int code, const char *what,
						 int ret)
{
	if (what)
		fprintf(stderr, "fuzz-peer: fork child: %s: %d (%s)\n", what,
			ret, strerror(ret < 0 ? -ret : ret));
	_exit(code);
}

static void child_echild(const char *what, int ret)
{
	if (ret != -ECHILD)
		child_exit(FORK_EX_PARENT, what, ret);
}

/*
 * What the child inherited: every call fails with ECHILD, and freeing
 * releases the child's copies only, which the parent's conversation
 * shows. Callbacks set here are only recorded.
 */
static void child_touch_parent(struct fz *fz)
{
	struct ipcsock_payload p = { .data = "x", .len = 1 };
	struct ipcsock_loop *loop = fz->fl->loop;

	child_echild("dispatch of the parent's loop",
		     ipcsock_loop_dispatch(loop, 0));
	child_echild("flush of the parent's loop", ipcsock_loop_flush(loop));
	child_echild("fd of the parent's loop", ipcsock_loop_fd(loop));
	if (fz->sock && !fz->lib_closed) {
		child_echild("send on the parent's socket",
			     ipcsock_send(fz->sock, &p));
		child_echild("receive on the parent's socket",
			     ipcsock_receive(fz->sock, &p));
		ipcsock_set_ready_read(fz->sock, NULL, NULL);
		ipcsock_close(fz->sock);
		ipcsock_free(fz->sock);
	}
	ipcsock_loop_free(loop);
}

/* The child: its own default loop, one exchange with the parent. */
static __attribute__((noreturn)) void fork_child(struct fz *fz, int fd,
						 bool touch)
{
	uint64_t end = now_ms() + FZ_FORK_MS;
	struct fork_end e = { 0 };
	struct ipcsock_loop *loop;
	int ret;

	loop = ipcsock_loop_default();
	if (!loop)
		child_exit(FORK_EX_LOOP, "ipcsock_loop_default", -errno);
	e.sock = ipcsock_new(NULL);
	if (!e.sock)
		child_exit(FORK_EX_NEW, "ipcsock_new(NULL)", -errno);
	ipcsock_set_ready_read(e.sock, child_ready, &e);
	ipcsock_set_hangup(e.sock, end_hangup, &e);
	ret = ipcsock_bind(e.sock, fd);
	if (ret)
		child_exit(FORK_EX_BIND, "ipcsock_bind", ret);
	ret = end_send(e.sock, FORK_MSG_LEN, FORK_MSG_SEED);
	if (ret)
		child_exit(FORK_EX_SEND, "ipcsock_send", ret);
	while (!e.got && !e.hups) {
		if (now_ms() > end)
			child_exit(FORK_EX_TIMEOUT, NULL, 0);
		ret = ipcsock_loop_dispatch(loop, 10);
		if (ret < 0 && ret != -EINTR)
			child_exit(FORK_EX_DISPATCH, "ipcsock_loop_dispatch",
				   ret);
	}
	if (e.bad || e.got != 1)
		child_exit(FORK_EX_REPLY, NULL, 0);
	if (e.hups)
		child_exit(FORK_EX_HANGUP, "hangup", e.hup_err);
	ipcsock_free(e.sock);
	if (touch)
		child_touch_parent(fz);
	_exit(FORK_OK);
}

/*
 * OP_FORK [b]: with b == FZ_FORK_MAGIC, once per input (and not too
 * often, fork_due()): fork a child that talks to a socket on the input's
 * loop from its default loop; with arg bit 0 it then calls into the
 * input's loop and socket, which it inherited.
 */
void op_fork(struct fz *fz, struct fz_in *in, unsigned int arg)
{
	unsigned int b = in_u8(in);
	struct fork_end e = { 0 };
	struct fz_loop *fl = fz->fl;
	bool exited = false;
	int sv[2], ret, status = 0;
	uint64_t end, t;
	pid_t pid;

	if (b != FZ_FORK_MAGIC || forked || fz->nofile_low || !fork_due())
		return;
	forked = true;
	/* The parent waits below: its chain must not hold the ring up. */
	if (fl->ring)
		app_chain_end(fl, false);
	/* The default loop for the child to inherit: fz_loops_early(). */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		fz_fail("socketpair: %s", strerror(errno));
	e.sock = ipcsock_new(fl->loop);
	if (!e.sock)
		fz_fail("ipcsock_new: %s", strerror(errno));
	ipcsock_set_ready_read(e.sock, parent_ready, &e);
	ipcsock_set_hangup(e.sock, end_hangup, &e);
	ret = ipcsock_bind(e.sock, sv[1]);
	if (ret)
		fz_fail("OP_FORK: ipcsock_bind: %d", ret);
	fflush(stderr);
	forks++;
	t = now_ms();
	pid = fork();
	if (pid < 0)
		fz_fail("fork: %s", strerror(errno));
	if (!pid)
		fork_child(fz, sv[0], arg & 1);
	close(sv[0]);

	end = now_ms() + FZ_SETTLE_MS;
	while (!exited) {
		ret = waitpid(pid, &status, WNOHANG);
		if (ret == pid)
			exited = true;
		else if (ret < 0)
			fz_fail("waitpid: %s", strerror(errno));
		if (exited)
			break;
		if (now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fz_fail("OP_FORK: the child did not exit (parent got %u)",
				e.got);
		}
		fz_dispatch(fz, 1);
	}
	fork_ms += now_ms() - t;
	ipcsock_free(e.sock);
	if (WIFSIGNALED(status))
		fz_fail("OP_FORK: the child died of signal %d",
			WTERMSIG(status));
	if (WEXITSTATUS(status) >= FORK_EX_LOOP &&
	    WEXITSTATUS(status) <= FORK_EX_HANGUP)
		fz_fail("OP_FORK: in the child, %s (the parent's loop?)",
			fork_what[WEXITSTATUS(status) - FORK_EX_LOOP]);
	if (WEXITSTATUS(status))
		fz_fail("OP_FORK: the child exited with %d",
			WEXITSTATUS(status));
	if (e.got != 1 || e.bad)
		fz_fail("OP_FORK: the parent's socket got %u messages%s", e.got,
			e.bad ? ", not the one sent" : "");
	if (e.hups && e.hup_err)
		fz_fail("OP_FORK: the parent's socket: hangup(%d)", e.hup_err);
}
