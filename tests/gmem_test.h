/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the core interface tests.
 *
 * Most rules exist twice, in the typed API (-errno) and in the KVM-style
 * façade (-1 and errno).  A struct tvm is one VM reached through one of the
 * two layers; the tvm_* calls return -errno either way, so a test body is
 * written once and run for both layers.  A façade call that fails with
 * anything but -1, or succeeds with -1, is reported as TVM_BAD_RET, which
 * no expectation matches.
 *
 * The typed side alone can read state back (attribute snapshots, memslot
 * read-back); those checks are skipped for the façade side.
 */
#ifndef GMEM_TEST_H
#define GMEM_TEST_H

#include <stdbool.h>
#include <sys/mman.h>

#include <gmem/gmem.h>
#include <gmem/kvm.h>

#include "tap.h"

#define PAGE GMEM_PAGE_SIZE
#define TIB (1ULL << 40)
#define GIB (1ULL << 30)
#define MIB (1ULL << 20)

#define NR KVM_MEMORY_ATTRIBUTE_NR
#define NW KVM_MEMORY_ATTRIBUTE_NW
#define NX KVM_MEMORY_ATTRIBUTE_NX
#define PRIV KVM_MEMORY_ATTRIBUTE_PRIVATE

/* Top of the x86-64 user address space, as KVM's access_ok() sees it. */
#define USER_TOP 0x7ffffffff000ULL

#define TVM_BAD_RET (-100000)

/* Typed result check: 0 for success, else the positive errno expected. */
#define CHECK_RET(call, err) CHECK_EQ((call), -(long long)(err))

/*
 * Anonymous, page-aligned memory for userspace_addr.  MAP_NORESERVE, so a
 * large range costs nothing until touched; the tests never touch it.
 */
static inline void *test_mem(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	REQUIRE(p != MAP_FAILED);
	return p;
}

static inline struct gmem_vm *test_vm(unsigned long type)
{
	struct gmem_vm *vm = NULL;

	REQUIRE(gmem_vm_create(type, &vm) == 0 && vm);
	return vm;
}

/* Turn a façade return into -errno (or the value on success). */
static inline long fac_ret(long r)
{
	if (r >= 0)
		return r;
	if (r == -1 && errno > 0)
		return -errno;
	return TVM_BAD_RET;
}

struct tvm {
	bool ioctl;	    /* reach the VM through the façade */
	unsigned long type; /* KVM_X86_*_VM */
	struct gmem_vm *vm; /* typed side */
	int sys;	    /* façade side: system handle */
	int fd;		    /* façade side: VM handle */
};

static inline const char *tvm_layer(const struct tvm *t)
{
	return t->ioctl ? "ioctl" : "typed";
}

static inline void tvm_open(struct tvm *t, bool ioctl, unsigned long type)
{
	memset(t, 0, sizeof(*t));
	t->ioctl = ioctl;
	t->type = type;
	t->sys = -1;
	t->fd = -1;
	if (!ioctl) {
		t->vm = test_vm(type);
		return;
	}
	t->sys = gmem_open();
	REQUIRE(t->sys >= 0);
	t->fd = gmem_ioctl(t->sys, KVM_CREATE_VM, type);
	REQUIRE(t->fd >= 0);
}

static inline void tvm_close(struct tvm *t)
{
	if (t->vm)
		gmem_vm_put(t->vm);
	if (t->fd >= 0)
		gmem_close(t->fd);
	if (t->sys >= 0)
		gmem_close(t->sys);
	t->vm = NULL;
	t->fd = t->sys = -1;
}

static inline long tvm_set_attr_flags(struct tvm *t, uint64_t address,
				      uint64_t size, uint64_t attributes,
				      uint64_t flags)
{
	struct kvm_memory_attributes a = {
		.address = address,
		.size = size,
		.attributes = attributes,
		.flags = flags,
	};

	if (!t->ioctl)
		return gmem_vm_set_memory_attributes(t->vm, &a);
	return fac_ret(gmem_ioctl(t->fd, KVM_SET_MEMORY_ATTRIBUTES, &a));
}

static inline long tvm_set_attr(struct tvm *t, uint64_t address, uint64_t size,
				uint64_t attributes)
{
	return tvm_set_attr_flags(t, address, size, attributes, 0);
}

static inline long tvm_region2(struct tvm *t,
			       const struct kvm_userspace_memory_region2 *r)
{
	if (!t->ioctl)
		return gmem_vm_set_memory_region2(t->vm, r);
	return fac_ret(gmem_ioctl(t->fd, KVM_SET_USER_MEMORY_REGION2, r));
}

static inline long tvm_region(struct tvm *t,
			      const struct kvm_userspace_memory_region *r)
{
	if (!t->ioctl)
		return gmem_vm_set_memory_region(t->vm, r);
	return fac_ret(gmem_ioctl(t->fd, KVM_SET_USER_MEMORY_REGION, r));
}

