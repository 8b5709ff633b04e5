// SPDX-License-Identifier: MIT
/*
 * What the syscall baselines share: their channel state with its receive
 * buffer, and SCM_RIGHTS packing (the library does its own).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

/* @priv_size bytes of zeroed state, starting with a struct raw_chan. */
int raw_chan_open(struct bench_chan *c, int fd, size_t priv_size,
		  size_t rxlen)
{
	struct raw_chan *raw = calloc(1, priv_size);

	if (!raw)
		return -ENOMEM;
	raw->rxbuf = malloc(rxlen);
	if (!raw->rxbuf) {
		free(raw);
		return -ENOMEM;
	}
	c->fd = fd;
	c->priv = raw;
	return 0;
}

void raw_chan_close(struct bench_chan *c)
{
	struct raw_chan *raw = c->priv;

	if (!raw)
		return;
	free(raw->rxbuf);
	free(raw);
	c->priv = NULL;
	close(c->fd);
	c->fd = -1;
}

void bench_close_fds(const int *fds, unsigned int n)
{
	while (n--)
		close(*fds++);
}

/* @ctrl holds BENCH_CTRL_LEN bytes, aligned for struct cmsghdr. */
void msghdr_set_fds(struct msghdr *mh, void *ctrl, const int *fds,
		    unsigned int nr_fds)
{
	struct cmsghdr *cmsg;

	if (!nr_fds) {
		mh->msg_control = NULL;
		mh->msg_controllen = 0;
		return;
	}
	mh->msg_control = ctrl;
	mh->msg_controllen = CMSG_SPACE(nr_fds * sizeof(int));
	cmsg = CMSG_FIRSTHDR(mh);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(nr_fds * sizeof(int));
	memcpy(CMSG_DATA(cmsg), fds, nr_fds * sizeof(int));
}

/*
 * The fds a received message carried. On truncation the fds that did
 * arrive are closed and an error returned: the benchmark never sends
 * more than BENCH_MAX_FDS, so this only happens when something is broken.
 */
int msghdr_get_fds(struct msghdr *mh, int **fds, unsigned int *nr_fds)
{
	struct cmsghdr *cmsg;

	*fds = NULL;
	*nr_fds = 0;
	for (cmsg = CMSG_FIRSTHDR(mh); cmsg; cmsg = CMSG_NXTHDR(mh, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		*fds = (int *)CMSG_DATA(cmsg);
		*nr_fds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	}
	if (mh->msg_flags & (MSG_CTRUNC | MSG_TRUNC)) {
		bench_close_fds(*fds, *nr_fds);
		*nr_fds = 0;
		return -EMSGSIZE;
	}
	return 0;
}

/*
 * One recvmsg() of up to c->max_len bytes into the channel's receive
 * buffer, with @ctrl for the fds: the length, or a negative errno.
 */
ssize_t raw_chan_recv(struct bench_chan *c, union bench_ctrl *ctrl,
		      int **fds, unsigned int *nr_fds)
{
	struct raw_chan *raw = c->priv;
	struct iovec iov = { .iov_base = raw->rxbuf, .iov_len = c->max_len };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctrl->buf,
		.msg_controllen = sizeof(ctrl->buf),
	};
	ssize_t n;
	int err;

	n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	err = msghdr_get_fds(&mh, fds, nr_fds);
	return err ? err : n;
}
