// SPDX-License-Identifier: GPL-2.0
/*
 * Cross-process test in the libcamera style: the parent creates the
 * channel, fork+execs a worker (this program again, with the remote fd
 * number on argv after clearing FD_CLOEXEC on it in the child) and the two
 * run a small command protocol over the library, both ends on the same
 * backend:
 *
 *   ECHO     reply with the same bytes
 *   REVERSE  reply with the bytes reversed
 *   SUM      reply with the 64-bit sum of the uint32_t array sent
 *   JOIN     read() every fd sent to its end (advancing the shared file
 *            offsets) and reply with the concatenation, as bytes and as a
 *            new memfd: the offsets the parent sees afterwards prove that
 *            the worker got the same open files, in the same order
 *   APPEND   (no reply) append the bytes to the worker's log
 *   WRITE    (no reply) write() the bytes to the fd sent, at its offset
 *   GET      reply with the log and clear it; after fire-and-forget
 *            commands this sync call proves they all ran, in order
 *   FDCOUNT  reply with the worker's number of open fds
 *   FLOOD    reply with n messages numbered 0..n-1
 *   CLOSE    (no reply) close the channel and exit
 *
 * The worker exits 0 only if the channel ended cleanly (CLOSE, or the
 * parent's orderly close) and it leaked no descriptor.
 */
#include "selftest.h"

#define WORKER_ARG	"--ipcsock-worker"

enum wcmd {
	W_ECHO = 1,
	W_REVERSE,
	W_SUM,
	W_JOIN,
	W_APPEND,
	W_WRITE,
	W_GET,
	W_FDCOUNT,
	W_FLOOD,
	W_CLOSE,
};

/* Every message starts with this; replies carry the command's id. */
struct wmsg {
	uint32_t cmd;
	uint32_t id;
};

#define W_MAX_DATA	(IPCSOCK_DEFAULT_MAX_MSG_SIZE - sizeof(struct wmsg))

/* Worker exit codes. */
enum {
	WX_OK = 0,
	WX_ARGS = 20,
	WX_SETUP,
	WX_TIMEOUT,
	WX_PROTO,
	WX_SEND,
	WX_HANGUP_ERR,
	WX_LEAK,
	WX_INHERITED,
};

/* ---- The worker ---------------------------------------------------- */

struct worker {
	struct ipcsock *sock;
	char log[W_MAX_DATA];
	size_t log_len;
	uint32_t flood_id;
	uint32_t flood_next;
	uint32_t flood_n;
	bool closed;
	bool hung_up;
	int hangup_err;
	int error;
};

static int worker_reply(struct worker *w, const struct wmsg *req,
			const void *data, size_t len, int *fds,
			unsigned int nr_fds)
{
	static unsigned char buf[IPCSOCK_DEFAULT_MAX_MSG_SIZE];
	struct wmsg hdr = *req;
	struct ipcsock_payload p;

	memcpy(buf, &hdr, sizeof(hdr));
	if (len)
		memcpy(buf + sizeof(hdr), data, len);
	p = msg_of(buf, sizeof(hdr) + len, fds, nr_fds);
	return ipcsock_send(w->sock, &p);
}

static int worker_join(struct worker *w, const struct wmsg *req,
		       const int *fds, unsigned int nr_fds)
{
	char out[256];
	size_t len = 0;
	unsigned int i;
	ssize_t n;
	int mfd, ret;

	for (i = 0; i < nr_fds; i++) {
		while ((n = read(fds[i], out + len, sizeof(out) - 1 - len)) > 0)
			len += n;
		if (n < 0)
			return WX_PROTO;
	}
	out[len] = '\0';
	mfd = memfd_with("joined", out);
	if (mfd < 0)
		return WX_PROTO;
	ret = worker_reply(w, req, out, len, &mfd, 1);
	/* The library holds its own reference: ours can go at once. */
	close(mfd);
	return ret ? WX_SEND : 0;
}

