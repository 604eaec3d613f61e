// SPDX-License-Identifier: MIT
/*
 * vCPUs: creation, the kvm_run page, the software TLB over stage 2 and the
 * guest-physical access path (see vcpu.h for the shootdown handshake).
 */
#include <errno.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gmem/hypercall.h>

#include "mmu.h"
#include "uaccess.h"
#include "util.h"
#include "kvmclock.h"
#include "vcpu.h"
#include "vm.h"
#include "x86/x86.h"

#define RUN_SIZE GMEM_VCPU_MMAP_SIZE
#define RING_OFFSET ((off_t)KVM_DIRTY_LOG_PAGE_OFFSET * PAGE_SIZE)

static const struct x86_bus vcpu_bus;
static bool vcpu_msr_allowed(void *ctx, uint32_t index, bool write);
static int vcpu_msr_hook(void *ctx, uint32_t index, uint64_t *v, bool write);

_Static_assert(GMEM_TSC_KHZ == X86_TSC_KHZ,
	       "the CPU model's TSC is the host's");

static void reset_state(struct gmem_vcpu *vcpu, bool init);

int gmem_vcpu_create(struct gmem_vm *vm, unsigned long id,
		     struct gmem_vcpu **vcpup)
{
	struct gmem_vcpu *vcpu;
	int r = -EINVAL;

	/* kvm_vm_ioctl_create_vcpu()'s checks, in its order. */
	if (id >= GMEM_MAX_VCPU_IDS)
		return -EINVAL;
	pthread_mutex_lock(&vm->vcpus_lock);
	if (vm->nr_vcpus >= GMEM_MAX_VCPUS)
		goto out_unlock;
	/* As kvm_arch_vcpu_precreate(): the first vCPU fixes the limit. */
	if (!vm->max_vcpu_ids)
		vm->max_vcpu_ids = GMEM_MAX_VCPU_IDS;
	if (id >= vm->max_vcpu_ids)
		goto out_unlock;
	r = -EEXIST;
	for (size_t i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i]->id == id)
			goto out_unlock;
	r = -ENOMEM;
	vcpu = gmem_zalloc(sizeof(*vcpu));
	if (!vcpu)
		goto out_unlock;
	vcpu->vm = vm;
	vcpu->refs = 1;
	vcpu->vmv.id = id;
	vcpu->run_fd = -1;

	r = gmem_grow_array(&vm->vcpus, vm->nr_vcpus, &vm->cap_vcpus, 8,
			    sizeof(*vm->vcpus));
	if (r)
		goto err_unlock;

	/* The page is a memfd so that gmem_mmap() can map it again. */
	vcpu->run_fd = gmem_alloc_should_fail()
			       ? -1
			       : memfd_create("gmem-kvm-run", MFD_CLOEXEC);
	if (vcpu->run_fd < 0 ||
	    ftruncate(vcpu->run_fd, vm->dirty_ring_size
					    ? RING_OFFSET + vm->dirty_ring_size
					    : RUN_SIZE)) {
		r = -ENOMEM;
		goto err_unlock;
	}
	/* The dirty ring: the same memfd, where KVM's vCPU file has it. */
	if (vm->dirty_ring_size) {
		void *g =
			mmap(NULL, vm->dirty_ring_size, PROT_READ | PROT_WRITE,
			     MAP_SHARED, vcpu->run_fd, RING_OFFSET);

		if (g == MAP_FAILED) {
			r = -ENOMEM;
			goto err_unlock;
		}
		vcpu->vmv.ring = (struct gmem_dirty_ring){
			.gfns = g,
			.size = vm->dirty_ring_size /
				sizeof(struct kvm_dirty_gfn),
			.soft_limit = vm->dirty_ring_size /
					      sizeof(struct kvm_dirty_gfn) -
				      GMEM_DIRTY_RING_RSVD,
		};
	}
	vcpu->run = mmap(NULL, RUN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
			 vcpu->run_fd, 0);
	if (vcpu->run == MAP_FAILED) {
		vcpu->run = NULL;
		r = -ENOMEM;
		goto err_unlock;
	}
	vcpu->cpu = gmem_zalloc(sizeof(*vcpu->cpu));
	if (!vcpu->cpu || x86_cpu_init(vcpu->cpu, &vcpu_bus, vcpu)) {
		r = -ENOMEM;
		goto err_unlock;
	}
	vcpu->cpu->kick = &vcpu->vmv.kick;
	vcpu->cpu->immediate_exit = &vcpu->run->immediate_exit;
	vcpu->cpu->platform_info_readable = &vm->guest_platform_info;
	vcpu->cpu->exit_on_emulation_failure = &vm->exit_on_emulation_failure;
	/* KVM's guest_supported_xcr0 is empty until KVM_SET_CPUID2. */
	vcpu->cpu->guest_xcr0 = 0;
	vcpu->cpu->user_msr_exits = &vm->msr.exit_mask;
	vcpu->cpu->msr_allowed = vcpu_msr_allowed;
	vcpu->cpu->disabled_quirks = &vm->disabled_quirks;
	vcpu->cpu->kvm_wall_clock = &vm->wall_clock;
	vcpu->cpu->msr_hook = vcpu_msr_hook;
	gmem_mce_init(&vcpu->mce);
	vcpu->user_irq = -1;
	vcpu->schedstat_fd = -1;
	if (vm->irqchip &&
	    (gmem_lapic_create((uint32_t)id, &vcpu->vmv.kick, GMEM_KICK_APIC,
			       &vcpu->nmi_queued, vm->apic_bus_cycle_ns,
			       &vcpu->apic) ||
	     gmem_apic_map_add(&vm->apics, vcpu->apic))) {
		r = -ENOMEM;
		goto err_unlock;
	}
	x86_set_tsc_khz(vcpu->cpu, __atomic_load_n(&vm->default_tsc_khz,
						   __ATOMIC_RELAXED));
	/* Without XO the CPUID table says (48 bits in the default one). */
	if (vm->xo_bit)
		x86_set_maxphyaddr(vcpu->cpu, vm->maxphyaddr, true);
	reset_state(vcpu, false);
	/* kvm_arch_vcpu_create(): with the APIC, an AP waits for INIT. */
	vcpu->mp_state = vcpu->apic && id != vm->bsp_vcpu_id
				 ? KVM_MP_STATE_UNINITIALIZED
				 : KVM_MP_STATE_RUNNABLE;
	if (!vm->tsc_ref_ns)
		vm->tsc_ref_ns = x86_host_ns();
	x86_tsc_set_ref(vcpu->cpu, vm->tsc_ref_base, vm->tsc_ref_ns);

	/* Start current: earlier shootdowns are no concern of ours. */
	vcpu->vmv.seen_gen =
		__atomic_load_n(&vm->mmu.flush_gen, __ATOMIC_ACQUIRE);
	vm->vcpus[vm->nr_vcpus++] = &vcpu->vmv;
	pthread_mutex_unlock(&vm->vcpus_lock);
	/* KVM's master clock is recomputed: every vCPU updates kvmclock. */
	gmem_kvmclock_request_all(vm);
	gmem_vm_get(vm);
	*vcpup = vcpu;
	return 0;

err_unlock:
	pthread_mutex_unlock(&vm->vcpus_lock);
	if (vcpu->apic) {
		gmem_apic_map_remove(&vm->apics, vcpu->apic);
		gmem_lapic_destroy(vcpu->apic);
	}
	if (vcpu->cpu && vcpu->cpu->decoder)
		x86_cpu_destroy(vcpu->cpu);
	gmem_free(vcpu->cpu);
	if (vcpu->run)
		munmap(vcpu->run, RUN_SIZE);
	if (vcpu->vmv.ring.gfns)
		munmap(vcpu->vmv.ring.gfns, vm->dirty_ring_size);
	if (vcpu->run_fd >= 0)
		close(vcpu->run_fd);
	gmem_free(vcpu);
	return r;

out_unlock:
	pthread_mutex_unlock(&vm->vcpus_lock);
	return r;
}

void gmem_vcpu_get(struct gmem_vcpu *vcpu)
{
	__atomic_fetch_add(&vcpu->refs, 1, __ATOMIC_RELAXED);
}

/* The last reference gone: the vCPU leaves its VM and is freed. */
void gmem_vcpu_put(struct gmem_vcpu *vcpu)
{
	struct gmem_vm *vm;

	if (!vcpu || __atomic_sub_fetch(&vcpu->refs, 1, __ATOMIC_ACQ_REL))
		return;
	vm = vcpu->vm;
	pthread_mutex_lock(&vm->vcpus_lock);
	for (size_t i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i] == &vcpu->vmv) {
			vm->vcpus[i] = vm->vcpus[--vm->nr_vcpus];
			break;
		}
	pthread_mutex_unlock(&vm->vcpus_lock);
	if (vcpu->apic) {
		gmem_apic_map_remove(&vm->apics, vcpu->apic);
		gmem_lapic_destroy(vcpu->apic);
	}
	x86_cpu_destroy(vcpu->cpu);
	gmem_free(vcpu->cpu);
	munmap(vcpu->run, RUN_SIZE);
	if (vcpu->vmv.ring.gfns)
		munmap(vcpu->vmv.ring.gfns, vm->dirty_ring_size);
	close(vcpu->run_fd);
	if (vcpu->schedstat_fd >= 0)
		close(vcpu->schedstat_fd);
	gmem_free(vcpu);
	gmem_vm_put(vm);
}

void gmem_vcpu_destroy(struct gmem_vcpu *vcpu)
{
	gmem_vcpu_put(vcpu);
}

struct kvm_run *gmem_vcpu_kvm_run(struct gmem_vcpu *vcpu)
{
	return vcpu->run;
}

struct kvm_dirty_gfn *gmem_vcpu_dirty_ring(struct gmem_vcpu *vcpu)
{
	return vcpu->vmv.ring.gfns;
}

static void tlb_flush_range(struct gmem_vcpu *vcpu, uint64_t start,
			    uint64_t end)
{
	uint64_t xo_pfn = vcpu->vm->xo_bit >> PAGE_SHIFT;

	/*
	 * A range smaller than the TLB can only sit in the slots its GFNs
	 * hash to (the XO alias bit is a multiple of the TLB size, so an
	 * alias shares its page's slot): probe those, not every entry.  A
	 * 4 KiB conversion flushes one slot instead of scanning 512.
	 */
	if (end - start < GMEM_S2TLB_SIZE) {
		for (uint64_t gfn = start; gfn < end; gfn++) {
			struct gmem_s2tlb_entry *t =
				&vcpu->s2tlb[(gfn + 1) % GMEM_S2TLB_SIZE];

			if (t->tag && ((t->tag - 1) & ~xo_pfn) == gfn)
				t->tag = 0;
		}
		return;
	}
	for (size_t i = 0; i < GMEM_S2TLB_SIZE; i++) {
		uint64_t gfn = (vcpu->s2tlb[i].tag - 1) & ~xo_pfn;

		if (vcpu->s2tlb[i].tag && gfn >= start && gfn < end)
			vcpu->s2tlb[i].tag = 0;
	}
}

/* Drop what this vCPU caches for the GFNs [start, end). */
static void flush_range(struct gmem_vcpu *vcpu, uint64_t start, uint64_t end)
{
	/* Only this thread sets its bits: none set, nothing cached. */
	if (!(__atomic_load_n(&vcpu->vmv.footprint, __ATOMIC_RELAXED) &
	      gmem_vm_footprint(start, end)))
		return;
	tlb_flush_range(vcpu, start, end);
	if (vcpu->cpu)
		x86_cpu_invalidate_gpa(vcpu->cpu, start << PAGE_SHIFT,
				       end << PAGE_SHIFT);
}

void gmem_vcpu_sync_flush(struct gmem_vcpu *vcpu)
{
	struct gmem_mmu *mmu = &vcpu->vm->mmu;
	uint64_t gen = __atomic_load_n(&mmu->flush_gen, __ATOMIC_ACQUIRE);
	bool full = gen - vcpu->vmv.seen_gen > S2_FLUSH_LOG;
	uint64_t cs = 0, ce = 0; /* ranges read so far and not yet flushed */

	/*
	 * Replay the logged ranges, unless the log has moved on.  Ranges
	 * that overlap or touch are flushed once as their union: a
	 * conversion logs the same range twice (attributes, then punch),
	 * and every flush costs the CPU model a scan of its caches.
	 */
	for (uint64_t g = vcpu->vmv.seen_gen + 1; !full && g <= gen; g++) {
		struct gmem_flush_rec *rec = &mmu->flush_log[g % S2_FLUSH_LOG];
		uint64_t start, end;

		if (__atomic_load_n(&rec->gen, __ATOMIC_ACQUIRE) != g) {
			full = true;
			break;
		}
		start = __atomic_load_n(&rec->start, __ATOMIC_RELAXED);
		end = __atomic_load_n(&rec->end, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&rec->gen, __ATOMIC_RELAXED) != g) {
			full = true;
			break;
		}
		if (cs < ce && start <= ce && end >= cs) {
			cs = MIN(cs, start);
			ce = MAX(ce, end);
			continue;
		}
		if (cs < ce)
			flush_range(vcpu, cs, ce);
		cs = start;
		ce = end;
	}
	if (full) {
		memset(vcpu->s2tlb, 0, sizeof(vcpu->s2tlb));
		if (vcpu->cpu)
			x86_cpu_flush(vcpu->cpu);
		/* Nothing cached any more. */
		__atomic_store_n(&vcpu->vmv.footprint, 0, __ATOMIC_RELAXED);
	} else if (cs < ce) {
		flush_range(vcpu, cs, ce);
	}
	VCPU_STAT_INC(vcpu, tlb_flushes);
	__atomic_store_n(&vcpu->vmv.seen_gen, gen, __ATOMIC_RELEASE);
	gmem_vm_vcpu_acked(&vcpu->vmv);
}

