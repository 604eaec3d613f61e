// SPDX-License-Identifier: MIT
/*
 * Memslots, with KVM's rules (virt/kvm/kvm_main.c, __kvm_set_memory_region
 * and kvm_set_memslot): create, delete, move (a new GPA, the rest as it
 * was) and flag changes (LOG_DIRTY_PAGES only, which brings the slot its
 * dirty bitmap).  gmem's one addition is
 * the EXECONLY flag, valid once the VM enabled exec-only memory, and as
 * fixed as READONLY.
 */
#include <errno.h>
#include <string.h>

#include <gmem/gmem.h>

#include "dirty_log.h"
#include "guest_memfd.h"
#include "memslot.h"
#include "mmu.h"
#include "util.h"
#include "vm.h"

#define KVM_MEM_MAX_NR_PAGES ((1ULL << 31) - 1)
/* x86-64 TASK_SIZE_MAX: the end of the user half, less the guard page. */
#define USER_ADDR_MAX 0x7ffffffff000ULL

#define V1_FLAGS (KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY | KVM_MEM_EXECONLY)
/* What a modification may not change (KVM's two, and EXECONLY). */
#define FIXED_FLAGS (KVM_MEM_READONLY | KVM_MEM_GUEST_MEMFD | KVM_MEM_EXECONLY)

void gmem_memslots_destroy(struct gmem_memslots *s)
{
	for (size_t i = 0; i < s->nr; i++) {
		gmem_free(s->by_gfn[i]->dirty_bitmap);
		gmem_free(s->by_gfn[i]);
	}
	gmem_free(s->by_gfn);
	*s = (struct gmem_memslots){0};
}

