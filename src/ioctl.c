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
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>

#include <gmem/gmem.h>
#include <gmem/kvm.h>

#include "guest_memfd.h"
#include "handle.h"
#include "mce.h"
#include "stats.h"
#include "uaccess.h"
#include "util.h"
#include "vcpu.h"
#include "vm.h"

static void vm_release(void *vm)
{
	/*
	 * The handle's reference on the object; the VM goes when its last vCPU
	 * and handle have let go.
	 */
	gmem_vm_put(vm);
}

static void vcpu_release(void *vcpu)
{
	gmem_vcpu_put(vcpu);
}

int gmem_vm_from_handle(int fd, struct gmem_vm **vmp)
{
	struct gmem_handle_ref ref;
	int r = gmem_handle_get(fd, &ref);

	if (r)
		return r;
	/*
	 * The handle's hold keeps @ref.obj alive only until the put below; the
	 * caller gets a reference of its own.
	 */
	if (ref.kind == GMEM_H_VM) {
		*vmp = ref.obj;
		gmem_vm_get(*vmp);
	} else {
		r = -EINVAL;
	}
	gmem_handle_put(&ref);
	return r;
}

int gmem_vcpu_from_handle(int fd, struct gmem_vcpu **vcpup)
{
	struct gmem_handle_ref ref;
	int r = gmem_handle_get(fd, &ref);

	if (r)
		return r;
	if (ref.kind == GMEM_H_VCPU) {
		*vcpup = ref.obj;
		gmem_vcpu_get(*vcpup);
	} else {
		r = -EINVAL;
	}
	gmem_handle_put(&ref);
	return r;
}

/* ---- façade ------------------------------------------------------------ */

/* The C library's convention: -1 and errno, never a negative errno. */
static long ret_errno(long r)
{
	if (r >= 0)
		return r;
	errno = (int)-r;
	return -1;
}

int gmem_open(void)
{
	/*
	 * /dev/kvm's handle holds no object: every VM is created from it anew.
	 */
	return (int)ret_errno(gmem_handle_alloc(GMEM_H_SYSTEM, NULL, NULL));
}

static long sys_ioctl(unsigned long request, unsigned long arg)
{
	struct gmem_vm *vm;
	long r;

	switch (request) {
	case KVM_GET_API_VERSION:
		/*
		 * KVM_GET_API_VERSION and KVM_GET_VCPU_MMAP_SIZE take no
		 * argument; anything else in it is refused, as in KVM.
		 */
		return arg ? -EINVAL : KVM_API_VERSION;
	case KVM_CHECK_EXTENSION:
		return gmem_check_extension(NULL, (long)arg);
	case KVM_GET_SUPPORTED_CPUID:
		if (!arg)
			return -EFAULT;
		return gmem_get_supported_cpuid((struct kvm_cpuid2 *)arg);
	case KVM_GET_MSR_INDEX_LIST:
	case KVM_GET_MSR_FEATURE_INDEX_LIST:
		if (!arg)
			return -EFAULT;
		return request == KVM_GET_MSR_INDEX_LIST
			       ? gmem_get_msr_index_list((void *)arg)
			       : gmem_get_msr_feature_index_list((void *)arg);
	case KVM_GET_MSRS: /* feature MSRs (KVM_CAP_GET_MSR_FEATURES) */
		if (!arg)
			return -EFAULT;
		return gmem_get_feature_msrs((struct kvm_msrs *)arg);
	case KVM_GET_VCPU_MMAP_SIZE:
		return arg ? -EINVAL : (long)GMEM_VCPU_MMAP_SIZE;
	case KVM_X86_GET_MCE_CAP_SUPPORTED: {
		uint64_t cap = GMEM_MCE_CAP_SUPPORTED;

		if (!arg)
			return -EFAULT;
		memcpy((void *)arg, &cap, sizeof(cap));
		return 0;
	}
	case KVM_CREATE_VM:
		r = gmem_vm_create(arg, &vm);
		if (r)
			return r;
		r = gmem_handle_alloc(GMEM_H_VM, vm, vm_release);
		/* The handle would have held the only reference: drop it. */
		if (r < 0)
			gmem_vm_put(vm);
		return r;
	default:
		/* kvm_arch_dev_ioctl()'s answer on x86. */
		return -EINVAL;
	}
}

