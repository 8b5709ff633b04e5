// SPDX-License-Identifier: MIT
/*
 * interop - libipcsock's IPCUnixSocket (include/ipcsock.hpp) in libcamera
 * wire mode against the real IPCUnixSocket of libcamera 0.0.3, which runs
 * in a fork+exec'd peer (interop-peer, next to this program). Both ways of
 * making the channel: libipcsock creates it and the peer binds its end (as
 * a libcamera IPA worker does), and the peer creates it and libipcsock
 * binds the end it hands over. On each:
 *
 *   - 64 bytes with three memfds, both ways: the bytes come back, the
 *     files are the same ones (the peer writes a mark into each, seen
 *     here), and the peer's own memfd holds what it wrote
 *   - no bytes, two memfds, both ways
 *   - 100 KiB with a memfd, both ways (the loop's max_msg_size is 128 KiB)
 *   - 10,000 messages each way, in order, while the receiver does not read
 *     at first: the sender must meet back-pressure (here the send queue
 *     fills, -ENOBUFS; there the peer waits for room)
 *   - the peer exits: nothing says so (a datagram pair has no end of
 *     file) until a send is refused: the hangup gives -ECONNREFUSED, and
 *     sends fail with -EPIPE
 *
 * and then: libipcsock closes its end, and the peer's next send gets
 * -ECONNREFUSED. All of it on a loop on io_uring (skipped where there is
 * none), then on epoll. Last, no fd is left open.
 *
 * Prints kselftest-style TAP ending in a "# Totals:" line
 * (scripts/run-tests.sh adds those up); exits 1 if a test failed. Run by
 * compat/libcamera/check.sh interop (interop.sh); compat/libcamera/Build
 * builds it and the peer.
 */
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ipcsock.hpp>

#include "interop.h"
#include "test-util.h"

using libipcsock::IPCUnixSocket;
using libipcsock::Loop;
using libipcsock::UniqueFD;
using libipcsock::Wire;
using Payload = IPCUnixSocket::Payload;

#define FLOOD		10000
#define BIG		(100 * 1024)
#define MAX_MSG		(128 * 1024)
#define TIMEOUT_MS	10000
/* How long a receiver leaves its socket unread, so that the sender fills it. */
#define STALL_MS	300

static std::string peer_path;

static double ms_since(std::chrono::steady_clock::time_point t0)
{
	std::chrono::duration<double, std::milli> d =
		std::chrono::steady_clock::now() - t0;

	return d.count();
}

static int reap(pid_t pid)
{
	int status = -1;

	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Our end of one channel, and what has come in on it. */
struct channel {
	Loop &loop;
	IPCUnixSocket sock;
	std::deque<Payload> inbox;
	int hangup = 0;
	bool hung_up = false;
	pid_t peer = -1;

	explicit channel(Loop &l) : loop(l), sock(l, Wire::Libcamera)
	{
		sock.readyRead.connect([this]() {
			Payload p;

			while (!sock.receive(&p))
				inbox.push_back(std::move(p));
		});
		sock.hangup.connect([this](int err) {
			hangup = err;
			hung_up = true;
		});
	}

	~channel()
	{
		for (Payload &p : inbox)
			for (int f : p.fds)
				::close(f);
		sock.close();
		if (peer > 0) {
			kill(peer, SIGKILL);
			reap(peer);
		}
	}

	/* Dispatch until @done() or TIMEOUT_MS. */
	bool wait(const std::function<bool()> &done)
	{
		auto t0 = std::chrono::steady_clock::now();

		while (!done()) {
			int ret;

			if (ms_since(t0) > TIMEOUT_MS)
				return false;
			ret = loop.dispatch(100);
			if (ret < 0 && ret != -EINTR)
				return false;
		}
		return true;
	}

	/* Take the next message; false if none came in TIMEOUT_MS, or the end. */
	bool next(Payload *p)
	{
		if (!wait([this]() { return !inbox.empty() || hung_up; }) ||
		    inbox.empty())
			return false;
		*p = std::move(inbox.front());
		inbox.pop_front();
		return true;
	}
};

/* libipcsock creates the channel; the peer binds its end. */
static bool setup_ours(channel *c)
{
	UniqueFD remote = c->sock.create();

	if (!remote.isValid())
		return false;
	c->peer = spawn_with_fd(peer_path.c_str(), "bind", remote.get());
	return c->peer > 0;
}

/* The peer creates the channel with libcamera and hands us the other end. */
static bool setup_theirs(channel *c)
{
	char byte, buf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &byte, 1 };
	struct msghdr mh = {};
	struct pollfd pfd = {};
	struct cmsghdr *cm;
	int ctl[2], fd = -1;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl))
		return false;
	c->peer = spawn_with_fd(peer_path.c_str(), "create", ctl[1]);
	::close(ctl[1]);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = buf;
	mh.msg_controllen = sizeof(buf);
	pfd.fd = ctl[0];
	pfd.events = POLLIN;
	if (c->peer > 0 && poll(&pfd, 1, TIMEOUT_MS) == 1 &&
	    recvmsg(ctl[0], &mh, MSG_CMSG_CLOEXEC) == 1) {
		cm = CMSG_FIRSTHDR(&mh);
		if (cm && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	}
	::close(ctl[0]);
	return fd >= 0 && !c->sock.bind(UniqueFD(fd));
}

