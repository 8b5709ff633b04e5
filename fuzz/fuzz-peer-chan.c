// SPDX-License-Identifier: MIT
/*
 * fuzz-peer: the channel of a conversation. Either the harness makes the
 * socket pair and ipcsock_bind() takes one end, or ipcsock_create() makes
 * it and returns the other end, which the harness keeps as the raw peer
 * (the library's end it finds through sock_diag, as the returned end's
 * peer). Before or after the real bind, a bind the input chooses must
 * fail the documented way. OP_REBIND ends a conversation and starts the
 * next on the same handle - ipcsock_close(), then bind or create again -
 * from the input loop or from inside a callback.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz-peer.h"

void fz_conv_reset(struct fz *fz)
{
	size_t off = offsetof(struct fz, remote);

	memset((char *)fz + off, 0, sizeof(*fz) - off);
	fz->remote = -1;
	fz->lib_fd = -1;
	fz->lib_dup = -1;
	fz->close_at = UINT_MAX;
	fz->rebind_at = UINT_MAX;
}

static void check_cloexec(int fd, const char *what)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0 || !(fl & FD_CLOEXEC))
		fz_fail("%s (fd %d) without FD_CLOEXEC", what, fd);
}

static int sock_opt(int fd, int opt)
{
	socklen_t len = sizeof(int);
	int val;

	if (getsockopt(fd, SOL_SOCKET, opt, &val, &len))
		return -errno;
	return val;
}

/* The fd a failed bind was given stays the caller's: still open. */
static void probe_done(struct fz *fz, const char *what, int ret, int want,
		       int fd, bool bound)
{
	if (ret != want)
		fz_fail("%s: %d, want %d", what, ret, want);
	if (fd >= 0 && fcntl(fd, F_GETFD) < 0)
		fz_fail("%s failed but took the fd", what);
	if (fz->sock && ipcsock_is_bound(fz->sock) != bound)
		fz_fail("%s failed but the handle is %s", what,
			bound ? "unbound" : "bound");
	if (fd >= 0)
		close(fd);
}

/*
 * A bind that must fail, with the error ipcsock_bind(3) documents:
 * PROBE_BUSY on the bound handle, the others before it is bound.
 */
static void bind_probe(struct fz *fz, unsigned int probe)
{
	bool bound = ipcsock_is_bound(fz->sock);
	int fd = -1, sv[2], ret;

	switch (probe) {
	case PROBE_BADF:
		probe_done(fz, "bind(-1)", ipcsock_bind(fz->sock, -1), -EBADF,
			   -1, bound);
		probe_done(fz, "bind(closed fd)",
			   ipcsock_bind(fz->sock, FZ_UNUSED_FD), -EBADF, -1,
			   bound);
		break;
	case PROBE_NOTSOCK:
		fd = fcntl(pool[POOL_MEMFD_A].fd, F_DUPFD_CLOEXEC, 0);
		probe_done(fz, "bind(memfd)", ipcsock_bind(fz->sock, fd),
			   -ENOTSOCK, fd, bound);
		break;
	case PROBE_STREAM:
		fd = fcntl(pool[POOL_SOCK_A].fd, F_DUPFD_CLOEXEC, 0);
		probe_done(fz, "bind(SOCK_STREAM)", ipcsock_bind(fz->sock, fd),
			   -EPROTOTYPE, fd, bound);
		break;
	case PROBE_INET:
		/* Where a sandbox forbids AF_INET there is nothing to try. */
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			break;
		probe_done(fz, "bind(AF_INET)", ipcsock_bind(fz->sock, fd),
			   -EAFNOSUPPORT, fd, bound);
		break;
	case PROBE_UNCONNECTED:
		fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		probe_done(fz, "bind(unconnected)", ipcsock_bind(fz->sock, fd),
			   -ENOTCONN, fd, bound);
		break;
	case PROBE_BUSY:
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
			fz_fail("socketpair: %s", strerror(errno));
		probe_done(fz, "bind on a bound handle",
			   ipcsock_bind(fz->sock, sv[0]), -EBUSY, sv[0], bound);
		close(sv[1]);
		ret = ipcsock_create(fz->sock);
		if (ret >= 0)
			close(ret);
		probe_done(fz, "create on a bound handle", ret, -EBUSY, -1,
			   bound);
		break;
	case PROBE_NULL:
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
			fz_fail("socketpair: %s", strerror(errno));
		probe_done(fz, "bind(NULL handle)", ipcsock_bind(NULL, sv[0]),
			   -EINVAL, sv[0], bound);
		close(sv[1]);
		ret = ipcsock_create(NULL);
		if (ret >= 0)
			close(ret);
		probe_done(fz, "create(NULL handle)", ret, -EINVAL, -1, bound);
		break;
	}
}

