// SPDX-License-Identifier: MIT
/*
 * glib-host - libipcsock inside a GLib main loop.
 *
 * Camera applications are often GLib or GStreamer programs: their thread
 * runs a GMainLoop and everything else must fit into it. The library does
 * through one fd source: g_unix_fd_add() on ipcsock_loop_fd(), whose
 * callback calls ipcsock_loop_dispatch(loop, 0) - which never blocks - and
 * the library's own callbacks run from there, on the GLib thread.
 *
 * The peer is a forked child that echoes every message (its own plain
 * loop: a child must not touch its parent's loop). A GLib timeout sends a
 * burst of requests every millisecond for --duration ms; the ready_read
 * callback checks that the echoes come back in order and quits the main
 * loop once the last one is in. Runs once per backend (io_uring, then
 * epoll) unless --backend says which.
 *
 * Exit status 0 when every echo was right, 1 otherwise.
 *
 * Usage: glib-host [--duration MS] [--backend io_uring|epoll]
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>

#include <ipcsock.h>

#define BURST		16	/* requests per millisecond tick */

struct echo_msg {
	uint64_t seq;
	char text[56];
};

/* ------------------------------------------------------------------ */
/* The peer: echo until the host hangs up. No GLib in the child. */

static void peer_on_ready_read(struct ipcsock *sock, void *arg)
{
	struct ipcsock_payload msg, echo;
	int *err = arg;

	while (!ipcsock_receive(sock, &msg)) {
		/* The same bytes back; fds are not part of this protocol. */
		echo = (struct ipcsock_payload){ .data = msg.data,
						 .len = msg.len };
		if (msg.nr_fds || ipcsock_send(sock, &echo))
			*err = 1;
		while (msg.nr_fds--)
			close(msg.fds[msg.nr_fds]);
	}
}

static void peer_on_hangup(struct ipcsock *sock, int err, void *arg)
{
	(void)sock;
	(void)err;
	*(bool *)arg = true;
}

static int echo_peer_main(enum ipcsock_backend backend)
{
	IPCSOCK_LOOP_OPTS(opts, .backend = backend);
	struct ipcsock_loop *loop = ipcsock_loop_new(&opts);
	struct ipcsock *sock = ipcsock_new(loop);
	bool done = false;
	int err = 0;

	if (!sock || ipcsock_bind(sock, 3))
		return 1;
	ipcsock_set_ready_read(sock, peer_on_ready_read, &err);
	ipcsock_set_hangup(sock, peer_on_hangup, &done);
	while (!done && !err)
		if (ipcsock_loop_dispatch(loop, -1) < 0)
			return 1;
	ipcsock_free(sock);
	ipcsock_loop_free(loop);
	return err;
}

/* ------------------------------------------------------------------ */
/* The host: a GMainLoop with the library in it. */

struct host {
	GMainLoop *main_loop;
	struct ipcsock_loop *loop;
	struct ipcsock *sock;
	guint64 next_seq;
	guint64 next_reply;
	guint64 bad;
	guint64 dispatches;
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
	h->dispatches++;
	ret = ipcsock_loop_dispatch(h->loop, 0);
	if (ret < 0)
		host_quit(h, ret);
	return G_SOURCE_CONTINUE;
}

static void host_on_ready_read(struct ipcsock *sock, void *arg)
{
	struct host *h = arg;
	struct ipcsock_payload msg;
	struct echo_msg m;
	char text[sizeof(m.text)];

	while (!ipcsock_receive(sock, &msg)) {
		if (msg.len != sizeof(m)) {
			h->bad++;
			continue;
		}
		memcpy(&m, msg.data, sizeof(m));
		g_snprintf(text, sizeof(text), "echo me %" G_GUINT64_FORMAT,
			   h->next_reply);
		if (m.seq != h->next_reply || strcmp(m.text, text))
			h->bad++;
		h->next_reply++;
	}
	if (!h->sending && h->next_reply == h->next_seq)
		host_quit(h, h->bad ? -EPROTO : 0);
}

static void host_on_hangup(struct ipcsock *sock, int err, void *arg)
{
	struct host *h = arg;

	(void)sock;
	g_printerr("glib-host: the peer hung up (%d)\n", err);
	host_quit(h, -EPIPE);
}