static inline long tvm_create_file_flags(struct tvm *t, uint64_t size,
					 uint64_t flags)
{
	struct kvm_create_guest_memfd g = {.size = size, .flags = flags};

	if (!t->ioctl)
		return gmem_create_guest_memfd(t->vm, &g);
	return fac_ret(gmem_ioctl(t->fd, KVM_CREATE_GUEST_MEMFD, &g));
}

static inline long tvm_create_file(struct tvm *t, uint64_t size)
{
	return tvm_create_file_flags(t, size, 0);
}

/* A guest_memfd that must exist for the test to go on. */
static inline int tvm_file(struct tvm *t, uint64_t size)
{
	long fd = tvm_create_file(t, size);

	REQUIRE(fd >= 0);
	return (int)fd;
}

static inline long tvm_enable_cap(struct tvm *t, uint32_t cap, uint32_t flags,
				  uint64_t arg0)
{
	struct kvm_enable_cap c = {.cap = cap, .flags = flags};

	c.args[0] = arg0;
	if (!t->ioctl)
		return gmem_vm_enable_cap(t->vm, &c);
	return fac_ret(gmem_ioctl(t->fd, KVM_ENABLE_CAP, &c));
}

static inline long tvm_check_extension(struct tvm *t, long cap)
{
	if (!t->ioctl)
		return gmem_check_extension(t->vm, cap);
	return fac_ret(gmem_ioctl(t->fd, KVM_CHECK_EXTENSION, cap));
}

/* File calls: the typed function or the façade, as -errno. */
static inline long file_fallocate(bool ioctl, int fd, int mode, int64_t off,
				  int64_t len)
{
	if (!ioctl)
		return gmem_file_fallocate(fd, mode, off, len);
	return fac_ret(gmem_fallocate(fd, mode, off, len));
}

static inline long file_stat(bool ioctl, int fd, struct stat *st)
{
	if (!ioctl)
		return gmem_file_stat(fd, st);
	return fac_ret(gmem_fstat(fd, st));
}

static inline long file_close(bool ioctl, int fd)
{
	if (!ioctl)
		return gmem_handle_close(fd);
	return fac_ret(gmem_close(fd));
}

/* ---- dirty logging ----------------------------------------------------- */

static inline long tvm_get_dirty_log(struct tvm *t, uint32_t slot, void *bits)
{
	struct kvm_dirty_log l = {.slot = slot, .dirty_bitmap = bits};

	if (!t->ioctl)
		return gmem_vm_get_dirty_log(t->vm, &l);
	return fac_ret(gmem_ioctl(t->fd, KVM_GET_DIRTY_LOG, &l));
}

static inline long tvm_clear_dirty_log(struct tvm *t, uint32_t slot,
				       uint64_t first, uint32_t n, void *bits)
{
	struct kvm_clear_dirty_log l = {
		.slot = slot,
		.num_pages = n,
		.first_page = first,
		.dirty_bitmap = bits,
	};

	if (!t->ioctl)
		return gmem_vm_clear_dirty_log(t->vm, &l);
	return fac_ret(gmem_ioctl(t->fd, KVM_CLEAR_DIRTY_LOG, &l));
}

static inline long tvm_reset_dirty_rings(struct tvm *t)
{
	if (!t->ioctl)
		return gmem_vm_reset_dirty_rings(t->vm);
	return fac_ret(gmem_ioctl(t->fd, KVM_RESET_DIRTY_RINGS, 0));
}

/*
 * A vCPU: the façade's handle (@fd), or the typed object (@vcpu); drop it
 * with tvm_vcpu_put().
 */
struct tvm_vcpu {
	struct gmem_vcpu *vcpu;
	int fd;
};

static inline long tvm_vcpu_create(struct tvm *t, unsigned long id,
				   struct tvm_vcpu *v)
{
	long r;

	v->vcpu = NULL;
	v->fd = -1;
	if (!t->ioctl)
		return gmem_vcpu_create(t->vm, id, &v->vcpu);
	r = fac_ret(gmem_ioctl(t->fd, KVM_CREATE_VCPU, id));
	if (r >= 0)
		v->fd = (int)r;
	return r < 0 ? r : 0;
}

static inline void tvm_vcpu_put(struct tvm_vcpu *v)
{
	if (v->vcpu)
		gmem_vcpu_destroy(v->vcpu);
	if (v->fd >= 0)
		gmem_close(v->fd);
}

/* ---- memslots ---------------------------------------------------------- */

static inline struct kvm_userspace_memory_region2
region2(uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t size,
	uint64_t uaddr)
{
	struct kvm_userspace_memory_region2 r;

	memset(&r, 0, sizeof(r));
	r.slot = slot;
	r.flags = flags;
	r.guest_phys_addr = gpa;
	r.memory_size = size;
	r.userspace_addr = uaddr;
	return r;
}