/* Record a stage-2 stop; @res is the MMU's record of a memory fault. */
static void record_fault(struct gmem_vcpu *vcpu, enum gmem_fault_kind kind,
			 const struct gmem_s2_result *res)
{
	struct gmem_vcpu_fault *f = &vcpu->fault;

	f->kind = kind;
	f->lin_valid = false;
	if (kind == GMEM_FAULT_MEMORY) {
		f->error = res->error;
		f->gpa = res->fault_gpa;
		f->flags = res->fault_flags;
	}
}

/*
 * The exit of the recorded stop (RETRY is none: the caller runs again),
 * for KVM_RUN and gmem_vcpu_access() alike: kvm_run filled, the return
 * value returned.
 */
static int fault_exit(struct gmem_vcpu *vcpu)
{
	const struct gmem_vcpu_fault *f = &vcpu->fault;
	struct kvm_run *run = vcpu->run;

	switch (f->kind) {
	case GMEM_FAULT_MEMORY:
		run->exit_reason = KVM_EXIT_MEMORY_FAULT;
		run->memory_fault.flags = f->flags;
		run->memory_fault.gpa = f->gpa;
		run->memory_fault.size = PAGE_SIZE;
		VCPU_STAT_INC(vcpu, exits_memory_fault);
		return f->error;
	case GMEM_FAULT_RING_FULL:
		run->exit_reason = KVM_EXIT_DIRTY_RING_FULL;
		return 0;
	default:
		run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
		run->internal.suberror = 0;
		run->internal.ndata = 0;
		return -ENOMEM;
	}
}