/*
 * Copy an ioctl argument struct in, as copy_from_user would; a NULL
 * pointer faults as an unmapped one would (-EFAULT).
 */
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
	case KVM_GET_DIRTY_LOG: {
		struct kvm_dirty_log log;

		COPY_IN(log, arg);
		return gmem_vm_get_dirty_log(vm, &log);
	}
	case KVM_CLEAR_DIRTY_LOG: {
		struct kvm_clear_dirty_log log;

		COPY_IN(log, arg);
		return gmem_vm_clear_dirty_log(vm, &log);
	}
	case KVM_RESET_DIRTY_RINGS:
		return gmem_vm_reset_dirty_rings(vm);
	case KVM_IRQ_LINE:
	case KVM_IRQ_LINE_STATUS: {
		struct kvm_irq_level irq;
		int r;

		COPY_IN(irq, arg);
		r = gmem_vm_irq_line(vm, &irq);
		/* The status goes back for _STATUS (an _IOWR) only. */
		if (!r && request == KVM_IRQ_LINE_STATUS)
			memcpy((void *)arg, &irq, sizeof(irq));
		return r;
	}
	case KVM_SET_GSI_ROUTING:
		/* The counted copy-in has the whole table. */
		return gmem_vm_set_gsi_routing(vm, (const void *)arg);
	case KVM_IOEVENTFD: {
		struct kvm_ioeventfd fd;

		COPY_IN(fd, arg);
		return gmem_vm_ioeventfd(vm, &fd);
	}
	case KVM_IRQFD: {
		struct kvm_irqfd fd;

		COPY_IN(fd, arg);
		return gmem_vm_irqfd(vm, &fd);
	}
	case KVM_SIGNAL_MSI: {
		struct kvm_msi msi;

		COPY_IN(msi, arg);
		return gmem_vm_signal_msi(vm, &msi);
	}
	case KVM_X86_SET_MSR_FILTER: {
		struct kvm_msr_filter filter;

		COPY_IN(filter, arg);
		return gmem_vm_set_msr_filter(vm, &filter);
	}
	case KVM_CREATE_IRQCHIP:
		return gmem_vm_create_irqchip(vm);
	case KVM_REGISTER_COALESCED_MMIO:
	case KVM_UNREGISTER_COALESCED_MMIO: {
		struct kvm_coalesced_mmio_zone zone;

		COPY_IN(zone, arg);
		return request == KVM_REGISTER_COALESCED_MMIO
			       ? gmem_vm_register_coalesced_mmio(vm, &zone)
			       : gmem_vm_unregister_coalesced_mmio(vm, &zone);
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
		r = gmem_handle_alloc(GMEM_H_VCPU, vcpu, vcpu_release);
		/* Destroy drops the creator's reference, as the handle would.
		 */
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
	case KVM_SET_BOOT_CPU_ID:
		return gmem_vm_set_boot_cpu_id(vm, arg);
	case KVM_GET_CLOCK:
		if (!arg)
			return -EFAULT;
		return gmem_vm_get_clock(vm, (struct kvm_clock_data *)arg);
	case KVM_SET_CLOCK: {
		struct kvm_clock_data data;

		COPY_IN(data, arg);
		return gmem_vm_set_clock(vm, &data);
	}
	default:
		/* kvm_arch_vm_ioctl()'s answer (KVM_GET_NR_MMU_PAGES too). */
		return -ENOTTY;
	}
}

/* The kernel's sigset_t: one bit per signal, signal n at bit n - 1. */
#define KERNEL_SIGSET_SIZE 8

static int set_sigmask(struct gmem_vcpu *vcpu, const struct kvm_signal_mask *m)
{
	uint64_t set;

	if (!m) {
		vcpu->sigmask_active = false;
		return 0;
	}
	/* The kernel's sigset is 8 bytes on x86-64; KVM takes no other size. */
	if (m->len != KERNEL_SIGSET_SIZE)
		return -EINVAL;
	memcpy(&set, m->sigset, sizeof(set));
	/* SIGKILL and SIGSTOP can never be blocked. */
	set &= ~(1ULL << (SIGKILL - 1) | 1ULL << (SIGSTOP - 1));
	vcpu->sigmask = set;
	vcpu->sigmask_active = true;
	return 0;
}

