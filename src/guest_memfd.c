// SPDX-License-Identifier: MIT
/*
 * guest_memfd: RAM files for guest-private memory.
 *
 * The file's memory is one anonymous, never-reserved mapping of its size,
 * aligned to 2 MiB and marked for transparent huge pages, so that the kernel
 * allocates in 2 MiB units where it can.  Anonymous memory reads as zero
 * until written and MADV_DONTNEED returns it to that state, which gives the
 * "zeroed before the guest first sees it" rule for free, for allocation
 * and for punch hole alike.
 *
 * A file the host may map (GUEST_MEMFD_FLAG_MMAP) is a memfd instead,
 * mapped shared over the same reservation; one without a direct map
 * (GUEST_MEMFD_FLAG_NO_DIRECT_MAP) a memfd_secret(2) file.  Secret memory
 * cannot be freed in the middle (no hole punching, no MADV_DONTNEED: its
 * pages are locked), so a hole in it is zeroed in place and stays
 * allocated until the file goes.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gmem/gmem.h>

#include "guest_memfd.h"
#include "handle.h"
#include "mmu.h"
#include "uaccess.h"
#include "util.h"
#include "vm.h"

#define HUGE_SIZE (2ULL << 20)
#define GIANT_SIZE (1ULL << 30)

struct gmem_binding {
	struct gmem_memslot *slot;
	uint64_t pgoff, npages;
};

struct gmem_file {
	atomic_int refcount;
	struct gmem_vm *vm;
	uint64_t size;
	uint64_t ino;
	uint64_t flags; /* GUEST_MEMFD_FLAG_* */
	off_t pos;	/* atomic: write()'s position (MMAP files) */
	int memfd;	/* MMAP or NO_DIRECT_MAP: the memory's file, else -1 */
	uint8_t *mem;	/* 2 MiB aligned, 1 GiB from 1 GiB on */
	void *map;	/* the reservation, for munmap */
	size_t map_size;

	/* Under vm->lock (writers) and vm->state_lock. */
	struct gmem_ranges poison;
	struct gmem_binding *bindings;
	size_t nr_bindings, cap_bindings;
};

static atomic_ulong next_ino = 1;

static void file_release(void *file)
{
	gmem_file_release(file);
}

#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif

static int memfd_secret(void)
{
	return (int)syscall(SYS_memfd_secret, O_CLOEXEC);
}

bool gmem_secretmem_supported(void)
{
	/* 0 not probed, 1 yes, 2 no. */
	static int known;
	int k = __atomic_load_n(&known, __ATOMIC_RELAXED);

	if (!k) {
		int fd = memfd_secret();

		k = fd >= 0 ? 1 : 2;
		if (fd >= 0)
			close(fd);
		__atomic_store_n(&known, k, __ATOMIC_RELAXED);
	}
	return k == 1;
}

static bool secret(const struct gmem_file *file)
{
	return file->flags & GUEST_MEMFD_FLAG_NO_DIRECT_MAP;
}

/*
 * The file's memory as a memfd (or memfd_secret) file mapped over the
 * aligned reservation.  Secret memory is locked, so it counts against
 * RLIMIT_MEMLOCK: the mmap is refused beyond it and that is -ENOMEM.
 */
static int map_memfd(struct gmem_file *file)
{
	int flags = MAP_SHARED | MAP_FIXED | (secret(file) ? 0 : MAP_NORESERVE);

	file->memfd = secret(file)
			      ? memfd_secret()
			      : memfd_create("gmem-guest_memfd", MFD_CLOEXEC);
	if (file->memfd < 0)
		return -ENOMEM;
	if (ftruncate(file->memfd, (off_t)file->size) ||
	    mmap(file->mem, file->size, PROT_READ | PROT_WRITE, flags,
		 file->memfd, 0) == MAP_FAILED) {
		close(file->memfd);
		return -ENOMEM;
	}
	return 0;
}