/*
 * Send @size bytes (after "ECHO" when there are any) and @nr_fds memfds;
 * check the echo: the same bytes, the same files (now marked by the peer)
 * and the peer's own memfd.
 */
static bool echo(channel *c, size_t size, unsigned int nr_fds)
{
	Payload out, in;
	bool ok = true;
	char text[32];
	unsigned int i;

	if (size) {
		out.data.resize(size);
		for (size_t j = 0; j < size; j++)
			out.data[j] = (uint8_t)(j * 7 + size);
		memcpy(out.data.data(), "ECHO", 4);
	}
	for (i = 0; i < nr_fds; i++) {
		snprintf(text, sizeof(text), "fd %u of %zu", i, size);
		out.fds.push_back(memfd_with(text));
		ok = ok && out.fds.back() >= 0;
	}
	ok = ok && !c->sock.send(out) && c->next(&in);
	ok = ok && in.data == out.data && in.fds.size() == nr_fds + 1;
	for (i = 0; ok && i < nr_fds; i++) {
		snprintf(text, sizeof(text), "fd %u of %zu", i, size);
		ok = same_file(out.fds[i], in.fds[i]) &&
		     holds_at(out.fds[i], 0, text, false) &&
		     holds_at(out.fds[i], INTEROP_MARK_OFFSET,
			      INTEROP_PEER_MARK, true);
	}
	ok = ok && fd_holds(in.fds[nr_fds], INTEROP_PEER_TEXT);
	for (int f : out.fds)
		if (f >= 0)
			::close(f);
	for (int f : in.fds)
		::close(f);
	return ok;
}

/* FLOOD messages to the peer, which sleeps STALL_MS before reading. */
static bool flood_to_peer(channel *c)
{
	unsigned int full = 0;
	Payload in;
	uint32_t i;
	int ret;

	if (c->sock.send({ interop_cmd("RECV", FLOOD, STALL_MS), {} }))
		return false;
	for (i = 0; i < FLOOD; i++) {
		/* The send queue is full: let the loop drain it. */
		while ((ret = c->sock.send({ interop_cmd("SEQ ", i, 0), {} })) ==
		       -ENOBUFS) {
			full++;
			c->loop.dispatch(10);
		}
		if (ret)
			return false;
	}
	if (!c->next(&in) || !interop_is(in.data, "RCVD"))
		return false;
	printf("# to the peer: %u in order of %u; our send queue was full %u times\n",
	       interop_arg(in.data, 0), interop_arg(in.data, 1), full);
	return interop_arg(in.data, 0) == FLOOD &&
	       interop_arg(in.data, 1) == FLOOD && full > 0;
}

/* FLOOD messages from the peer, while we leave them unread for STALL_MS. */
static bool flood_from_peer(channel *c)
{
	uint32_t in_order = 0, got = 0;
	Payload in;

	if (c->sock.send({ interop_cmd("SEND", FLOOD, 0), {} }) ||
	    c->loop.flush())
		return false;
	usleep(STALL_MS * 1000);
	while (c->next(&in) && interop_is(in.data, "SEQ ")) {
		in_order += interop_arg(in.data, 0) == got;
		got++;
	}
	if (!interop_is(in.data, "SENT"))
		return false;
	printf("# from the peer: %u in order of %u; the peer waited for room %u times\n",
	       in_order, got, interop_arg(in.data, 1));
	return in_order == FLOOD && got == FLOOD &&
	       interop_arg(in.data, 0) == FLOOD && interop_arg(in.data, 1) > 0;
}

/*
 * The peer exits: nothing says so (no end of file on a datagram pair:
 * STALL_MS of dispatching brings no hangup) until a send is refused. That send fails with -EPIPE, or is queued and
 * refused later; either way the hangup says -ECONNREFUSED, and sends from
 * then on fail with -EPIPE.
 */
