/* SPDX-License-Identifier: MIT */
/*
 * ipcsock.hpp - libipcsock's C++ API: libcamera's IPCUnixSocket over the
 * C API of ipcsock.h, header-only, C++17 and later.
 *
 * The namespace is libipcsock, not ipcsock: C++ cannot have a namespace and
 * the C API's struct ipcsock under one name.
 *
 * Everything here belongs to one thread, as in libcamera: a socket and its
 * loop are used from the thread that dispatches the loop, and the slots of
 * its signals run on that thread from Loop::dispatch(), synchronously. I/O
 * errors are returned as the C API's negative errno values; nothing here
 * throws for them. Allocation failure throws std::bad_alloc as the standard
 * containers do. A slot must not throw: an exception cannot unwind through
 * the C library's dispatch, so one that leaves a slot calls std::terminate.
 */
#ifndef IPCSOCK_HPP
#define IPCSOCK_HPP

#if !defined(__cplusplus) || __cplusplus < 201703L
#error "ipcsock.hpp needs C++17 or later"
#endif

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include <unistd.h>

#include "ipcsock.h"

namespace libipcsock {

/*
 * UniqueFD - the one owner of a file descriptor, as libcamera's: closes it
 * when destroyed or reset, gives it up with release(). Move-only.
 */
class UniqueFD
{
public:
	UniqueFD() noexcept : fd_(-1) {}
	explicit UniqueFD(int fd) noexcept : fd_(fd) {}
	UniqueFD(UniqueFD &&other) noexcept : fd_(other.release()) {}
	~UniqueFD() { reset(); }

	UniqueFD &operator=(UniqueFD &&other) noexcept
	{
		reset(other.release());
		return *this;
	}

	UniqueFD(const UniqueFD &) = delete;
	UniqueFD &operator=(const UniqueFD &) = delete;

	int get() const noexcept { return fd_; }
	bool isValid() const noexcept { return fd_ >= 0; }

	/* The caller owns the descriptor from now on; this holds -1. */
	int release() noexcept
	{
		int fd = fd_;

		fd_ = -1;
		return fd;
	}

	/*
	 * Own @fd instead, closing the old one. Resetting to the descriptor
	 * already held keeps it open: closing it would leave this owning a
	 * number that may be reused for another file.
	 */
	void reset(int fd = -1) noexcept
	{
		int old = fd_;

		fd_ = fd;
		if (old >= 0 && old != fd)
			::close(old);
	}

	void swap(UniqueFD &other) noexcept { std::swap(fd_, other.fd_); }

private:
	int fd_;
};

inline void swap(UniqueFD &a, UniqueFD &b) noexcept
{
	a.swap(b);
}

template<typename... Args>
class Signal;

namespace detail {

struct SlotBase {
	virtual ~SlotBase() = default;
	bool connected = true;
};

template<typename... Args>
struct Slot : SlotBase {
	explicit Slot(std::function<void(Args...)> f) : fn(std::move(f)) {}
	std::function<void(Args...)> fn;
};

/*
 * What a signal shares with its connections, which may outlive it. The
 * slot list is copy-on-write: an emission holds a reference to the list it
 * started with, so a slot that connects, disconnects, or destroys the
 * signal (its socket) makes a new list (or drops this one) instead of
 * changing the one being walked. Emitting allocates nothing.
 */
struct SignalCore {
	using List = std::vector<std::shared_ptr<SlotBase>>;

	std::shared_ptr<List> slots;
	std::size_t live = 0;
	/* Told when the first slot connects and the last one goes. */
	void (*watch)(void *arg, bool connected) = nullptr;
	void *watch_arg = nullptr;

	/* A list this may change in place: nobody else walks it. */
	List &own()
	{
		if (!slots || slots.use_count() > 1) {
			auto copy = std::make_shared<List>();

			if (slots)
				for (const auto &s : *slots)
					if (s->connected)
						copy->push_back(s);
			slots = std::move(copy);
		}
		return *slots;
	}

	void add(std::shared_ptr<SlotBase> slot)
	{
		own().push_back(std::move(slot));
		if (live++ == 0 && watch)
			watch(watch_arg, true);
	}