/* Index of the first slot whose base GFN is above @gfn. */
static size_t upper_bound(const struct gmem_memslots *s, uint64_t gfn)
{
	size_t lo = 0, hi = s->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->by_gfn[mid]->base_gfn <= gfn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct gmem_memslot *gmem_memslots_lookup(const struct gmem_memslots *s,
					  uint64_t gfn)
{
	size_t i = upper_bound(s, gfn);
	struct gmem_memslot *slot;

	if (!i)
		return NULL;
	slot = s->by_gfn[i - 1];
	return gfn - slot->base_gfn < slot->npages ? slot : NULL;
}

struct gmem_memslot *gmem_memslots_find_hva(const struct gmem_memslots *s,
					    uint64_t hva)
{
	for (size_t i = 0; i < s->nr; i++) {
		struct gmem_memslot *slot = s->by_gfn[i];

		if (slot->userspace_addr &&
		    hva - slot->userspace_addr < slot->npages << PAGE_SHIFT)
			return slot;
	}
	return NULL;
}

struct gmem_memslot *gmem_memslots_find_id(const struct gmem_memslots *s,
					   uint32_t id)
{
	for (size_t i = 0; i < s->nr; i++)
		if (s->by_gfn[i]->slot == id)
			return s->by_gfn[i];
	return NULL;
}

/* Does a slot other than @self meet [base, base + npages)? */
static bool overlaps(const struct gmem_memslots *s,
		     const struct gmem_memslot *self, uint64_t base,
		     uint64_t npages)
{
	size_t i = upper_bound(s, base + npages - 1);

	/*
	 * Slots are disjoint and sorted, so their ends are sorted too: walk
	 * down from the last one starting at or below our end until one
	 * ends at or below our start.
	 */
	while (i--) {
		const struct gmem_memslot *o = s->by_gfn[i];

		if (o->base_gfn + o->npages <= base)
			return false;
		if (o != self)
			return true;
	}
	return false;
}

static int reserve(struct gmem_memslots *s)
{
	return gmem_grow_array(&s->by_gfn, s->nr, &s->cap, 8,
			       sizeof(*s->by_gfn));
}

static void insert(struct gmem_memslots *s, struct gmem_memslot *slot)
{
	size_t i = upper_bound(s, slot->base_gfn);

	memmove(&s->by_gfn[i + 1], &s->by_gfn[i],
		(s->nr - i) * sizeof(s->by_gfn[0]));
	s->by_gfn[i] = slot;
	s->nr++;
}

static void erase(struct gmem_memslots *s, struct gmem_memslot *slot)
{
	size_t i = upper_bound(s, slot->base_gfn) - 1;

	memmove(&s->by_gfn[i], &s->by_gfn[i + 1],
		(s->nr - i - 1) * sizeof(s->by_gfn[0]));
	s->nr--;
}

static int check_flags(const struct gmem_vm *vm, uint32_t flags)
{
	uint32_t valid = KVM_MEM_LOG_DIRTY_PAGES;

	if (gmem_vm_has_gmem(vm))
		valid |= KVM_MEM_GUEST_MEMFD;
	/*
	 * Private memory is neither dirty-logged nor read-only (a write to a
	 * read-only slot is MMIO, and there is no MMIO on private memory),
	 * and execute-only comes from the XO alias there.
	 */
	if (flags & KVM_MEM_GUEST_MEMFD)
		valid &= ~KVM_MEM_LOG_DIRTY_PAGES;
	else
		valid |= KVM_MEM_READONLY;
	/* Bit 3 is unknown to KVM: gmem's only once the VM asked for it. */
	if (!(flags & KVM_MEM_GUEST_MEMFD) &&
	    __atomic_load_n(&vm->execonly_slots, __ATOMIC_RELAXED))
		valid |= KVM_MEM_EXECONLY;
	return (flags & ~valid) ? -EINVAL : 0;
}

/* The stateless checks, in KVM's order. */
static int check_region(const struct gmem_vm *vm,
			const struct kvm_userspace_memory_region2 *mem)
{
	uint16_t as_id = mem->slot >> 16, id = (uint16_t)mem->slot;
	int r = check_flags(vm, mem->flags);

	if (r)
		return r;
	if (!PAGE_ALIGNED(mem->memory_size) ||
	    !PAGE_ALIGNED(mem->guest_phys_addr))
		return -EINVAL;
	if (!PAGE_ALIGNED(mem->userspace_addr) ||
	    mem->userspace_addr > USER_ADDR_MAX ||
	    mem->memory_size > USER_ADDR_MAX - mem->userspace_addr)
		return -EINVAL;
	if ((mem->flags & KVM_MEM_GUEST_MEMFD) &&
	    (!PAGE_ALIGNED(mem->guest_memfd_offset) ||
	     mem->guest_memfd_offset + mem->memory_size <
		     mem->guest_memfd_offset))
		return -EINVAL;
	if (as_id >= GMEM_ADDRESS_SPACE_NUM || id >= KVM_USER_MEM_SLOTS)
		return -EINVAL;
	if (mem->guest_phys_addr + mem->memory_size < mem->guest_phys_addr)
		return -EINVAL;
	if ((mem->memory_size >> PAGE_SHIFT) > KVM_MEM_MAX_NR_PAGES)
		return -EINVAL;
	return 0;
}

static int delete_slot(struct gmem_vm *vm, struct gmem_memslot *old)
{
	gmem_vm_invalidate_slot_begin(vm, old);
	pthread_rwlock_wrlock(&vm->state_lock);
	erase(&vm->slots, old);
	if (old->file)
		gmem_file_unbind(old->file, old);
	pthread_rwlock_unlock(&vm->state_lock);
	gmem_vm_invalidate_slot_end(vm, old);
	gmem_free(old->dirty_bitmap);
	gmem_free(old);
	return 0;
}

/*
 * The dirty bitmap a slot with @flags has after a change, as
 * kvm_prepare_memory_region(): none without logging or with dirty rings,
 * the one it had, or a new one (all set under KVM_DIRTY_LOG_INITIALLY_SET).
 * Allocated before the commit, so that cannot fail.
 */
static int prepare_bitmap(struct gmem_vm *vm, const struct gmem_memslot *old,
			  uint32_t flags, uint64_t npages, uint64_t **bitmap)
{
	*bitmap = NULL;
	if (!(flags & KVM_MEM_LOG_DIRTY_PAGES) ||
	    __atomic_load_n(&vm->dirty_ring_size, __ATOMIC_RELAXED))
		return 0;
	if (old && old->dirty_bitmap) {
		*bitmap = old->dirty_bitmap;
		return 0;
	}
	*bitmap = gmem_dirty_bitmap_alloc(npages,
					  (vm->manual_dirty_log_protect &
					   KVM_DIRTY_LOG_INITIALLY_SET) != 0);
	return *bitmap ? 0 : -ENOMEM;
}

/*
 * KVM_MR_MOVE and KVM_MR_FLAGS_ONLY.  Only the GPA and LOG_DIRTY_PAGES may
 * change; a guest_memfd slot cannot change at all.
 */
static int modify_slot(struct gmem_vm *vm, struct gmem_memslot *old,
		       const struct kvm_userspace_memory_region2 *mem)
{
	uint64_t base = mem->guest_phys_addr >> PAGE_SHIFT;
	uint64_t old_base = old->base_gfn, npages = old->npages;
	uint64_t *bitmap, *prev;
	int r;

	if (mem->flags & KVM_MEM_GUEST_MEMFD)
		return -EINVAL;
	if (mem->userspace_addr != old->userspace_addr ||
	    mem->memory_size >> PAGE_SHIFT != old->npages ||
	    ((mem->flags ^ old->flags) & FIXED_FLAGS))
		return -EINVAL;
	if (base != old_base && overlaps(&vm->slots, old, base, npages))
		return -EEXIST;
	r = prepare_bitmap(vm, old, mem->flags, npages, &bitmap);
	if (r)
		return r;
	if (base == old_base) {
		if (mem->flags == old->flags)
			return 0;
		/*
		 * LOG_DIRTY_PAGES on: writable and huge leaves go, so that
		 * every write faults and is recorded.  Off: the 4 KiB leaves
		 * go, so that huge ones come back (KVM recovers them too).
		 */
		gmem_vm_invalidate_slot_begin(vm, old);
		pthread_rwlock_wrlock(&vm->state_lock);
		old->flags = mem->flags;
		prev = old->dirty_bitmap;
		old->dirty_bitmap = bitmap;
		pthread_rwlock_unlock(&vm->state_lock);
		gmem_vm_invalidate_slot_end(vm, old);
		if (prev != bitmap)
			gmem_free(prev);
		return 0;
	}

	/*
	 * As kvm_set_memslot(): nothing may use the old range once the
	 * call returns, and nothing cached for the new range (MMIO there
	 * until now) may outlive the move.  The slot keeps its place in
	 * the array's allocation, so the commit cannot fail.
	 */
	gmem_vm_invalidate_begin(vm, old_base, old_base + npages);
	gmem_vm_invalidate_begin(vm, base, base + npages);
	pthread_rwlock_wrlock(&vm->state_lock);
	erase(&vm->slots, old);
	old->base_gfn = base;
	old->flags = mem->flags;
	prev = old->dirty_bitmap;
	old->dirty_bitmap = bitmap;
	insert(&vm->slots, old);
	pthread_rwlock_unlock(&vm->state_lock);
	gmem_vm_invalidate_end(vm, base, base + npages);
	gmem_vm_invalidate_end(vm, old_base, old_base + npages);
	if (prev != bitmap)
		gmem_free(prev);
	return 0;
}

static int create_slot(struct gmem_vm *vm,
		       const struct kvm_userspace_memory_region2 *mem)
{
	uint64_t base = mem->guest_phys_addr >> PAGE_SHIFT;
	uint64_t npages = mem->memory_size >> PAGE_SHIFT;
	struct gmem_file *file = NULL;
	struct gmem_memslot *slot;
	uint64_t *bitmap;
	int r;

	if (overlaps(&vm->slots, NULL, base, npages))
		return -EEXIST;
	if (mem->flags & KVM_MEM_GUEST_MEMFD) {
		r = gmem_file_from_handle((int)mem->guest_memfd, &file);
		if (r)
			return r;
		r = gmem_file_bind_check(file, vm,
					 mem->guest_memfd_offset >> PAGE_SHIFT,
					 npages);
		if (r)
			goto out;
	}
	/* Faults read the array under state_lock: grow it under it too. */
	pthread_rwlock_wrlock(&vm->state_lock);
	r = reserve(&vm->slots);
	pthread_rwlock_unlock(&vm->state_lock);
	if (r)
		goto out;
	slot = gmem_zalloc(sizeof(*slot));
	if (!slot) {
		r = -ENOMEM;
		goto out;
	}
	r = prepare_bitmap(vm, NULL, mem->flags, npages, &bitmap);
	if (r) {
		gmem_free(slot);
		goto out;
	}
	*slot = (struct gmem_memslot){
		.dirty_bitmap = bitmap,
		.slot = mem->slot,
		.flags = mem->flags,
		.base_gfn = base,
		.npages = npages,
		.userspace_addr = mem->userspace_addr,
		.gmem_pgoff = mem->guest_memfd_offset >> PAGE_SHIFT,
		.gmem_fd = mem->guest_memfd,
	};

	/*
	 * Nothing is mapped where no slot was, but a fault that saw no slot
	 * must not install its answer after this: bump the sequence.
	 */
	gmem_vm_invalidate_slot_begin(vm, slot);
	pthread_rwlock_wrlock(&vm->state_lock);
	insert(&vm->slots, slot);
	if (file)
		gmem_file_bind(file, slot);
	pthread_rwlock_unlock(&vm->state_lock);
	gmem_vm_invalidate_slot_end(vm, slot);
out:
	/* The binding does not hold the file open: closing it unbinds. */
	if (file)
		gmem_file_put(file);
	return r;
}

int gmem_vm_set_memory_region2(struct gmem_vm *vm,
			       const struct kvm_userspace_memory_region2 *mem)
{
	struct gmem_memslot *old;
	int r = check_region(vm, mem);

	if (r)
		return r;
	pthread_mutex_lock(&vm->lock);
	old = gmem_memslots_find_id(&vm->slots, mem->slot);
	if (!mem->memory_size)
		r = old ? delete_slot(vm, old) : -EINVAL;
	else if (old)
		r = modify_slot(vm, old, mem);
	else
		r = create_slot(vm, mem);
	pthread_mutex_unlock(&vm->lock);
	return r;
}

int gmem_vm_set_memory_region(struct gmem_vm *vm,
			      const struct kvm_userspace_memory_region *mem)
{
	struct kvm_userspace_memory_region2 mem2 = {
		.slot = mem->slot,
		.flags = mem->flags,
		.guest_phys_addr = mem->guest_phys_addr,
		.memory_size = mem->memory_size,
		.userspace_addr = mem->userspace_addr,
	};

	if (mem->flags & ~V1_FLAGS)
		return -EINVAL;
	return gmem_vm_set_memory_region2(vm, &mem2);
}

int gmem_vm_get_memory_region2(struct gmem_vm *vm, uint32_t slot,
			       struct kvm_userspace_memory_region2 *mem)
{
	struct gmem_memslot *s;
	int r = -ENOENT;

	pthread_mutex_lock(&vm->lock);
	s = gmem_memslots_find_id(&vm->slots, slot);
	if (s) {
		*mem = (struct kvm_userspace_memory_region2){
			.slot = s->slot,
			.flags = s->flags,
			.guest_phys_addr = s->base_gfn << PAGE_SHIFT,
			.memory_size = s->npages << PAGE_SHIFT,
			.userspace_addr = s->userspace_addr,
		};
		if (s->flags & KVM_MEM_GUEST_MEMFD) {
			mem->guest_memfd_offset = s->gmem_pgoff << PAGE_SHIFT;
			mem->guest_memfd = s->gmem_fd;
		}
		r = 0;
	}
	pthread_mutex_unlock(&vm->lock);
	return r;
}