/* A GUEST_MEMFD slot backed by @fd at @off (and by @uaddr when shared). */
static inline struct kvm_userspace_memory_region2
gregion2(uint32_t slot, uint64_t gpa, uint64_t size, uint64_t uaddr, int fd,
	 uint64_t off)
{
	struct kvm_userspace_memory_region2 r =
		region2(slot, KVM_MEM_GUEST_MEMFD, gpa, size, uaddr);

	r.guest_memfd = (uint32_t)fd;
	r.guest_memfd_offset = off;
	return r;
}

static inline bool region2_equal(const struct kvm_userspace_memory_region2 *a,
				 const struct kvm_userspace_memory_region2 *b)
{
	if (a->slot != b->slot || a->flags != b->flags ||
	    a->guest_phys_addr != b->guest_phys_addr ||
	    a->memory_size != b->memory_size ||
	    a->userspace_addr != b->userspace_addr)
		return false;
	if (!(a->flags & KVM_MEM_GUEST_MEMFD))
		return true;
	return a->guest_memfd == b->guest_memfd &&
	       a->guest_memfd_offset == b->guest_memfd_offset;
}

static inline void region2_print(const char *what,
				 const struct kvm_userspace_memory_region2 *r)
{
	tap_diag("%s: slot %#x flags %#x gpa %#" PRIx64 " size %#" PRIx64
		 " uaddr %#" PRIx64 " gmem %u+%#" PRIx64,
		 what, r->slot, r->flags, r->guest_phys_addr, r->memory_size,
		 r->userspace_addr, r->guest_memfd, r->guest_memfd_offset);
}

/*
 * The typed side's slot @slot reads back as @want (NULL: no such slot).
 * Always true on the façade side, which cannot read slots back.
 */
static inline bool tvm_slot_is(struct tvm *t, uint32_t slot,
			       const struct kvm_userspace_memory_region2 *want)
{
	struct kvm_userspace_memory_region2 got;
	int r;

	if (t->ioctl)
		return true;
	memset(&got, 0xa5, sizeof(got));
	r = gmem_vm_get_memory_region2(t->vm, slot, &got);
	if (!want) {
		if (r == -ENOENT)
			return true;
		tap_diag("slot %#x: read-back returned %d, expected -ENOENT",
			 slot, r);
		if (r == 0)
			region2_print("got", &got);
		return false;
	}
	if (r == 0 && region2_equal(&got, want))
		return true;
	tap_diag("slot %#x: read-back returned %d", slot, r);
	region2_print("want", want);
	if (r == 0)
		region2_print("got ", &got);
	return false;
}

/* ---- attribute snapshots ----------------------------------------------- */

#define SNAP_MAX 4096

struct snap {
	int n;
	uint64_t seq;
	struct gmem_attr_range r[SNAP_MAX];
};

/* Snapshot [address, address + size); returns gmem's return value. */
static inline int snap_take(struct gmem_vm *vm, uint64_t address, uint64_t size,
			    struct snap *s)
{
	int r;

	memset(s, 0, sizeof(*s));
	r = gmem_vm_get_memory_attributes(vm, address, size, s->r, SNAP_MAX,
					  &s->seq);
	s->n = r;
	return r;
}

/* The whole address space but the last page (address + size must not wrap). */
static inline int snap_all(struct gmem_vm *vm, struct snap *s)
{
	return snap_take(vm, 0, -PAGE, s);
}

static inline bool snap_equal(const struct snap *a, const struct snap *b)
{
	if (a->n != b->n || a->seq != b->seq)
		return false;
	if (a->n < 0)
		return true;
	for (int i = 0; i < a->n && i < SNAP_MAX; i++)
		if (a->r[i].address != b->r[i].address ||
		    a->r[i].size != b->r[i].size ||
		    a->r[i].attributes != b->r[i].attributes)
			return false;
	return true;
}

static inline void snap_print(const char *what, const struct snap *s)
{
	tap_diag("%s: %d ranges, seq %" PRIu64, what, s->n, s->seq);
	for (int i = 0; i < s->n && i < SNAP_MAX && i < 16; i++)
		tap_diag("  [%#" PRIx64 ", +%#" PRIx64 ") = %#" PRIx64,
			 s->r[i].address, s->r[i].size, s->r[i].attributes);
}

/*
 * The map over the query equals @want (@n ranges), sequence ignored.
 */
static inline bool snap_is(struct gmem_vm *vm, uint64_t address, uint64_t size,
			   const struct gmem_attr_range *want, int n)
{
	static struct snap s;
	bool ok;

	ok = snap_take(vm, address, size, &s) == n;
	for (int i = 0; ok && i < n; i++)
		ok = s.r[i].address == want[i].address &&
		     s.r[i].size == want[i].size &&
		     s.r[i].attributes == want[i].attributes;
	if (!ok) {
		snap_print("got", &s);
		tap_diag("expected %d ranges", n);
		for (int i = 0; i < n; i++)
			tap_diag("  [%#" PRIx64 ", +%#" PRIx64 ") = %#" PRIx64,
				 want[i].address, want[i].size,
				 want[i].attributes);
	}
	return ok;
}

#endif /* GMEM_TEST_H */