/*
 * KVM_RUN with the vCPU's signal mask in force, as kvm_sigset_activate()
 * does.  A signal that both masks let through is delivered while the
 * guest runs, and its handler can kick the run.  One that the thread
 * blocks but the vCPU's mask lets through must end the run and still be
 * pending, blocked, when KVM_RUN returns (a VMM then takes it with
 * sigwait()): it stays blocked, and the run polls for it.
 */
static int run_with_sigmask(struct gmem_vcpu *vcpu)
{
	sigset_t set, old;
	uint64_t poll = 0;
	int r;

	if (!vcpu->sigmask_active)
		return gmem_vcpu_run(vcpu);
	pthread_sigmask(SIG_SETMASK, NULL, &old);
	sigemptyset(&set);
	/* Signals 1-64, the kernel's whole set (SIGRTMAX included). */
	for (int sig = 1; sig <= 64; sig++) {
		uint64_t bit = 1ULL << (sig - 1);

		/* Blocked by the vCPU's mask: blocked while the guest runs. */
		if (vcpu->sigmask & bit)
			sigaddset(&set, sig);
		/*
		 * Blocked by the thread but not the vCPU: kept blocked so that
		 * it stays pending, and polled so that it still ends the run.
		 */
		else if (sigismember(&old, sig) == 1 && sig != SIGKILL &&
			 sig != SIGSTOP) {
			sigaddset(&set, sig);
			poll |= bit;
		}
	}
	vcpu->sig_poll = poll;
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	r = gmem_vcpu_run(vcpu);
	/* The thread's own mask comes back whatever the run returned. */
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	vcpu->sig_poll = 0;
	return r;
}

static long vcpu_ioctl(struct gmem_vcpu *vcpu, unsigned long request,
		       unsigned long arg)
{
	void *p = (void *)arg;

	switch (request) {
	case KVM_RUN:
		return arg ? -EINVAL : run_with_sigmask(vcpu);
	case KVM_SET_SIGNAL_MASK: /* NULL turns the mask off */
		return set_sigmask(vcpu, p);
	case KVM_SET_TSC_KHZ:
		return gmem_vcpu_set_tsc_khz(vcpu, (uint32_t)arg);
	case KVM_GET_TSC_KHZ:
		return gmem_vcpu_get_tsc_khz(vcpu);
	case KVM_NMI:
		return gmem_vcpu_nmi(vcpu);
	case KVM_KVMCLOCK_CTRL:
		return gmem_vcpu_kvmclock_ctrl(vcpu);
	case KVM_ENABLE_CAP: {
		struct kvm_enable_cap cap;

		COPY_IN(cap, arg);
		return gmem_vcpu_enable_cap(vcpu, &cap);
	}
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
	case KVM_PRE_FAULT_MEMORY:
	case KVM_GET_FPU:
	case KVM_SET_FPU:
	case KVM_GET_XSAVE:
	case KVM_GET_XSAVE2:
	case KVM_SET_XSAVE:
	case KVM_GET_XCRS:
	case KVM_SET_XCRS:
	case KVM_GET_VCPU_EVENTS:
	case KVM_SET_VCPU_EVENTS:
	case KVM_GET_DEBUGREGS:
	case KVM_SET_DEBUGREGS:
	case KVM_SET_GUEST_DEBUG:
	case KVM_GET_LAPIC:
	case KVM_SET_LAPIC:
		/*
		 * KVM's copy_from_user() of a NULL pointer faults: -EFAULT, not
		 * a crash.
		 */
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
	case KVM_PRE_FAULT_MEMORY:
		return gmem_vcpu_pre_fault_memory(vcpu, p);
	case KVM_GET_FPU:
		return gmem_vcpu_get_fpu(vcpu, p);
	case KVM_SET_FPU:
		return gmem_vcpu_set_fpu(vcpu, p);
	case KVM_GET_XSAVE:
	case KVM_GET_XSAVE2: /* KVM_CAP_XSAVE2's size is struct kvm_xsave's */
		return gmem_vcpu_get_xsave(vcpu, p);
	case KVM_SET_XSAVE:
		return gmem_vcpu_set_xsave(vcpu, p);
	case KVM_INTERRUPT: {
		struct kvm_interrupt irq;

		COPY_IN(irq, arg);
		return gmem_vcpu_interrupt(vcpu, irq.irq);
	}
	case KVM_X86_SETUP_MCE: {
		uint64_t cap;

		COPY_IN(cap, arg);
		return gmem_vcpu_setup_mce(vcpu, cap);
	}
	case KVM_X86_SET_MCE: {
		struct kvm_x86_mce mce;

		COPY_IN(mce, arg);
		return gmem_vcpu_set_mce(vcpu, &mce);
	}
	case KVM_GET_LAPIC:
		return gmem_vcpu_get_lapic(vcpu, p);
	case KVM_SET_LAPIC:
		return gmem_vcpu_set_lapic(vcpu, p);
	case KVM_GET_XCRS:
		return gmem_vcpu_get_xcrs(vcpu, p);
	case KVM_SET_XCRS:
		return gmem_vcpu_set_xcrs(vcpu, p);
	case KVM_GET_VCPU_EVENTS:
		return gmem_vcpu_get_vcpu_events(vcpu, p);
	case KVM_SET_VCPU_EVENTS:
		return gmem_vcpu_set_vcpu_events(vcpu, p);
	case KVM_GET_DEBUGREGS:
		return gmem_vcpu_get_debugregs(vcpu, p);
	case KVM_SET_DEBUGREGS:
		return gmem_vcpu_set_debugregs(vcpu, p);
	case KVM_SET_GUEST_DEBUG:
		return gmem_vcpu_set_guest_debug(vcpu, p);
	default:
		/* kvm_arch_vcpu_ioctl()'s answer on x86. */
		return -EINVAL;
	}
}