/* Translate one page through the TLB, then stage 2. */
static enum gmem_s2 translate(struct gmem_vcpu *vcpu, uint64_t gpa,
			      unsigned int access, struct gmem_s2_result *res)
{
	uint64_t tag = (gpa >> PAGE_SHIFT) + 1;
	struct gmem_s2tlb_entry *t = &vcpu->s2tlb[tag % GMEM_S2TLB_SIZE];
	enum gmem_s2 k;
	uint64_t bit;

	if (t->tag == tag && (t->perm & access)) {
		VCPU_STAT_INC(vcpu, tlb_hits);
		res->page = t->page;
		res->perm = t->perm;
		return GMEM_S2_OK;
	}
	/*
	 * A hit needs no footprint work: an entry exists only while its bit
	 * is set.  Before a walk, publish the bit (Dekker, vCPU's side; see
	 * vcpu.h); once set it stays until a full flush, so this is rare.
	 */
	bit = gmem_vm_footprint((gpa & ~vcpu->vm->xo_bit) >> PAGE_SHIFT,
				((gpa & ~vcpu->vm->xo_bit) >> PAGE_SHIFT) + 1);
	if (unlikely(!(__atomic_load_n(&vcpu->vmv.footprint, __ATOMIC_RELAXED) &
		       bit))) {
		__atomic_fetch_or(&vcpu->vmv.footprint, bit, __ATOMIC_SEQ_CST);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	res->faulted = false;
	k = gmem_mmu_translate(vcpu->vm, gpa, access, res);
	if (res->faulted)
		VCPU_STAT_INC(vcpu, faults);
	switch (k) {
	case GMEM_S2_OK:
		*t = (struct gmem_s2tlb_entry){tag, res->page, res->perm};
		/* Recorded before the write that made it writable lands. */
		if (unlikely(res->faulted && res->dirty))
			gmem_dirty_ring_push(&vcpu->vmv.ring, res->dirty_slot,
					     res->dirty_offset);
		break;
	case GMEM_S2_XO:
		VCPU_STAT_INC(vcpu, xo_faults);
		break;
	default:
		break;
	}
	return k;
}

static int mmio_exit(struct gmem_vcpu *vcpu, uint64_t gpa, void *buf,
		     size_t len, bool write)
{
	struct kvm_run *run = vcpu->run;

	if (len > sizeof(run->mmio.data))
		return -EINVAL;
	run->exit_reason = KVM_EXIT_MMIO;
	run->mmio.phys_addr = gpa;
	run->mmio.len = (uint32_t)len;
	run->mmio.is_write = write;
	memset(run->mmio.data, 0, sizeof(run->mmio.data));
	if (write)
		memcpy(run->mmio.data, buf, len);
	VCPU_STAT_INC(vcpu, exits_mmio);
	return GMEM_VCPU_ACCESS_EXIT;
}

/*
 * Guest memory is shared with other vCPUs, as RAM is between processors: a
 * racy guest is the guest's business, not undefined behaviour of ours.  So
 * its side of a copy uses relaxed atomic words (plain moves on x86).
 */
static void guest_read(void *dst, const uint8_t *g, size_t n)
{
	uint8_t *d = dst;

	for (; n && ((uintptr_t)g & 7); n--)
		*d++ = __atomic_load_n(g++, __ATOMIC_RELAXED);
	for (; n >= 8; n -= 8, g += 8, d += 8) {
		uint64_t w =
			__atomic_load_n((const uint64_t *)g, __ATOMIC_RELAXED);

		memcpy(d, &w, 8);
	}
	while (n--)
		*d++ = __atomic_load_n(g++, __ATOMIC_RELAXED);
}

static void guest_write(uint8_t *g, const void *src, size_t n)
{
	const uint8_t *s = src;

	for (; n && ((uintptr_t)g & 7); n--)
		__atomic_store_n(g++, *s++, __ATOMIC_RELAXED);
	for (; n >= 8; n -= 8, g += 8, s += 8) {
		uint64_t w;

		memcpy(&w, s, 8);
		__atomic_store_n((uint64_t *)g, w, __ATOMIC_RELAXED);
	}
	while (n--)
		__atomic_store_n(g++, *s++, __ATOMIC_RELAXED);
}

/*
 * A host fault on VMM memory during a guest access (@hva, a write or
 * not): recorded as the memory fault KVM gives when hva_to_pfn() fails.
 * An address outside every memslot is not the guest's: gmem itself broke.
 */
static int record_host_fault(struct gmem_vcpu *vcpu, void *hva, bool write)
{
	struct gmem_s2_result res = {0};
	uint64_t gpa;

	if (gmem_vm_hva_to_gpa(vcpu->vm, (uint64_t)(uintptr_t)hva, &gpa)) {
		fprintf(stderr,
			"gmem: host fault at %p outside every memslot\n", hva);
		abort();
	}
	res.fault_gpa = gpa & ~(PAGE_SIZE - 1);
	if (__atomic_load_n(&vcpu->vm->fault_access_flags, __ATOMIC_RELAXED))
		res.fault_flags = write ? GMEM_ACCESS_WRITE : GMEM_ACCESS_READ;
	res.error = -EFAULT;
	record_fault(vcpu, GMEM_FAULT_MEMORY, &res);
	VCPU_STAT_INC(vcpu, host_faults);
	return -EFAULT;
}

/*
 * The copy of gmem_vcpu_access(), from offset @off in the first of @n
 * translated pages.  A page the VMM unmapped since its translation ends
 * it with -EFAULT, part of it possibly copied.
 */
static void copy_loop(uint8_t *const *pages, size_t n, uint64_t off,
		      uint8_t *buf, size_t len, bool write)
{
	for (size_t i = 0, done = 0; i < n; i++) {
		uint64_t a = i ? 0 : off;
		size_t piece = MIN(len - done, PAGE_SIZE - a);

		if (write)
			guest_write(pages[i] + a, buf + done, piece);
		else
			guest_read(buf + done, pages[i] + a, piece);
		done += piece;
	}
}

static int copy_pages(struct gmem_vcpu *vcpu, uint8_t *const *pages, size_t n,
		      uint64_t off, void *buf, size_t len, bool write)
{
	struct gmem_uaccess g;

	if (gmem_uaccess_try(&g))
		return record_host_fault(vcpu, g.addr, g.write);
	copy_loop(pages, n, off, buf, len, write);
	gmem_uaccess_end(&g);
	return 0;
}

/* Up to this many pages are checked before a write copies anything. */
#define ACCESS_MAX_PAGES 16

int gmem_vcpu_access(struct gmem_vcpu *vcpu, uint64_t gpa, void *buf,
		     size_t len, unsigned int access)
{
	uint8_t *pages[ACCESS_MAX_PAGES];
	bool nested = __atomic_load_n(&vcpu->vmv.mode, __ATOMIC_RELAXED) ==
		      GMEM_VCPU_IN_GUEST;
	size_t n = 0;
	int r = 0;

	if (access != GMEM_ACCESS_READ && access != GMEM_ACCESS_WRITE &&
	    access != GMEM_ACCESS_FETCH)
		return -EINVAL;
	if (!len)
		return 0;
	if (gpa + len - 1 < gpa)
		return -EINVAL;
	/* Larger accesses are split; each piece is all-or-nothing. */
	if (((gpa & (PAGE_SIZE - 1)) + len + PAGE_SIZE - 1) >> PAGE_SHIFT >
	    ACCESS_MAX_PAGES) {
		size_t chunk = (ACCESS_MAX_PAGES - 1) * PAGE_SIZE;

		for (size_t off = 0; off < len; off += chunk) {
			r = gmem_vcpu_access(vcpu, gpa + off,
					     (uint8_t *)buf + off,
					     MIN(chunk, len - off), access);
			if (r)
				return r;
		}
		return 0;
	}

	if (!nested)
		gmem_vcpu_enter_guest(vcpu);
	else
		gmem_vcpu_check_flush(vcpu);
	VCPU_STAT_INC(vcpu, accesses);

	/* Translate every page first: an exit leaves memory untouched. */
restart:
	n = 0;
	for (uint64_t a = gpa; a < gpa + len;
	     a = (a & ~(PAGE_SIZE - 1)) + PAGE_SIZE) {
		struct gmem_s2_result res = {0};
		size_t piece =
			MIN(len - (a - gpa), PAGE_SIZE - (a & (PAGE_SIZE - 1)));

		switch (translate(vcpu, a, access, &res)) {
		case GMEM_S2_OK:
			pages[n++] = res.page;
			continue;
		case GMEM_S2_MMIO:
			r = mmio_exit(vcpu, a, (uint8_t *)buf + (a - gpa),
				      piece, access == GMEM_ACCESS_WRITE);
			break;
		case GMEM_S2_FAULT:
			record_fault(vcpu, GMEM_FAULT_MEMORY, &res);
			r = fault_exit(vcpu);
			break;
		case GMEM_S2_XO:
			r = GMEM_VCPU_ACCESS_XO;
			break;
		case GMEM_S2_NOMEM:
			r = -ENOMEM;
			break;
		case GMEM_S2_RETRY:
			/* Let the update we raced finish before trying again.
			 */
			gmem_vcpu_check_flush(vcpu);
			sched_yield();
			goto restart;
		}
		goto out;
	}
	r = copy_pages(vcpu, pages, n, gpa & (PAGE_SIZE - 1), buf, len,
		       access == GMEM_ACCESS_WRITE);
	if (r)
		r = fault_exit(vcpu);
out:
	if (!nested)
		gmem_vcpu_exit_guest(vcpu);
	return r;
}

/*
 * KVM's kvm_read_guest()/kvm_write_guest() for what KVM itself keeps in
 * guest memory (kvmclock): memory only, so a GPA without a slot (or one
 * that stage 2 refuses) is -EFAULT and leaves kvm_run alone, where the
 * guest's own access would exit.  At most two pages.
 */
int gmem_vcpu_copy_guest(struct gmem_vcpu *vcpu, uint64_t gpa, void *buf,
			 size_t len, bool write)
{
	unsigned int access = write ? GMEM_ACCESS_WRITE : GMEM_ACCESS_READ;
	bool nested = __atomic_load_n(&vcpu->vmv.mode, __ATOMIC_RELAXED) ==
		      GMEM_VCPU_IN_GUEST;
	uint8_t *pages[2];
	size_t n = 0;
	int r = 0;

	if (!len || len > PAGE_SIZE || gpa + len - 1 < gpa)
		return -EINVAL;
	if (!nested)
		gmem_vcpu_enter_guest(vcpu);
	else
		gmem_vcpu_check_flush(vcpu);
restart:
	n = 0;
	for (uint64_t a = gpa; a < gpa + len;
	     a = (a & ~(PAGE_SIZE - 1)) + PAGE_SIZE) {
		struct gmem_s2_result res = {0};

		switch (translate(vcpu, a, access, &res)) {
		case GMEM_S2_OK:
			pages[n++] = res.page;
			continue;
		case GMEM_S2_RETRY:
			gmem_vcpu_check_flush(vcpu);
			sched_yield();
			goto restart;
		default:
			r = -EFAULT;
			goto out;
		}
	}
	r = copy_pages(vcpu, pages, n, gpa & (PAGE_SIZE - 1), buf, len, write);
out:
	if (!nested)
		gmem_vcpu_exit_guest(vcpu);
	return r;
}

/* ---- the CPU model's view of stage 2 ----------------------------------- */

static int bus_map(void *ctx, uint64_t gpa, unsigned int acc, uint8_t **page,
		   unsigned int *perm)
{
	struct gmem_vcpu *vcpu = ctx;
	struct gmem_s2_result res = {0};

	switch (translate(vcpu, gpa, acc, &res)) {
	case GMEM_S2_OK:
		/*
		 * The write that filled the ring waits, as in KVM, which
		 * exits before it lands: the instruction restarts after the
		 * VMM's reset (its page is recorded; the reserve holds it).
		 */
		if (unlikely(res.faulted && res.dirty) &&
		    gmem_dirty_ring_soft_full(&vcpu->vmv.ring)) {
			record_fault(vcpu, GMEM_FAULT_RING_FULL, NULL);
			return X86_S2_EXIT;
		}
		*page = res.page;
		*perm = res.perm;
		return X86_S2_OK;
	case GMEM_S2_MMIO:
		return X86_S2_MMIO;
	case GMEM_S2_XO:
		return X86_S2_XO_PF;
	case GMEM_S2_FAULT:
		record_fault(vcpu, GMEM_FAULT_MEMORY, &res);
		return X86_S2_EXIT;
	case GMEM_S2_RETRY:
		/* Restart the instruction once the flush is acknowledged. */
		record_fault(vcpu, GMEM_FAULT_RETRY, NULL);
		return X86_S2_EXIT;
	case GMEM_S2_NOMEM:
	default:
		record_fault(vcpu, GMEM_FAULT_NOMEM, NULL);
		return X86_S2_EXIT;
	}
}

static const struct x86_bus vcpu_bus = {.map = bus_map};

/* The CPU model's filter check: the VM's KVM_X86_SET_MSR_FILTER. */
static bool vcpu_msr_allowed(void *ctx, uint32_t index, bool write)
{
	struct gmem_vcpu *vcpu = ctx;

	return gmem_msr_filter_allows(&vcpu->vm->msr, index, write);
}

/* ---- the local APIC (lapic.h) ----------------------------------------- */

static bool table_has(const struct kvm_cpuid_entry2 *t, unsigned int n,
		      uint32_t fn, uint32_t idx, int reg, int bit);

/*
 * KVM's cpuid_query_maxphyaddr(): the model's M, which follows CPUID
 * 0x80000008 (or is the XO alias's), so every check uses one width.
 */
static unsigned int guest_maxphyaddr(const struct gmem_vcpu *vcpu)
{
	return vcpu->cpu->maxphyaddr;
}

/* CPUID.1:ECX bit @bit of the guest's table, or of the supported one. */
static bool guest_has_ecx1(const struct gmem_vcpu *vcpu, int bit)
{
	unsigned int nsup;
	const struct kvm_cpuid_entry2 *sup = x86_supported_cpuid(&nsup);

	return vcpu->cpuid_set ? table_has(vcpu->cpu->cpuid, vcpu->cpu->ncpuid,
					   1, 0, 2, bit)
			       : table_has(sup, nsup, 1, 0, 2, bit);
}

/*
 * kvm_apic_set_base()'s checks: reserved bits (above MAXPHYADDR, 0-7, 9,
 * and x2APIC unless CPUID has it), x2APIC without the enable bit, and for
 * the guest the transitions x2APIC -> xAPIC and disabled -> x2APIC.
 */
static bool apic_base_valid(const struct gmem_vcpu *vcpu, uint64_t v, bool host)
{
	uint64_t old = vcpu->cpu->apic_base;
	const uint64_t both = GMEM_APIC_BASE_ENABLE | GMEM_APIC_BASE_X2APIC;
	uint64_t reserved = 0x2ff | (~0ULL << guest_maxphyaddr(vcpu));

	if (!guest_has_ecx1(vcpu, 21))
		reserved |= GMEM_APIC_BASE_X2APIC;
	if ((v & reserved) || (v & both) == GMEM_APIC_BASE_X2APIC)
		return false;
	if (!host && (old & both) == both &&
	    (v & both) == GMEM_APIC_BASE_ENABLE)
		return false;
	if (!host && !(old & GMEM_APIC_BASE_ENABLE) && (v & both) == both)
		return false;
	return true;
}

static void set_apic_base(struct gmem_vcpu *vcpu, uint64_t v)
{
	x86_set_msr(vcpu->cpu, X86_MSR_APIC_BASE, v);
	if (vcpu->apic)
		gmem_lapic_set_base(vcpu->apic, v);
}

/* The host time at which the guest's TSC reads @tsc (now, if it has). */
static uint64_t tsc_deadline_ns(const struct x86_cpu *cpu, uint64_t tsc)
{
	uint64_t now = x86_host_ns(), cur = x86_tsc(cpu), d;

	if (tsc <= cur || !cpu->tsc_khz)
		return now;
	d = tsc - cur;
	/* Beyond about 200 days away it never comes. */
	if (d > (UINT64_MAX >> 1) / 1000000)
		return UINT64_MAX >> 1;
	return now + d * 1000000 / cpu->tsc_khz;
}

/* A level-triggered EOI the last APIC write made reaches the IOAPIC. */
static void level_eoi(struct gmem_vcpu *vcpu)
{
	int v = gmem_lapic_take_level_eoi(vcpu->apic);

	if (v >= 0)
		gmem_ioapic_eoi(&vcpu->vm->ioapic, (unsigned int)v);
}

/*
 * The MSRs of the APIC, for the guest (the CPU model's hook) and the VMM
 * (@host: KVM_GET/SET_MSRS): 0, 1 for #GP / a failed KVM_SET_MSRS, -1
 * not one of them.  IA32_APIC_BASE and the TSC deadline are there with or
 * without an irqchip, as in KVM; the x2APIC MSRs need the APIC in x2APIC
 * mode.
 */
static int apic_msr(struct gmem_vcpu *vcpu, uint32_t idx, uint64_t *v,
		    bool write, bool host)
{
	struct x86_cpu *cpu = vcpu->cpu;
	int r;

	if (idx == X86_MSR_APIC_BASE) {
		if (!write) {
			*v = cpu->apic_base;
			return 0;
		}
		if (!apic_base_valid(vcpu, *v, host))
			return 1;
		set_apic_base(vcpu, *v);
		return 0;
	}
	if (idx == GMEM_MSR_TSC_DEADLINE) {
		if (!vcpu->apic) {
			if (!write)
				*v = 0;
			return 0;
		}
		if (write)
			gmem_lapic_set_tsc_deadline(vcpu->apic, *v,
						    tsc_deadline_ns(cpu, *v));
		else
			*v = gmem_lapic_get_tsc_deadline(vcpu->apic);
		return 0;
	}
	if (idx < GMEM_MSR_X2APIC_FIRST || idx > GMEM_MSR_X2APIC_LAST)
		return -1;
	if (!vcpu->apic)
		return 1;
	if (!write)
		return gmem_lapic_rdmsr(vcpu->apic, idx, v, x86_host_ns());
	r = gmem_lapic_wrmsr(vcpu->apic, idx, *v, x86_host_ns());
	if (r == GMEM_LAPIC_EVENT) {
		level_eoi(vcpu);
		cpu->cr8 = gmem_lapic_get_cr8(vcpu->apic);
		if (!host)
			x86_request_event(cpu);
		r = 0;
	}
	return r;
}

/* HWCR.McStatusWrEn counts on an AMD guest only (can_set_mci_status()). */
static bool mci_status_writable(const struct gmem_vcpu *vcpu)
{
	uint32_t id[4];

	x86_cpuid(vcpu->cpu, 0, 0, id);
	return (id[1] == 0x68747541 /* "Auth" */ ||
		id[1] == 0x6f677948 /* "Hygo" */) &&
	       (vcpu->cpu->hwcr & (1ULL << 18));
}

/* The MSRs of the vCPU layer's devices: the APIC's, then the MCE banks. */
static int device_msr(struct gmem_vcpu *vcpu, uint32_t idx, uint64_t *v,
		      bool write, bool host)
{
	int r = apic_msr(vcpu, idx, v, write, host);

	if (r >= 0)
		return r;
	return write ? gmem_mce_wrmsr(&vcpu->mce, idx, *v, host,
				      mci_status_writable(vcpu))
		     : gmem_mce_rdmsr(&vcpu->mce, idx, v, host);
}

static int vcpu_msr_hook(void *ctx, uint32_t index, uint64_t *v, bool write)
{
	return device_msr(ctx, index, v, write, false);
}

int gmem_vcpu_setup_mce(struct gmem_vcpu *vcpu, uint64_t mcg_cap)
{
	int r = gmem_mce_setup(&vcpu->mce, mcg_cap);

	/* kvm_apic_after_set_mcg_cap(): LVTCMCI with MCG_CMCI_P. */
	if (!r && vcpu->apic)
		gmem_lapic_set_cmci(vcpu->apic, mcg_cap & GMEM_MCG_CMCI_P);
	return r;
}

int gmem_vcpu_set_mce(struct gmem_vcpu *vcpu, const struct kvm_x86_mce *mce)
{
	int r = gmem_mce_inject(&vcpu->mce, mce, vcpu->cpu->cr4 & X86_CR4_MCE);

	switch (r) {
	case GMEM_MCE_CMCI:
		if (vcpu->apic)
			gmem_lapic_deliver_cmci(vcpu->apic);
		return 0;
	case GMEM_MCE_MC:
		x86_inject(vcpu->cpu, X86_MC, false, 0);
		return 0;
	case GMEM_MCE_SHUTDOWN:
		vcpu->shutdown_pending = true;
		return 0;
	default:
		return r < 0 ? r : 0;
	}
}

/*
 * Before the next instruction: the TPR follows a MOV to CR8, then the
 * APIC's best interrupt goes in if RFLAGS.IF and no STI shadow allow it
 * (and no exception waits); otherwise the CPU stops when IF opens.
 */
static void apic_inject(struct gmem_vcpu *vcpu)
{
	struct x86_cpu *c = vcpu->cpu;
	uint64_t now = x86_host_ns();
	int v;

	if (c->cr8 != gmem_lapic_get_cr8(vcpu->apic))
		gmem_lapic_set_cr8(vcpu->apic, (unsigned int)c->cr8);
	v = gmem_lapic_pending(vcpu->apic, now);
	c->irq_window = v >= 0;
	if (v < 0 || c->pend.valid || !(x86_get_rflags(c) & X86_IF) ||
	    c->int_shadow)
		return;
	gmem_lapic_ack(vcpu->apic, v);
	x86_inject(c, (uint8_t)v, false, 0);
	c->irq_window = gmem_lapic_pending(vcpu->apic, now) >= 0;
}

/*
 * KVM_INTERRUPT, for a VMM with its own interrupt controller: the vector
 * is delivered at the next entry whatever RFLAGS.IF says (the VMM looked
 * at ready_for_interrupt_injection), after an exception that waits.
 */
int gmem_vcpu_interrupt(struct gmem_vcpu *vcpu, uint32_t irq)
{
	if (irq >= 256)
		return -EINVAL;
	/* With the in-kernel PIC it would only carry ExtINT: refused. */
	if (__atomic_load_n(&vcpu->vm->irqchip, __ATOMIC_RELAXED))
		return -ENXIO;
	if (x86_event_slot_taken(vcpu->cpu))
		vcpu->user_irq = (int)irq;
	else
		x86_inject(vcpu->cpu, (uint8_t)irq, false, 0);
	return 0;
}

/*
 * Without an irqchip, before the next instruction: KVM_INTERRUPT's vector
 * once the event slot is free, then kvm_run.request_interrupt_window: a
 * KVM_EXIT_IRQ_WINDOW_OPEN as soon as the guest could take one (IF set,
 * no STI shadow, nothing queued); until then the CPU stops when IF opens.
 */
static bool user_irq_window(struct gmem_vcpu *vcpu)
{
	struct x86_cpu *c = vcpu->cpu;

	if (vcpu->user_irq >= 0 && !c->pend.valid) {
		x86_inject(c, (uint8_t)vcpu->user_irq, false, 0);
		vcpu->user_irq = -1;
	}
	c->irq_window = false;
	if (!__atomic_load_n(&vcpu->run->request_interrupt_window,
			     __ATOMIC_RELAXED))
		return false;
	if ((x86_get_rflags(c) & X86_IF) && !c->int_shadow && !c->pend.valid &&
	    vcpu->user_irq < 0)
		return true;
	c->irq_window = true;
	return false;
}

/* kvm_vcpu_has_events() for a halted vCPU: an interrupt it would take. */
static bool apic_wakes(struct gmem_vcpu *vcpu)
{
	struct x86_cpu *c = vcpu->cpu;

	if (c->cr8 != gmem_lapic_get_cr8(vcpu->apic))
		gmem_lapic_set_cr8(vcpu->apic, (unsigned int)c->cr8);
	return gmem_lapic_pending(vcpu->apic, x86_host_ns()) >= 0 &&
	       (x86_get_rflags(c) & X86_IF);
}

/*
 * process_nmi(): the queue moves to the pending count, which holds up to
 * two NMIs, one while NMIs are blocked or one is on its way in.
 */
static void process_nmi(struct gmem_vcpu *vcpu)
{
	const struct x86_cpu *c = vcpu->cpu;
	int q;

	if (!__atomic_load_n(&vcpu->nmi_queued, __ATOMIC_RELAXED))
		return;
	q = __atomic_exchange_n(&vcpu->nmi_queued, 0, __ATOMIC_ACQUIRE);
	vcpu->nmi_pending = MIN(vcpu->nmi_pending + (unsigned int)q,
				c->nmi_masked || x86_nmi_injected(c) ? 1u : 2u);
}

/*
 * Then the NMI's injection, ahead of any interrupt.  One that must wait
 * opens the NMI window, or, behind a queued exception, stops the run
 * after its delivery to look again.
 */
static void nmi_inject(struct gmem_vcpu *vcpu)
{
	struct x86_cpu *c = vcpu->cpu;

	process_nmi(vcpu);
	c->nmi_window = false;
	if (!vcpu->nmi_pending)
		return;
	if (x86_nmi_allowed(c)) {
		x86_inject_nmi(c);
		vcpu->nmi_pending--;
	} else if (c->pend.valid) {
		x86_request_event(c);
	}
	c->nmi_window = vcpu->nmi_pending != 0;
}

/* An NMI wakes a halted vCPU: a new one, or one it may take now. */
static bool nmi_wakes(const struct gmem_vcpu *vcpu)
{
	return __atomic_load_n(&vcpu->nmi_queued, __ATOMIC_ACQUIRE) ||
	       (vcpu->nmi_pending && !vcpu->cpu->nmi_masked);
}

int gmem_vcpu_nmi(struct gmem_vcpu *vcpu)
{
	__atomic_fetch_add(&vcpu->nmi_queued, 1, __ATOMIC_RELEASE);
	return 0;
}

/* kvm_vcpu_deliver_sipi_vector(): real mode at vector << 12. */
static void deliver_sipi(struct gmem_vcpu *vcpu, uint8_t vector)
{
	struct kvm_sregs s;
	struct kvm_regs r;

	x86_get_sregs(vcpu->cpu, &s);
	s.cs.selector = (uint16_t)(vector << 8);
	s.cs.base = (uint64_t)vector << 12;
	x86_set_sregs(vcpu->cpu, &s);
	x86_get_regs(vcpu->cpu, &r);
	r.rip = 0;
	x86_set_regs(vcpu->cpu, &r);
}

/*
 * kvm_apic_accept_events(): an INIT the APIC latched resets the vCPU
 * (the BSP runs on from the reset vector, an AP waits for SIPI); then a
 * SIPI starts a waiting AP and is dropped otherwise.
 */
static void accept_events(struct gmem_vcpu *vcpu)
{
	unsigned int ev;
	uint8_t vector;

	if (!vcpu->apic || !gmem_lapic_init_sipi(vcpu->apic))
		return;
	ev = gmem_lapic_take_init_sipi(vcpu->apic, &vector);
	if (ev & GMEM_LAPIC_INIT) {
		reset_state(vcpu, true);
		vcpu->mp_state = vcpu->cpu->apic_base & GMEM_APIC_BASE_BSP
					 ? KVM_MP_STATE_RUNNABLE
					 : KVM_MP_STATE_INIT_RECEIVED;
	}
	if ((ev & GMEM_LAPIC_SIPI) &&
	    vcpu->mp_state == KVM_MP_STATE_INIT_RECEIVED) {
		deliver_sipi(vcpu, vector);
		vcpu->mp_state = KVM_MP_STATE_RUNNABLE;
	}
}

/* kvm_vcpu_has_events() for a vCPU that is not RUNNABLE. */
/* Out of HALTED: RUNNABLE, the PV kick that may have ended it used up. */
static void unhalt(struct gmem_vcpu *vcpu)
{
	vcpu->mp_state = KVM_MP_STATE_RUNNABLE;
	if (vcpu->apic)
		gmem_lapic_clear_unhalt(vcpu->apic);
}

static bool wakes(struct gmem_vcpu *vcpu)
{
	if (vcpu->apic && gmem_lapic_init_sipi(vcpu->apic))
		return true;
	if (vcpu->mp_state != KVM_MP_STATE_HALTED &&
	    vcpu->mp_state != KVM_MP_STATE_AP_RESET_HOLD)
		return false;
	if (nmi_wakes(vcpu))
		return true;
	/* A queued exception, or the VMM's #DB after the HLT. */
	if (vcpu->cpu->dbg_trap || x86_event_slot_taken(vcpu->cpu))
		return true;
	if (vcpu->apic)
		return gmem_lapic_unhalted(vcpu->apic) || apic_wakes(vcpu);
	/* A HLT kept in the guest: KVM_INTERRUPT's vector, or an event. */
	return vcpu->user_irq >= 0 || vcpu->cpu->pend.valid;
}

/* An MMIO stop that is the APIC's page: true once it is answered. */
/* An in-kernel device answered the MMIO read of @stop with @data. */
static void in_kernel_read_done(struct gmem_vcpu *vcpu,
				const struct x86_stop *stop,
				const uint8_t *data)
{
	uint64_t v = 0;

	if (stop->mmio.is_write)
		return;
	memcpy(&v, data, stop->mmio.len);
	x86_complete_mmio(vcpu->cpu, v);
}

/* The IOAPIC's window (with an irqchip): true if the access was its. */
static bool ioapic_mmio(struct gmem_vcpu *vcpu, const struct x86_stop *stop)
{
	uint8_t data[8];

	memcpy(data, stop->mmio.data, sizeof(data));
	if (stop->mmio.len > sizeof(data) ||
	    !gmem_ioapic_mmio(&vcpu->vm->ioapic, stop->mmio.gpa,
			      stop->mmio.is_write, data, stop->mmio.len))
		return false;
	in_kernel_read_done(vcpu, stop, data);
	return true;
}

static bool apic_mmio(struct gmem_vcpu *vcpu, const struct x86_stop *stop)
{
	uint8_t data[8];
	int event;

	memcpy(data, stop->mmio.data, sizeof(data));
	if (stop->mmio.len > sizeof(data) ||
	    !gmem_lapic_mmio(vcpu->apic, stop->mmio.gpa, stop->mmio.is_write,
			     data, stop->mmio.len,
			     !(__atomic_load_n(&vcpu->vm->disabled_quirks,
					       __ATOMIC_RELAXED) &
			       KVM_X86_QUIRK_LAPIC_MMIO_HOLE),
			     x86_host_ns(), &event))
		return false;
	in_kernel_read_done(vcpu, stop, data);
	if (event)
		level_eoi(vcpu);
	vcpu->cpu->cr8 = gmem_lapic_get_cr8(vcpu->apic);
	return true;
}

int gmem_vcpu_get_lapic(struct gmem_vcpu *vcpu, struct kvm_lapic_state *s)
{
	if (!vcpu->apic)
		return -EINVAL;
	gmem_lapic_get_state(
		vcpu->apic, s,
		__atomic_load_n(&vcpu->vm->x2apic_format, __ATOMIC_RELAXED),
		x86_host_ns());
	return 0;
}

int gmem_vcpu_set_lapic(struct gmem_vcpu *vcpu, const struct kvm_lapic_state *s)
{
	int r;

	if (!vcpu->apic)
		return -EINVAL;
	r = gmem_lapic_set_state(
		vcpu->apic, s,
		__atomic_load_n(&vcpu->vm->x2apic_format, __ATOMIC_RELAXED),
		x86_host_ns());
	vcpu->cpu->cr8 = gmem_lapic_get_cr8(vcpu->apic);
	return r;
}

/* Finish what the VMM answered: IN data, MMIO read data, hypercall ret. */
static void complete_pending(struct gmem_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	switch (vcpu->pending) {
	case GMEM_PEND_IN:
		/*
		 * KVM's PIO data page, whatever the VMM did to io.size,
		 * count or data_offset: the CPU takes what its stop asked.
		 */
		x86_complete_pio_in(vcpu->cpu, (uint8_t *)run + PAGE_SIZE,
				    PAGE_SIZE);
		break;
	case GMEM_PEND_MMIO: {
		uint64_t v = 0;

		memcpy(&v, run->mmio.data, MIN(run->mmio.len, 8));
		x86_complete_mmio(vcpu->cpu, v);
		break;
	}
	case GMEM_PEND_HYPERCALL:
		vcpu->cpu->gpr[X86_RAX] = run->hypercall.ret;
		break;
	case GMEM_PEND_MSR:
		/* complete_fast_rdmsr()/complete_fast_msr_access() */
		x86_complete_msr(vcpu->cpu, run->msr.error != 0, run->msr.data);
		break;
	}
	vcpu->pending = GMEM_PEND_NONE;
}

/*
 * kvm_pv_send_ipi(): RBX/RCX a 128-bit map of APIC IDs from RDX, RSI
 * the ICR's low word (no shorthand, physical); how many took it, or
 * -EOPNOTSUPP without the in-kernel APICs, as KVM without its map.
 */
static int pv_send_ipi(struct gmem_vcpu *vcpu)
{
	const uint64_t *g = vcpu->cpu->gpr;
	uint64_t bitmap[2] = {g[X86_RBX], g[X86_RCX]}, icr = g[X86_RSI];

	if (icr & (0x800 | 0xc0000))
		return -22; /* -KVM_EINVAL */
	if (!vcpu->apic)
		return -EOPNOTSUPP;
	return gmem_apic_map_send_pv(&vcpu->vm->apics, bitmap,
				     (uint32_t)g[X86_RDX], (uint32_t)icr);
}

/* VMCALL: KVM's convention, RAX = nr, RBX/RCX/RDX/RSI = args. */
static bool hypercall(struct gmem_vcpu *vcpu)
{
	struct x86_cpu *cpu = vcpu->cpu;
	struct kvm_run *run = vcpu->run;
	uint64_t nr = cpu->gpr[X86_RAX];
	uint64_t kvm_mask =
		__atomic_load_n(&vcpu->vm->hypercall_exits, __ATOMIC_RELAXED);
	uint64_t gmem_mask = __atomic_load_n(&vcpu->vm->gmem_hypercall_exits,
					     __ATOMIC_RELAXED);
	bool exits;

	if (cpu->cpl != 0) {
		cpu->gpr[X86_RAX] = (uint64_t)-1; /* -KVM_EPERM */
		return false;
	}
	/*
	 * KVM's that complete here: VAPIC_POLL_IRQ, and SCHED_YIELD, whose
	 * target (an APIC id) KVM yields to if that vCPU is preempted; the
	 * host schedules gmem's vCPU threads, so there is nothing to do.
	 */
	if (nr == KVM_HC_VAPIC_POLL_IRQ ||
	    (nr == KVM_HC_SCHED_YIELD &&
	     x86_pv_has(cpu, X86_KVM_FEATURE_PV_SCHED_YIELD))) {
		cpu->gpr[X86_RAX] = 0;
		return false;
	}
	/* KICK_CPU(flags, APIC ID): a remote-read IPI that ends its HLT. */
	if (nr == KVM_HC_KICK_CPU &&
	    x86_pv_has(cpu, X86_KVM_FEATURE_PV_UNHALT)) {
		uint64_t one[2] = {1, 0};

		if (vcpu->apic)
			gmem_apic_map_send_pv(&vcpu->vm->apics, one,
					      (uint32_t)cpu->gpr[X86_RCX],
					      3 << 8);
		cpu->gpr[X86_RAX] = 0;
		return false;
	}
	if (nr == KVM_HC_SEND_IPI &&
	    x86_pv_has(cpu, X86_KVM_FEATURE_PV_SEND_IPI)) {
		cpu->gpr[X86_RAX] = (uint64_t)(int64_t)pv_send_ipi(vcpu);
		return false;
	}
	/* KVM's own (only MAP_GPA_RANGE), or gmem's (GMEM_CAP_EXIT_HYPERCALL).
	 */
	if (nr == KVM_HC_MAP_GPA_RANGE)
		exits = kvm_mask & (1ULL << nr);
	else
		exits = nr - GMEM_HC_BASE < 64 &&
			(gmem_mask & (1ULL << (nr - GMEM_HC_BASE)));
	if (!exits) {
		cpu->gpr[X86_RAX] = (uint64_t)-KVM_ENOSYS;
		return false;
	}
	run->exit_reason = KVM_EXIT_HYPERCALL;
	memset(&run->hypercall, 0, sizeof(run->hypercall));
	run->hypercall.nr = nr;
	run->hypercall.args[0] = cpu->gpr[X86_RBX];
	run->hypercall.args[1] = cpu->gpr[X86_RCX];
	run->hypercall.args[2] = cpu->gpr[X86_RDX];
	run->hypercall.args[3] = cpu->gpr[X86_RSI];
	run->hypercall.longmode = 1;
	/* Until the VMM answers, the guest sees KVM's "not done". */
	run->hypercall.ret = (uint64_t)-KVM_ENOSYS;
	vcpu->pending = GMEM_PEND_HYPERCALL;
	return true;
}

/* One page's pre-fault: the bytes it covers from @gpa, or -errno. */
/*
 * What KVM's pre-fault does to the memory behind a mapping: the pages are
 * allocated (kvm_gmem_get_pfn(), or a writable GUP of the VMM's memory),
 * not just mapped, so that the guest's first touch costs nothing more.
 * A failure is left for the access that meets it.
 */
static void populate(uint8_t *page, uint64_t len, bool writable)
{
	if (writable && !madvise(page, len, MADV_POPULATE_WRITE))
		return;
	madvise(page, len, MADV_POPULATE_READ);
}

static int64_t pre_fault_one(struct gmem_vcpu *vcpu, uint64_t gpa,
			     uint64_t size)
{
	struct gmem_s2_result res = {0};
	uint64_t end;

	for (;;) {
		switch (gmem_mmu_translate(vcpu->vm, gpa, GMEM_ACCESS_READ,
					   &res)) {
		case GMEM_S2_OK:
			/* A huge mapping may reach past the page. */
			end = (gpa | ((PAGE_SIZE << (9 * res.level)) - 1)) + 1;
			end = MIN(size, end - gpa);
			populate(res.page, end, res.perm & S2_W);
			return (int64_t)end;
		case GMEM_S2_RETRY:
			/* Outside guest mode: no flush waits for us. */
			sched_yield();
			continue;
		case GMEM_S2_FAULT:
			record_fault(vcpu, GMEM_FAULT_MEMORY, &res);
			return fault_exit(vcpu);
		case GMEM_S2_NOMEM:
			return -ENOMEM;
		default:
			/* MMIO (no memslot), the XO alias: KVM's
			 * RET_PF_EMULATE. */
			return -ENOENT;
		}
	}
}

int gmem_vcpu_pre_fault_memory(struct gmem_vcpu *vcpu,
			       struct kvm_pre_fault_memory *range)
{
	uint64_t full = range->size;
	int64_t r = 0;

	if (range->flags)
		return -EINVAL;
	if (!PAGE_ALIGNED(range->gpa) || !PAGE_ALIGNED(range->size) ||
	    range->gpa + range->size <= range->gpa)
		return -EINVAL;
	do {
		if (__atomic_load_n(&vcpu->vmv.kick, __ATOMIC_ACQUIRE) &
		    GMEM_KICK_USER) {
			r = -EINTR;
			break;
		}
		r = pre_fault_one(vcpu, range->gpa, range->size);
		if (r < 0)
			break;
		range->size -= (uint64_t)r;
		range->gpa += (uint64_t)r;
	} while (range->size);
	/* Success if at least one page was mapped. */
	return range->size == full ? (int)r : 0;
}

/* Consume a gmem_vcpu_kick(), if one is pending. */
static bool take_user_kick(struct gmem_vcpu *vcpu)
{
	return __atomic_fetch_and(&vcpu->vmv.kick, ~GMEM_KICK_USER,
				  __ATOMIC_ACQUIRE) &
	       GMEM_KICK_USER;
}

/*
 * Is one of the signals that KVM_SET_SIGNAL_MASK lets interrupt KVM_RUN,
 * but that the thread blocks, pending?  Those stay blocked while the
 * guest runs and are looked for here, so that, as in KVM, the run ends
 * with -EINTR and the signal is still pending when KVM_RUN returns.
 */
static bool signal_pending(const struct gmem_vcpu *vcpu)
{
	sigset_t set;

	if (likely(!vcpu->sig_poll))
		return false;
	if (sigpending(&set))
		return false;
	for (int sig = 1; sig <= 64; sig++)
		if ((vcpu->sig_poll & (1ULL << (sig - 1))) &&
		    sigismember(&set, sig) == 1)
			return true;
	return false;
}

/*
 * kvm_vcpu_block(): a vCPU that is not RUNNABLE sleeps, outside guest
 * mode, until it may run on: HALTED (and AP_RESET_HOLD) until an
 * interrupt it takes, an NMI, or INIT/SIPI; UNINITIALIZED and
 * INIT_RECEIVED until INIT or SIPI, which it then accepts (an INIT can
 * leave it waiting for SIPI: it sleeps on).  0 once RUNNABLE, or at the
 * first event with @once; -EINTR (KVM_EXIT_INTR, the state kept) when a
 * kick, signal or immediate_exit ends the run.  The sleep ends at the
 * APIC timer's next expiry.
 */
static int block(struct gmem_vcpu *vcpu, bool once)
{
	/* Signals that nothing delivers are looked for this often. */
	const uint64_t poll_ns = 1000000;
	int k;

	if (vcpu->mp_state == KVM_MP_STATE_HALTED)
		VCPU_STAT_INC(vcpu, halts);
	for (;;) {
		uint64_t wait = vcpu->sig_poll ? poll_ns : UINT64_MAX;
		struct timespec ts;

		/* Clear the APIC's kick before looking, so none is lost. */
		__atomic_fetch_and(&vcpu->vmv.kick, ~GMEM_KICK_APIC,
				   __ATOMIC_SEQ_CST);
		k = __atomic_load_n(&vcpu->vmv.kick, __ATOMIC_ACQUIRE);
		if ((k & GMEM_KICK_USER) ||
		    __atomic_load_n(&vcpu->run->immediate_exit,
				    __ATOMIC_RELAXED) ||
		    signal_pending(vcpu))
			break;
		if (wakes(vcpu)) {
			accept_events(vcpu);
			if (vcpu->mp_state == KVM_MP_STATE_HALTED ||
			    vcpu->mp_state == KVM_MP_STATE_AP_RESET_HOLD)
				unhalt(vcpu);
			if (once || vcpu->mp_state == KVM_MP_STATE_RUNNABLE)
				return 0;
			continue;
		}
		if (vcpu->apic) {
			uint64_t t = gmem_lapic_next_timer(vcpu->apic);
			uint64_t now = x86_host_ns();

			if (t != UINT64_MAX)
				wait = MIN(wait, t > now ? t - now : 0);
		}
		ts.tv_sec = (time_t)(wait / 1000000000);
		ts.tv_nsec = (long)(wait % 1000000000);
		syscall(SYS_futex, &vcpu->vmv.kick, FUTEX_WAIT_PRIVATE, k,
			wait == UINT64_MAX ? NULL : &ts, NULL, 0);
	}
	take_user_kick(vcpu);
	vcpu->run->exit_reason = KVM_EXIT_INTR;
	VCPU_STAT_INC(vcpu, exits[KVM_EXIT_INTR]);
	return -EINTR;
}

/* Instructions between stop checks, on top of the CPU's own polling. */
#define RUN_BUDGET 100000

/*
 * The CPU model under a uaccess span.  The MMU probes VMM memory when it
 * maps it, so this catches what changed since (another thread's munmap or
 * mprotect, a hole inside a huge mapping): the instruction stops at the
 * access, with its registers untouched, and restarts on the next run.
 * Nothing on this path holds a lock while the model touches memory.
 */
static int run_cpu(struct gmem_vcpu *vcpu, bool finish, struct x86_stop *stop)
{
	struct gmem_uaccess g;
	int reason;

	if (gmem_uaccess_try(&g)) {
		x86_cpu_abandon(vcpu->cpu);
		memset(stop, 0, sizeof(*stop));
		record_host_fault(vcpu, g.addr, g.write);
		return X86_STOP_S2_EXIT;
	}
	if (finish)
		reason = x86_finish_mmio(vcpu->cpu, stop);
	else
		reason = x86_run(vcpu->cpu, RUN_BUDGET, stop);
	gmem_uaccess_end(&g);
	return reason;
}

/* What every KVM_RUN leaves in kvm_run, as x86's post_kvm_run_save(). */
static void post_run_save(struct gmem_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct x86_cpu *cpu = vcpu->cpu;
	bool intr = x86_get_rflags(cpu) & X86_IF;

	run->if_flag = intr;
	run->cr8 = cpu->cr8;
	run->apic_base = cpu->apic_base;
	/*
	 * With the in-kernel irqchip always (pic_in_kernel()); else IF set,
	 * no STI shadow and no event waiting.
	 */
	run->ready_for_interrupt_injection =
		vcpu->apic || (intr && !cpu->int_shadow && !cpu->pend.valid &&
			       vcpu->user_irq < 0);
}

/*
 * KVM_CAP_SYNC_REGS on entry, as KVM's sync_regs(): a bit outside the
 * valid fields, in either word, fails the run; then the dirty sets go in,
 * REGS, SREGS, EVENTS, each bit cleared once its set is in.  SREGS and
 * EVENTS are copied out of kvm_run before they are checked, as KVM does
 * (another thread may be writing them: what is checked is what goes in),
 * and get KVM_SET_SREGS's and KVM_SET_VCPU_EVENTS's checks.  A set that
 * fails them fails the run with -EINVAL and its bit stays set; the sets
 * before it stay in, as in KVM.  The words are read once.
 */
static int sync_regs_in(struct gmem_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint64_t valid =
		__atomic_load_n(&run->kvm_valid_regs, __ATOMIC_RELAXED);
	uint64_t dirty =
		__atomic_load_n(&run->kvm_dirty_regs, __ATOMIC_RELAXED);

	if ((valid | dirty) & ~(uint64_t)KVM_SYNC_X86_VALID_FIELDS)
		return -EINVAL;
	if (dirty & KVM_SYNC_X86_REGS) {
		struct kvm_regs regs;

		memcpy(&regs, &run->s.regs.regs, sizeof(regs));
		gmem_vcpu_set_regs(vcpu, &regs);
		__atomic_fetch_and(&run->kvm_dirty_regs, ~KVM_SYNC_X86_REGS,
				   __ATOMIC_RELAXED);
	}
	if (dirty & KVM_SYNC_X86_SREGS) {
		struct kvm_sregs sregs;

		memcpy(&sregs, &run->s.regs.sregs, sizeof(sregs));
		if (gmem_vcpu_set_sregs(vcpu, &sregs))
			return -EINVAL;
		__atomic_fetch_and(&run->kvm_dirty_regs, ~KVM_SYNC_X86_SREGS,
				   __ATOMIC_RELAXED);
	}
	if (dirty & KVM_SYNC_X86_EVENTS) {
		struct kvm_vcpu_events ev;

		memcpy(&ev, &run->s.regs.events, sizeof(ev));
		if (gmem_vcpu_set_vcpu_events(vcpu, &ev))
			return -EINVAL;
		__atomic_fetch_and(&run->kvm_dirty_regs, ~KVM_SYNC_X86_EVENTS,
				   __ATOMIC_RELAXED);
	}
	return 0;
}

/*
 * ... and on the way out, as store_regs(): the sets kvm_valid_regs names
 * (read again: KVM does too, so a run that failed on a bad bit still
 * stores the good ones), as KVM_GET_REGS, _SREGS and _VCPU_EVENTS.
 */
static void sync_regs_out(struct gmem_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint64_t valid =
		__atomic_load_n(&run->kvm_valid_regs, __ATOMIC_RELAXED);

	if (valid & KVM_SYNC_X86_REGS)
		gmem_vcpu_get_regs(vcpu, &run->s.regs.regs);
	if (valid & KVM_SYNC_X86_SREGS)
		gmem_vcpu_get_sregs(vcpu, &run->s.regs.sregs);
	if (valid & KVM_SYNC_X86_EVENTS)
		gmem_vcpu_get_vcpu_events(vcpu, &run->s.regs.events);
}

/*
 * KVM_RUN, in kvm_arch_vcpu_ioctl_run()'s order: the entry checks (sync
 * regs, then kvm_run.cr8), then the completion of what the last exit left
 * pending (even with immediate_exit set, so that a VMM can finish I/O
 * before saving state), then immediate_exit (-EINTR with exit_reason
 * untouched), then the guest.  Every return, failed entry checks too,
 * stores the sync regs and kvm_run's flags on the way out.
 */
int gmem_vcpu_run(struct gmem_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct x86_stop stop;
	bool wants_to_run, finish, hw_halt;
	int r = 0;

	wants_to_run = !__atomic_load_n(&run->immediate_exit, __ATOMIC_RELAXED);
	run->flags = 0;
	/*
	 * An AP before its INIT: KVM_RUN waits for an event, takes it and
	 * returns -EAGAIN (-EINTR for a signal), running nothing.
	 */
	if (unlikely(vcpu->mp_state == KVM_MP_STATE_UNINITIALIZED)) {
		r = wants_to_run ? block(vcpu, true) : -EINTR;
		if (!r)
			r = -EAGAIN;
		goto save;
	}
	/* One branch for both words when neither asks for anything. */
	if (unlikely(__atomic_load_n(&run->kvm_valid_regs, __ATOMIC_RELAXED) |
		     __atomic_load_n(&run->kvm_dirty_regs, __ATOMIC_RELAXED))) {
		r = sync_regs_in(vcpu);
		if (r)
			goto save;
	}
	/* Without an in-kernel LAPIC, kvm_run.cr8 is the TPR going in. */
	if (!vcpu->apic) {
		if (run->cr8 & ~0xfULL) {
			r = -EINVAL;
			goto save;
		}
		vcpu->cpu->cr8 = run->cr8;
	}
	complete_pending(vcpu);
	/* An MMIO instruction retires now, not after what comes next. */
	finish = x86_mmio_pending(vcpu->cpu);
	if (!wants_to_run && !finish) {
		r = -EINTR;
		goto save;
	}
	vcpu->fault.lin_valid = false;
	accept_events(vcpu);
	if (vcpu->mp_state != KVM_MP_STATE_RUNNABLE) {
		r = block(vcpu, false);
		if (r)
			goto save;
	}
	/*
	 * A kick that came before the guest runs (a signal the run's own
	 * signal mask unblocked, say) stops it before any instruction, as a
	 * signal pending at KVM_RUN's entry does in KVM; a pending MMIO
	 * instruction completes first (below).
	 */
	if (!finish && (take_user_kick(vcpu) || signal_pending(vcpu))) {
		run->exit_reason = KVM_EXIT_INTR;
		VCPU_STAT_INC(vcpu, exits[KVM_EXIT_INTR]);
		r = -EINTR;
		goto save;
	}
	/* A KVM_X86_SET_MCE that found no way to report: triple fault. */
	if (!finish && vcpu->shutdown_pending) {
		vcpu->shutdown_pending = false;
		run->exit_reason = KVM_EXIT_SHUTDOWN;
		VCPU_STAT_INC(vcpu, exits[KVM_EXIT_SHUTDOWN]);
		goto save;
	}
	/* kvm_dirty_ring_check_request(): no guest code until a reset. */
	if (!finish && gmem_dirty_ring_soft_full(&vcpu->vmv.ring)) {
		run->exit_reason = KVM_EXIT_DIRTY_RING_FULL;
		VCPU_STAT_INC(vcpu, exits[KVM_EXIT_DIRTY_RING_FULL]);
		goto save;
	}
	gmem_vcpu_enter_guest(vcpu);
	/* KVM_REQ_CLOCK_UPDATE and the like, before any guest code. */
	gmem_kvmclock_vcpu_work(vcpu, false);
	/* KVM_REQ_STEAL_UPDATE, which every vcpu_load() makes. */
	gmem_steal_time_record(vcpu);
	for (;;) {
		int kick, reason;

		vcpu->fault.kind = GMEM_FAULT_NONE;
		if (vcpu->apic && !finish && gmem_lapic_init_sipi(vcpu->apic)) {
			accept_events(vcpu);
			if (vcpu->mp_state != KVM_MP_STATE_RUNNABLE) {
				gmem_vcpu_exit_guest(vcpu);
				r = block(vcpu, false);
				if (r)
					goto save;
				gmem_vcpu_enter_guest(vcpu);
			}
		}
		/* KVM_GUESTDBG_BLOCKIRQ: exceptions only, as KVM's. */
		if (unlikely(x86_irqs_blocked(vcpu->cpu))) {
			vcpu->cpu->irq_window = vcpu->cpu->nmi_window = false;
		} else if (!finish) {
			nmi_inject(vcpu);
			if (vcpu->apic) {
				apic_inject(vcpu);
			} else if (user_irq_window(vcpu)) {
				run->exit_reason = KVM_EXIT_IRQ_WINDOW_OPEN;
				goto out;
			}
		}
		/* kvm_vcpu_has_run(): KVM_SET_CPUID2 is fixed now. */
		if (!finish)
			vcpu->has_run = true;
		reason = run_cpu(vcpu, finish, &stop);
		switch (reason) {
		case X86_STOP_BUDGET:
		case X86_STOP_KICK:
			if (finish) {
				finish = false;
				if (!wants_to_run) {
					r = -EINTR;
					goto leave;
				}
				if (take_user_kick(vcpu)) {
					run->exit_reason = KVM_EXIT_INTR;
					r = -EINTR;
					goto out;
				}
				continue;
			}
			kick = __atomic_exchange_n(&vcpu->vmv.kick, 0,
						   __ATOMIC_ACQUIRE);
			gmem_vcpu_check_flush(vcpu);
			/*
			 * A kick, or immediate_exit set while the guest runs
			 * (what a VMM's signal handler does; KVM then exits
			 * for the signal): KVM_EXIT_INTR.
			 */
			if ((kick & GMEM_KICK_USER) ||
			    __atomic_load_n(&run->immediate_exit,
					    __ATOMIC_RELAXED) ||
			    signal_pending(vcpu)) {
				run->exit_reason = KVM_EXIT_INTR;
				r = -EINTR;
				goto out;
			}
			if (gmem_dirty_ring_soft_full(&vcpu->vmv.ring)) {
				run->exit_reason = KVM_EXIT_DIRTY_RING_FULL;
				goto out;
			}
			continue;
		case X86_STOP_HLT:
			hw_halt = __atomic_load_n(&vcpu->vm->hlt_in_guest,
						  __ATOMIC_RELAXED);
			if (hw_halt || __atomic_load_n(&vcpu->vm->irqchip,
						       __ATOMIC_RELAXED)) {
				/* An event it takes keeps it running. */
				vcpu->mp_state = KVM_MP_STATE_HALTED;
				vcpu->hw_halted = hw_halt;
				if (wakes(vcpu)) {
					unhalt(vcpu);
					continue;
				}
				gmem_vcpu_exit_guest(vcpu);
				r = block(vcpu, false);
				if (r)
					goto save;
				gmem_vcpu_enter_guest(vcpu);
				continue;
			}
			run->exit_reason = KVM_EXIT_HLT;
			goto out;
		case X86_STOP_IO:
			/*
			 * An OUT retires at the stop: signalled or coalesced,
			 * it goes on.
			 */
			if (stop.io.is_write &&
			    (gmem_ioeventfds_write(&vcpu->vm->ioeventfds, true,
						   stop.io.port, stop.io.size,
						   &stop.io.data) ||
			     gmem_coalesced_write(&vcpu->vm->coalesced,
						  stop.io.port, stop.io.size,
						  &stop.io.data, true)))
				continue;
			run->exit_reason = KVM_EXIT_IO;
			run->io.direction = stop.io.is_write ? KVM_EXIT_IO_OUT
							     : KVM_EXIT_IO_IN;
			run->io.size = stop.io.size;
			run->io.port = stop.io.port;
			run->io.count = stop.io.count;
			run->io.data_offset = PAGE_SIZE;
			/* An IN's data starts zeroed, as in KVM. */
			if (stop.io.is_write)
				memcpy((uint8_t *)run + PAGE_SIZE,
				       &stop.io.data, 4);
			else
				memset((uint8_t *)run + PAGE_SIZE, 0,
				       MAX(4u, (unsigned)stop.io.size *
						       stop.io.count));
			if (!stop.io.is_write)
				vcpu->pending = GMEM_PEND_IN;
			goto out;
		case X86_STOP_VMCALL:
			if (hypercall(vcpu))
				goto out;
			continue;
		case X86_STOP_PV:
			/* A kvmclock WRMSR: its structures, then on. */
			gmem_kvmclock_vcpu_work(vcpu, false);
			continue;
		case X86_STOP_MMIO:
			if (vcpu->apic && (apic_mmio(vcpu, &stop) ||
					   ioapic_mmio(vcpu, &stop))) {
				finish = true;
				continue;
			}
			/*
			 * A signalled or coalesced write completes the
			 * instruction now.
			 */
			if (stop.mmio.is_write &&
			    (gmem_ioeventfds_write(&vcpu->vm->ioeventfds, false,
						   stop.mmio.gpa, stop.mmio.len,
						   stop.mmio.data) ||
			     gmem_coalesced_write(&vcpu->vm->coalesced,
						  stop.mmio.gpa, stop.mmio.len,
						  stop.mmio.data, false))) {
				finish = true;
				continue;
			}
			mmio_exit(vcpu, stop.mmio.gpa, stop.mmio.data,
				  stop.mmio.len, stop.mmio.is_write);
			if (!stop.mmio.is_write)
				vcpu->pending = GMEM_PEND_MMIO;
			goto out;
		case X86_STOP_S2_EXIT:
			if (vcpu->fault.kind == GMEM_FAULT_RETRY) {
				gmem_vcpu_check_flush(vcpu);
				sched_yield();
				continue;
			}
			/* The guest's side, where the CPU model knows it. */
			if (vcpu->fault.kind == GMEM_FAULT_MEMORY &&
			    stop.s2_pfec) {
				vcpu->fault.lin_valid = true;
				vcpu->fault.lin = stop.s2_lin;
				vcpu->fault.pfec = stop.s2_pfec;
			}
			r = fault_exit(vcpu);
			goto out;
		case X86_STOP_SHUTDOWN:
			run->exit_reason = KVM_EXIT_SHUTDOWN;
			goto out;
		case X86_STOP_DEBUG:
			/* As VMX's handle_exception_nmi(): DR6/DR7 for #DB. */
			run->exit_reason = KVM_EXIT_DEBUG;
			run->debug.arch.exception = stop.debug.exception;
			run->debug.arch.pc = stop.debug.pc;
			if (stop.debug.exception == X86_DB) {
				run->debug.arch.dr6 = stop.debug.dr6;
				run->debug.arch.dr7 = stop.debug.dr7;
			}
			goto out;
		case X86_STOP_MSR:
			/* kvm_msr_user_space(): error and pad zeroed. */
			run->exit_reason = stop.msr.is_write
						   ? KVM_EXIT_X86_WRMSR
						   : KVM_EXIT_X86_RDMSR;
			memset(&run->msr, 0, sizeof(run->msr));
			run->msr.reason = stop.msr.reason;
			run->msr.index = stop.msr.index;
			run->msr.data = stop.msr.data;
			vcpu->pending = GMEM_PEND_MSR;
			goto out;
		case X86_STOP_INTERNAL:
		default:
			run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
			run->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
			if (stop.internal.insn_len) {
				/*
				 * KVM's emulation_failure: flags, the bytes
				 * (two words), then, as its debug info, RIP.
				 */
				run->emulation_failure.flags =
					KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES;
				run->emulation_failure.insn_size =
					stop.internal.insn_len;
				memset(run->emulation_failure.insn_bytes, 0x90,
				       15);
				memcpy(run->emulation_failure.insn_bytes,
				       stop.internal.insn,
				       stop.internal.insn_len);
				run->internal.ndata = 4;
				run->internal.data[3] = stop.internal.rip;
				goto out;
			}
			run->internal.ndata = 1;
			run->internal.data[0] = stop.internal.rip;
			goto out;
		}
	}
out:
	if (run->exit_reason < ARRAY_SIZE(vcpu->stats.exits))
		VCPU_STAT_INC(vcpu, exits[run->exit_reason]);
leave:
	gmem_vcpu_exit_guest(vcpu);
save:
	if (unlikely(__atomic_load_n(&run->kvm_valid_regs, __ATOMIC_RELAXED)))
		sync_regs_out(vcpu);
	post_run_save(vcpu);
	return r;
}

const char *gmem_exit_name(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_UNKNOWN:
		return "UNKNOWN";
	case KVM_EXIT_EXCEPTION:
		return "EXCEPTION";
	case KVM_EXIT_IO:
		return "IO";
	case KVM_EXIT_HYPERCALL:
		return "HYPERCALL";
	case KVM_EXIT_DEBUG:
		return "DEBUG";
	case KVM_EXIT_HLT:
		return "HLT";
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		return "IRQ_WINDOW_OPEN";
	case KVM_EXIT_MMIO:
		return "MMIO";
	case KVM_EXIT_SHUTDOWN:
		return "SHUTDOWN";
	case KVM_EXIT_FAIL_ENTRY:
		return "FAIL_ENTRY";
	case KVM_EXIT_INTR:
		return "INTR";
	case KVM_EXIT_INTERNAL_ERROR:
		return "INTERNAL_ERROR";
	case KVM_EXIT_DIRTY_RING_FULL:
		return "DIRTY_RING_FULL";
	case KVM_EXIT_MEMORY_FAULT:
		return "MEMORY_FAULT";
	}
	return NULL;
}