int gmem_create_guest_memfd(struct gmem_vm *vm,
			    const struct kvm_create_guest_memfd *args)
{
	struct gmem_file *file;
	uintptr_t base, align;
	int fd;

	if (args->flags & ~gmem_vm_gmem_flags(vm))
		return -EINVAL;
	if ((int64_t)args->size <= 0 || !PAGE_ALIGNED(args->size))
		return -EINVAL;

	file = gmem_zalloc(sizeof(*file));
	if (!file)
		return -ENOMEM;
	file->size = args->size;
	file->flags = args->flags;
	file->memfd = -1;
	/* Align so that stage 2 can map it in the largest pages that fit. */
	align = args->size >= GIANT_SIZE ? GIANT_SIZE : HUGE_SIZE;
	file->map_size = args->size + align - PAGE_SIZE;
	file->map = gmem_alloc_should_fail()
			    ? MAP_FAILED
			    : mmap(NULL, file->map_size, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				   -1, 0);
	if (file->map == MAP_FAILED) {
		gmem_free(file);
		return -ENOMEM;
	}
	base = ((uintptr_t)file->map + align - 1) & ~(align - 1);
	file->mem = (uint8_t *)base;
	/*
	 * A file the host may map is a memfd, mapped shared over the
	 * aligned part of the reservation: the host's mappings and ours are
	 * then the same pages.
	 */
	if ((file->flags &
	     (GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_NO_DIRECT_MAP)) &&
	    map_memfd(file)) {
		munmap(file->map, file->map_size);
		gmem_free(file);
		return -ENOMEM;
	}
	/* A hint: without THP the file still works, in 4 KiB pages. */
	madvise(file->mem, file->size, MADV_HUGEPAGE);
	/* Never dumped or inherited: the host must not see guest memory. */
	madvise(file->map, file->map_size, MADV_DONTDUMP);
	madvise(file->map, file->map_size, MADV_DONTFORK);

	atomic_init(&file->refcount, 1);
	gmem_ranges_init(&file->poison);
	file->vm = vm;
	gmem_vm_get(vm);

	fd = gmem_handle_alloc(GMEM_H_FILE, file, file_release);
	if (fd < 0) {
		gmem_file_put(file);
		return fd;
	}
	file->ino = atomic_fetch_add(&next_ino, 1);
	return fd;
}

void gmem_file_put(struct gmem_file *file)
{
	if (atomic_fetch_sub(&file->refcount, 1) != 1)
		return;
	munmap(file->map, file->map_size);
	if (file->memfd >= 0)
		close(file->memfd);
	gmem_ranges_destroy(&file->poison);
	gmem_free(file->bindings);
	gmem_vm_put(file->vm);
	gmem_free(file);
}

int gmem_file_from_handle(int fd, struct gmem_file **filep)
{
	struct gmem_handle_ref ref;
	int r = gmem_handle_get(fd, &ref);

	if (r == -EBADF)
		return gmem_handle_absent_errno(fd);
	if (r)
		return r;
	if (ref.kind == GMEM_H_FILE) {
		*filep = ref.obj;
		atomic_fetch_add(&(*filep)->refcount, 1);
	} else {
		r = -EINVAL;
	}
	gmem_handle_put(&ref);
	return r;
}

/*
 * Run @fn over the GFN range of every binding that overlaps the file pages
 * [start, end).  Under vm->lock.
 */
static void
for_each_bound_gfn_range(struct gmem_file *file, uint64_t start, uint64_t end,
			 void (*fn)(struct gmem_vm *, uint64_t, uint64_t))
{
	for (size_t i = 0; i < file->nr_bindings; i++) {
		struct gmem_binding *b = &file->bindings[i];
		uint64_t s = MAX(start, b->pgoff);
		uint64_t e = MIN(end, b->pgoff + b->npages);

		if (s >= e)
			continue;
		fn(file->vm, b->slot->base_gfn + (s - b->pgoff),
		   b->slot->base_gfn + (e - b->pgoff));
	}
}

/*
 * Replace file pages [start, end) by a hole (@poison false: the pages
 * freed, their poison cleared, as truncating drops a poisoned folio in
 * Linux) or mark them poisoned, with every bound GFN range invalidated
 * around the change so that the next access sees it.  Under vm->lock.
 */
static int replace_pages(struct gmem_file *file, uint64_t start, uint64_t end,
			 bool poison)
{
	struct gmem_vm *vm = file->vm;
	uint64_t off = start << PAGE_SHIFT, len = (end - start) << PAGE_SHIFT;
	int r = gmem_ranges_reserve(&file->poison);

	if (r)
		return r;
	for_each_bound_gfn_range(file, start, end, gmem_vm_invalidate_begin);
	/* A memfd's hole shows in the host's mappings of it too. */
	if (!poison && secret(file))
		memset(file->mem + off, 0, len);
	else if (!poison && file->memfd >= 0)
		fallocate(file->memfd,
			  FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  (off_t)off, (off_t)len);
	else if (!poison)
		madvise(file->mem + off, len, MADV_DONTNEED);
	pthread_rwlock_wrlock(&vm->state_lock);
	gmem_ranges_store(&file->poison, start, end, poison);
	pthread_rwlock_unlock(&vm->state_lock);
	for_each_bound_gfn_range(file, start, end, gmem_vm_invalidate_end);
	return 0;
}