/* The inode of the other end of AF_UNIX socket @fd, by sock_diag; 0: unknown. */
static ino_t unix_peer_ino(int fd)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req req;
	} rq;
	union {
		char buf[1024];
		struct nlmsghdr nlh;
	} rsp;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct unix_diag_msg *m;
	struct nlmsghdr *nlh;
	struct rtattr *rta;
	uint32_t peer = 0;
	struct stat st;
	int nl, len, alen;

	if (fstat(fd, &st))
		return 0;
	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return 0;
	memset(&rq, 0, sizeof(rq));
	rq.nlh.nlmsg_len = sizeof(rq);
	rq.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	rq.nlh.nlmsg_flags = NLM_F_REQUEST;
	rq.req.sdiag_family = AF_UNIX;
	rq.req.udiag_states = ~0u;
	rq.req.udiag_ino = st.st_ino;
	rq.req.udiag_show = UDIAG_SHOW_PEER;
	rq.req.udiag_cookie[0] = INET_DIAG_NOCOOKIE;
	rq.req.udiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (sendto(nl, &rq, sizeof(rq), 0, (struct sockaddr *)&sa,
		   sizeof(sa)) != sizeof(rq))
		goto out;
	len = recv(nl, rsp.buf, sizeof(rsp.buf), 0);
	for (nlh = &rsp.nlh; len > 0 && NLMSG_OK(nlh, (unsigned int)len);
	     nlh = NLMSG_NEXT(nlh, len)) {
		if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY)
			break;
		m = NLMSG_DATA(nlh);
		alen = nlh->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
		for (rta = (struct rtattr *)(m + 1); RTA_OK(rta, alen);
		     rta = RTA_NEXT(rta, alen))
			if (rta->rta_type == UNIX_DIAG_PEER)
				memcpy(&peer, RTA_DATA(rta), sizeof(peer));
	}
out:
	close(nl);
	return peer;
}

/* The fd of this process that is socket inode @ino, or -1. */
static int fd_of_ino(ino_t ino)
{
	struct dirent *de;
	struct stat st;
	int fd = -1, n;
	DIR *dir;

	dir = opendir("/proc/self/fd");
	if (!dir)
		fz_fail("/proc/self/fd: %s", strerror(errno));
	while (fd < 0 && (de = readdir(dir))) {
		n = atoi(de->d_name);
		if (de->d_name[0] == '.' || n == dirfd(dir))
			continue;
		if (!fstat(n, &st) && S_ISSOCK(st.st_mode) && st.st_ino == ino)
			fd = n;
	}
	closedir(dir);
	return fd;
}

/*
 * The library's end of a channel ipcsock_create() made: the peer of
 * @remote. Without sock_diag, the lowest free number before the call,
 * which socketpair() takes first (@lowest), if it looks the part.
 */
static int created_lib_fd(int remote, int lowest)
{
	ino_t peer = unix_peer_ino(remote);
	int fd;

	if (!peer) {
		if (sock_opt(lowest, SO_TYPE) != SOCK_SEQPACKET)
			fz_fail("ipcsock_create: no SOCK_SEQPACKET socket at fd %d, and no sock_diag to look further",
				lowest);
		return lowest;
	}
	fd = fd_of_ino(peer);
	if (fd < 0)
		fz_fail("ipcsock_create: the other end (inode %lu) is not open here",
			(unsigned long)peer);
	return fd;
}

/*
 * ipcsock_create(): the end returned is a connected SOCK_SEQPACKET socket
 * with FD_CLOEXEC, and so is the end the library keeps.
 */
static void chan_create(struct fz *fz)
{
	int lowest = fcntl(pool[POOL_MEMFD_A].fd, F_DUPFD_CLOEXEC, 0);
	int ret, need, val;

	if (lowest < 0)
		fz_fail("F_DUPFD: %s", strerror(errno));
	close(lowest);
	ret = ipcsock_create(fz->sock);
	if (ret < 0)
		fz_fail("ipcsock_create: %d", ret);
	fz->remote = ret;
	if (sock_opt(ret, SO_DOMAIN) != AF_UNIX ||
	    sock_opt(ret, SO_TYPE) != SOCK_SEQPACKET)
		fz_fail("ipcsock_create returned fd %d, no AF_UNIX SOCK_SEQPACKET socket",
			ret);
	fz->lib_fd = created_lib_fd(ret, lowest);
	if (fz->lib_fd == ret)
		fz_fail("ipcsock_create returned its own end (fd %d)", ret);
	check_cloexec(ret, "the end ipcsock_create returned");
	check_cloexec(fz->lib_fd, "the end ipcsock_create kept");
	if (!fz->tight)
		return;
	/* What CONF_TIGHT and ipcsock_bind() make of it: see chan_bind(). */
	val = FZ_TIGHT_SNDBUF;
	need = fz->fl->max_msg + TEST_WIRE_HDR_LEN + 32;
	if (setsockopt(fz->lib_fd, SOL_SOCKET, SO_SNDBUF, &val, sizeof(val)))
		fz_fail("SO_SNDBUF: %s", strerror(errno));
	if (sock_opt(fz->lib_fd, SO_SNDBUF) < need &&
	    setsockopt(fz->lib_fd, SOL_SOCKET, SO_SNDBUF, &need, sizeof(need)))
		fz_fail("SO_SNDBUF: %s", strerror(errno));
}