static int worker_handle(struct worker *w, const struct ipcsock_payload *p)
{
	const unsigned char *data = (const unsigned char *)p->data +
				    sizeof(struct wmsg);
	size_t len = p->len - sizeof(struct wmsg), i;
	unsigned char rev[W_MAX_DATA];
	struct wmsg req;
	uint64_t sum = 0;
	uint32_t v;
	int n;

	if (p->len < sizeof(req))
		return WX_PROTO;
	memcpy(&req, p->data, sizeof(req));

	switch (req.cmd) {
	case W_ECHO:
		return worker_reply(w, &req, data, len, NULL, 0) ? WX_SEND : 0;
	case W_REVERSE:
		for (i = 0; i < len; i++)
			rev[i] = data[len - 1 - i];
		return worker_reply(w, &req, rev, len, NULL, 0) ? WX_SEND : 0;
	case W_SUM:
		for (i = 0; i + sizeof(v) <= len; i += sizeof(v)) {
			memcpy(&v, data + i, sizeof(v));
			sum += v;
		}
		return worker_reply(w, &req, &sum, sizeof(sum), NULL, 0) ?
		       WX_SEND : 0;
	case W_JOIN:
		return worker_join(w, &req, p->fds, p->nr_fds);
	case W_APPEND:
		if (w->log_len + len > sizeof(w->log))
			return WX_PROTO;
		memcpy(w->log + w->log_len, data, len);
		w->log_len += len;
		return 0;
	case W_WRITE:
		if (p->nr_fds != 1 ||
		    write(p->fds[0], data, len) != (ssize_t)len)
			return WX_PROTO;
		return 0;
	case W_GET:
		n = worker_reply(w, &req, w->log, w->log_len, NULL, 0);
		w->log_len = 0;
		return n ? WX_SEND : 0;
	case W_FDCOUNT:
		/* Not counting the fds of the message being handled. */
		n = count_open_fds() - p->nr_fds;
		return worker_reply(w, &req, &n, sizeof(n), NULL, 0) ?
		       WX_SEND : 0;
	case W_FLOOD:
		if (len != sizeof(v) || w->flood_n)
			return WX_PROTO;
		memcpy(&w->flood_n, data, sizeof(v));
		w->flood_id = req.id;
		w->flood_next = 0;
		return 0;
	case W_CLOSE:
		ipcsock_close(w->sock);
		w->closed = true;
		return 0;
	}
	return WX_PROTO;
}

static void worker_ready_read(struct ipcsock *sock, void *arg)
{
	struct worker *w = arg;
	struct ipcsock_payload p;
	int err;

	while (!w->closed && !w->error && ipcsock_receive(sock, &p) == 0) {
		err = worker_handle(w, &p);
		/* Every fd received is closed once the command is done. */
		close_fds_array(p.fds, p.nr_fds);
		if (err)
			w->error = err;
	}
}

static void worker_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct worker *w = arg;

	w->hung_up = true;
	w->hangup_err = err;
}

/* Flood replies go out from the main loop, waiting out -ENOBUFS. */
static int worker_flood(struct worker *w)
{
	struct wmsg req = { .cmd = W_FLOOD, .id = w->flood_id };
	int ret;

	while (w->flood_next < w->flood_n) {
		ret = worker_reply(w, &req, &w->flood_next,
				   sizeof(w->flood_next), NULL, 0);
		if (ret == -ENOBUFS)
			return 0;
		if (ret)
			return WX_SEND;
		w->flood_next++;
	}
	w->flood_n = 0;
	return 0;
}

/* Library descriptors of the parent must not have leaked into us. */
static bool worker_inherited_library_fds(int channel)
{
	static const char * const kinds[] = {
		"anon_inode:[io_uring]", "anon_inode:[eventpoll]",
		"anon_inode:[eventfd]",
	};
	char path[64], target[128];
	unsigned int i;
	ssize_t n;
	int fd;

	for (fd = 3; fd < FD_SNAP_MAX; fd++) {
		if (fd == channel || !fd_is_open(fd))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		if (!strncmp(target, "socket:", 7))
			return true;
		for (i = 0; i < ARRAY_SIZE(kinds); i++)
			if (!strcmp(target, kinds[i]))
				return true;
	}
	return false;
}

