// SPDX-License-Identifier: MIT
/*
 * The KVM-style façade: handles, ioctl dispatch and the file calls.
 *
 * Each call here is a thin layer over the typed API that turns its -errno
 * into -1 and errno, as the system call it mirrors would.  Errnos for
 * operations a kind of handle does not support are the ones Linux x86
 * gives for the corresponding file: an unknown ioctl is EINVAL on
 * /dev/kvm and vCPUs, ENOTTY on VMs and guest_memfd; VM and vCPU handles
 * behave as anonymous inodes, guest_memfd handles as regular files
 * without read, write or mmap.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>

#include <gmem/gmem.h>
#include <gmem/kvm.h>

#include "guest_memfd.h"
#include "ioctl.h"
#include "util.h"
#include "vcpu.h"
#include "vm.h"

struct handle {
	enum gmem_handle_kind kind;
	void *obj;
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct handle *table;
static size_t table_cap;

int gmem_handle_alloc(enum gmem_handle_kind kind, void *obj)
{
	size_t i;
	int r;

	pthread_mutex_lock(&table_lock);
	for (i = 0; i < table_cap; i++)
		if (table[i].kind == GMEM_H_FREE)
			break;
	if (i == table_cap) {
		size_t cap = table_cap ? 2 * table_cap : 64;
		struct handle *t = gmem_zalloc_array(cap, sizeof(*t));

		if (!t) {
			r = -ENOMEM;
			goto out;
		}
		if (table_cap)
			memcpy(t, table, table_cap * sizeof(*t));
		gmem_free(table);
		table = t;
		table_cap = cap;
	}
	table[i] = (struct handle){.kind = kind, .obj = obj};
	r = (int)i + GMEM_HANDLE_BASE;
out:
	pthread_mutex_unlock(&table_lock);
	return r;
}

static void obj_get(enum gmem_handle_kind kind, void *obj)
{
	if (kind == GMEM_H_VCPU)
		gmem_vm_get(((struct gmem_vcpu *)obj)->vm);
	else if (kind == GMEM_H_VM)
		gmem_vm_get(obj);
	else if (kind == GMEM_H_FILE)
		atomic_fetch_add(&((struct gmem_file *)obj)->refcount, 1);
}

void gmem_handle_put(enum gmem_handle_kind kind, void *obj)
{
	if (kind == GMEM_H_VCPU)
		gmem_vm_put(((struct gmem_vcpu *)obj)->vm);
	else if (kind == GMEM_H_VM)
		gmem_vm_put(obj);
	else if (kind == GMEM_H_FILE)
		gmem_file_put(obj);
}

/* Under table_lock: the slot for @fd, or NULL. */
static struct handle *lookup(int fd)
{
	size_t i = (size_t)((long)fd - GMEM_HANDLE_BASE);

	if (fd < GMEM_HANDLE_BASE || i >= table_cap ||
	    table[i].kind == GMEM_H_FREE)
		return NULL;
	return &table[i];
}

enum gmem_handle_kind gmem_handle_get(int fd, void **objp)
{
	enum gmem_handle_kind kind = GMEM_H_FREE;
	struct handle *h;

	pthread_mutex_lock(&table_lock);
	h = lookup(fd);
	if (h) {
		kind = h->kind;
		*objp = h->obj;
		obj_get(kind, h->obj);
	}
	pthread_mutex_unlock(&table_lock);
	return kind;
}

int gmem_handle_close(int fd)
{
	struct handle *h, old;

	pthread_mutex_lock(&table_lock);
	h = lookup(fd);
	if (h) {
		old = *h;
		*h = (struct handle){GMEM_H_FREE, NULL};
	}
	pthread_mutex_unlock(&table_lock);
	if (!h)
		return -EBADF;
	if (old.kind == GMEM_H_FILE)
		gmem_file_release(old.obj);
	else if (old.kind == GMEM_H_VCPU)
		gmem_vcpu_destroy(old.obj);
	else
		gmem_handle_put(old.kind, old.obj);
	return 0;
}

int gmem_vm_from_handle(int fd, struct gmem_vm **vmp)
{
	void *obj;
	enum gmem_handle_kind kind = gmem_handle_get(fd, &obj);

	if (kind == GMEM_H_VM) {
		*vmp = obj;
		return 0;
	}
	if (kind == GMEM_H_FREE)
		return -EBADF;
	gmem_handle_put(kind, obj);
	return -EINVAL;
}

int gmem_vcpu_from_handle(int fd, struct gmem_vcpu **vcpup)
{
	void *obj;
	enum gmem_handle_kind kind = gmem_handle_get(fd, &obj);

	if (kind == GMEM_H_FREE)
		return -EBADF;
	gmem_handle_put(kind, obj);
	if (kind != GMEM_H_VCPU)
		return -EINVAL;
	*vcpup = obj;
	return 0;
}

/* ---- façade ------------------------------------------------------------ */

static long ret_errno(long r)
{
	if (r >= 0)
		return r;
	errno = (int)-r;
	return -1;
}

