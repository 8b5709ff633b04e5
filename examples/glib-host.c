// SPDX-License-Identifier: MIT
/*
 * glib-host - libipcsock inside a GLib main loop: one g_unix_fd_add()
 * source on ipcsock_loop_fd() whose callback runs
 * ipcsock_loop_dispatch(loop, 0), so the library's callbacks run on the
 * GLib thread. See examples/README.md.
 *
 * Usage: glib-host [--duration MS]
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>

#include <ipcsock.h>

#include "echo.h"

#define BURST		16	/* requests per millisecond tick */

struct host {
	GMainLoop *main_loop;
	struct ipcsock_loop *loop;
	struct ipcsock *sock;
	guint64 next_seq;
	guint64 next_reply;
	guint64 bad;
	gint64 stop_at;		/* g_get_monotonic_time() to stop sending */
	guint tick_src;		/* 0 once removed */
	guint deadline_src;
	bool sending;
	int err;
};

static void host_quit(struct host *h, int err)
{
	if (!h->err)
		h->err = err;
	g_main_loop_quit(h->main_loop);
}

/* The library wants attention: let it run, without blocking. */
static gboolean on_loop_fd(gint fd, GIOCondition cond, gpointer data)
{
	struct host *h = data;
	int ret;

	(void)fd;
	(void)cond;
	ret = ipcsock_loop_dispatch(h->loop, 0);
	if (ret < 0)
		host_quit(h, ret);
	return G_SOURCE_CONTINUE;
}

static void host_on_ready_read(struct ipcsock *sock, void *arg)
{
	struct host *h = arg;
	struct ipcsock_payload msg;

	while (!ipcsock_receive(sock, &msg))
		if (!echo_ok(&msg, 0, h->next_reply++))
			h->bad++;
	if (!h->sending && h->next_reply == h->next_seq)
		host_quit(h, h->bad ? -EPROTO : 0);
}

static void host_on_hangup(struct ipcsock *sock, int err, void *arg)
{
	(void)sock;
	g_printerr("glib-host: the peer hung up (%d)\n", err);
	host_quit(arg, -EPIPE);
}

/* Every millisecond: a burst of requests, as far as the queue takes. */
static gboolean on_tick(gpointer data)
{
	struct host *h = data;
	int i, ret;

	if (g_get_monotonic_time() >= h->stop_at) {
		h->sending = false;
		h->tick_src = 0;
		if (h->next_reply == h->next_seq)
			host_quit(h, h->bad ? -EPROTO : 0);
		return G_SOURCE_REMOVE;
	}
	for (i = 0; i < BURST; i++) {
		ret = echo_send(h->sock, 0, h->next_seq);
		if (ret == -ENOBUFS)
			break;		/* the queue is full: more next tick */
		if (ret) {
			host_quit(h, ret);
			h->tick_src = 0;
			return G_SOURCE_REMOVE;
		}
		h->next_seq++;
	}
	return G_SOURCE_CONTINUE;
}

static gboolean on_deadline(gpointer data)
{
	struct host *h = data;

	g_printerr("glib-host: %" G_GUINT64_FORMAT " echoes missing\n",
		   h->next_seq - h->next_reply);
	h->deadline_src = 0;
	host_quit(h, -ETIMEDOUT);
	return G_SOURCE_REMOVE;
}

static gboolean on_signal(gpointer data)
{
	host_quit(data, -EINTR);
	return G_SOURCE_CONTINUE;
}

static const char *backend_name(enum ipcsock_backend b)
{
	return b == IPCSOCK_BACKEND_URING ? "io_uring" : "epoll";
}

static int run_backend(enum ipcsock_backend backend, int duration_ms)
{
	struct host h = { .sending = true };
	guint fd_src, sigint_src, sigterm_src;
	int lfd, err;
	pid_t pid;

	pid = echo_host_start(backend, &h.loop, &h.sock); /* a peer without GLib */
	if (pid < 0 && !h.loop && backend == IPCSOCK_BACKEND_URING) {
		g_print("  io_uring: not available (%s), skipped\n",
			g_strerror(-pid));
		return 0;
	}
	if (pid < 0)
		return pid;
	lfd = ipcsock_loop_fd(h.loop);
	if (lfd < 0) {
		h.err = lfd;
		goto out;
	}
	ipcsock_set_ready_read(h.sock, host_on_ready_read, &h);
	ipcsock_set_hangup(h.sock, host_on_hangup, &h);

	h.main_loop = g_main_loop_new(NULL, FALSE);
	h.stop_at = g_get_monotonic_time() + duration_ms * G_GINT64_CONSTANT(1000);
	fd_src = g_unix_fd_add(lfd, G_IO_IN, on_loop_fd, &h);
	h.tick_src = g_timeout_add(1, on_tick, &h);
	h.deadline_src = g_timeout_add(duration_ms + 2000, on_deadline, &h);
	sigint_src = g_unix_signal_add(SIGINT, on_signal, &h);
	sigterm_src = g_unix_signal_add(SIGTERM, on_signal, &h);

	g_main_loop_run(h.main_loop);

	if (h.tick_src)
		g_source_remove(h.tick_src);
	if (h.deadline_src)
		g_source_remove(h.deadline_src);
	g_source_remove(sigint_src);
	g_source_remove(sigterm_src);
	g_source_remove(fd_src);
	g_main_loop_unref(h.main_loop);
	if (!h.err)
		g_print("  %s: %" G_GUINT64_FORMAT " requests echoed in order, every %dth with an fd\n",
			backend_name(backend), h.next_reply, ECHO_FD_EVERY);
out:
	/* Our end closing is what tells the peer to exit. */
	ipcsock_free(h.sock);
	ipcsock_loop_free(h.loop);
	err = echo_peer_wait(pid, "glib-host");
	return h.err ? h.err : err;
}

int main(int argc, char **argv)
{
	enum ipcsock_backend backends[] = {
		IPCSOCK_BACKEND_URING, IPCSOCK_BACKEND_EPOLL,
	};
	int duration_ms = 1000, ret = 0;
	unsigned int i;

	if (argc == 3 && !strcmp(argv[1], "--duration"))
		duration_ms = atoi(argv[2]);
	if ((argc != 1 && argc != 3) || duration_ms <= 0) {
		g_printerr("usage: %s [--duration MS]\n", argv[0]);
		return 2;
	}

	g_print("glib-host: GLib %u.%u.%u, %d ms per backend, %d requests every ms\n",
		glib_major_version, glib_minor_version, glib_micro_version,
		duration_ms, BURST);
	for (i = 0; i < 2 && !ret; i++) {
		ret = run_backend(backends[i], duration_ms);
		if (ret)
			g_printerr("glib-host: %s: %s\n",
				   backend_name(backends[i]), g_strerror(-ret));
	}
	g_print("glib-host: %s\n", ret ? "FAILED" : "ok");
	return ret ? 1 : 0;
}