static int worker_main(int argc, char **argv)
{
	struct ipcsock_loop *loop;
	struct worker *w;
	enum ipcsock_backend backend;
	uint64_t deadline;
	int fd, fd_start, ret;

	if (argc != 4)
		return WX_ARGS;
	fd = atoi(argv[2]);
	if (!strcmp(argv[3], "epoll"))
		backend = IPCSOCK_BACKEND_EPOLL;
	else if (!strcmp(argv[3], "uring-ring-sends"))
		backend = BACKEND_URING_RING_SENDS;
	else
		backend = IPCSOCK_BACKEND_URING;
	if (worker_inherited_library_fds(fd))
		return WX_INHERITED;
	fd_start = count_open_fds();

	w = calloc(1, sizeof(*w));
	loop = loop_new(backend, 0, 0, 0);
	if (!w || !loop || ipcsock_loop_backend(loop) != real_backend(backend))
		return WX_SETUP;
	w->sock = ipcsock_new(loop);
	if (!w->sock || ipcsock_bind(w->sock, fd))
		return WX_SETUP;
	ipcsock_set_ready_read(w->sock, worker_ready_read, w);
	ipcsock_set_hangup(w->sock, worker_hangup, w);

	deadline = now_ms() + 60000;
	while (!w->closed && !w->hung_up && !w->error) {
		if (now_ms() > deadline)
			return WX_TIMEOUT;
		ret = ipcsock_loop_dispatch(loop, 100);
		if (ret < 0 && ret != -EINTR)
			return WX_SETUP;
		if (w->flood_n)
			w->error = worker_flood(w);
	}
	if (w->error)
		return w->error;
	if (w->hung_up && w->hangup_err)
		return WX_HANGUP_ERR;

	ipcsock_close(w->sock);
	ipcsock_free(w->sock);
	ipcsock_loop_free(loop);
	free(w);
	/* Everything the worker had, less the channel. */
	return count_open_fds() == fd_start - 1 ? WX_OK : WX_LEAK;
}

/* ---- The parent ---------------------------------------------------- */

/* The parent's end of the channel to the worker, and what it saw. */
struct parent {
	struct ipcsock_test t;
	struct ipcsock *s;
	uint32_t next_id;
	int hangup;
	int hangup_err;
};

FIXTURE(worker) {
	struct parent par;
};

BACKEND_VARIANTS(worker);

static void parent_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct parent *par = arg;

	par->hangup++;
	par->hangup_err = err;
}

FIXTURE_SETUP(worker)
{
	char exe[PATH_MAX], fdstr[16];
	ssize_t n;
	int remote;
	pid_t pid;

	ctx_setup(_metadata, &self->par.t, variant->backend);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	ASSERT_LT(0, n);
	exe[n] = '\0';

	self->par.s = ctx_sock(_metadata, &self->par.t, self->par.t.loop);
	ipcsock_set_hangup(self->par.s, parent_hangup, &self->par);
	remote = ipcsock_create(self->par.s);
	ASSERT_LE(0, remote);
	ASSERT_TRUE(fd_is_cloexec(remote));
	snprintf(fdstr, sizeof(fdstr), "%d", remote);

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (fd_clear_cloexec(remote))
			_exit(127);
		execl(exe, "ipcsock-worker", WORKER_ARG, fdstr,
		      variant->backend == IPCSOCK_BACKEND_EPOLL ? "epoll" :
		      variant->backend == BACKEND_URING_RING_SENDS ?
		      "uring-ring-sends" : "uring", (char *)NULL);
		_exit(127);
	}
	self->par.t.child = pid;
	close(remote);
}

FIXTURE_TEARDOWN(worker)
{
	ctx_teardown(_metadata, &self->par.t);
}

