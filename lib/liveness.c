// SPDX-License-Identifier: MIT
/*
 * Peer liveness: a channel tied to its peer's process by a pidfd. The
 * backend waits for the pidfd to poll readable (the process exited) and
 * calls chan_peer_exited(); dispatch then ends the channel with -ESRCH
 * once every message the peer sent is out of the socket and receivable.
 *
 * Why not wait for the socket: a process killed while it runs io_uring
 * keeps its socket open until a kernel worker tears its ring down,
 * milliseconds later (over a second on a loaded machine), and a datagram
 * socket reports no hang-up at all. The pidfd is signalled as the process
 * exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "internal.h"

/*
 * Is @fd a pidfd? pidfd_send_signal() with signal 0 tells without doing
 * anything; it also takes a /proc/<pid> directory, which polls readable
 * at once and so cannot be waited on.
 */
static int pidfd_check(int fd)
{
	struct stat st;

	if (fd < 0 || fstat(fd, &st) || S_ISDIR(st.st_mode))
		return -EBADF;
	if (!syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0))
		return 0;
	/* Exited already, or not ours to signal: a pidfd all the same. */
	if (errno == ESRCH || errno == EPERM)
		return 0;
	return -EBADF;
}

int ipcsock_watch_pidfd(struct ipcsock *sock, int pidfd)
{
	struct ipcsock_chan *ch;
	int err;

	if (!sock)
		return -EINVAL;
	err = sock_chan(sock, &ch);
	if (err)
		return err;
	if (ch->pidfd >= 0)
		return -EBUSY;
	err = pidfd_check(pidfd);
	if (err)
		return err;
	if (ch->rx_done)
		return -EPIPE;
	ch->pidfd = fcntl(pidfd, F_DUPFD_CLOEXEC, 3);
	if (ch->pidfd < 0)
		return -errno;
	err = ch->loop->ops->watch_pidfd(ch);
	if (err) {
		close(ch->pidfd);
		ch->pidfd = -1;
		return err;
	}
	loop_submit_if_outside(ch->loop);
	return 0;
}

/* The backend saw the watched process exit. */
void chan_peer_exited(struct ipcsock_chan *ch)
{
	if (ch->peer_exited || ch->rx_done || !ch->sock)
		return;
	ch->peer_exited = true;
	list_add_tail(&ch->peer_node, &ch->loop->peer_exited);
	/* Inside dispatch the check follows the poll; outside, wake it. */
	if (!ch->loop->dispatching)
		loop_mark_ready(ch);
}

/* The channel goes: off the loop's list, the pidfd closed. */
void chan_peer_forget(struct ipcsock_chan *ch)
{
	list_del_init(&ch->peer_node);
	if (ch->pidfd >= 0)
		close(ch->pidfd);
	ch->pidfd = -1;
}

/*
 * Is anything left in the socket's receive queue? Not a peek, which would
 * take a pending error (ECONNRESET) from the receive path. SIOCINQ adds
 * up a SOCK_SEQPACKET queue, but gives only the head's length on a
 * SOCK_DGRAM one (unix_inq_len(), net/unix/af_unix.c), and a libcamera
 * mode message of fds alone is a datagram of 0 bytes: there poll(2),
 * whose POLLIN on a datagram socket means a queue not empty
 * (unix_dgram_poll()); on SEQPACKET it would also mean the peer's close.
 */
bool chan_sock_queued(struct ipcsock_chan *ch)
{
	struct pollfd pfd = { .fd = ch->fd, .events = POLLIN };
	int queued = 0;

	if (ch->lc)
		return poll(&pfd, 1, 0) < 0 || (pfd.revents & POLLIN);
	return ioctl(ch->fd, SIOCINQ, &queued) || queued > 0;
}

/*
 * Has every datagram the peer sent become channel state? Where the
 * library reads the socket itself, an empty socket says so. io_uring
 * takes messages out of the socket before their completions are posted
 * and handed over: its backend answers (uring_rx_drained()).
 */
static bool chan_rx_drained(struct ipcsock_chan *ch)
{
	const struct ipcsock_backend_ops *ops = ch->loop->ops;

	if (ops->rx_drained)
		return ops->rx_drained(ch);
	return !chan_sock_queued(ch);
}

/*
 * After each poll of dispatch: end the channels whose peer exited once
 * their socket is drained. One whose receive buffers are all taken waits
 * until the application receives, as an end of file would.
 */
void loop_peer_check(struct ipcsock_loop *loop)
{
	struct list_head todo = LIST_HEAD_INIT(todo);
	struct ipcsock_chan *ch;

	list_splice_tail_init(&loop->peer_exited, &todo);
	while (!list_empty(&todo)) {
		ch = list_first_entry(&todo, struct ipcsock_chan, peer_node);
		list_del_init(&ch->peer_node);
		if (!ch->sock || ch->rx_done)
			continue;
		if (chan_rx_drained(ch))
			chan_end(ch, -ESRCH);
		else
			list_add_tail(&ch->peer_node, &loop->peer_exited);
	}
}