void gmem_vcpu_kick(struct gmem_vcpu *vcpu)
{
	__atomic_fetch_or(&vcpu->vmv.kick, GMEM_KICK_USER, __ATOMIC_SEQ_CST);
	/* A halted vCPU sleeps on the word (a syscall: signal-safe too). */
	syscall(SYS_futex, &vcpu->vmv.kick, FUTEX_WAKE_PRIVATE, 1, NULL, NULL,
		0);
}

int gmem_vcpu_get_fault_linear(struct gmem_vcpu *vcpu, uint64_t *lin,
			       uint32_t *pfec)
{
	if (!vcpu->fault.lin_valid)
		return -ENOENT;
	*lin = vcpu->fault.lin;
	*pfec = vcpu->fault.pfec;
	return 0;
}

int gmem_vcpu_inject_exception(struct gmem_vcpu *vcpu, unsigned int vector,
			       bool has_error, uint32_t error, uint64_t cr2)
{
	/* Exceptions only, as KVM_SET_VCPU_EVENTS' exception fields. */
	if (vector >= 32 || vector == 2 || vector == 15 ||
	    (vector >= 22 && vector <= 27))
		return -EINVAL;
	if (vector == X86_PF_VEC)
		vcpu->cpu->cr2 = cr2;
	x86_inject(vcpu->cpu, (uint8_t)vector, has_error, error);
	return 0;
}

