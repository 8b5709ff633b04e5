// SPDX-License-Identifier: MIT
/*
 * The declaration in ipc_unixsocket.h against the real libcamera 0.0.3: a
 * channel with libcamera's IPCUnixSocket on both ends, the remote end in a
 * fork+exec'd child that binds the fd it finds on argv (as libcamera's IPA
 * workers do), each side driven by libcamera's event dispatcher. Messages
 * of several sizes carry memfds both ways; the child echoes each one
 * reversed, with the fds it got and one of its own.
 *
 * Prints kselftest-style TAP ending in a "# Totals:" line
 * (scripts/run-tests.sh adds those up); exits 1 if a test failed. Run by
 * compat/libcamera/check.sh; `make compat` builds it.
 */
#define LIBCAMERA_BASE_PRIVATE

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libcamera/base/event_dispatcher.h>
#include <libcamera/base/thread.h>

#include "ipc_unixsocket.h"
#include "test-util.h"

using libcamera::IPCUnixSocket;
using libcamera::UniqueFD;

static libcamera::EventDispatcher *dispatcher()
{
	return libcamera::Thread::current()->eventDispatcher();
}

/* ---- The child: echo every message until "quit". ---- */

struct echo {
	IPCUnixSocket *sock;
	int own_fd;
	bool quit;
	int err;

	void readyRead()
	{
		IPCUnixSocket::Payload in, out;
		int ret = sock->receive(&in);

		if (ret) {
			err = ret;
			quit = true;
			return;
		}
		if (in.data.size() == 4 && !memcmp(in.data.data(), "quit", 4)) {
			quit = true;
			return;
		}
		out.data.assign(in.data.rbegin(), in.data.rend());
		out.fds = in.fds;
		out.fds.push_back(own_fd);
		ret = sock->send(out);
		for (int fd : in.fds)
			::close(fd);
		if (ret) {
			err = ret;
			quit = true;
		}
	}
};

static int child_main(const char *arg)
{
	struct echo e = {};
	int fd = atoi(arg);

	e.own_fd = memfd_with("child");
	e.sock = new IPCUnixSocket;
	if (e.own_fd < 0 || !e.sock->guardIntact())
		return 1;
	if (e.sock->bind(UniqueFD(fd)))
		return 1;
	e.sock->readyRead.connect(&e, &echo::readyRead);
	while (!e.quit)
		dispatcher()->processEvents();
	if (e.err || !e.sock->guardIntact())
		return 1;
	delete e.sock;
	::close(e.own_fd);
	return 0;
}

/* ---- The parent ---- */

struct reply {
	IPCUnixSocket *sock;
	IPCUnixSocket::Payload payload;
	bool got;
	int err;

	void readyRead()
	{
		err = sock->receive(&payload);
		got = true;
	}
};

/* Sends @size bytes and @nr_fds memfds, checks the child's echo. */
static bool exchange(struct reply *r, size_t size, unsigned int nr_fds)
{
	IPCUnixSocket::Payload p;
	char text[32];
	bool ok = true;
	unsigned int i;
	size_t j;

	p.data.resize(size);
	for (j = 0; j < size; j++)
		p.data[j] = (uint8_t)(j * 7 + size);
	for (i = 0; i < nr_fds; i++) {
		snprintf(text, sizeof(text), "fd %u of %zu", i, size);
		p.fds.push_back(memfd_with(text));
		if (p.fds.back() < 0)
			ok = false;
	}
	r->got = false;
	if (ok && r->sock->send(p))
		ok = false;
	while (ok && !r->got)
		dispatcher()->processEvents();
	ok = ok && !r->err && r->payload.data.size() == size &&
	     r->payload.fds.size() == nr_fds + 1;
	for (j = 0; ok && j < size; j++)
		ok = r->payload.data[j] == p.data[size - 1 - j];
	for (i = 0; ok && i < nr_fds; i++) {
		snprintf(text, sizeof(text), "fd %u of %zu", i, size);
		ok = same_file(p.fds[i], r->payload.fds[i]) &&
		     fd_holds(r->payload.fds[i], text);
	}
	if (ok)
		ok = fd_holds(r->payload.fds[nr_fds], "child");
	for (int fd : p.fds)
		if (fd >= 0)
			::close(fd);
	if (r->got)
		for (int fd : r->payload.fds)
			::close(fd);
	r->payload.fds.clear();
	return ok;
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 1, 64, 4096, 65536 };
	static const unsigned int fds[] = { 0, 1, 3 };
	IPCUnixSocket::Payload empty;
	struct reply r = {};
	int fds0, flags, type = 0, status;
	socklen_t len = sizeof(type);
	bool ok = true;
	UniqueFD remote;
	pid_t pid;

	if (argc == 3 && !strcmp(argv[1], "--child"))
		return child_main(argv[2]);

	/* A child that hangs must not hang the test run. */
	alarm(60);
	printf("TAP version 13\n");
	/* The dispatcher's own fd exists from its first use on. */
	dispatcher();
	fds0 = open_fds();

	r.sock = new IPCUnixSocket;
	result(r.sock->guardIntact(),
	       "room: the constructor keeps out of the guard");
	printf("# libcamera's constructor wrote %zu of %zu bytes\n",
	       r.sock->extentUsed(), sizeof(IPCUnixSocket));

	remote = r.sock->create();
	flags = remote.isValid() ? fcntl(remote.get(), F_GETFL) : -1;
	if (remote.isValid())
		getsockopt(remote.get(), SOL_SOCKET, SO_TYPE, &type, &len);
	result(r.sock->isBound() && flags >= 0 && (flags & O_NONBLOCK) &&
	       type == SOCK_DGRAM,
	       "create: bound, and the remote end is a non-blocking datagram socket");
	result(r.sock->receive(&r.payload) == -EAGAIN,
	       "receive: -EAGAIN before readyRead");
	result(r.sock->send(empty) == -EINVAL,
	       "send: an empty payload is refused");

	r.sock->readyRead.connect(&r, &reply::readyRead);
	pid = spawn_with_fd(argv[0], "--child", remote.get());
	remote.reset();
	for (size_t s : sizes)
		for (unsigned int f : fds)
			if (pid > 0 && !exchange(&r, s, f)) {
				printf("# exchange of %zu bytes and %u fds failed (%d)\n",
				       s, f, r.err);
				ok = false;
			}
	result(pid > 0 && ok,
	       "exchange: 1 B to 64 KiB, 0 to 3 fds, both ways");
	result(r.sock->guardIntact(), "room: use keeps out of the guard");
	printf("# after use: %zu bytes written\n", r.sock->extentUsed());

	empty.data.assign((const uint8_t *)"quit", (const uint8_t *)"quit" + 4);
	if (r.sock->send(empty))
		ok = false;
	status = -1;
	if (pid > 0)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	result(ok && WIFEXITED(status) && !WEXITSTATUS(status),
	       "child: bound the fd from argv, echoed, guard intact");

	r.sock->close();
	result(!r.sock->isBound() && r.sock->send(empty) == -ENOTCONN &&
	       r.sock->guardIntact(),
	       "close: unbound, send refused");
	delete r.sock;
	result(open_fds() == fds0, "fds: none left open");

	return tap_finish();
}