	void remove(SlotBase *slot)
	{
		if (!slot->connected)
			return;
		slot->connected = false;
		/* Shared: the emission skips it, a later own() drops it. */
		if (slots.use_count() == 1) {
			List &l = *slots;

			for (auto it = l.begin(); it != l.end(); ++it) {
				if (it->get() == slot) {
					l.erase(it);
					break;
				}
			}
		}
		if (--live == 0 && watch)
			watch(watch_arg, false);
	}

	void clear()
	{
		if (slots)
			for (const auto &s : *slots)
				s->connected = false;
		slots.reset();
		if (live && watch) {
			live = 0;
			watch(watch_arg, false);
		}
		live = 0;
	}
};

} /* namespace detail */

/*
 * Connection - what Signal::connect() returns: disconnect() removes that
 * slot. Copies refer to the same slot. Dropping a Connection leaves the
 * slot connected; disconnecting twice, or after the signal (its socket) is
 * gone, does nothing.
 */
class Connection
{
public:
	Connection() noexcept = default;

	void disconnect()
	{
		std::shared_ptr<detail::SlotBase> slot = slot_.lock();
		std::shared_ptr<detail::SignalCore> core = core_.lock();

		slot_.reset();
		core_.reset();
		if (slot && core)
			core->remove(slot.get());
	}

	bool connected() const noexcept
	{
		std::shared_ptr<detail::SlotBase> slot = slot_.lock();

		return slot && slot->connected && !core_.expired();
	}

private:
	template<typename...>
	friend class Signal;

	Connection(std::weak_ptr<detail::SignalCore> core,
		   std::weak_ptr<detail::SlotBase> slot) noexcept
		: core_(std::move(core)), slot_(std::move(slot))
	{
	}

	std::weak_ptr<detail::SignalCore> core_;
	std::weak_ptr<detail::SlotBase> slot_;
};

/*
 * Signal - callables connected to an event, called in the order they were
 * connected. A slot may connect and disconnect slots (itself included) and
 * destroy the signal's owner while the signal is emitted: a slot
 * disconnected during an emission is not called later in it, one connected
 * during it is first called by the next emission, and once the signal is
 * destroyed no further slot of that emission runs.
 */
template<typename... Args>
class Signal
{
public:
	Signal() : core_(std::make_shared<detail::SignalCore>()) {}

	~Signal()
	{
		/* The owner is going away: do not tell it. */
		core_->watch = nullptr;
		core_->clear();
	}

	Signal(const Signal &) = delete;
	Signal &operator=(const Signal &) = delete;

	/* Connect a callable that takes Args... */
	template<typename F>
	Connection connect(F &&fn)
	{
		static_assert(std::is_invocable_v<std::decay_t<F> &, Args...>,
			      "a slot must be callable with the signal's arguments");
		auto slot = std::make_shared<detail::Slot<Args...>>(
			std::function<void(Args...)>(std::forward<F>(fn)));

		core_->add(slot);
		return Connection(core_, slot);
	}

	/* Connect a member function, as libcamera's connect(obj, &T::fn). */
	template<typename T, typename M>
	Connection connect(T *obj, M T::*method)
	{
		return connect([obj, method](Args... args) {
			std::invoke(method, obj, args...);
		});
	}

	/* Disconnect every slot. */
	void disconnect() { core_->clear(); }

	void emit(Args... args)
	{
		/*
		 * The slots may destroy this signal: from here on only the
		 * local reference to the list (which keeps it and its slots
		 * alive) is used, never a member.
		 */
		std::shared_ptr<detail::SignalCore::List> list = core_->slots;

		if (!list)
			return;
		for (const auto &s : *list) {
			if (!s->connected)
				continue;
			static_cast<detail::Slot<Args...> *>(s.get())->fn(args...);
		}
	}

private:
	friend class IPCUnixSocket;

	void watch(void (*fn)(void *, bool), void *arg)
	{
		core_->watch = fn;
		core_->watch_arg = arg;
	}

