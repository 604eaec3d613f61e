// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gmem/gmem.h>

#include "util.h"

struct gmem_debug gmem_debug;

/* Number of allocations attempted, and the one that must fail (0: none). */
static atomic_long alloc_count;
static atomic_long alloc_fail_at;

bool gmem_alloc_should_fail(void)
{
	long n = atomic_fetch_add_explicit(&alloc_count, 1,
					   memory_order_relaxed) +
		 1;
	long at = atomic_load_explicit(&alloc_fail_at, memory_order_relaxed);

	if (likely(at == 0) || n != at)
		return false;
	atomic_store_explicit(&alloc_fail_at, 0, memory_order_relaxed);
	return true;
}

void *gmem_zalloc(size_t size)
{
	if (gmem_alloc_should_fail())
		return NULL;
	return calloc(1, size);
}

void *gmem_zalloc_array(size_t n, size_t size)
{
	if (gmem_alloc_should_fail())
		return NULL;
	return calloc(n, size);
}

void gmem_free(void *p)
{
	free(p);
}

int gmem_grow_array(void *arrayp, size_t nr, size_t *cap, size_t min,
		    size_t size)
{
	size_t n = *cap ? 2 * *cap : min;
	void *old, *new;

	if (nr < *cap)
		return 0;
	new = gmem_zalloc_array(n, size);
	if (!new)
		return -ENOMEM;
	/* Object pointers share void *'s representation (POSIX). */
	memcpy(&old, arrayp, sizeof(old));
	if (nr)
		memcpy(new, old, nr * size);
	memcpy(arrayp, &new, sizeof(new));
	gmem_free(old);
	*cap = n;
	return 0;
}

long gmem_test_fail_alloc(long nth)
{
	long now = atomic_load(&alloc_count);

	atomic_store(&alloc_fail_at, nth > 0 ? now + nth : 0);
	return now;
}

int gmem_eventfd_check(int fd)
{
	char path[64], link[64];
	ssize_t n;

	if (fd < 0 || fcntl(fd, F_GETFD) < 0)
		return -EBADF;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -EBADF;
	link[n] = '\0';
	return strcmp(link, "anon_inode:[eventfd]") ? -EINVAL : 0;
}

bool gmem_same_file(int ours, int ours_user, int fd)
{
	/* KCMP_FILE is 0: 0 when both numbers name one open file. */
	long r = syscall(SYS_kcmp, getpid(), getpid(), 0, ours, fd);

	return r < 0 ? ours_user == fd : r == 0;
}