int gmem_open(void)
{
	return (int)ret_errno(gmem_handle_alloc(GMEM_H_SYSTEM, NULL));
}

static long sys_ioctl(unsigned long request, unsigned long arg)
{
	struct gmem_vm *vm;
	long r;

	switch (request) {
	case KVM_GET_API_VERSION:
		return arg ? -EINVAL : KVM_API_VERSION;
	case KVM_CHECK_EXTENSION:
		return gmem_check_extension(NULL, (long)arg);
	case KVM_GET_SUPPORTED_CPUID:
		if (!arg)
			return -EFAULT;
		return gmem_get_supported_cpuid((struct kvm_cpuid2 *)arg);
	case KVM_GET_VCPU_MMAP_SIZE:
		return arg ? -EINVAL : (long)GMEM_VCPU_MMAP_SIZE;
	case KVM_CREATE_VM:
		r = gmem_vm_create(arg, &vm);
		if (r)
			return r;
		r = gmem_handle_alloc(GMEM_H_VM, vm);
		if (r < 0)
			gmem_vm_put(vm);
		return r;
	default:
		/* kvm_arch_dev_ioctl()'s answer on x86. */
		return -EINVAL;
	}
}

/* Copy an ioctl argument struct in, as copy_from_user would. */
#define COPY_IN(dst, arg)                                         \
	do {                                                      \
		if (!(arg))                                       \
			return -EFAULT;                           \
		memcpy(&(dst), (const void *)(arg), sizeof(dst)); \
	} while (0)

static long vm_ioctl(struct gmem_vm *vm, unsigned long request,
		     unsigned long arg)
{
	switch (request) {
	case KVM_CHECK_EXTENSION:
		return gmem_check_extension(vm, (long)arg);
	case KVM_ENABLE_CAP: {
		struct kvm_enable_cap cap;

		COPY_IN(cap, arg);
		return gmem_vm_enable_cap(vm, &cap);
	}
	case KVM_SET_USER_MEMORY_REGION: {
		struct kvm_userspace_memory_region mem;

		COPY_IN(mem, arg);
		return gmem_vm_set_memory_region(vm, &mem);
	}
	case KVM_SET_USER_MEMORY_REGION2: {
		struct kvm_userspace_memory_region2 mem;

		COPY_IN(mem, arg);
		return gmem_vm_set_memory_region2(vm, &mem);
	}
	case KVM_SET_MEMORY_ATTRIBUTES: {
		struct kvm_memory_attributes attrs;

		COPY_IN(attrs, arg);
		return gmem_vm_set_memory_attributes(vm, &attrs);
	}
	case KVM_CREATE_GUEST_MEMFD: {
		struct kvm_create_guest_memfd args;

		COPY_IN(args, arg);
		return gmem_create_guest_memfd(vm, &args);
	}
	case KVM_CREATE_VCPU: {
		struct gmem_vcpu *vcpu;
		long r = gmem_vcpu_create(vm, arg, &vcpu);

		if (r)
			return r;
		r = gmem_handle_alloc(GMEM_H_VCPU, vcpu);
		if (r < 0)
			gmem_vcpu_destroy(vcpu);
		return r;
	}
	case KVM_SET_TSC_KHZ:
		return gmem_vm_set_tsc_khz(vm, (uint32_t)arg);
	case KVM_GET_TSC_KHZ:
		return gmem_vm_get_tsc_khz(vm);
	case KVM_SET_NR_MMU_PAGES:
		return gmem_vm_set_nr_mmu_pages(vm, arg);
	case KVM_SET_TSS_ADDR:
		return gmem_vm_set_tss_addr(vm, arg);
	case KVM_SET_IDENTITY_MAP_ADDR:
		return gmem_vm_set_identity_map_addr(vm, (const uint64_t *)arg);
	default:
		/* kvm_arch_vm_ioctl()'s answer (KVM_GET_NR_MMU_PAGES too). */
		return -ENOTTY;
	}
}

static long vcpu_ioctl(struct gmem_vcpu *vcpu, unsigned long request,
		       unsigned long arg)
{
	void *p = (void *)arg;

	switch (request) {
	case KVM_RUN:
		return arg ? -EINVAL : gmem_vcpu_run(vcpu);
	case KVM_SET_TSC_KHZ:
		return gmem_vcpu_set_tsc_khz(vcpu, (uint32_t)arg);
	case KVM_GET_TSC_KHZ:
		return gmem_vcpu_get_tsc_khz(vcpu);
	}
	/* The rest copy a struct in or out, as copy_from/to_user would. */
	switch (request) {
	case KVM_GET_REGS:
	case KVM_SET_REGS:
	case KVM_GET_SREGS:
	case KVM_SET_SREGS:
	case KVM_SET_CPUID2:
	case KVM_GET_CPUID2:
	case KVM_GET_MSRS:
	case KVM_SET_MSRS:
	case KVM_GET_MP_STATE:
	case KVM_SET_MP_STATE:
		if (!p)
			return -EFAULT;
	}
	switch (request) {
	case KVM_GET_REGS:
		return gmem_vcpu_get_regs(vcpu, p);
	case KVM_SET_REGS:
		return gmem_vcpu_set_regs(vcpu, p);
	case KVM_GET_SREGS:
		return gmem_vcpu_get_sregs(vcpu, p);
	case KVM_SET_SREGS:
		return gmem_vcpu_set_sregs(vcpu, p);
	case KVM_SET_CPUID2:
		return gmem_vcpu_set_cpuid(vcpu, p);
	case KVM_GET_CPUID2:
		return gmem_vcpu_get_cpuid(vcpu, p);
	case KVM_GET_MSRS:
		return gmem_vcpu_get_msrs(vcpu, p);
	case KVM_SET_MSRS:
		return gmem_vcpu_set_msrs(vcpu, p);
	case KVM_GET_MP_STATE:
		return gmem_vcpu_get_mp_state(vcpu, p);
	case KVM_SET_MP_STATE:
		return gmem_vcpu_set_mp_state(vcpu, p);
	default:
		/* kvm_arch_vcpu_ioctl()'s answer on x86. */
		return -EINVAL;
	}
}