	std::shared_ptr<detail::SignalCore> core_;
};

/*
 * Loop - an ipcsock_loop: one the Loop created and frees (owning), or one
 * it only refers to (the thread's default loop, or a C loop given to
 * wrap()). Move-only. A Loop must outlive the sockets made on it.
 */
class Loop
{
public:
	/* A new loop with every option at its default. */
	Loop() : Loop(ipcsock_loop_new(nullptr), true) {}

	/*
	 * A new loop with @opts. A value-initialised ipcsock_loop_opts set
	 * field by field will do: sz 0 is taken as this header's size, so
	 * C++ code never needs IPCSOCK_LOOP_OPTS(), which g++ -Wextra warns
	 * about in C++ (missing field initialisers).
	 */
	explicit Loop(const struct ipcsock_loop_opts &opts)
		: Loop(newLoop(opts), true)
	{
	}

	/*
	 * The calling thread's default loop, which IPCUnixSocket() uses (not
	 * owned). Not cached: after fork() the child's default loop is a new
	 * one, and a cached pointer would be the parent's.
	 */
	static Loop threadDefault() { return Loop(ipcsock_loop_default(), false); }

	/* Take ownership of a loop made with the C API (e.g. a shared one). */
	static Loop adopt(struct ipcsock_loop *loop)
	{
		return Loop(loop, true, loop ? 0 : -EINVAL);
	}

	/* Refer to a loop made with the C API without owning it. */
	static Loop wrap(struct ipcsock_loop *loop)
	{
		return Loop(loop, false, loop ? 0 : -EINVAL);
	}

	Loop(Loop &&other) noexcept
		: loop_(other.loop_), owned_(other.owned_), error_(other.error_)
	{
		other.loop_ = nullptr;
		other.owned_ = false;
		other.error_ = -EINVAL;
	}

	Loop &operator=(Loop &&other) noexcept
	{
		if (this != &other) {
			if (owned_)
				ipcsock_loop_free(loop_);
			loop_ = other.loop_;
			owned_ = other.owned_;
			error_ = other.error_;
			other.loop_ = nullptr;
			other.owned_ = false;
			other.error_ = -EINVAL;
		}
		return *this;
	}

	~Loop()
	{
		if (owned_)
			ipcsock_loop_free(loop_);
	}

	Loop(const Loop &) = delete;
	Loop &operator=(const Loop &) = delete;

	bool isValid() const noexcept { return loop_ != nullptr; }
	/* Why the loop could not be made: a negative errno, 0 if valid. */
	int error() const noexcept { return error_; }
	struct ipcsock_loop *get() const noexcept { return loop_; }

	/* ipcsock_loop_dispatch(): wait up to @timeoutMs, run the slots. */
	int dispatch(int timeoutMs = -1)
	{
		return loop_ ? ipcsock_loop_dispatch(loop_, timeoutMs) : error_;
	}

	/* ipcsock_loop_fd(): readable while dispatch() has work. */
	int fd() { return loop_ ? ipcsock_loop_fd(loop_) : error_; }

	int flush() { return loop_ ? ipcsock_loop_flush(loop_) : error_; }
	bool idle() const noexcept { return ipcsock_loop_idle(loop_); }

	enum ipcsock_backend backend() const noexcept
	{
		return ipcsock_loop_backend(loop_);
	}

private:
	Loop(struct ipcsock_loop *loop, bool owned)
		: loop_(loop), owned_(owned && loop), error_(loop ? 0 : -errno)
	{
		if (!loop_ && !error_)
			error_ = -ENOMEM;
	}

	Loop(struct ipcsock_loop *loop, bool owned, int error) noexcept
		: loop_(loop), owned_(owned && loop), error_(error)
	{
	}

	static struct ipcsock_loop *newLoop(struct ipcsock_loop_opts opts)
	{
		if (!opts.sz)
			opts.sz = sizeof(opts);
		return ipcsock_loop_new(&opts);
	}