/* Wait for the worker to exit; its status, or -1 on timeout. */
static int worker_wait(struct parent *par, int timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;
	int status;
	pid_t ret;

	for (;;) {
		ret = waitpid(par->t.child, &status, WNOHANG);
		if (ret == par->t.child) {
			par->t.child = 0;
			return status;
		}
		if (ret < 0 || now_ms() > deadline)
			return -1;
		/* Keep the channel moving while waiting. */
		ipcsock_loop_dispatch(par->t.loop, 5);
	}
}

static void expect_worker_ok(struct __test_metadata *_metadata,
			     struct parent *par)
{
	int status = worker_wait(par, WAIT_MS);

	ASSERT_NE(-1, status) TH_LOG("worker did not exit");
	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("worker killed by signal %d",
					      WTERMSIG(status));
	EXPECT_EQ(WX_OK, WEXITSTATUS(status));
}

/* The parent closes; the worker sees hangup(0) and exits cleanly. */
static void finish(struct __test_metadata *_metadata,
		   struct parent *par)
{
	ipcsock_close(par->s);
	expect_worker_ok(_metadata, par);
	EXPECT_EQ(0, par->hangup);
}

static uint32_t post(struct __test_metadata *_metadata,
		     struct parent *par, uint32_t cmd,
		     const void *data, size_t len, int *fds,
		     unsigned int nr_fds)
{
	static unsigned char buf[IPCSOCK_DEFAULT_MAX_MSG_SIZE];
	struct wmsg hdr = { .cmd = cmd, .id = ++par->next_id };
	struct ipcsock_payload p;

	memcpy(buf, &hdr, sizeof(hdr));
	if (len)
		memcpy(buf + sizeof(hdr), data, len);
	p = msg_of(buf, sizeof(hdr) + len, fds, nr_fds);
	EXPECT_EQ(0, ipcsock_send(par->s, &p));
	return hdr.id;
}

/*
 * A synchronous call: send, then wait for the reply with the same id.
 * The reply's bytes (after the header) are copied to @out; its fds, if
 * any, are returned in @fds (caller closes).
 */
static ssize_t call(struct __test_metadata *_metadata,
		    struct parent *par, uint32_t cmd,
		    const void *data, size_t len, int *fds,
		    unsigned int nr_fds, void *out, size_t out_cap,
		    int *rfds, unsigned int *nr_rfds)
{
	struct ipcsock_payload p;
	struct wmsg hdr;
	uint32_t id;
	size_t n;

	id = post(_metadata, par, cmd, data, len, fds, nr_fds);
	EXPECT_EQ(0, receive_wait(par->t.loop, par->s, &p, WAIT_MS)) {
		TH_LOG("no reply to command %u", cmd);
		return -1;
	}
	if (p.len < sizeof(hdr)) {
		close_fds_array(p.fds, p.nr_fds);
		return -1;
	}
	memcpy(&hdr, p.data, sizeof(hdr));
	EXPECT_EQ(cmd, hdr.cmd);
	EXPECT_EQ(id, hdr.id);
	n = p.len - sizeof(hdr);
	EXPECT_GE(out_cap, n);
	if (n > out_cap)
		n = out_cap;
	if (out)
		memcpy(out, (unsigned char *)p.data + sizeof(hdr), n);
	if (nr_rfds) {
		*nr_rfds = p.nr_fds;
		memcpy(rfds, p.fds, p.nr_fds * sizeof(int));
	} else {
		EXPECT_EQ(0, p.nr_fds);
		close_fds_array(p.fds, p.nr_fds);
	}
	return n;
}

TEST_F(worker, echo)
{
	static unsigned char in[W_MAX_DATA], out[W_MAX_DATA];
	static const size_t sizes[] = { 0, 1, 5, 4096, W_MAX_DATA };
	unsigned int i, j;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		for (j = 0; j < sizes[i]; j++)
			in[j] = (unsigned char)(i + j * 3);
		memset(out, 0, sizeof(out));
		EXPECT_EQ((ssize_t)sizes[i],
			  call(_metadata, &self->par, W_ECHO, in, sizes[i],
			       NULL, 0, out, sizeof(out), NULL, NULL));
		EXPECT_EQ(0, memcmp(in, out, sizes[i]));
	}
	finish(_metadata, &self->par);
}

