/* SPDX-License-Identifier: MIT */
/*
 * Small shared helpers: the library's allocator (with the failure-injection
 * hook every ENOMEM test uses) and page arithmetic.
 */
#ifndef GMEM_UTIL_H
#define GMEM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAGE_SHIFT 12
#define PAGE_SIZE (1ULL << PAGE_SHIFT)
#define PAGE_ALIGNED(x) (((x) & (PAGE_SIZE - 1)) == 0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Linux 5.14's madvise() advice, for headers older than the kernel. */
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/*
 * Every allocation the library makes goes through these, so that a test can
 * fail any one of them (gmem_test_fail_alloc()).  Memory is zeroed.
 */
void *gmem_zalloc(size_t size);
void *gmem_zalloc_array(size_t n, size_t size);
void gmem_free(void *p);

/*
 * Make room for one more element in the array *@arrayp (a pointer to any
 * object type, passed by address) of *@cap elements of @size bytes, @nr of
 * them in use.  While there is room nothing is written, not even *@arrayp,
 * so readers that hold another lock see no store.  Else the array moves
 * to a zeroed one of twice the capacity (@min the first time) and the old
 * one is freed.  0, or -ENOMEM with the array and *@cap as they were.
 */
int gmem_grow_array(void *arrayp, size_t nr, size_t *cap, size_t min,
		    size_t size);

/* True if the injection hook says this allocation must fail. */
bool gmem_alloc_should_fail(void);

/*
 * Fault-path hooks for tests that must show they can catch a broken
 * invalidation protocol.  Set them only while no vCPU runs.  The two
 * callbacks let a test hold a fault open while an invalidation passes it,
 * by events rather than by sleeping: the fault calls fault_window() and
 * may block there; the invalidation calls invalidate_zapped() once the
 * range is zapped, before it waits for the shootdown (which waits for the
 * held vCPU), so that is where the test lets the fault go on.
 */
struct gmem_debug {
	bool no_retry; /* install even if an invalidation raced */
	/* Between resolve and install, no lock held. */
	void (*fault_window)(uint64_t gfn);
	/* After the zap, before the shootdown, no lock held. */
	void (*invalidate_zapped)(uint64_t start, uint64_t end);
};

extern struct gmem_debug gmem_debug;

/*
 * eventfd_ctx_fdget()'s checks for a program's @fd: 0 for an eventfd,
 * -EBADF for no open file, -EINVAL for another kind of file.
 */
int gmem_eventfd_check(int fd);
/*
 * Whether @fd names the same open file as @ours, a duplicate made of the
 * program's @ours_user (kcmp(KCMP_FILE); where that is not allowed, the
 * program's numbers are compared).
 */
bool gmem_same_file(int ours, int ours_user, int fd);

#endif /* GMEM_UTIL_H */