static bool peer_exits(channel *c)
{
	int status, first, last;

	if (c->sock.send({ interop_cmd("EXIT", 0, 0), {} }) || c->loop.flush())
		return false;
	status = reap(c->peer);
	c->peer = -1;
	/* Only receiving, we see nothing: no end of file on a datagram pair. */
	auto t0 = std::chrono::steady_clock::now();
	while (!c->hung_up && ms_since(t0) < STALL_MS)
		c->loop.dispatch(STALL_MS / 10);
	if (c->hung_up) {
		printf("# a hangup (%d) before any send\n", c->hangup);
		return false;
	}
	t0 = std::chrono::steady_clock::now();
	first = c->sock.send({ interop_cmd("ECHO", 0, 0), {} });
	c->wait([c]() { return c->hung_up; });
	last = c->sock.send({ interop_cmd("ECHO", 0, 0), {} });
	printf("# the peer exited with status %d; nothing for %d ms; then our send gave %d, the hangup %s after %.3f ms, the send after %d\n",
	       status, STALL_MS, first, c->hung_up ? strerror(-c->hangup) : "(none)",
	       ms_since(t0), last);
	return !status && (!first || first == -EPIPE) && c->hung_up &&
	       c->hangup == -ECONNREFUSED && last == -EPIPE;
}

static void named(bool ok, const std::string &name)
{
	result(ok, name.c_str());
}

static std::string backend_name(Loop &loop)
{
	return loop.backend() == IPCSOCK_BACKEND_URING ? "io_uring: " :
							 "epoll: ";
}

static void suite(Loop &loop, bool ours)
{
	const std::string how = ours ? " (libipcsock created the channel)" :
				       " (libcamera created the channel)";
	channel c(loop);
	bool up = ours ? setup_ours(&c) : setup_theirs(&c);

	const std::string on = backend_name(loop);

	named(up && echo(&c, 64, 3),
	      on + "64 bytes and 3 memfds both ways" + how);
	named(up && echo(&c, 0, 2),
	      on + "no bytes and 2 memfds both ways" + how);
	named(up && echo(&c, BIG, 1),
	      on + "100 KiB and a memfd both ways" + how);
	named(up && flood_to_peer(&c),
	      on + "10,000 messages to libcamera in order, under back-pressure" + how);
	named(up && flood_from_peer(&c),
	      on + "10,000 messages from libcamera in order, under back-pressure" + how);
	named(up && peer_exits(&c),
	      on + "the peer exits: the next send is refused, ECONNREFUSED" + how);
}

/* We close our end: the peer's next send is refused. */
static bool we_close(Loop &loop)
{
	channel c(loop);

	if (!setup_ours(&c) ||
	    c.sock.send({ interop_cmd("WAIT", 300, 0), {} }) || loop.flush())
		return false;
	c.sock.close();
	int status = reap(c.peer);

	c.peer = -1;
	printf("# the peer's send after our close: %s\n",
	       status ? "not refused" : "ECONNREFUSED");
	return status == 0;
}

/* Everything on a loop with @backend; io_uring may be missing. */
static void run_on(enum ipcsock_backend backend)
{
	struct ipcsock_loop_opts opts = {};

	opts.sz = sizeof(opts);
	opts.backend = backend;
	opts.max_msg_size = MAX_MSG;
	Loop loop(opts);

	if (!loop.isValid()) {
		bool skip = backend == IPCSOCK_BACKEND_URING &&
			    loop.error() != -ENOMEM && loop.error() != -EINVAL;

		printf("%sok %u a loop%s # %s%s\n", skip ? "" : "not ",
		       ++tap_nr, backend == IPCSOCK_BACKEND_URING ?
		       " on io_uring" : " on epoll", skip ? "SKIP " : "",
		       strerror(-loop.error()));
		(skip ? tap_skip : tap_fail)++;
		return;
	}
	suite(loop, true);
	suite(loop, false);
	named(we_close(loop), backend_name(loop) +
	      "we close: the peer's next send is refused, ECONNREFUSED");
}

int main(int, char **argv)
{
	std::string self = argv[0];
	int fds0;

	/* A hung peer must not hang the test run. */
	alarm(300);
	signal(SIGPIPE, SIG_IGN);
	/* The peer's refused send (we close) is expected: keep it quiet. */
	setenv("LIBCAMERA_LOG_LEVELS", "*:FATAL", 0);
	peer_path = self.substr(0, self.rfind('/') + 1) + "interop-peer";
	printf("TAP version 13\n");
	fds0 = open_fds();
	run_on(IPCSOCK_BACKEND_URING);
	run_on(IPCSOCK_BACKEND_EPOLL);
	result(open_fds() == fds0, "fds: none left open");
	return tap_finish();
}
