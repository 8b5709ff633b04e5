// SPDX-License-Identifier: MIT
/*
 * libcamera: the real IPCUnixSocket of libcamera 0.0.3 (declared in
 * compat/libcamera/ipc_unixsocket.h), driven by libcamera's own event
 * dispatcher, as a libcamera process uses it. Built only where pkg-config
 * finds libcamera 0.0.3 (bench/Build); elsewhere impl-libcamera-none.c
 * stands in.
 */
#define LIBCAMERA_BASE_PRIVATE

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <new>

#include <libcamera/base/event_dispatcher.h>
#include <libcamera/base/thread.h>

#include "../compat/libcamera/ipc_unixsocket.h"

extern "C" {
#include "bench.h"
}

using libcamera::IPCUnixSocket;

namespace {

struct lcam_chan {
	struct bench_chan *c;
	IPCUnixSocket *sock;
	libcamera::EventDispatcher *dispatcher;
	/*
	 * Reused from message to message: the least a user of the class
	 * can allocate. (libcamera's own IPC layer above it builds a fresh
	 * payload for every message.)
	 */
	IPCUnixSocket::Payload tx, rx;

	/* One whole message is there: hand it to the scenario. */
	void readyRead()
	{
		int err = sock->receive(&rx);

		if (err) {
			c->err = err;
			return;
		}
		c->rx(c, rx.data.data(), rx.data.size(), rx.fds.data(),
		      rx.fds.size());
	}
};

/* The library's members keep to their room, or nothing here is sound. */
void check_guard(const IPCUnixSocket *sock)
{
	if (sock->guardIntact())
		return;
	fprintf(stderr,
		"ipcsock-bench: libcamera's IPCUnixSocket is larger than compat/libcamera/ipc_unixsocket.h allows\n");
	abort();
}

} /* namespace */

static int lcam_open(struct bench_chan *c, int fd)
{
	lcam_chan *lc = NULL;

	try {
		lc = new lcam_chan();
		lc->c = c;
		/*
		 * The thread's dispatcher: libcamera makes one for the first
		 * thread that asks (here the main thread of a program that
		 * started no libcamera thread), before the window.
		 */
		lc->dispatcher =
			libcamera::Thread::current()->eventDispatcher();
		lc->sock = new IPCUnixSocket;
		check_guard(lc->sock);
		/*
		 * Takes the fd over, as libcamera's IPA side binds the fd it
		 * finds on argv. Fails only on a bound socket; this one is
		 * new.
		 */
		if (lc->sock->bind(libcamera::UniqueFD(fd)))
			abort();
		lc->sock->readyRead.connect(lc, &lcam_chan::readyRead);
	} catch (const std::bad_alloc &) {
		/* If bind() got that far, the fd went with the socket. */
		if (lc)
			delete lc->sock;
		delete lc;
		return -ENOMEM;
	}
	c->fd = fd;
	c->priv = lc;
	return 0;
}

static void lcam_close(struct bench_chan *c)
{
	lcam_chan *lc = static_cast<lcam_chan *>(c->priv);

	check_guard(lc->sock);
	/* Unregisters the notifier and closes the socket. */
	delete lc->sock;
	delete lc;
	c->priv = NULL;
	c->fd = -1;
}

static int lcam_send(struct bench_chan *c, const struct bench_msg *msgs,
		     unsigned int n)
{
	lcam_chan *lc = static_cast<lcam_chan *>(c->priv);
	const unsigned char *data;
	unsigned int i;
	int err;

	try {
		for (i = 0; i < n; i++) {
			data = static_cast<const unsigned char *>(msgs[i].data);
			lc->tx.data.assign(data, data + msgs[i].len);
			lc->tx.fds.assign(msgs[i].fds,
					  msgs[i].fds + msgs[i].nr_fds);
			err = lc->sock->send(lc->tx);
			if (err)
				return err;
		}
	} catch (const std::bad_alloc &) {
		return -ENOMEM;
	}
	return 0;
}

/*
 * One round of the dispatcher: poll() on every notifier of the thread,
 * then the socket's notifier reads the header and, once the payload is
 * there too, emits readyRead: at most one message per wake-up.
 */
static int lcam_wait(struct bench_chan *c)
{
	lcam_chan *lc = static_cast<lcam_chan *>(c->priv);

	try {
		lc->dispatcher->processEvents();
	} catch (const std::bad_alloc &) {
		return -ENOMEM;
	}
	return c->err;
}

/*
 * A blocking pair. libcamera makes its own non-blocking, and there its
 * send() on a full send buffer fails with -EAGAIN, possibly after the
 * header datagram went out, which leaves the stream out of step for
 * good; libcamera itself never floods (each call waits for its reply).
 * On a blocking socket the kernel waits for room inside sendmsg(), the
 * cheapest correct answer; receiving is unchanged, as the notifier reads
 * only what poll() reported.
 */
extern "C" const struct bench_impl impl_libcamera = {
	.name = "libcamera",
	.sock_type = SOCK_DGRAM,
	.open = lcam_open,
	.close = lcam_close,
	.send = lcam_send,
	.wait = lcam_wait,
	.missing = NULL,
	.counters = NULL,
};