	struct ipcsock_loop *loop_;
	bool owned_;
	int error_;
};

/*
 * Wire - the format a socket speaks (ipcsock.h's enum ipcsock_wire):
 * Native, the library's own on SOCK_SEQPACKET, or Libcamera, libcamera's
 * IPCUnixSocket format on SOCK_DGRAM, for a libcamera process as the peer.
 * In Libcamera mode the peer's close is seen only when a send is refused
 * (hangup -ECONNREFUSED); see ipcsock_new_opts(3).
 */
enum class Wire { Native, Libcamera };

/*
 * IPCUnixSocket - one end of a channel, with libcamera's API: create() or
 * bind(), send() and receive() whole messages with descriptors, readyRead
 * when messages are waiting, close(). Added: hangup(err) when the channel
 * ends (the C API's hangup: 0 for an orderly close by the peer,
 * -ECONNRESET when it left messages of ours unread, another negative errno
 * when the channel failed). Not copyable, not movable: the C library calls
 * back into this object.
 */
class IPCUnixSocket
{
public:
	struct Payload {
		std::vector<uint8_t> data;
		std::vector<int32_t> fds;
	};

	/* A socket on the calling thread's default loop. */
	IPCUnixSocket() : sock_(ipcsock_new(nullptr)), error_(newError())
	{
		init();
	}

	/* A socket on @loop, which must outlive it. */
	explicit IPCUnixSocket(Loop &loop)
		: sock_(loop.get() ? ipcsock_new(loop.get()) : nullptr),
		  error_(loop.get() ? newError() : loopError(loop))
	{
		init();
	}

	/* A socket on the default loop that speaks @wire. */
	explicit IPCUnixSocket(Wire wire)
		: sock_(newSock(nullptr, wire)), error_(newError())
	{
		init();
	}

	/* A socket on @loop, which must outlive it, that speaks @wire. */
	IPCUnixSocket(Loop &loop, Wire wire)
		: sock_(loop.get() ? newSock(loop.get(), wire) : nullptr),
		  error_(loop.get() ? newError() : loopError(loop))
	{
		init();
	}

	/*
	 * Closes the channel if bound. Allowed from the socket's own slots:
	 * the rest of that emission's slots are then not called.
	 */
	~IPCUnixSocket() { ipcsock_free(sock_); }

	IPCUnixSocket(const IPCUnixSocket &) = delete;
	IPCUnixSocket &operator=(const IPCUnixSocket &) = delete;

	/*
	 * Make a channel, bind this socket to one end and return the other,
	 * close-on-exec, for the peer. On failure the UniqueFD is invalid
	 * and errno says why (the C API's error, positive: EBUSY if bound).
	 */
	UniqueFD create()
	{
		int ret = sock_ ? ipcsock_create(sock_) : error_;

		if (ret < 0) {
			errno = -ret;
			return UniqueFD();
		}
		return UniqueFD(ret);
	}

	/*
	 * Bind to an end of a channel (e.g. the one a worker got). @fd is
	 * consumed either way, as in libcamera: the socket owns it on
	 * success, and it is closed on failure.
	 */
	int bind(UniqueFD fd)
	{
		int ret = sock_ ? ipcsock_bind(sock_, fd.get()) : error_;

		if (!ret)
			fd.release();
		return ret;
	}

	/* Unbind; no hangup is emitted. The socket can be bound again. */
	void close() { ipcsock_close(sock_); }

	bool isBound() const { return ipcsock_is_bound(sock_); }

	/*
	 * The channel's counters (ipcsock_get_stats(3)) into @st: 0, or
	 * -ENOTCONN unbound, -EINVAL for a null @st. An ended channel keeps
	 * them until it is closed, so a hangup slot can read them.
	 */
	int stats(struct ipcsock_stats *st) const
	{
		int ret;

		if (!sock_)
			return -ENOTCONN;
		ret = ipcsock_get_stats(sock_, st, sizeof(*st));
		return ret < 0 ? ret : 0;
	}

	/*
	 * Queue one message. The library copies the bytes and takes its own
	 * references to the descriptors before this returns. Errors as
	 * ipcsock_send(): -ENOTCONN unbound, -EINVAL for an empty message or
	 * more than IPCSOCK_MAX_FDS descriptors, -EPIPE after hangup, ...
	 */
	int send(const Payload &payload)
	{
		struct ipcsock_payload msg;

		if (!sock_)
			return -ENOTCONN;
		if (payload.fds.size() > IPCSOCK_MAX_FDS)
			return -EINVAL;
		msg.data = payload.data.data();
		msg.len = payload.data.size();
		msg.fds = payload.fds.data();
		msg.nr_fds = static_cast<unsigned int>(payload.fds.size());
		return ipcsock_send(sock_, &msg);
	}