static int punch_hole(struct gmem_file *file, uint64_t offset, uint64_t len)
{
	struct gmem_vm *vm = file->vm;
	uint64_t start = offset >> PAGE_SHIFT;
	uint64_t end = MIN(offset + len, file->size) >> PAGE_SHIFT;
	int r;

	/* Past the end there is nothing to free, and that is not an error. */
	if (start >= end)
		return 0;
	pthread_mutex_lock(&vm->lock);
	r = replace_pages(file, start, end, false);
	pthread_mutex_unlock(&vm->lock);
	return r;
}

static int allocate(struct gmem_file *file, uint64_t offset, uint64_t len)
{
	uint8_t *p = file->mem + offset;

	if (offset + len > file->size)
		return -EINVAL;
	/* Secret memory is not for get_user_pages(), which populate uses. */
	if (!secret(file) && !madvise(p, len, MADV_POPULATE_WRITE))
		return 0;
	if (!secret(file) && errno != EINVAL)
		return -errno;
	/* Kernels before 5.14: touch each page without changing it. */
	for (uint64_t o = 0; o < len; o += PAGE_SIZE)
		__atomic_fetch_add(p + o, 0, __ATOMIC_RELAXED);
	return 0;
}

int gmem_file_fallocate(int fd, int mode, int64_t offset, int64_t len)
{
	struct gmem_file *file = NULL;
	int r;

	/* EBADF first; a handle that is not a file fails after the VFS's
	 * argument checks, with ENODEV, as in Linux. */
	r = gmem_file_from_handle(fd, &file);
	if (r == -EBADF)
		return r;

	/* The VFS's checks first, then guest_memfd's, as in Linux. */
	if (offset < 0 || len <= 0)
		r = -EINVAL;
	else if (!(mode & FALLOC_FL_KEEP_SIZE) ||
		 (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)))
		r = -EOPNOTSUPP;
	else if (offset > INT64_MAX - len)
		r = -EFBIG;
	else if (!file)
		r = -ENODEV; /* not a regular file */
	else if (!PAGE_ALIGNED((uint64_t)offset) ||
		 !PAGE_ALIGNED((uint64_t)len))
		r = -EINVAL;
	else if (mode & FALLOC_FL_PUNCH_HOLE)
		r = punch_hole(file, offset, len);
	else
		r = allocate(file, offset, len);
	if (file)
		gmem_file_put(file);
	return r;
}

int gmem_file_stat(int fd, struct stat *st)
{
	struct gmem_file *file;
	int r = gmem_file_from_handle(fd, &file);

	if (r)
		return r;
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | 0600;
	st->st_nlink = 1;
	st->st_size = file->size;
	st->st_blksize = PAGE_SIZE;
	st->st_ino = file->ino;
	gmem_file_put(file);
	return 0;
}

int gmem_file_poison(int fd, int64_t offset)
{
	struct gmem_file *file;
	struct gmem_vm *vm;
	uint64_t pg;
	int r = gmem_file_from_handle(fd, &file);

	if (r)
		return r;
	vm = file->vm;
	if (offset < 0 || !PAGE_ALIGNED((uint64_t)offset) ||
	    (uint64_t)offset >= file->size) {
		r = -EINVAL;
		goto out;
	}
	pg = (uint64_t)offset >> PAGE_SHIFT;
	pthread_mutex_lock(&vm->lock);
	r = replace_pages(file, pg, pg + 1, true);
	pthread_mutex_unlock(&vm->lock);
out:
	gmem_file_put(file);
	return r;
}

ssize_t gmem_file_write(struct gmem_file *file, const void *buf, size_t n,
			const off_t *off)
{
	off_t pos = off ? *off : __atomic_load_n(&file->pos, __ATOMIC_RELAXED);
	ssize_t r;

	/* 6.12's guest_memfd has no write(); the series' needs MMAP. */
	if (!(file->flags & GUEST_MEMFD_FLAG_MMAP) || pos < 0)
		return -EINVAL;
	if (!n)
		return 0;
	if ((uint64_t)pos > file->size || n > file->size - (uint64_t)pos)
		return -EINVAL;
	/*
	 * Into the memfd's page cache: a new page that is written whole is
	 * never zeroed first, and the rest of a partial one reads zero.
	 */
	if (secret(file)) {
		/* memfd_secret has no write(): our own mapping takes it. */
		r = gmem_uaccess_copy(file->mem + pos, buf, n);
		if (r)
			return r;
		r = (ssize_t)n;
	} else {
		r = pwrite(file->memfd, buf, n, pos);
		if (r < 0)
			return -errno;
	}
	if (!off)
		__atomic_store_n(&file->pos, pos + r, __ATOMIC_RELAXED);
	return r;
}