TEST_F(worker, reverse)
{
	char out[64] = "";

	EXPECT_EQ(11, call(_metadata, &self->par, W_REVERSE, "hello world", 11,
			   NULL, 0, out, sizeof(out), NULL, NULL));
	EXPECT_STREQ("dlrow olleh", out);
	finish(_metadata, &self->par);
}

TEST_F(worker, sum)
{
	static uint32_t v[1000];
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < 1000; i++)
		v[i] = i + 1;
	EXPECT_EQ(sizeof(sum), call(_metadata, &self->par, W_SUM, v, sizeof(v),
				    NULL, 0, &sum, sizeof(sum), NULL, NULL));
	EXPECT_EQ(500500, sum);
	/* Needs 64 bits. */
	for (i = 0; i < 1000; i++)
		v[i] = 0xffffffffu;
	EXPECT_EQ(sizeof(sum), call(_metadata, &self->par, W_SUM, v, sizeof(v),
				    NULL, 0, &sum, sizeof(sum), NULL, NULL));
	EXPECT_EQ(1000ull * 0xffffffffu, sum);
	finish(_metadata, &self->par);
}

/*
 * Two memfds "Foo" and "Bar": the worker read()s each, which moves the
 * file offset the parent shares with it. Order shows in the joined reply,
 * identity (same open file, not a copy) in the offsets.
 */
TEST_F(worker, fds_foo_bar)
{
	char out[64], content[64];
	int fds[2], swapped[2], r[4];
	unsigned int nr;

	fds[0] = memfd_with("Foo", "Foo");
	fds[1] = memfd_with("Bar", "Bar");
	ctx_fd(_metadata, &self->par.t, fds[0]);
	ctx_fd(_metadata, &self->par.t, fds[1]);

	memset(out, 0, sizeof(out));
	EXPECT_EQ(6, call(_metadata, &self->par, W_JOIN, NULL, 0, fds, 2, out,
			  sizeof(out), r, &nr));
	EXPECT_STREQ("FooBar", out);
	ASSERT_EQ(1, nr);
	EXPECT_EQ(6, fd_content(r[0], content, sizeof(content)));
	EXPECT_STREQ("FooBar", content);
	EXPECT_TRUE(fd_is_cloexec(r[0]));
	close(r[0]);
	EXPECT_EQ(3, fd_offset(fds[0]));
	EXPECT_EQ(3, fd_offset(fds[1]));

	/* The other order; and a moved offset is honoured by the reader. */
	lseek(fds[0], 0, SEEK_SET);
	lseek(fds[1], 1, SEEK_SET);
	swapped[0] = fds[1];
	swapped[1] = fds[0];
	memset(out, 0, sizeof(out));
	EXPECT_EQ(5, call(_metadata, &self->par, W_JOIN, NULL, 0, swapped, 2,
			  out, sizeof(out), r, &nr));
	EXPECT_STREQ("arFoo", out);
	ASSERT_EQ(1, nr);
	close(r[0]);
	EXPECT_EQ(3, fd_offset(fds[0]));
	EXPECT_EQ(3, fd_offset(fds[1]));

	/* Read to the end already: nothing more. */
	memset(out, 0, sizeof(out));
	EXPECT_EQ(0, call(_metadata, &self->par, W_JOIN, NULL, 0, fds, 2, out,
			  sizeof(out), r, &nr));
	ASSERT_EQ(1, nr);
	close(r[0]);
	finish(_metadata, &self->par);
}

