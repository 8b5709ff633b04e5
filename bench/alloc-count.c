// SPDX-License-Identifier: MIT
/* The malloc-counting hook: count every allocation, let glibc make it. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "bench.h"

/* A sanitizer runtime owns malloc: stay out of its way, count nothing. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BENCH_NO_ALLOC_HOOK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
	__has_feature(memory_sanitizer)
#define BENCH_NO_ALLOC_HOOK 1
#endif
#endif

#ifdef BENCH_NO_ALLOC_HOOK

uint64_t alloc_count(void)
{
	return 0;
}

bool alloc_count_works(void)
{
	return false;
}

#else

/* In the dynamic symbol table, so that shared libraries' calls come here. */
#define HOOK __attribute__((visibility("default")))


static uint64_t nr_allocs;

static inline void count(void)
{
	__atomic_fetch_add(&nr_allocs, 1, __ATOMIC_RELAXED);
}

uint64_t alloc_count(void)
{
	return __atomic_load_n(&nr_allocs, __ATOMIC_RELAXED);
}

bool alloc_count_works(void)
{
	return true;
}

HOOK void *malloc(size_t size)
{
	count();
	return __libc_malloc(size);
}

HOOK void *calloc(size_t n, size_t size)
{
	count();
	return __libc_calloc(n, size);
}

/* A realloc that moves or grows a block is an allocation too. */
HOOK void *realloc(void *p, size_t size)
{
	if (size)
		count();
	return __libc_realloc(p, size);
}

HOOK void *reallocarray(void *p, size_t n, size_t size)
{
	size_t bytes;

	if (__builtin_mul_overflow(n, size, &bytes))
		bytes = SIZE_MAX;	/* glibc fails it with ENOMEM */
	return realloc(p, bytes);
}

HOOK void free(void *p)
{
	__libc_free(p);
}

HOOK void *memalign(size_t align, size_t size)
{
	count();
	return __libc_memalign(align, size);
}

HOOK void *aligned_alloc(size_t align, size_t size)
{
	count();
	return __libc_memalign(align, size);
}

/* Returns a positive error number, as POSIX has it. */
HOOK int posix_memalign(void **out, size_t align, size_t size)
{
	int ret = 0;
	void *p;

	if (!align || (align & (align - 1)) || align % sizeof(void *)) {
		ret = EINVAL;
	} else {
		count();
		p = __libc_memalign(align, size);
		if (p)
			*out = p;
		else
			ret = ENOMEM;
	}
	return ret;
}

HOOK void *valloc(size_t size)
{
	count();
	return __libc_valloc(size);
}

HOOK void *pvalloc(size_t size)
{
	count();
	return __libc_pvalloc(size);
}

#endif