/*
 * ipcsock_bind() to one end of a pair made without SOCK_CLOEXEC: the
 * library must set it on the end it takes. With CONF_TIGHT the end has a
 * small SO_SNDBUF, which bind raises as far as the largest message needs.
 */
static void chan_bind(struct fz *fz)
{
	int sv[2], ret, val = FZ_TIGHT_SNDBUF;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) ||
	    fcntl(sv[1], F_SETFD, FD_CLOEXEC))
		fz_fail("socketpair: %s", strerror(errno));
	if (fz->tight &&
	    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &val, sizeof(val)))
		fz_fail("SO_SNDBUF: %s", strerror(errno));
	ret = ipcsock_bind(fz->sock, sv[0]);
	if (ret)
		fz_fail("ipcsock_bind: %d", ret);
	fz->lib_fd = sv[0];
	fz->remote = sv[1];
	check_cloexec(sv[0], "the end ipcsock_bind took");
}

/* A new conversation on fz->sock, which must be unbound. */
void fz_chan_open(struct fz *fz, bool create, unsigned int probe)
{
	int i;

	if (ipcsock_is_bound(fz->sock))
		fz_fail("a closed handle is bound");
	if (probe != PROBE_BUSY)
		bind_probe(fz, probe);
	if (create)
		chan_create(fz);
	else
		chan_bind(fz);
	fz->created = create;
	if (!ipcsock_is_bound(fz->sock))
		fz_fail("a handle just bound is not");
	if (probe == PROBE_BUSY)
		bind_probe(fz, probe);
	fz->lib_dup = fcntl(fz->lib_fd, F_DUPFD_CLOEXEC, 0);
	fz->kmax = sock_opt(fz->remote, SO_SNDBUF);
	if (fz->lib_dup < 0 || fz->kmax < 0)
		fz_fail("set-up: %s", strerror(errno));
	/* AF_UNIX: a datagram may take SO_SNDBUF less 32 bytes. */
	fz->kmax -= 32;
	pool[POOL_LIB].fd = fz->lib_fd;
	pool[POOL_LIB_DUP].fd = fz->lib_dup;
	pool[POOL_REMOTE].fd = fz->remote;
	for (i = POOL_LIB; i < NR_POOL; i++)
		file_id(&pool[i]);
	fz->convs++;
}

/*
 * End the conversation and start the next on the same handle (a new one
 * if the input freed it). @how is op_rebind()'s arg, its probe in bits
 * 4-6. Inside a callback nothing can be settled: dispatch is not allowed.
 */
void fz_rebind(struct fz *fz, unsigned int how, bool in_callback)
{
	bool settled = !in_callback && (how & 2);

	if (!in_callback && fz->fl->ring)
		app_chain_end(fz->fl, false);
	if (settled)
		fz_settle(fz);
	fz_verify(fz, settled);
	if ((how & 4) && !fz->remote_closed) {
		close(fz->remote);
		fz->remote_closed = true;
	}
	if (fz->sock && !fz->lib_closed)
		ipcsock_close(fz->sock);
	if (!fz->sock) {
		fz->sock = ipcsock_new(fz->fl->loop);
		if (!fz->sock)
			fz_fail("ipcsock_new failed");
		if (fz->keep)
			fz->fl->kept = fz->sock;
		fz_set_callbacks(fz);
	}
	if (!fz->remote_closed)
		close(fz->remote);
	close(fz->lib_dup);
	fz_conv_reset(fz);
	fz_chan_open(fz, how & 1, (how >> 4) & 7);
}

/*
 * OP_REBIND [b]: ipcsock_close(), then bind again on the same handle.
 *   arg bit 0:  ipcsock_create(), else ipcsock_bind()
 *   arg bit 1:  settle the old conversation first and check it settled
 *   arg bit 2:  the peer closes its end before the handle is closed
 *   arg bit 3:  not now: from ready_read once (b >> 3 & 15) + 1 more
 *               messages are delivered, or with b bit 7 from the hangup
 *               callback
 *   b bits 0-2: a bind that must fail first (enum fz_probe)
 */
void op_rebind(struct fz *fz, struct fz_in *in, unsigned int arg)
{
	unsigned int b = in_u8(in), how = (arg & 7) | (b & 7) << 4;

	if (!(arg & 8)) {
		fz_rebind(fz, how, false);
		return;
	}
	fz->rebind_how = how;
	if (b & 0x80)
		fz->rebind_in_hangup = true;
	else
		fz->rebind_at = fz->delivered + 1 + ((b >> 3) & 15);
}