/* Fire-and-forget commands, then one sync call: all ran, in order. */
TEST_F(worker, fire_and_forget_then_sync)
{
	char expect[512] = "", out[512] = "", num[8];
	char content[64];
	int i, mfd;

	for (i = 0; i < 100; i++) {
		snprintf(num, sizeof(num), "%d,", i);
		strcat(expect, num);
		post(_metadata, &self->par, W_APPEND, num, strlen(num), NULL,
		     0);
	}
	EXPECT_EQ((ssize_t)strlen(expect),
		  call(_metadata, &self->par, W_GET, NULL, 0, NULL, 0, out,
		       sizeof(out) - 1, NULL, NULL));
	EXPECT_STREQ(expect, out);

	/* The same through a shared file: each write moves its offset. */
	mfd = memfd_with("letters", "");
	ctx_fd(_metadata, &self->par.t, mfd);
	for (i = 0; i < 26; i++) {
		char c = 'a' + i;

		post(_metadata, &self->par, W_WRITE, &c, 1, &mfd, 1);
	}
	/* Sync: GET is answered only after every WRITE before it. */
	EXPECT_EQ(0, call(_metadata, &self->par, W_GET, NULL, 0, NULL, 0, out,
			  sizeof(out), NULL, NULL));
	EXPECT_EQ(26, fd_offset(mfd));
	EXPECT_EQ(26, fd_content(mfd, content, sizeof(content)));
	EXPECT_STREQ("abcdefghijklmnopqrstuvwxyz", content);
	finish(_metadata, &self->par);
}

/* The worker closes every fd it receives: its count does not grow. */
TEST_F(worker, worker_fd_count_stable)
{
	int start = -1, now = -1, mfd, fds[16], i;
	char out[16];
	unsigned int nr;
	int r[4];

	EXPECT_EQ(sizeof(int), call(_metadata, &self->par, W_FDCOUNT, NULL, 0,
				    NULL, 0, &start, sizeof(start), NULL,
				    NULL));
	mfd = memfd_with("count", "c");
	ctx_fd(_metadata, &self->par.t, mfd);
	for (i = 0; i < 16; i++)
		fds[i] = mfd;
	for (i = 0; i < 20; i++) {
		post(_metadata, &self->par, W_WRITE, "", 0, &mfd, 1);
		call(_metadata, &self->par, W_JOIN, NULL, 0, fds, 16, out,
		     sizeof(out), r, &nr);
		close_fds_array(r, nr);
	}
	EXPECT_EQ(sizeof(int), call(_metadata, &self->par, W_FDCOUNT, NULL, 0,
				    NULL, 0, &now, sizeof(now), NULL, NULL));
	EXPECT_LT(0, start);
	EXPECT_EQ(start, now);
	finish(_metadata, &self->par);
}

/* Many replies from the worker, across its -ENOBUFS, arrive in order. */
TEST_F_TIMEOUT(worker, worker_flood, 60)
{
	struct ipcsock_payload p;
	uint32_t n = 20000, got = 0, v, id;
	struct wmsg hdr;
	int bad = 0;

	id = post(_metadata, &self->par, W_FLOOD, &n, sizeof(n), NULL, 0);
	while (got < n && receive_wait(self->par.t.loop, self->par.s, &p,
				       WAIT_MS) == 0) {
		if (p.len != sizeof(hdr) + sizeof(v)) {
			bad++;
			continue;
		}
		memcpy(&hdr, p.data, sizeof(hdr));
		memcpy(&v, (unsigned char *)p.data + sizeof(hdr), sizeof(v));
		if (hdr.cmd != W_FLOOD || hdr.id != id || v != got)
			bad++;
		got++;
		/* A slow reader now and then. */
		if (got % 4096 == 0)
			usleep(20000);
	}
	EXPECT_EQ(n, got);
	EXPECT_EQ(0, bad);
	finish(_metadata, &self->par);
}