/* The requests whose struct starts with a count of entries after it. */
static bool counted(unsigned long request)
{
	switch (request) {
	case KVM_GET_MSRS:
	case KVM_SET_MSRS:
	case KVM_SET_CPUID2:
	case KVM_GET_CPUID2:
	case KVM_GET_SUPPORTED_CPUID:
	case KVM_SET_SIGNAL_MASK:
	case KVM_GET_MSR_INDEX_LIST:
	case KVM_GET_MSR_FEATURE_INDEX_LIST:
	case KVM_SET_GSI_ROUTING:
		return true;
	default:
		return false;
	}
}

/*
 * The bytes of entries that count @n announces, as far as the handler
 * reads or writes them: every handler refuses a larger count before it
 * touches any entry.
 */
static size_t arg_tail(unsigned long request, uint32_t n)
{
	switch (request) {
	case KVM_GET_MSRS:
	case KVM_SET_MSRS:
		/* KVM refuses 256 and more (-E2BIG) before copying any. */
		return n < 256 ? n * sizeof(struct kvm_msr_entry) : 0;
	case KVM_SET_CPUID2:
		/* KVM_SET_CPUID2 refuses more than 256 entries (-E2BIG). */
		return n <= 256 ? n * sizeof(struct kvm_cpuid_entry2) : 0;
	case KVM_GET_CPUID2:
	case KVM_GET_SUPPORTED_CPUID:
		/* KVM writes at most 256 entries, however many are asked. */
		return MIN(n, 256u) * sizeof(struct kvm_cpuid_entry2);
	case KVM_SET_SIGNAL_MASK:
		/* Only a len of 8 is copied; any other is -EINVAL. */
		return n == 8 ? 8 : 0;
	case KVM_SET_GSI_ROUTING:
		/* More than KVM_MAX_IRQ_ROUTES is -EINVAL before any copy. */
		return n <= KVM_MAX_IRQ_ROUTES
			       ? n * sizeof(struct kvm_irq_routing_entry)
			       : 0;
	case KVM_GET_MSR_INDEX_LIST:
	case KVM_GET_MSR_FEATURE_INDEX_LIST: {
		/*
		 * The whole list is written if it fits, else none of it;
		 * an empty list asks for the count alone.
		 */
		struct kvm_msr_list probe = {.nmsrs = 0};

		if (request == KVM_GET_MSR_INDEX_LIST)
			gmem_get_msr_index_list(&probe);
		else
			gmem_get_msr_feature_index_list(&probe);
		return n >= probe.nmsrs ? probe.nmsrs * sizeof(uint32_t) : 0;
	}
	default:
		return 0;
	}
}