int gmem_vcpu_get_regs(struct gmem_vcpu *vcpu, struct kvm_regs *regs)
{
	x86_get_regs(vcpu->cpu, regs);
	return 0;
}

int gmem_vcpu_set_regs(struct gmem_vcpu *vcpu, const struct kvm_regs *regs)
{
	x86_set_regs(vcpu->cpu, regs);
	return 0;
}

int gmem_vcpu_get_sregs(struct gmem_vcpu *vcpu, struct kvm_sregs *sregs)
{
	x86_get_sregs(vcpu->cpu, sregs);
	return 0;
}

/*
 * The state KVM gives a new vCPU (kvm_vcpu_reset(), INIT): real mode at
 * F000:FFF0 with CR0 = CD|NW|ET, the local APIC enabled at its default
 * base, BSP for the VM's boot vCPU (KVM_SET_BOOT_CPU_ID), and RDX holding
 * CPUID.1:EAX.  A VMM sets long mode (the only one the model runs) with
 * KVM_SET_SREGS.
 */
/*
 * kvm_vcpu_reset(): the RESET state of a new vCPU, or (@init) the INIT
 * its APIC latched, which keeps CR0.CD/NW, IA32_APIC_BASE, the xAPIC ID
 * and what INIT leaves alone (MSRs, x87/SSE state, XCR0) and drops every
 * queued event, NMI blocking and the kvmclock.
 */