int gmem_ioctl(int fd, unsigned long request, ...)
{
	enum gmem_handle_kind kind;
	unsigned long arg;
	void *obj;
	long r;
	va_list ap;

	va_start(ap, request);
	arg = va_arg(ap, unsigned long);
	va_end(ap);

	kind = gmem_handle_get(fd, &obj);
	switch (kind) {
	case GMEM_H_FREE:
		return (int)ret_errno(-EBADF);
	case GMEM_H_SYSTEM:
		r = sys_ioctl(request, arg);
		break;
	case GMEM_H_VM:
		r = vm_ioctl(obj, request, arg);
		break;
	case GMEM_H_VCPU:
		r = vcpu_ioctl(obj, request, arg);
		break;
	default:
		/* guest_memfd has no ioctl at all: the VFS says ENOTTY. */
		r = -ENOTTY;
		break;
	}
	gmem_handle_put(kind, obj);
	return (int)ret_errno(r);
}

int gmem_fallocate(int fd, int mode, off_t offset, off_t len)
{
	return (int)ret_errno(gmem_file_fallocate(fd, mode, offset, len));
}

int gmem_fstat(int fd, struct stat *st)
{
	enum gmem_handle_kind kind;
	void *obj;

	kind = gmem_handle_get(fd, &obj);
	if (kind == GMEM_H_FREE)
		return (int)ret_errno(-EBADF);
	gmem_handle_put(kind, obj);
	if (kind == GMEM_H_FILE)
		return (int)ret_errno(gmem_file_stat(fd, st));
	/* Like an anonymous inode (or /dev/kvm for the system handle). */
	memset(st, 0, sizeof(*st));
	st->st_mode = (kind == GMEM_H_SYSTEM ? S_IFCHR : 0) | 0600;
	st->st_nlink = 1;
	st->st_blksize = PAGE_SIZE;
	return 0;
}

/* Checks that @fd is open; the calls below then fail as Linux's would. */
static int check_open(int fd)
{
	void *obj;
	enum gmem_handle_kind kind = gmem_handle_get(fd, &obj);

	if (kind == GMEM_H_FREE)
		return -EBADF;
	gmem_handle_put(kind, obj);
	return 0;
}

/* guest_memfd's size is fixed, and no other handle is a regular file. */
int gmem_ftruncate(int fd, off_t len)
{
	int r = check_open(fd);

	return (int)ret_errno(r ? r : -EINVAL);
}

/* No handle has read or write: the host cannot see guest memory. */
ssize_t gmem_read(int fd, void *buf, size_t n)
{
	int r = check_open(fd);

	return ret_errno(r ? r : -EINVAL);
}

ssize_t gmem_write(int fd, const void *buf, size_t n)
{
	int r = check_open(fd);

	return ret_errno(r ? r : -EINVAL);
}

ssize_t gmem_pread(int fd, void *buf, size_t n, off_t off)
{
	return gmem_read(fd, buf, n);
}

ssize_t gmem_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return gmem_write(fd, buf, n);
}

void *gmem_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *obj, *p = MAP_FAILED;
	enum gmem_handle_kind kind = gmem_handle_get(fd, &obj);

	switch (kind) {
	case GMEM_H_FREE:
		errno = EBADF;
		return MAP_FAILED;
	case GMEM_H_VCPU:
		/* The kvm_run page: a second mapping of the vCPU's memfd. */
		if (off < 0 || (uint64_t)off + len > GMEM_VCPU_MMAP_SIZE)
			errno = EINVAL;
		else
			p = mmap(addr, len, prot, flags,
				 ((struct gmem_vcpu *)obj)->run_fd, off);
		break;
	default:
		/* guest_memfd memory is for the guest only. */
		errno = ENODEV;
		break;
	}
	gmem_handle_put(kind, obj);
	return p;
}

int gmem_munmap(void *addr, size_t len)
{
	return munmap(addr, len);
}

int gmem_close(int fd)
{
	return (int)ret_errno(gmem_handle_close(fd));
}