/*
 * An ioctl's argument as KVM takes it: copied in before the handler runs
 * and out after it (copy_from_user()/copy_to_user()), so that the handler
 * works on memory of ours, aligned, that no other thread can unmap.  The
 * program's memory is probed first, without a sanitizer looking at the
 * address: what it cannot read (or, for _IOR, write) is -EFAULT before
 * anything is done.
 */
struct arg_copy {
	unsigned long user; /* the program's pointer */
	size_t len;	    /* 0: the handler gets the value itself */
	bool out;	    /* copied back (_IOR) */
	void *buf;
	_Alignas(64) uint8_t small[512];
};

static int probe_arg(const uint8_t *p, size_t len, bool out)
{
	int r = gmem_uaccess_probe_range(p, len, false);

	return r || !out ? r : gmem_uaccess_probe_range(p, len, true);
}

static int copy_arg_in(struct arg_copy *a, unsigned long request,
		       unsigned long arg)
{
	const uint8_t *p = (const uint8_t *)arg;
	size_t size = _IOC_SIZE(request), tail = 0;
	uint32_t n;
	int r;

	a->user = arg;
	a->len = 0;
	a->out = _IOC_DIR(request) & _IOC_READ;
	a->buf = a->small;
	/* Not a KVM ioctl with a struct: the value itself is the argument. */
	if (!p || !size || _IOC_DIR(request) == _IOC_NONE ||
	    _IOC_TYPE(request) != KVMIO)
		return 0;
	r = probe_arg(p, size, a->out);
	if (r)
		return r;
	/*
	 * A count of entries after the struct: read it first to know how far
	 * the argument goes, then probe and copy the whole.
	 */
	if (counted(request)) {
		r = gmem_uaccess_copy(&n, p, sizeof(n));
		if (r)
			return r;
		tail = arg_tail(request, n);
		r = probe_arg(p + size, tail, a->out);
		if (r)
			return r;
	}
	/* Small arguments (most of them) need no allocation. */
	if (size + tail > sizeof(a->small)) {
		a->buf = malloc(size + tail);
		if (!a->buf)
			return -ENOMEM;
	}
	r = gmem_uaccess_copy(a->buf, p, size + tail);
	if (r) {
		if (a->buf != a->small)
			free(a->buf);
		return r;
	}
	a->len = size + tail;
	return 0;
}

/* The handler's result @r, or -EFAULT if the copy back faults. */
static long copy_arg_out(struct arg_copy *a, long r)
{
	int e = 0;

	/*
	 * Only _IOR requests write back, after the handler ran, whatever
	 * it returned.
	 */
	if (a->len && a->out)
		e = gmem_uaccess_copy((void *)a->user, a->buf, a->len);
	if (a->buf != a->small)
		free(a->buf);
	return e ? e : r;
}

