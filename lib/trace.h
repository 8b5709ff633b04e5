/* SPDX-License-Identifier: MIT */
/*
 * USDT probes (provider "ipcsock"), for bpftrace, perf and SystemTap: a
 * probe is one nop in the code and a note in .note.stapsdt naming it and
 * where its arguments are, so an unattached probe costs nothing. They
 * need <sys/sdt.h> (Debian: systemtap-sdt-dev); without it, or with
 * IPCSOCK_NO_TRACE defined, IPCSOCK_TRACE() compiles to nothing.
 *
 * The probes and their arguments (README.md lists them too):
 *   send(sock, msgs, bytes, fds, direct)  a send call succeeded
 *   queue(sock, msgs, queue_len)          msgs of it went into the queue
 *   receive(sock, len, nr_fds)            ipcsock_receive() handed one out
 *   ready_read(sock, pending)             the ready_read callback is called
 *   hangup(sock, err)                     the hangup callback is called
 *   fail(sock, err)                       the channel failed with err
 * scripts/check-probes.sh checks the built library has exactly these.
 */
#ifndef IPCSOCK_TRACE_H
#define IPCSOCK_TRACE_H

#if !defined(IPCSOCK_NO_TRACE) && defined(__has_include)
#if __has_include("sys/sdt.h")
#define SDT_USE_VARIADIC
#include <sys/sdt.h>
#define IPCSOCK_TRACE(name, ...)	STAP_PROBEV(ipcsock, name, __VA_ARGS__)
#endif
#endif

#ifndef IPCSOCK_TRACE
#define IPCSOCK_TRACE(...)		do { } while (0)
#endif

#endif /* IPCSOCK_TRACE_H */
