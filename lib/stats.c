// SPDX-License-Identifier: MIT
/*
 * ipcsock_get_stats(): the channel's counters, which tx.c, rx.c and the
 * backends bump in place, plus what its state says now. The caller's
 * structure may be older (smaller) or newer (larger) than ours, as with
 * struct ipcsock_loop_opts: the common part is copied, a newer caller's
 * tail zeroed, and the size we filled returned.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

int ipcsock_get_stats(const struct ipcsock *sock, struct ipcsock_stats *st,
		      size_t sz)
{
	struct ipcsock_stats now;
	struct ipcsock_chan *ch;
	size_t n = sz < sizeof(now) ? sz : sizeof(now);
	int err;

	if (!sock || !st || sz < sizeof(now.tx_msgs))
		return -EINVAL;
	err = sock_chan(sock, &ch);
	if (err)
		return err;
	now = ch->st;
	now.rx_bufs = chan_rx_busy(ch);
	now.ended = ch->hup_due;
	now.hangup_err = ch->hup_due ? ch->hup_err : 0;
	memcpy(st, &now, n);
	if (sz > n)
		memset((char *)st + n, 0, sz - n);
	return n;
}