int gmem_ioctl(int fd, unsigned long request, ...)
{
	struct gmem_handle_ref ref;
	struct arg_copy a;
	unsigned long arg;
	long r;
	va_list ap;

	va_start(ap, request);
	arg = va_arg(ap, unsigned long);
	va_end(ap);

	/*
	 * The hold keeps the VM or vCPU alive for the whole call, even if
	 * another thread closes @fd meanwhile.
	 */
	r = gmem_handle_get(fd, &ref);
	if (r)
		return (int)ret_errno(r);
	/* KVM_GET_STATS_FD takes the handle itself, not a copied argument. */
	if (request == KVM_GET_STATS_FD &&
	    (ref.kind == GMEM_H_VM || ref.kind == GMEM_H_VCPU)) {
		gmem_handle_put(&ref);
		return (int)ret_errno(gmem_stats_open(fd));
	}
	if (ref.kind != GMEM_H_SYSTEM && ref.kind != GMEM_H_VM &&
	    ref.kind != GMEM_H_VCPU) {
		/* guest_memfd has no ioctl at all: the VFS says ENOTTY. */
		gmem_handle_put(&ref);
		return (int)ret_errno(-ENOTTY);
	}
	r = copy_arg_in(&a, request, arg);
	if (r) {
		gmem_handle_put(&ref);
		return (int)ret_errno(r);
	}
	/* The handlers see our copy, never the program's memory. */
	if (a.len)
		arg = (unsigned long)a.buf;
	if (ref.kind == GMEM_H_SYSTEM)
		r = sys_ioctl(request, arg);
	else if (ref.kind == GMEM_H_VM)
		r = vm_ioctl(ref.obj, request, arg);
	else
		r = vcpu_ioctl(ref.obj, request, arg);
	r = copy_arg_out(&a, r);
	gmem_handle_put(&ref);
	return (int)ret_errno(r);
}

int gmem_fallocate(int fd, int mode, off_t offset, off_t len)
{
	return (int)ret_errno(gmem_file_fallocate(fd, mode, offset, len));
}

/* The kind of open handle @fd, or -EBADF/-EIO. */
static int kind_of(int fd)
{
	struct gmem_handle_ref ref;
	int r = gmem_handle_get(fd, &ref);

	if (r)
		return r;
	gmem_handle_put(&ref);
	/* The kind is read before the put; it is a copy, not the object. */
	return ref.kind;
}

int gmem_fstat(int fd, struct stat *st)
{
	int kind = kind_of(fd);

	if (kind < 0)
		return (int)ret_errno(kind);
	if (kind == GMEM_H_FILE)
		return (int)ret_errno(gmem_file_stat(fd, st));
	/* Like an anonymous inode, or /dev/kvm (misc 10:232) for the system. */
	memset(st, 0, sizeof(*st));
	st->st_mode = (kind == GMEM_H_SYSTEM ? S_IFCHR : 0) | 0600;
	if (kind == GMEM_H_SYSTEM)
		st->st_rdev = makedev(10, 232);
	st->st_nlink = 1;
	st->st_blksize = PAGE_SIZE;
	return 0;
}

/* guest_memfd's size is fixed, and no other handle is a regular file. */
int gmem_ftruncate(int fd, off_t len)
{
	int kind = kind_of(fd);

	return (int)ret_errno(kind < 0 ? kind : -EINVAL);
}

/*
 * Stats files alone can be read, at the file position (@off NULL) or at
 * *@off, which must not be negative; guest_memfd alone can be written.
 */
static ssize_t read_at(int fd, void *buf, size_t n, const off_t *off,
		       bool write)
{
	struct gmem_handle_ref ref;
	ssize_t r = gmem_handle_get(fd, &ref);

	if (r)
		return ret_errno(r);
	if (ref.kind == GMEM_H_STATS && !write && (!off || *off >= 0))
		r = gmem_stats_read(ref.obj, buf, n, off ? *off : -1);
	else if (ref.kind == GMEM_H_FILE && write)
		r = gmem_file_write(ref.obj, buf, n, off);
	else
		r = -EINVAL;
	gmem_handle_put(&ref);
	return ret_errno(r);
}

ssize_t gmem_read(int fd, void *buf, size_t n)
{
	return read_at(fd, buf, n, NULL, false);
}

ssize_t gmem_write(int fd, const void *buf, size_t n)
{
	return read_at(fd, (void *)buf, n, NULL, true);
}

ssize_t gmem_pread(int fd, void *buf, size_t n, off_t off)
{
	return read_at(fd, buf, n, &off, false);
}

ssize_t gmem_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return read_at(fd, (void *)buf, n, &off, true);
}