off_t gmem_file_seek(struct gmem_file *file, off_t off, int whence)
{
	off_t base = 0;

	if (!(file->flags & GUEST_MEMFD_FLAG_MMAP))
		return -ESPIPE;
	if (whence == SEEK_CUR)
		base = __atomic_load_n(&file->pos, __ATOMIC_RELAXED);
	else if (whence == SEEK_END)
		base = (off_t)file->size;
	else if (whence != SEEK_SET)
		return -EINVAL;
	/* default_llseek(): no negative position, none past OFF_MAX. */
	if ((off > 0 && base > INT64_MAX - off) || base + off < 0)
		return -EINVAL;
	__atomic_store_n(&file->pos, base + off, __ATOMIC_RELAXED);
	return base + off;
}

void *gmem_file_mmap(struct gmem_file *file, void *addr, size_t len, int prot,
		     int flags, off_t off)
{
	int type = flags & MAP_TYPE, fd;
	void *p;

	/* kvm_gmem_mmap(): mappable files only, and only shared. */
	if (!(file->flags & GUEST_MEMFD_FLAG_MMAP)) {
		errno = ENODEV;
		return MAP_FAILED;
	}
	if (type != MAP_SHARED && type != MAP_SHARED_VALIDATE) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	if (file->flags & GUEST_MEMFD_FLAG_INIT_SHARED)
		return mmap(addr, len, prot, flags, file->memfd, off);
	/*
	 * Private memory: every access is SIGBUS, as 6.18's fault handler
	 * answers.  An empty memfd gives exactly that: each page lies past
	 * its end.
	 */
	fd = memfd_create("gmem-private", MFD_CLOEXEC);
	if (fd < 0)
		return MAP_FAILED;
	p = mmap(addr, len, prot, flags, fd, off);
	close(fd);
	return p;
}

int gmem_file_get_page(struct gmem_file *file, uint64_t pgoff, uint8_t **page,
		       uint64_t *run0, uint64_t *run1)
{
	if (gmem_ranges_lookup(&file->poison, pgoff, run0, run1))
		return -EHWPOISON;
	*page = file->mem + (pgoff << PAGE_SHIFT);
	return 0;
}

int gmem_file_bind_check(struct gmem_file *file, const struct gmem_vm *vm,
			 uint64_t pgoff, uint64_t npages)
{
	if (file->vm != vm)
		return -EINVAL;
	if (pgoff + npages > file->size >> PAGE_SHIFT || pgoff + npages < pgoff)
		return -EINVAL;
	for (size_t i = 0; i < file->nr_bindings; i++) {
		struct gmem_binding *b = &file->bindings[i];

		if (pgoff < b->pgoff + b->npages && b->pgoff < pgoff + npages)
			return -EINVAL;
	}
	return gmem_grow_array(&file->bindings, file->nr_bindings,
			       &file->cap_bindings, 4, sizeof(*file->bindings));
}

void gmem_file_bind(struct gmem_file *file, struct gmem_memslot *slot)
{
	file->bindings[file->nr_bindings++] =
		(struct gmem_binding){.slot = slot,
				      .pgoff = slot->gmem_pgoff,
				      .npages = slot->npages};
	slot->file = file;
	slot->gmem_only = file->flags & GUEST_MEMFD_FLAG_MMAP;
}

void gmem_file_unbind(struct gmem_file *file, struct gmem_memslot *slot)
{
	for (size_t i = 0; i < file->nr_bindings; i++) {
		if (file->bindings[i].slot != slot)
			continue;
		file->bindings[i] = file->bindings[--file->nr_bindings];
		break;
	}
	slot->file = NULL;
}

void gmem_file_release(struct gmem_file *file)
{
	struct gmem_vm *vm = file->vm;

	/*
	 * The slots stay, unbound: a private access through one becomes a
	 * memory-fault exit instead of reaching freed memory.
	 */
	pthread_mutex_lock(&vm->lock);
	for (size_t i = 0; i < file->nr_bindings; i++)
		gmem_vm_invalidate_slot_begin(vm, file->bindings[i].slot);
	pthread_rwlock_wrlock(&vm->state_lock);
	for (size_t i = 0; i < file->nr_bindings; i++)
		file->bindings[i].slot->file = NULL;
	pthread_rwlock_unlock(&vm->state_lock);
	for (size_t i = 0; i < file->nr_bindings; i++)
		gmem_vm_invalidate_slot_end(vm, file->bindings[i].slot);
	file->nr_bindings = 0;
	pthread_mutex_unlock(&vm->lock);
	gmem_file_put(file);
}