/* Every millisecond: a burst of requests, as far as the queue takes. */
static gboolean on_tick(gpointer data)
{
	struct host *h = data;
	struct ipcsock_payload p;
	struct echo_msg m;
	int i, ret;

	if (g_get_monotonic_time() >= h->stop_at) {
		h->sending = false;
		h->tick_src = 0;
		if (h->next_reply == h->next_seq)
			host_quit(h, h->bad ? -EPROTO : 0);
		return G_SOURCE_REMOVE;
	}
	for (i = 0; i < BURST; i++) {
		memset(&m, 0, sizeof(m));
		m.seq = h->next_seq;
		g_snprintf(m.text, sizeof(m.text), "echo me %" G_GUINT64_FORMAT,
			   m.seq);
		p = (struct ipcsock_payload){ .data = &m, .len = sizeof(m) };
		ret = ipcsock_send(h->sock, &p);
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
	host_quit(h, -ETIMEDOUT);
	h->deadline_src = 0;
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
	IPCSOCK_LOOP_OPTS(opts, .backend = backend);
	struct host h = { .sending = true };
	guint fd_src, sigint_src, sigterm_src;
	int fd, lfd, status = 0;
	pid_t pid;

	h.loop = ipcsock_loop_new(&opts);
	if (!h.loop) {
		if (backend == IPCSOCK_BACKEND_URING) {
			g_print("  io_uring: not available (%s), skipped\n",
				g_strerror(errno));
			return 0;
		}
		return -errno;
	}
	h.sock = ipcsock_new(h.loop);
	fd = h.sock ? ipcsock_create(h.sock) : -ENOMEM;
	if (fd < 0) {
		ipcsock_loop_free(h.loop);
		return fd;
	}
	/* The peer: the channel's far end as fd 3, nothing else open. */
	fflush(stdout);
	pid = fork();
	if (!pid) {
		if (dup2(fd, 3) < 0)
			_exit(1);
		close_range(4, ~0u, 0);
		_exit(echo_peer_main(backend));
	}
	close(fd);
	if (pid < 0) {
		h.err = -errno;
		goto out;
	}
	ipcsock_set_ready_read(h.sock, host_on_ready_read, &h);
	ipcsock_set_hangup(h.sock, host_on_hangup, &h);

	lfd = ipcsock_loop_fd(h.loop);
	if (lfd < 0) {
		h.err = lfd;
		goto out;
	}
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
		g_print("  %s: %" G_GUINT64_FORMAT " requests echoed in order, %"
			G_GUINT64_FORMAT " dispatches from the fd source\n",
			backend_name(ipcsock_loop_backend(h.loop)),
			h.next_reply, h.dispatches);
out:
	/* Our end closing is what tells the peer to exit. */
	ipcsock_free(h.sock);
	ipcsock_loop_free(h.loop);
	if (pid > 0) {
		waitpid(pid, &status, 0);
		if (!h.err && (!WIFEXITED(status) || WEXITSTATUS(status))) {
			g_printerr("glib-host: peer status 0x%x\n", status);
			h.err = -ECHILD;
		}
	}
	return h.err;
}

int main(int argc, char **argv)
{
	enum ipcsock_backend backends[2] = {
		IPCSOCK_BACKEND_URING, IPCSOCK_BACKEND_EPOLL,
	};
	unsigned int i, nr = 2;
	int duration_ms = 1000, ret = 0, opt;
	char *end;

	for (opt = 1; opt < argc; opt++) {
		if (!strcmp(argv[opt], "--duration") && opt + 1 < argc) {
			duration_ms = strtol(argv[++opt], &end, 10);
			if (*end || duration_ms <= 0 || duration_ms > 3600000)
				goto usage;
		} else if (!strcmp(argv[opt], "--backend") && opt + 1 < argc) {
			opt++;
			nr = 1;
			if (!strcmp(argv[opt], "epoll"))
				backends[0] = IPCSOCK_BACKEND_EPOLL;
			else if (strcmp(argv[opt], "io_uring"))
				goto usage;
		} else {
			goto usage;
		}
	}

	g_print("glib-host: GLib %u.%u.%u, %d ms per backend, %d requests every ms\n",
		glib_major_version, glib_minor_version, glib_micro_version,
		duration_ms, BURST);
	for (i = 0; i < nr && !ret; i++) {
		ret = run_backend(backends[i], duration_ms);
		if (ret)
			g_printerr("glib-host: %s: %s\n",
				   backend_name(backends[i]), g_strerror(-ret));
	}
	g_print("glib-host: %s\n", ret ? "FAILED" : "ok");
	return ret ? 1 : 0;
usage:
	g_printerr("usage: %s [--duration MS] [--backend io_uring|epoll]\n",
		   argv[0]);
	return 2;
}