/* CLOSE: the worker closes its end; the parent gets hangup(0), once. */
TEST_F(worker, close_command)
{
	char out[8];

	EXPECT_EQ(2, call(_metadata, &self->par, W_ECHO, "hi", 2, NULL, 0, out,
			  sizeof(out), NULL, NULL));
	post(_metadata, &self->par, W_CLOSE, NULL, 0, NULL, 0);
	EXPECT_TRUE(dispatch_until(self->par.t.loop, self->par.hangup,
				   WAIT_MS));
	expect_worker_ok(_metadata, &self->par);
	dispatch_for(self->par.t.loop, 50);
	EXPECT_EQ(1, self->par.hangup);
	EXPECT_EQ(0, self->par.hangup_err);
	EXPECT_EQ(-EPIPE, send_str(self->par.s, "too late"));
}

/* Messages sent right before CLOSE are all handled before it. */
TEST_F(worker, close_after_fire_and_forget)
{
	char content[64];
	int mfd, i;

	mfd = memfd_with("before-close", "");
	ctx_fd(_metadata, &self->par.t, mfd);
	for (i = 0; i < 10; i++)
		post(_metadata, &self->par, W_WRITE, "x", 1, &mfd, 1);
	post(_metadata, &self->par, W_CLOSE, NULL, 0, NULL, 0);
	EXPECT_TRUE(dispatch_until(self->par.t.loop, self->par.hangup,
				   WAIT_MS));
	expect_worker_ok(_metadata, &self->par);
	EXPECT_EQ(0, self->par.hangup_err);
	EXPECT_EQ(10, fd_content(mfd, content, sizeof(content)));
}

/* A worker that dies is noticed at once: hangup, then -EPIPE. */
TEST_F(worker, worker_killed)
{
	char out[8];
	int status;

	EXPECT_EQ(2, call(_metadata, &self->par, W_ECHO, "hi", 2, NULL, 0, out,
			  sizeof(out), NULL, NULL));
	ASSERT_EQ(0, kill(self->par.t.child, SIGKILL));
	EXPECT_TRUE(dispatch_until(self->par.t.loop, self->par.hangup,
				   WAIT_MS));
	EXPECT_EQ(0, self->par.hangup_err);
	status = worker_wait(&self->par, WAIT_MS);
	EXPECT_TRUE(WIFSIGNALED(status));
	dispatch_for(self->par.t.loop, 50);
	EXPECT_EQ(1, self->par.hangup);
	EXPECT_EQ(-EPIPE, send_str(self->par.s, "anyone?"));
}

/* It dies with our messages unread: -ECONNRESET. */
TEST_F(worker, worker_killed_with_unread_messages)
{
	char out[8];
	int i, status;

	EXPECT_EQ(2, call(_metadata, &self->par, W_ECHO, "hi", 2, NULL, 0, out,
			  sizeof(out), NULL, NULL));
	ASSERT_EQ(0, kill(self->par.t.child, SIGSTOP));
	/* Stopped for sure (not still inside a wait that reads). */
	ASSERT_EQ(self->par.t.child,
		  waitpid(self->par.t.child, &status, WUNTRACED));
	ASSERT_TRUE(WIFSTOPPED(status));
	for (i = 0; i < 10; i++)
		post(_metadata, &self->par, W_APPEND, "x", 1, NULL, 0);
	dispatch_for(self->par.t.loop, 20);
	ASSERT_EQ(0, kill(self->par.t.child, SIGKILL));
	EXPECT_TRUE(dispatch_until(self->par.t.loop, self->par.hangup,
				   WAIT_MS));
	EXPECT_EQ(-ECONNRESET, self->par.hangup_err);
	worker_wait(&self->par, WAIT_MS);
	EXPECT_EQ(-EPIPE, send_str(self->par.s, "anyone?"));
}

/* The parent closes with nothing pending: the worker exits cleanly. */
TEST_F(worker, parent_close)
{
	finish(_metadata, &self->par);
}

#define main ipcsock_selftest_main
TEST_HARNESS_MAIN
#undef main

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], WORKER_ARG))
		return worker_main(argc, argv);
	return ipcsock_selftest_main(argc, argv);
}