static void reset_state(struct gmem_vcpu *vcpu, bool init)
{
	struct x86_cpu *c = vcpu->cpu;
	struct kvm_segment data = {
		.limit = 0xffff, .type = 3, .present = 1, .s = 1};
	struct kvm_sregs s = {0};
	struct kvm_regs regs = {0};
	bool bsp = vcpu->vmv.id == vcpu->vm->bsp_vcpu_id;
	bool lint0 = bsp && !(__atomic_load_n(&vcpu->vm->disabled_quirks,
					      __ATOMIC_RELAXED) &
			      KVM_X86_QUIRK_LINT0_REENABLED);
	uint32_t sig[4];

	s.cs = data;
	s.cs.selector = 0xf000;
	s.cs.base = 0xffff0000;
	s.cs.type = 0xb;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.tr = (struct kvm_segment){.limit = 0xffff, .type = 0xb, .present = 1};
	s.ldt = (struct kvm_segment){.limit = 0xffff, .type = 2, .present = 1};
	s.gdt.limit = s.idt.limit = 0xffff;
	s.cr0 = X86_CR0_ET | (init ? c->cr0 & (X86_CR0_CD | X86_CR0_NW)
				   : X86_CR0_CD | X86_CR0_NW);
	s.apic_base = init ? c->apic_base
			   : 0xfee00000 | (1u << 11) | (bsp ? 1u << 8 : 0);
	x86_set_sregs(c, &s);
	if (vcpu->apic && init)
		gmem_lapic_init(vcpu->apic, lint0);
	else if (vcpu->apic)
		gmem_lapic_reset(vcpu->apic, s.apic_base, lint0);
	x86_cpuid(c, 1, 0, sig);
	regs.rip = 0xfff0;
	regs.rflags = 2;
	regs.rdx = sig[0];
	x86_set_regs(c, &regs);
	if (!init)
		return;
	c->pend.valid = false;
	c->int_shadow = c->nmi_masked = false;
	c->pending &= ~(uint32_t)(X86_PEND_STI | X86_PEND_SHADOW);
	c->cr2 = 0;
	c->kvm_system_time = 0;
	c->kvm_steal_time = 0;
	memset(c->db, 0, sizeof(c->db));
	c->dr6 = 0xffff0ff0;
	c->dr7 = 0x400;
	c->dbg_trap = 0;
	x86_dbg_update(c);
	vcpu->nmi_pending = 0;
	__atomic_store_n(&vcpu->nmi_queued, 0, __ATOMIC_RELAXED);
	vcpu->user_irq = -1;
}

