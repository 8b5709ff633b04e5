/* SPDX-License-Identifier: MIT */
/*
 * libcamera 0.0.3's IPCUnixSocket, declared from its documented public API,
 * for programs that talk to the real class: the benchmark's `libcamera`
 * implementation and interop tests.
 *
 * libcamera-dev does not ship libcamera/internal/ipc_unixsocket.h, but
 * libcamera.so.0.0.3 exports the class's members, and the headers its
 * public part needs (<libcamera/base/signal.h>, unique_fd.h) are shipped.
 * What must match the library: the member functions (their mangled names
 * are the link-time contract), the two vectors of Payload, and readyRead
 * being the first data member, at offset 0 (the class has no base and no
 * virtual function: libcamera.so has no vtable for it). Everything after
 * readyRead is the library's private state, which this declaration does
 * not describe: it only reserves room for it.
 *
 * How much room: the members behind readyRead in 0.0.3 take 24 bytes on
 * LP64 (a UniqueFD, a bool, an 8-byte header, a pointer); the room is
 * IPCSOCK_LCAM_ROOM bytes, and its second half is a guard that nothing
 * may touch. Allocate with new: the class's operator new fills the whole
 * object with IPCSOCK_LCAM_FILL before the library's constructor runs, so
 * that guardIntact() can tell, after construction and after use, that the
 * library's members stayed in the first half. An object on the stack has
 * no guard to check. (Built with -DIPCSOCK_LCAM_ROOM=32, the check program
 * sees the guard trip; with 16, valgrind sees the constructor write past
 * the object.)
 *
 * Only a build against libcamera 0.0.3 may use this (the Makefile and
 * compat/libcamera/check.sh ask pkg-config for exactly that version).
 */
#ifndef IPCSOCK_COMPAT_LIBCAMERA_IPC_UNIXSOCKET_H
#define IPCSOCK_COMPAT_LIBCAMERA_IPC_UNIXSOCKET_H

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include <libcamera/base/signal.h>
#include <libcamera/base/unique_fd.h>

#ifndef IPCSOCK_LCAM_ROOM
#define IPCSOCK_LCAM_ROOM	128
#endif
#define IPCSOCK_LCAM_FILL	0xa5

namespace libcamera {

class IPCUnixSocket
{
public:
	struct Payload {
		std::vector<uint8_t> data;
		std::vector<int32_t> fds;
	};

	IPCUnixSocket();
	~IPCUnixSocket();

	/* Makes a SOCK_DGRAM | SOCK_NONBLOCK pair, binds one end, returns
	 * the other for the remote process's bind(). */
	UniqueFD create();
	/* 0, or -EINVAL if already bound (then @fd is closed). */
	int bind(UniqueFD fd);
	void close();
	bool isBound() const;

	/* 0 or -errno; a full non-blocking socket gives -EAGAIN, possibly
	 * after the header datagram went out. */
	int send(const Payload &payload);
	/* After readyRead: 0 or -errno; -EAGAIN when nothing is ready. */
	int receive(Payload *payload);

	/* A whole message (header and payload) is ready for receive(). */
	Signal<> readyRead;

	/*
	 * Not libcamera's: inline, so nothing of the library depends on
	 * them. Never inlined: GCC 12's -Wmismatched-new-delete takes the
	 * global operator delete inside this one, once inlined, for a
	 * mismatch with the class's operator new.
	 */
	__attribute__((noinline)) static void *operator new(std::size_t size)
	{
		void *p = ::operator new(size);

		std::memset(p, IPCSOCK_LCAM_FILL, size);
		return p;
	}

	__attribute__((noinline)) static void operator delete(void *p) noexcept
	{
		::operator delete(p);
	}

	/* The second half of the room still holds the fill. */
	bool guardIntact() const
	{
		const unsigned char *g = room_ + sizeof(room_) / 2;
		std::size_t i;

		for (i = 0; i < sizeof(room_) / 2; i++)
			if (g[i] != IPCSOCK_LCAM_FILL)
				return false;
		return true;
	}

	/*
	 * Bytes of the object up to the last one that differs from the fill:
	 * how far the library's constructor and use have written (a
	 * lower bound: a last byte equal to the fill is not seen).
	 */
	std::size_t extentUsed() const
	{
		const unsigned char *p =
			reinterpret_cast<const unsigned char *>(this);
		std::size_t n = sizeof(*this), start = room_ - p;

		while (n > start && p[n - 1] == IPCSOCK_LCAM_FILL)
			n--;
		return n;
	}

	IPCUnixSocket(const IPCUnixSocket &) = delete;
	IPCUnixSocket &operator=(const IPCUnixSocket &) = delete;

private:
	/* Right behind readyRead, where the library's members start. */
	alignas(void *) unsigned char room_[IPCSOCK_LCAM_ROOM];
};

} /* namespace libcamera */

#endif /* IPCSOCK_COMPAT_LIBCAMERA_IPC_UNIXSOCKET_H */
