// SPDX-License-Identifier: MIT
/*
 * vCPUs: creation, the kvm_run page, the software TLB over stage 2 and the
 * guest-physical access path (see vcpu.h for the shootdown handshake).
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mmu.h"
#include "util.h"
#include "vcpu.h"
#include "vm.h"

#define KVM_MAX_VCPUS 1024
#define RUN_SIZE GMEM_VCPU_MMAP_SIZE

int gmem_vcpu_create(struct gmem_vm *vm, unsigned long id,
		     struct gmem_vcpu **vcpup)
{
	struct gmem_vcpu *vcpu;
	int r = -EINVAL;

	if (id >= KVM_MAX_VCPUS)
		return -EINVAL;
	vcpu = gmem_zalloc(sizeof(*vcpu));
	if (!vcpu)
		return -ENOMEM;
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->run_fd = -1;

	pthread_mutex_lock(&vm->vcpus_lock);
	for (size_t i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i]->id == id) {
			r = -EEXIST;
			goto err_unlock;
		}
	if (vm->nr_vcpus == vm->cap_vcpus) {
		size_t cap = vm->cap_vcpus ? 2 * vm->cap_vcpus : 8;
		struct gmem_vcpu **a = gmem_zalloc_array(cap, sizeof(*a));

		if (!a) {
			r = -ENOMEM;
			goto err_unlock;
		}
		if (vm->nr_vcpus)
			memcpy(a, vm->vcpus, vm->nr_vcpus * sizeof(*a));
		gmem_free(vm->vcpus);
		vm->vcpus = a;
		vm->cap_vcpus = cap;
	}

	/* The page is a memfd so that gmem_mmap() can map it again. */
	vcpu->run_fd = gmem_alloc_should_fail() ?
			       -1 :
			       memfd_create("gmem-kvm-run", MFD_CLOEXEC);
	if (vcpu->run_fd < 0 || ftruncate(vcpu->run_fd, RUN_SIZE)) {
		r = -ENOMEM;
		goto err_unlock;
	}
	vcpu->run = mmap(NULL, RUN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
			 vcpu->run_fd, 0);
	if (vcpu->run == MAP_FAILED) {
		vcpu->run = NULL;
		r = -ENOMEM;
		goto err_unlock;
	}
	/* Start current: earlier shootdowns are no concern of ours. */
	vcpu->seen_gen = __atomic_load_n(&vm->mmu.flush_gen, __ATOMIC_ACQUIRE);
	vm->vcpus[vm->nr_vcpus++] = vcpu;
	pthread_mutex_unlock(&vm->vcpus_lock);
	gmem_vm_get(vm);
	*vcpup = vcpu;
	return 0;

err_unlock:
	pthread_mutex_unlock(&vm->vcpus_lock);
	if (vcpu->run_fd >= 0)
		close(vcpu->run_fd);
	gmem_free(vcpu);
	return r;
}

void gmem_vcpu_destroy(struct gmem_vcpu *vcpu)
{
	struct gmem_vm *vm;

	if (!vcpu)
		return;
	vm = vcpu->vm;
	pthread_mutex_lock(&vm->vcpus_lock);
	for (size_t i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i] == vcpu) {
			vm->vcpus[i] = vm->vcpus[--vm->nr_vcpus];
			break;
		}
	pthread_mutex_unlock(&vm->vcpus_lock);
	munmap(vcpu->run, RUN_SIZE);
	close(vcpu->run_fd);
	gmem_free(vcpu);
	gmem_vm_put(vm);
}

struct kvm_run *gmem_vcpu_kvm_run(struct gmem_vcpu *vcpu)
{
	return vcpu->run;
}

void gmem_vcpu_wait_flush(struct gmem_vm *vm, uint64_t gen)
{
	pthread_mutex_lock(&vm->vcpus_lock);
	for (size_t i = 0; i < vm->nr_vcpus; i++) {
		struct gmem_vcpu *v = vm->vcpus[i];

		while (__atomic_load_n(&v->mode, __ATOMIC_SEQ_CST) ==
			       GMEM_VCPU_IN_GUEST &&
		       __atomic_load_n(&v->seen_gen, __ATOMIC_ACQUIRE) < gen)
			sched_yield();
	}
	pthread_mutex_unlock(&vm->vcpus_lock);
}

static void tlb_flush_range(struct gmem_vcpu *vcpu, uint64_t start,
			    uint64_t end)
{
	uint64_t xo_pfn = vcpu->vm->xo_bit >> PAGE_SHIFT;

	for (size_t i = 0; i < GMEM_TLB_SIZE; i++) {
		uint64_t gfn = (vcpu->tlb[i].tag - 1) & ~xo_pfn;

		if (vcpu->tlb[i].tag && gfn >= start && gfn < end)
			vcpu->tlb[i].tag = 0;
	}
}