/* A CPUID bit of a table: leaf @fn, subleaf @idx, register (0 EAX..3 EDX). */
static bool table_has(const struct kvm_cpuid_entry2 *t, unsigned int n,
		      uint32_t fn, uint32_t idx, int reg, int bit)
{
	for (unsigned int i = 0; i < n; i++) {
		const uint32_t r[4] = {t[i].eax, t[i].ebx, t[i].ecx, t[i].edx};

		if (t[i].function == fn && (t[i].index == idx || !idx))
			return r[reg] >> bit & 1;
	}
	return false;
}

/*
 * KVM_GET_FPU: the FXSAVE image's fields.  MXCSR is not among them, as in
 * KVM (its kvm_fpu.mxcsr stays 0, and KVM_SET_FPU ignores it).
 */
int gmem_vcpu_get_fpu(struct gmem_vcpu *vcpu, struct kvm_fpu *fpu)
{
	uint8_t a[512];

	x86_get_fxsave(vcpu->cpu, a);
	memset(fpu, 0, sizeof(*fpu));
	for (unsigned int k = 0; k < 8; k++)
		memcpy(fpu->fpr[k], a + 32 + 16 * k, 16);
	memcpy(&fpu->fcw, a, 2);
	memcpy(&fpu->fsw, a + 2, 2);
	fpu->ftwx = a[4];
	memcpy(&fpu->last_opcode, a + 6, 2);
	memcpy(&fpu->last_ip, a + 8, 8);
	memcpy(&fpu->last_dp, a + 16, 8);
	memcpy(fpu->xmm, a + 160, sizeof(fpu->xmm));
	return 0;
}

int gmem_vcpu_set_fpu(struct gmem_vcpu *vcpu, const struct kvm_fpu *fpu)
{
	uint8_t a[512];

	/* The vCPU's own MXCSR stays, so the image cannot be refused. */
	x86_get_fxsave(vcpu->cpu, a);
	for (unsigned int k = 0; k < 8; k++)
		memcpy(a + 32 + 16 * k, fpu->fpr[k], 16);
	memcpy(a, &fpu->fcw, 2);
	memcpy(a + 2, &fpu->fsw, 2);
	a[4] = fpu->ftwx;
	a[5] = 0;
	memcpy(a + 6, &fpu->last_opcode, 2);
	memcpy(a + 8, &fpu->last_ip, 8);
	memcpy(a + 16, &fpu->last_dp, 8);
	memcpy(a + 160, fpu->xmm, sizeof(fpu->xmm));
	return x86_set_fxsave(vcpu->cpu, a);
}

/*
 * KVM_GET_XSAVE(2): the CPU's XSAVE image in KVM's 4096 bytes (the size
 * KVM_CAP_XSAVE2 answers), with what the kernel's copy to the uABI puts
 * in the software-reserved bytes: the supported XCR0 at 464.
 */
int gmem_vcpu_get_xsave(struct gmem_vcpu *vcpu, struct kvm_xsave *xsave)
{
	uint8_t *a = (uint8_t *)xsave->region;
	uint64_t features = X86_XCR0_SUPPORTED;

	memset(xsave, 0, sizeof(*xsave));
	x86_get_xsave(vcpu->cpu, a);
	memcpy(a + 464, &features, sizeof(features));
	return 0;
}

/*
 * KVM_SET_XSAVE checks the image against what KVM supports, not against
 * the guest's CPUID or XCR0 (a VMM restores state before either).
 */
int gmem_vcpu_set_xsave(struct gmem_vcpu *vcpu, const struct kvm_xsave *xsave)
{
	return x86_set_xsave(vcpu->cpu, (const uint8_t *)xsave->region);
}

int gmem_vcpu_get_xcrs(struct gmem_vcpu *vcpu, struct kvm_xcrs *xcrs)
{
	memset(xcrs, 0, sizeof(*xcrs));
	xcrs->nr_xcrs = 1;
	xcrs->xcrs[0].xcr = 0; /* XCR0, the only one */
	xcrs->xcrs[0].value = vcpu->cpu->xcr0;
	return 0;
}

/*
 * KVM_SET_XCRS as kvm_vcpu_ioctl_x86_set_xcrs(): the first XCR0 entry is
 * taken (other indices are skipped), under the rules XSETBV has
 * (x86_set_xcr(), KVM's __kvm_set_xcr()).
 */
int gmem_vcpu_set_xcrs(struct gmem_vcpu *vcpu, const struct kvm_xcrs *xcrs)
{
	if (xcrs->nr_xcrs > KVM_MAX_XCRS || xcrs->flags)
		return -EINVAL;
	for (uint32_t i = 0; i < xcrs->nr_xcrs; i++)
		if (xcrs->xcrs[i].xcr == 0)
			return x86_set_xcr(vcpu->cpu, 0, xcrs->xcrs[i].value);
	return 0;
}

/* kvm_is_valid_sregs() and kvm_set_apic_base()'s checks, in KVM's order. */
static bool valid_sregs(const struct gmem_vcpu *vcpu, const struct kvm_sregs *s)
{
	const struct x86_cpu *cpu = vcpu->cpu;
	unsigned int nsup, maxphy = guest_maxphyaddr(vcpu);
	const struct kvm_cpuid_entry2 *sup = x86_supported_cpuid(&nsup);
	if ((s->efer & X86_EFER_LME) && (s->cr0 & X86_CR0_PG)) {
		/* 64-bit paging: PAE and LMA set, CR3 a legal GPA. */
		if (!(s->cr4 & X86_CR4_PAE) || !(s->efer & X86_EFER_LMA))
			return false;
		if (s->cr3 >> maxphy)
			return false;
	} else if ((s->efer & X86_EFER_LMA) || s->cs.l) {
		return false;
	}
	/* What the model supports at all, then what the guest's CPUID allows.
	 */
	if (s->cr4 & ~x86_cr4_allowed(sup, nsup))
		return false;
	if (vcpu->cpuid_set &&
	    (s->cr4 & ~x86_cr4_allowed(cpu->cpuid, cpu->ncpuid)))
		return false;
	if ((s->cr0 >> 32) ||
	    ((s->cr0 & X86_CR0_NW) && !(s->cr0 & X86_CR0_CD)) ||
	    ((s->cr0 & X86_CR0_PG) && !(s->cr0 & X86_CR0_PE)))
		return false;
	return apic_base_valid(vcpu, s->apic_base, true);
}

int gmem_vcpu_set_sregs(struct gmem_vcpu *vcpu, const struct kvm_sregs *sregs)
{
	uint64_t base = vcpu->cpu->apic_base;
	int r;

	if (!valid_sregs(vcpu, sregs))
		return -EINVAL;
	r = x86_set_sregs(vcpu->cpu, sregs);
	if (!r && vcpu->apic && sregs->apic_base != base)
		gmem_lapic_set_base(vcpu->apic, sregs->apic_base);
	return r;
}

/*
 * kvm_cpuid_check_equal(): every field but the padding, of the new table
 * after the runtime update KVM gives it first (OSXSAVE from CR4, ...).
 */
static bool cpuid_equal(const struct gmem_vcpu *vcpu,
			const struct kvm_cpuid2 *cpuid)
{
	const struct x86_cpu *cpu = vcpu->cpu;
	unsigned int n = vcpu->cpuid_set ? cpu->ncpuid : 0;
	struct kvm_cpuid_entry2 t[X86_MAX_CPUID];

	if (cpuid->nent != n)
		return false;
	memcpy(t, cpuid->entries, n * sizeof(t[0]));
	x86_cpuid_runtime(cpu, t, n);
	for (unsigned int i = 0; i < n; i++) {
		const struct kvm_cpuid_entry2 *a = &t[i];
		const struct kvm_cpuid_entry2 *b = &cpu->cpuid[i];

		if (a->function != b->function || a->index != b->index ||
		    a->flags != b->flags || a->eax != b->eax ||
		    a->ebx != b->ebx || a->ecx != b->ecx || a->edx != b->edx)
			return false;
	}
	return true;
}

int gmem_vcpu_set_cpuid(struct gmem_vcpu *vcpu, const struct kvm_cpuid2 *cpuid)
{
	const struct kvm_cpuid_entry2 *e;
	int r;

	if (cpuid->nent > X86_MAX_CPUID)
		return -E2BIG;
	/* The runtime update below follows KVM_X86_DISABLE_EXITS_HLT. */
	vcpu->cpu->hlt_in_guest =
		__atomic_load_n(&vcpu->vm->hlt_in_guest, __ATOMIC_RELAXED);
	/*
	 * After KVM_RUN the CPU model is fixed; KVM still takes the same
	 * table again, for VMMs that reuse vCPUs across CPU hotplug.
	 */
	if (vcpu->has_run)
		return cpuid_equal(vcpu, cpuid) ? 0 : -EINVAL;
	/* kvm_check_cpuid(): linear addresses are 48 bits (or 57, or 0). */
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		unsigned int va;

		e = &cpuid->entries[i];
		va = (e->eax >> 8) & 0xff;
		if (e->function == 0x80000008 && va && va != 48 && va != 57)
			return -EINVAL;
	}
	r = x86_set_cpuid(vcpu->cpu, cpuid->entries, cpuid->nent);
	if (!r)
		vcpu->cpuid_set = true;
	/* kvm_vcpu_after_set_cpuid(): the timer modes CPUID allows. */
	if (!r && vcpu->apic)
		gmem_lapic_set_tsc_deadline_cap(vcpu->apic,
						guest_has_ecx1(vcpu, 24));
	return r;
}

int gmem_vcpu_get_cpuid(struct gmem_vcpu *vcpu, struct kvm_cpuid2 *cpuid)
{
	unsigned int n = vcpu->cpuid_set ? vcpu->cpu->ncpuid : 0;

	/* KVM leaves nent alone when it is too small. */
	if (cpuid->nent < n)
		return -E2BIG;
	memcpy(cpuid->entries, vcpu->cpu->cpuid, n * sizeof(cpuid->entries[0]));
	cpuid->nent = n;
	return 0;
}

/*
 * kvm_arch_vcpu_ioctl_get/set_mpstate(): the APIC's latched INIT/SIPI
 * are taken first.  Without the in-kernel APIC only RUNNABLE can be set;
 * SIPI_RECEIVED waits for SIPI with one latched (the vector it has).
 */
int gmem_vcpu_get_mp_state(struct gmem_vcpu *vcpu, struct kvm_mp_state *mp)
{
	accept_events(vcpu);
	mp->mp_state = vcpu->mp_state;
	/* A kicked HLT has as good as ended (KVM's pv_unhalted). */
	if ((vcpu->mp_state == KVM_MP_STATE_HALTED && vcpu->hw_halted) ||
	    ((vcpu->mp_state == KVM_MP_STATE_HALTED ||
	      vcpu->mp_state == KVM_MP_STATE_AP_RESET_HOLD) &&
	     vcpu->apic && gmem_lapic_unhalted(vcpu->apic)))
		mp->mp_state = KVM_MP_STATE_RUNNABLE;
	return 0;
}

int gmem_vcpu_set_mp_state(struct gmem_vcpu *vcpu,
			   const struct kvm_mp_state *mp)
{
	switch (mp->mp_state) {
	case KVM_MP_STATE_UNINITIALIZED:
	case KVM_MP_STATE_HALTED:
	case KVM_MP_STATE_AP_RESET_HOLD:
	case KVM_MP_STATE_INIT_RECEIVED:
	case KVM_MP_STATE_SIPI_RECEIVED:
		if (!vcpu->apic)
			return -EINVAL;
		break;
	case KVM_MP_STATE_RUNNABLE:
		break;
	default:
		return -EINVAL;
	}
	vcpu->hw_halted = false;
	if (mp->mp_state == KVM_MP_STATE_SIPI_RECEIVED) {
		vcpu->mp_state = KVM_MP_STATE_INIT_RECEIVED;
		gmem_lapic_latch(vcpu->apic, GMEM_LAPIC_SIPI, true);
	} else {
		vcpu->mp_state = mp->mp_state;
	}
	return 0;
}

/*
 * kvm_vcpu_ioctl_enable_cap() on x86: of its caps only
 * KVM_CAP_ENFORCE_PV_FEATURE_CPUID (the Hyper-V ones are not modelled).
 */
int gmem_vcpu_enable_cap(struct gmem_vcpu *vcpu,
			 const struct kvm_enable_cap *cap)
{
	if (cap->flags)
		return -EINVAL;
	switch (cap->cap) {
	case KVM_CAP_ENFORCE_PV_FEATURE_CPUID:
		vcpu->cpu->pv_enforce = cap->args[0] != 0;
		return 0;
	default:
		return -EINVAL;
	}
}