off_t gmem_lseek(int fd, off_t off, int whence)
{
	struct gmem_handle_ref ref;
	off_t r = gmem_handle_get(fd, &ref);

	if (r)
		return ret_errno(r);
	/* KVM's VM and vCPU files seek nowhere (noop_llseek). */
	if (ref.kind == GMEM_H_STATS)
		r = gmem_stats_seek(ref.obj, off, whence);
	else if (ref.kind == GMEM_H_FILE)
		r = gmem_file_seek(ref.obj, off, whence);
	else
		r = 0;
	gmem_handle_put(&ref);
	return ret_errno(r);
}

/*
 * A window of the vCPU's mapping: kvm_run and the PIO page from the
 * vCPU's memfd, and at KVM_COALESCED_MMIO_PAGE_OFFSET the VM's coalesced
 * ring, mapped over it, so that every vCPU shows the same ring.
 */
static void *map_vcpu(struct gmem_vcpu *vcpu, void *addr, size_t len, int prot,
		      int flags, off_t off)
{
	const off_t ring = KVM_COALESCED_MMIO_PAGE_OFFSET * PAGE_SIZE;
	uint8_t *p = mmap(addr, len, prot, flags, vcpu->run_fd, off);
	int e;

	/* No overlap with the coalesced-MMIO page: the plain vCPU mapping. */
	if (p == MAP_FAILED || off > ring || off + (off_t)len <= ring)
		return p;
	/*
	 * The VM's ring replaces that page of the mapping in place (MAP_FIXED
	 * over our own mapping, which is safe).
	 */
	if (mmap(p + (ring - off), PAGE_SIZE, prot, flags | MAP_FIXED,
		 vcpu->vm->coalesced.fd, 0) != MAP_FAILED)
		return p;
	/* Undo the whole mapping, keeping the errno mmap() set. */
	e = errno;
	munmap(p, len);
	errno = e;
	return MAP_FAILED;
}

/*
 * What of the vCPU file may be mapped: the first GMEM_VCPU_MMAP_SIZE
 * bytes, or the dirty ring at KVM_DIRTY_LOG_PAGE_OFFSET, which, as in
 * KVM, only shared and not executable.
 */
static int vcpu_window(struct gmem_vcpu *vcpu, off_t off, size_t len, int prot,
		       int flags)
{
	const uint64_t ring = KVM_DIRTY_LOG_PAGE_OFFSET * PAGE_SIZE;
	uint64_t ring_size = vcpu->vm->dirty_ring_size;

	if (off < 0 || !len)
		return -EINVAL;
	/* kvm_run, the PIO page and the coalesced-MMIO page. */
	if ((uint64_t)off + len <= GMEM_VCPU_MMAP_SIZE)
		return 0;
	/*
	 * The dirty ring exists only with KVM_CAP_DIRTY_LOG_RING enabled; its
	 * size is 0 otherwise, and this fails.
	 */
	if ((uint64_t)off < ring || (uint64_t)off + len > ring + ring_size)
		return -EINVAL;
	if ((prot & PROT_EXEC) || (flags & MAP_TYPE) != MAP_SHARED)
		return -EINVAL;
	return 0;
}

void *gmem_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	struct gmem_handle_ref ref;
	void *p = MAP_FAILED;
	int r = gmem_handle_get(fd, &ref);

	if (r) {
		errno = -r;
		return MAP_FAILED;
	}
	if (ref.kind == GMEM_H_VCPU) {
		if (vcpu_window(ref.obj, off, len, prot, flags))
			errno = EINVAL;
		else
			p = map_vcpu(ref.obj, addr, len, prot, flags, off);
	} else if (ref.kind == GMEM_H_FILE) {
		p = gmem_file_mmap(ref.obj, addr, len, prot, flags, off);
	} else {
		/*
		 * VM and /dev/kvm files have no mmap (ENODEV, as for a file
		 * without an mmap operation).
		 */
		errno = ENODEV;
	}
	gmem_handle_put(&ref);
	return p;
}

int gmem_munmap(void *addr, size_t len)
{
	/* The mapping is the host's: nothing of gmem needs to know. */
	return munmap(addr, len);
}

int gmem_close(int fd)
{
	return (int)ret_errno(gmem_handle_close(fd));
}