void gmem_vcpu_sync_flush(struct gmem_vcpu *vcpu)
{
	struct gmem_mmu *mmu = &vcpu->vm->mmu;
	uint64_t gen = __atomic_load_n(&mmu->flush_gen, __ATOMIC_ACQUIRE);
	bool full = gen - vcpu->seen_gen > S2_FLUSH_LOG;

	/* Replay the logged ranges, unless the log has moved on. */
	for (uint64_t g = vcpu->seen_gen + 1; !full && g <= gen; g++) {
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
		tlb_flush_range(vcpu, start, end);
	}
	if (full)
		memset(vcpu->tlb, 0, sizeof(vcpu->tlb));
	VCPU_STAT_INC(vcpu, tlb_flushes);
	__atomic_store_n(&vcpu->seen_gen, gen, __ATOMIC_RELEASE);
}

void gmem_vcpu_memory_fault(struct gmem_vcpu *vcpu, uint64_t gpa,
			    uint64_t flags)
{
	struct kvm_run *run = vcpu->run;

	run->exit_reason = KVM_EXIT_MEMORY_FAULT;
	run->memory_fault.flags = flags;
	run->memory_fault.gpa = gpa & ~(PAGE_SIZE - 1);
	run->memory_fault.size = PAGE_SIZE;
	VCPU_STAT_INC(vcpu, exits_memory_fault);
}

/* Translate one page through the TLB, then stage 2. */
static enum gmem_s2 translate(struct gmem_vcpu *vcpu, uint64_t gpa,
			      unsigned int access, struct gmem_s2_result *res)
{
	uint64_t tag = (gpa >> PAGE_SHIFT) + 1;
	struct gmem_tlb_entry *t = &vcpu->tlb[tag % GMEM_TLB_SIZE];
	enum gmem_s2 k;

	if (t->tag == tag && (t->perm & access)) {
		VCPU_STAT_INC(vcpu, tlb_hits);
		res->page = t->page;
		res->perm = t->perm;
		return GMEM_S2_OK;
	}
	k = gmem_mmu_translate(vcpu, gpa, access, res);
	if (k == GMEM_S2_OK)
		*t = (struct gmem_tlb_entry){ tag, res->page, res->perm };
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
	return GMEM_ACCESS_EXIT;
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
		uint64_t w = __atomic_load_n((const uint64_t *)g,
					     __ATOMIC_RELAXED);

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

/* Up to this many pages are checked before a write copies anything. */
#define ACCESS_MAX_PAGES 16

int gmem_vcpu_access(struct gmem_vcpu *vcpu, uint64_t gpa, void *buf,
		     size_t len, unsigned int access)
{
	uint8_t *pages[ACCESS_MAX_PAGES];
	bool nested = __atomic_load_n(&vcpu->mode, __ATOMIC_RELAXED) ==
		      GMEM_VCPU_IN_GUEST;
	size_t n = 0, done = 0;
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
		struct gmem_s2_result res = { 0 };
		size_t piece = MIN(len - (a - gpa),
				   PAGE_SIZE - (a & (PAGE_SIZE - 1)));

		switch (translate(vcpu, a, access, &res)) {
		case GMEM_S2_OK:
			pages[n++] = res.page;
			continue;
		case GMEM_S2_MMIO:
			r = mmio_exit(vcpu, a, (uint8_t *)buf + (a - gpa),
				      piece, access == GMEM_ACCESS_WRITE);
			break;
		case GMEM_S2_FAULT:
			r = res.error;
			break;
		case GMEM_S2_XO:
			r = GMEM_ACCESS_XO;
			break;
		case GMEM_S2_NOMEM:
			r = -ENOMEM;
			break;
		case GMEM_S2_RETRY:
			/* Let the update we raced finish before trying again. */
			gmem_vcpu_check_flush(vcpu);
			sched_yield();
			goto restart;
		}
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t a = i ? 0 : gpa & (PAGE_SIZE - 1);
		size_t piece = MIN(len - done, PAGE_SIZE - a);

		if (access == GMEM_ACCESS_WRITE)
			guest_write(pages[i] + a, (uint8_t *)buf + done, piece);
		else
			guest_read((uint8_t *)buf + done, pages[i] + a, piece);
		done += piece;
	}
out:
	if (!nested)
		gmem_vcpu_exit_guest(vcpu);
	return r;
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