	/*
	 * Take the oldest message: its bytes are copied into @payload->data,
	 * its descriptors (new ones, close-on-exec) are put in
	 * @payload->fds and are the caller's to close. What @payload held
	 * before is replaced, descriptors included, which are not closed.
	 * Returns 0, -EAGAIN when no message is waiting, -ENOTCONN unbound,
	 * -EINVAL for a null @payload.
	 */
	int receive(Payload *payload)
	{
		struct ipcsock_payload msg;
		int ret;

		if (!sock_)
			return -ENOTCONN;
		if (!payload)
			return -EINVAL;
		ret = ipcsock_receive(sock_, &msg);
		if (ret)
			return ret;

		/* The message is taken: its fds must not leak on bad_alloc. */
		FdCloser guard{ msg.fds, msg.nr_fds };
		const uint8_t *bytes = static_cast<const uint8_t *>(msg.data);

		payload->data.assign(bytes, bytes + msg.len);
		payload->fds.assign(msg.fds, msg.fds + msg.nr_fds);
		guard.count = 0;
		return 0;
	}

	/*
	 * Emitted from dispatch while messages are waiting: once per
	 * dispatch, again on the next one if a slot left messages, so the
	 * slots should receive() until -EAGAIN. With no slot connected,
	 * messages wait for receive() and dispatch does not wake for them.
	 */
	Signal<> readyRead;

	/*
	 * Emitted once per binding when the channel has ended, after
	 * readyRead for the last messages (which can still be received).
	 * An end that comes while no slot is connected is emitted to the
	 * first slot connected later.
	 */
	Signal<int> hangup;

private:
	static_assert(std::is_same_v<int32_t, int>,
		      "Payload::fds is passed to the C API as int");

	struct FdCloser {
		const int *fds;
		unsigned int count;

		~FdCloser()
		{
			for (unsigned int i = 0; i < count; i++)
				::close(fds[i]);
		}
	};

	static struct ipcsock *newSock(struct ipcsock_loop *loop, Wire wire)
	{
		struct ipcsock_opts opts = {};

		opts.sz = sizeof(opts);
		opts.wire = wire == Wire::Libcamera ? IPCSOCK_WIRE_LIBCAMERA :
						      IPCSOCK_WIRE_NATIVE;
		return ipcsock_new_opts(loop, &opts);
	}

	int newError() const noexcept
	{
		if (sock_)
			return 0;
		return errno > 0 ? -errno : -ENOMEM;
	}

	static int loopError(const Loop &loop) noexcept
	{
		return loop.error() ? loop.error() : -EINVAL;
	}

	/*
	 * The C callbacks are set only while a slot is connected: a ready_read
	 * callback that receives nothing would make every dispatch run it
	 * again at once, and a hangup with nobody listening is kept for a
	 * later slot only while none is set.
	 */
	void init()
	{
		readyRead.watch(watchReadyRead, this);
		hangup.watch(watchHangup, this);
	}

	static void watchReadyRead(void *arg, bool on)
	{
		auto *self = static_cast<IPCUnixSocket *>(arg);

		ipcsock_set_ready_read(self->sock_, on ? onReadyRead : nullptr,
				       self);
	}

	static void watchHangup(void *arg, bool on)
	{
		auto *self = static_cast<IPCUnixSocket *>(arg);

		ipcsock_set_hangup(self->sock_, on ? onHangup : nullptr, self);
	}

	/* A slot may destroy the socket: nothing of it is touched after. */
	static void onReadyRead(struct ipcsock *, void *arg) noexcept
	{
		static_cast<IPCUnixSocket *>(arg)->readyRead.emit();
	}

	static void onHangup(struct ipcsock *, int err, void *arg) noexcept
	{
		static_cast<IPCUnixSocket *>(arg)->hangup.emit(err);
	}

	struct ipcsock *sock_;
	int error_;
};

} /* namespace libipcsock */

#endif /* IPCSOCK_HPP */