int gmem_vcpu_set_tsc_khz(struct gmem_vcpu *vcpu, uint32_t khz)
{
	if (khz >= GMEM_MAX_GUEST_TSC_KHZ)
		return -EINVAL;
	x86_set_tsc_khz(vcpu->cpu, khz ? khz : GMEM_TSC_KHZ);
	/* kvmclock's scale follows the rate. */
	__atomic_store_n(&vcpu->vmv.clock_req, 1, __ATOMIC_RELEASE);
	return 0;
}

int gmem_vcpu_get_tsc_khz(struct gmem_vcpu *vcpu)
{
	return (int)vcpu->cpu->tsc_khz;
}

int gmem_get_supported_cpuid(struct kvm_cpuid2 *cpuid)
{
	unsigned int n;
	const struct kvm_cpuid_entry2 *e = x86_supported_cpuid(&n);

	if (cpuid->nent < n)
		return -E2BIG;
	memcpy(cpuid->entries, e, n * sizeof(*e));
	cpuid->nent = n;
	/* As KVM with sched_info off: no run delay, no steal time. */
	if (!gmem_steal_time_supported())
		for (unsigned int k = 0; k < n; k++)
			if (cpuid->entries[k].function == 0x40000001)
				cpuid->entries[k].eax &=
					~(1u << X86_KVM_FEATURE_STEAL_TIME);
	return 0;
}

/*
 * KVM_GET/SET_MSRS: process entries until the first one that fails.  As
 * in KVM's msr_io(), a count of MAX_IO_MSRS or more is -E2BIG: the count
 * comes from the VMM and would otherwise walk past its buffer.
 */
#define MAX_IO_MSRS 256

/*
 * kvm_is_advertised_msr(): in KVM_GET_MSR_INDEX_LIST.  The VMM may read
 * such an MSR, and write it 0, where the guest's CPUID leaves it out.
 */
static bool msr_advertised(uint32_t idx)
{
	unsigned int n;
	const uint32_t *list = x86_msr_list(&n);

	for (unsigned int k = 0; k < n; k++)
		if (list[k] == idx)
			return true;
	return false;
}

int gmem_vcpu_get_msrs(struct gmem_vcpu *vcpu, struct kvm_msrs *msrs)
{
	uint32_t i;

	if (msrs->nmsrs >= MAX_IO_MSRS)
		return -E2BIG;
	for (i = 0; i < msrs->nmsrs; i++) {
		int r = device_msr(vcpu, msrs->entries[i].index,
				   &msrs->entries[i].data, false, true);

		if (r == 0)
			continue;
		if (r < 0)
			r = x86_get_msr(vcpu->cpu, msrs->entries[i].index,
					&msrs->entries[i].data);
		if (r) {
			/* KVM zeroes the data of the read that failed. */
			msrs->entries[i].data = 0;
			if (r != -EOPNOTSUPP ||
			    !msr_advertised(msrs->entries[i].index))
				break;
		}
	}
	return (int)i;
}

int gmem_vcpu_set_msrs(struct gmem_vcpu *vcpu, const struct kvm_msrs *msrs)
{
	uint32_t i;

	if (msrs->nmsrs >= MAX_IO_MSRS)
		return -E2BIG;
	for (i = 0; i < msrs->nmsrs; i++) {
		uint64_t data = msrs->entries[i].data;
		int r = device_msr(vcpu, msrs->entries[i].index, &data, true,
				   true);

		if (r > 0)
			break;
		if (r == 0)
			continue;
		r = x86_set_msr(vcpu->cpu, msrs->entries[i].index,
				msrs->entries[i].data);
		if (r && (r != -EOPNOTSUPP || msrs->entries[i].data ||
			  !msr_advertised(msrs->entries[i].index)))
			break;
		/* The wall clock now; the vCPU's kvmclock at the next run. */
		gmem_kvmclock_vcpu_work(vcpu, true);
		/* The VMM's TSC is the VM's: vCPUs created later match it. */
		if (msrs->entries[i].index == X86_MSR_TSC) {
			__atomic_store_n(&vcpu->vmv.clock_req, 1,
					 __ATOMIC_RELEASE);
			pthread_mutex_lock(&vcpu->vm->vcpus_lock);
			x86_tsc_get_ref(vcpu->cpu, &vcpu->vm->tsc_ref_base,
					&vcpu->vm->tsc_ref_ns);
			pthread_mutex_unlock(&vcpu->vm->vcpus_lock);
		}
	}
	return (int)i;
}

/*
 * KVM_GET_MSR_INDEX_LIST and KVM_GET_MSR_FEATURE_INDEX_LIST, as KVM: the
 * count is written back either way, and the indices only when they fit.
 */
static int msr_list_copy(struct kvm_msr_list *list, const uint32_t *idx,
			 unsigned int n)
{
	uint32_t room = list->nmsrs;

	list->nmsrs = n;
	if (room < n)
		return -E2BIG;
	memcpy(list->indices, idx, n * sizeof(*idx));
	return 0;
}

int gmem_get_msr_index_list(struct kvm_msr_list *list)
{
	unsigned int n;
	const uint32_t *idx = x86_msr_list(&n);

	return msr_list_copy(list, idx, n);
}

int gmem_get_msr_feature_index_list(struct kvm_msr_list *list)
{
	unsigned int n;
	const uint32_t *idx = x86_feature_msr_list(&n);

	return msr_list_copy(list, idx, n);
}

/*
 * KVM_GET_MSRS on /dev/kvm: feature MSRs, up to the first that fails.
 * KVM reads an MSR of the save/restore list that is no feature MSR as 0
 * (kvm_do_msr_access()'s rule for advertised MSRs), so this does too.
 */
int gmem_get_feature_msrs(struct kvm_msrs *msrs)
{
	unsigned int n;
	const uint32_t *list = x86_msr_list(&n);
	uint32_t i;

	if (msrs->nmsrs >= MAX_IO_MSRS)
		return -E2BIG;
	for (i = 0; i < msrs->nmsrs; i++) {
		struct kvm_msr_entry *e = &msrs->entries[i];
		unsigned int k;

		if (!x86_get_feature_msr(e->index, &e->data))
			continue;
		e->data = 0; /* failed reads read 0, as KVM's */
		for (k = 0; k < n && list[k] != e->index; k++)
			;
		if (k == n)
			break;
	}
	return (int)i;
}

/*
 * KVM_GET/SET_VCPU_EVENTS over the model's one event slot, cpu->pend: a
 * hardware exception there is the injected exception (KVM without
 * KVM_CAP_EXCEPTION_PAYLOAD reports pending ones as injected too), any
 * other hardware vector the injected interrupt.  Software events (INT n,
 * INT3, INTO) are not reported, as KVM does not: RIP is still at the
 * instruction, which runs again.  An NMI in the slot is nmi.injected;
 * NMIs pending are counted after process_nmi(), as KVM reports them.  The
 * model has no MOV SS shadow and no SMM; the APIC latches INIT.
 */
#define EVENTS_FLAGS                                                         \
	(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR | \
	 KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM |              \
	 KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT)

int gmem_vcpu_get_vcpu_events(struct gmem_vcpu *vcpu,
			      struct kvm_vcpu_events *ev)
{
	const struct x86_cpu *c = vcpu->cpu;

	memset(ev, 0, sizeof(*ev));
	process_nmi(vcpu);
	if (x86_nmi_injected(c)) {
		ev->nmi.injected = 1;
	} else if (x86_event_slot_taken(c)) {
		/* Pending counts as injected too without EXCEPTION_PAYLOAD. */
		ev->exception.injected = !c->pend.soft;
		ev->exception.pending = c->pend.queued && !c->pend.soft;
		ev->exception.nr = c->pend.vector;
		ev->exception.has_error_code = c->pend.has_err;
		ev->exception.error_code = c->pend.err;
	} else if (c->pend.valid) {
		ev->interrupt.injected = !c->pend.soft;
		ev->interrupt.nr = c->pend.vector;
	}
	/* KVM_X86_SHADOW_INT_STI: the model's only interrupt shadow. */
	ev->interrupt.shadow = c->int_shadow ? KVM_X86_SHADOW_INT_STI : 0;
	ev->nmi.pending = (uint8_t)vcpu->nmi_pending;
	ev->nmi.masked = c->nmi_masked;
	ev->smi.latched_init = vcpu->apic && (gmem_lapic_init_sipi(vcpu->apic) &
					      GMEM_LAPIC_INIT);
	ev->flags = KVM_VCPUEVENT_VALID_NMI_PENDING |
		    KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
	return 0;
}

int gmem_vcpu_set_vcpu_events(struct gmem_vcpu *vcpu,
			      const struct kvm_vcpu_events *ev)
{
	struct x86_cpu *c = vcpu->cpu;
	bool smm = ev->flags & KVM_VCPUEVENT_VALID_SMM;

	/* KVM's checks, in its order; none of its enabling caps is on. */
	if (ev->flags & ~EVENTS_FLAGS)
		return -EINVAL;
	if (ev->flags &
	    (KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT))
		return -EINVAL;
	/* Without VALID_PAYLOAD KVM ignores exception.pending. */
	if (ev->exception.injected &&
	    (ev->exception.nr > 31 || ev->exception.nr == 2))
		return -EINVAL;
	/* No SMM: answered as by a kernel built without it (X86_SMM 0). */
	if (smm && (ev->smi.smm || ev->smi.pending || ev->smi.smm_inside_nmi))
		return -EINVAL;
	/* STI's shadow is modelled, MOV SS's is not. */
	if ((ev->flags & KVM_VCPUEVENT_VALID_SHADOW) &&
	    (ev->interrupt.shadow & ~KVM_X86_SHADOW_INT_STI))
		return -EINVAL;
	/* The model has one event slot, which KVM's three would share. */
	if ((ev->exception.injected + ev->interrupt.injected +
	     ev->nmi.injected) > 1)
		return -EINVAL;

	if (ev->flags & KVM_VCPUEVENT_VALID_SHADOW) {
		c->int_shadow = ev->interrupt.shadow != 0;
		/* It ends after the next instruction, as STI's does. */
		c->pending &= ~(uint32_t)(X86_PEND_STI | X86_PEND_SHADOW);
		if (c->int_shadow)
			c->pending |= X86_PEND_SHADOW;
	}
	c->pend.valid = ev->exception.injected || ev->interrupt.injected;
	c->pend.soft = false;
	c->pend.queued = false;
	c->pend.soft_len = 0;
	c->pend.cr2 = c->cr2; /* an injected #PF's CR2 is already set */
	if (ev->exception.injected) {
		c->pend.vector = ev->exception.nr;
		c->pend.has_err = ev->exception.has_error_code;
		c->pend.err = ev->exception.error_code;
	} else if (ev->interrupt.injected) {
		/* A soft one without its length: RIP is pushed as is. */
		c->pend.vector = ev->interrupt.nr;
		c->pend.soft = ev->interrupt.soft;
		c->pend.has_err = false;
		c->pend.err = 0;
	} else if (ev->nmi.injected) {
		c->pend.valid = true;
		c->pend.vector = 2;
		c->pend.has_err = false;
		c->pend.err = 0;
	}
	if (ev->flags & KVM_VCPUEVENT_VALID_NMI_PENDING) {
		vcpu->nmi_pending = 0;
		__atomic_store_n(&vcpu->nmi_queued, ev->nmi.pending,
				 __ATOMIC_RELEASE);
	}
	c->nmi_masked = ev->nmi.masked;
	if ((ev->flags & KVM_VCPUEVENT_VALID_SIPI_VECTOR) && vcpu->apic)
		gmem_lapic_set_sipi_vector(vcpu->apic, ev->sipi_vector);
	if (smm && vcpu->apic)
		gmem_lapic_latch(vcpu->apic, GMEM_LAPIC_INIT,
				 ev->smi.latched_init);
	return 0;
}

/*
 * KVM_GET/SET_DEBUGREGS, KVM's rules: flags 0, DR6 and DR7 within 32
 * bits, taken as they are (KVM_SET_DEBUGREGS adds no fixed bits).
 */
int gmem_vcpu_get_debugregs(struct gmem_vcpu *vcpu, struct kvm_debugregs *dr)
{
	const struct x86_cpu *c = vcpu->cpu;

	memset(dr, 0, sizeof(*dr));
	memcpy(dr->db, c->db, sizeof(dr->db));
	dr->dr6 = c->dr6;
	dr->dr7 = c->dr7;
	return 0;
}

int gmem_vcpu_set_debugregs(struct gmem_vcpu *vcpu,
			    const struct kvm_debugregs *dr)
{
	struct x86_cpu *c = vcpu->cpu;

	if (dr->flags || dr->dr6 >> 32 || dr->dr7 >> 32)
		return -EINVAL;
	memcpy(c->db, dr->db, sizeof(c->db));
	c->dr6 = dr->dr6;
	c->dr7 = dr->dr7;
	x86_dbg_update(c);
	return 0;
}

int gmem_vcpu_set_guest_debug(struct gmem_vcpu *vcpu,
			      const struct kvm_guest_debug *dbg)
{
	return x86_set_guest_debug(vcpu->cpu, dbg->control, dbg->arch.debugreg);
}

int gmem_vcpu_get_stats(struct gmem_vcpu *vcpu, struct gmem_vcpu_stats *st)
{
	uint64_t *dst = (uint64_t *)st;
	const uint64_t *src = (const uint64_t *)&vcpu->stats;

	for (size_t i = 0; i < sizeof(*st) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	return 0;
}

int gmem_vm_get_stats(struct gmem_vm *vm, struct gmem_vm_stats *st)
{
	uint64_t *dst = (uint64_t *)st;
	const uint64_t *src = (const uint64_t *)&vm->mmu.stats;

	for (size_t i = 0; i < sizeof(*st) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	return 0;
}
