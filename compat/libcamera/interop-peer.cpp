// SPDX-License-Identifier: MIT
/*
 * interop-peer - the libcamera end of compat/libcamera/interop.cpp's
 * channels: the real IPCUnixSocket of libcamera 0.0.3, driven by
 * libcamera's event dispatcher, as an IPA proxy worker drives it. It links
 * libcamera only, not libipcsock.
 *
 * Usage: interop-peer bind FD      bind the channel end FD (as a worker)
 *        interop-peer create FD    create the channel, send the other end
 *                                  over the AF_UNIX socket FD, close FD
 *
 * Then it obeys the messages it gets (the first four bytes name the
 * command, u32 arguments follow in host order):
 *
 *   ECHO ...     send the message back, the received fds with it and a
 *                memfd of its own holding "peer"; "peer saw this" is
 *                written at offset 64 of every file received
 *   (no bytes)   the same, for a message of fds only: the reply has no
 *                bytes either
 *   RECV n ms    sleep ms (the sender meets back-pressure), then take n
 *                messages "SEQ " i and answer "RCVD" in_order total
 *   SEND n       send n messages "SEQ " i, as fast as the socket takes
 *                them, then "SENT" n waits (how often it had to wait for
 *                room)
 *   WAIT ms      sleep ms, then send "LATE": exit status 0 if that fails
 *                with -ECONNREFUSED (the other end was closed meanwhile)
 *   EXIT         exit with status 0
 *
 * libcamera's send() on its non-blocking socket can fail with -EAGAIN
 * after the header datagram went out, which would leave the stream out of
 * step; so every send first waits until poll() says the socket is
 * writable, which for a datagram socket means three quarters of its send
 * buffer free: room for both datagrams of any message here.
 *
 * Exit status: 0, or 1 for anything unexpected (said on stderr), 3 when
 * WAIT's send did not fail as it should.
 */
#define LIBCAMERA_BASE_PRIVATE

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <poll.h>
#include <set>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libcamera/base/event_dispatcher.h>
#include <libcamera/base/thread.h>

#include "interop.h"
#include "ipc_unixsocket.h"
#include "test-util.h"

using libcamera::IPCUnixSocket;
using libcamera::UniqueFD;

namespace {

std::set<int> open_fd_set()
{
	std::set<int> fds;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			fds.insert(atoi(e->d_name));
	if (d) {
		fds.erase(dirfd(d));
		closedir(d);
	}
	return fds;
}

struct peer {
	IPCUnixSocket *sock;
	int fd;			/* the socket libcamera's object uses */
	int exit_status;
	bool quit;

	/* RECV in progress */
	uint32_t recv_total, recv_seen, recv_in_order;

	void fail(const char *what, int err)
	{
		fprintf(stderr, "interop-peer: %s: %s\n", what, strerror(-err));
		exit_status = 1;
		quit = true;
	}

	/* Wait for room, then send; returns how often it had to wait. */
	unsigned int send(const IPCUnixSocket::Payload &p)
	{
		struct pollfd pfd = { fd, POLLOUT, 0 };
		unsigned int waited = 0;
		int ret;

		if (poll(&pfd, 1, 0) == 0) {
			waited = 1;
			poll(&pfd, 1, -1);
		}
		ret = sock->send(p);
		if (ret)
			fail("send", ret);
		return waited;
	}

	void echo(IPCUnixSocket::Payload &in)
	{
		static const char seen[] = INTEROP_PEER_MARK;
		IPCUnixSocket::Payload out;
		int own = memfd_with(INTEROP_PEER_TEXT);

		for (int f : in.fds)
			if (pwrite(f, seen, sizeof(seen) - 1,
				   INTEROP_MARK_OFFSET) != sizeof(seen) - 1)
				fail("pwrite", -errno);
		out.data = std::move(in.data);
		out.fds = in.fds;
		out.fds.push_back(own);
		send(out);
		::close(own);
	}

	void seq(const IPCUnixSocket::Payload &in)
	{
		uint32_t i = interop_arg(in.data, 0);

		if (i == recv_seen)
			recv_in_order++;
		if (++recv_seen == recv_total) {
			send({ interop_cmd("RCVD", recv_in_order, recv_seen), {} });
			recv_total = 0;
		}
	}

	void flood(uint32_t n)
	{
		unsigned int waits = 0;
		uint32_t i;

		for (i = 0; i < n && !quit; i++)
			waits += send({ interop_cmd("SEQ ", i, 0), {} });
		send({ interop_cmd("SENT", n, waits), {} });
	}

	void late(uint32_t ms)
	{
		int ret;

		usleep(ms * 1000);
		ret = sock->send({ interop_cmd("LATE", 0, 0), {} });
		if (ret != -ECONNREFUSED) {
			fprintf(stderr, "interop-peer: LATE sent: %s\n",
				strerror(-ret));
			exit_status = 3;
		}
		quit = true;
	}

	void readyRead()
	{
		IPCUnixSocket::Payload in;
		int ret = sock->receive(&in);

		if (ret)
			return fail("receive", ret);
		if (in.data.empty() || interop_is(in.data, "ECHO"))
			echo(in);
		else if (recv_total && interop_is(in.data, "SEQ "))
			seq(in);
		else if (interop_is(in.data, "RECV")) {
			recv_total = interop_arg(in.data, 0);
			recv_seen = recv_in_order = 0;
			usleep(interop_arg(in.data, 1) * 1000);
		} else if (interop_is(in.data, "SEND"))
			flood(interop_arg(in.data, 0));
		else if (interop_is(in.data, "WAIT"))
			late(interop_arg(in.data, 0));
		else if (interop_is(in.data, "EXIT"))
			quit = true;
		else
			fail("unknown command", -EPROTO);
		for (int f : in.fds)
			::close(f);
	}
};

/* Hand @fd over the AF_UNIX socket @ctl. */
int send_fd(int ctl, int fd)
{
	char byte = 0, buf[CMSG_SPACE(sizeof(int))] = {};
	struct iovec iov = { &byte, 1 };
	struct msghdr mh = {};
	struct cmsghdr *c;

	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = buf;
	mh.msg_controllen = sizeof(buf);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(ctl, &mh, 0) == 1 ? 0 : -errno;
}

} /* namespace */

int main(int argc, char **argv)
{
	libcamera::EventDispatcher *dispatcher;
	struct peer p = {};
	int fd;

	if (argc != 3 || (strcmp(argv[1], "bind") && strcmp(argv[1], "create"))) {
		fprintf(stderr, "usage: %s bind|create FD\n", argv[0]);
		return 1;
	}
	fd = atoi(argv[2]);
	dispatcher = libcamera::Thread::current()->eventDispatcher();
	p.sock = new IPCUnixSocket;
	if (!strcmp(argv[1], "bind")) {
		p.fd = fd;
		if (p.sock->bind(UniqueFD(fd)))
			return 1;
	} else {
		/* libcamera keeps one end of the pair it makes: find it. */
		std::set<int> before = open_fd_set();
		UniqueFD remote = p.sock->create();

		p.fd = -1;
		for (int f : open_fd_set())
			if (!before.count(f) && f != remote.get())
				p.fd = f;
		if (!remote.isValid() || p.fd < 0 || send_fd(fd, remote.get()))
			return 1;
		::close(fd);
	}
	p.sock->readyRead.connect(&p, &peer::readyRead);
	while (!p.quit)
		dispatcher->processEvents();
	if (!p.sock->guardIntact())
		return 1;
	delete p.sock;
	return p.exit_status;
}
