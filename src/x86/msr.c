// SPDX-License-Identifier: MIT
/*
 * MSRs as KVM_GET/SET_MSRS and the guest's RDMSR/WRMSR see them, the
 * MSR index lists, and the feature MSRs.
 */
#include <errno.h>

#include "x86/internal.h"

/* kvmclock's MSRs, each pair as its KVM_CPUID_FEATURES bit allows. */
static bool pv_clock_msr(const struct x86_cpu *c, uint32_t idx)
{
	return x86_pv_has(c, idx == X86_MSR_KVM_SYSTEM_TIME_NEW ||
					     idx == X86_MSR_KVM_WALL_CLOCK_NEW
				     ? X86_KVM_FEATURE_CLOCKSOURCE2
				     : X86_KVM_FEATURE_CLOCKSOURCE);
}

int x86_get_msr(const struct x86_cpu *c, uint32_t idx, uint64_t *v)
{
	switch (idx) {
	case X86_MSR_TSC:
		*v = x86_tsc(c);
		return 0;
	case X86_MSR_APIC_BASE:
		*v = c->apic_base;
		return 0;
	case X86_MSR_EFER:
		*v = c->efer;
		return 0;
	case X86_MSR_STAR:
		*v = c->star;
		return 0;
	case X86_MSR_LSTAR:
		*v = c->lstar;
		return 0;
	case X86_MSR_CSTAR:
		*v = c->cstar;
		return 0;
	case X86_MSR_SFMASK:
		*v = c->sfmask;
		return 0;
	case X86_MSR_FS_BASE:
		*v = c->seg[X86_FS].base;
		return 0;
	case X86_MSR_GS_BASE:
		*v = c->seg[X86_GS].base;
		return 0;
	case X86_MSR_KERNEL_GS_BASE:
		*v = c->kernel_gs_base;
		return 0;
	case X86_MSR_TSC_AUX:
		*v = c->tsc_aux;
		return 0;
	case X86_MSR_TSC_ADJUST:
		*v = c->tsc_adjust;
		return 0;
	case X86_MSR_K7_HWCR:
		*v = c->hwcr;
		return 0;
	case X86_MSR_UCODE_REV:
		*v = c->ucode_rev;
		return 0;
	case X86_MSR_PLATFORM_INFO:
		*v = c->platform_info;
		return 0;
	case X86_MSR_POWER_CTL:
		*v = c->power_ctl;
		return 0;
	case X86_MSR_MISC_ENABLE:
		*v = c->misc_enable;
		return 0;
	case X86_MSR_KVM_SYSTEM_TIME:
	case X86_MSR_KVM_SYSTEM_TIME_NEW:
		if (!pv_clock_msr(c, idx))
			return -EOPNOTSUPP;
		/* KVM keeps one value for both (vcpu->arch.time). */
		*v = c->kvm_system_time;
		return 0;
	case X86_MSR_KVM_STEAL_TIME:
		if (!x86_pv_has(c, X86_KVM_FEATURE_STEAL_TIME))
			return -EOPNOTSUPP;
		*v = c->kvm_steal_time;
		return 0;
	case X86_MSR_KVM_POLL_CONTROL:
		if (!x86_pv_has(c, X86_KVM_FEATURE_POLL_CONTROL))
			return -EOPNOTSUPP;
		*v = c->kvm_poll_control;
		return 0;
	case X86_MSR_KVM_WALL_CLOCK:
	case X86_MSR_KVM_WALL_CLOCK_NEW:
		if (!pv_clock_msr(c, idx))
			return -EOPNOTSUPP;
		*v = c->kvm_wall_clock ? __atomic_load_n(c->kvm_wall_clock,
							 __ATOMIC_RELAXED)
				       : c->kvm_wall_clock_own;
		return 0;
	}
	return -EINVAL;
}

int x86_set_msr(struct x86_cpu *c, uint32_t idx, uint64_t v)
{
	switch (idx) {
	case X86_MSR_TSC:
		c->tsc_base = v;
		c->tsc_ns = x86_host_ns();
		return 0;
	case X86_MSR_APIC_BASE:
		c->apic_base = v;
		return 0;
	case X86_MSR_EFER:
		/* SCE, LME, LMA, NXE; long mode cannot be left. */
		if (v & ~(X86_EFER_SCE | X86_EFER_LME | X86_EFER_LMA |
			  X86_EFER_NXE))
			return -EINVAL;
		if ((c->cr0 & X86_CR0_PG) &&
		    (v ^ c->efer) & (X86_EFER_LME | X86_EFER_LMA))
			return -EINVAL;
		if ((v ^ c->efer) & X86_EFER_NXE) {
			c->efer = v;
			x86_paging_update(c);
		}
		c->efer = v;
		return 0;
	case X86_MSR_STAR:
		c->star = v;
		return 0;
	case X86_MSR_LSTAR:
	case X86_MSR_CSTAR:
	case X86_MSR_FS_BASE:
	case X86_MSR_GS_BASE:
	case X86_MSR_KERNEL_GS_BASE:
		if (!x86_canonical(v))
			return -EINVAL;
		if (idx == X86_MSR_LSTAR)
			c->lstar = v;
		else if (idx == X86_MSR_CSTAR)
			c->cstar = v;
		else if (idx == X86_MSR_FS_BASE)
			c->seg[X86_FS].base = v;
		else if (idx == X86_MSR_GS_BASE)
			c->seg[X86_GS].base = v;
		else
			c->kernel_gs_base = v;
		return 0;
	case X86_MSR_SFMASK:
		c->sfmask = v & 0xffffffff;
		return 0;
	case X86_MSR_TSC_AUX:
		c->tsc_aux = v & 0xffffffff;
		return 0;
	case X86_MSR_TSC_ADJUST:
		c->tsc_adjust = v;
		return 0;
	case X86_MSR_K7_HWCR:
		/*
		 * KVM drops the flush-filter, IGNNE and TLB-cache bits and
		 * keeps McStatusWrEn and TscFreqSel; anything else fails.
		 */
		v &= ~(1ULL << 3 | 1ULL << 6 | 1ULL << 8);
		if (v & ~(1ULL << 18 | 1ULL << 24))
			return -EINVAL;
		c->hwcr = v;
		return 0;
	case X86_MSR_UCODE_REV:
		c->ucode_rev = v; /* the VMM's; guest writes do not get here */
		return 0;
	case X86_MSR_POWER_CTL:
		c->power_ctl = v; /* any value, from either side */
		return 0;
	case X86_MSR_PLATFORM_INFO:
		/*
		 * The VMM's alone (the guest's #GP in h_msr).  KVM refuses to
		 * clear CPUID_FAULT while the guest has CPUID faulting on;
		 * gmem has no CPUID faulting (MSR_MISC_FEATURES_ENABLES).
		 */
		c->platform_info = v;
		return 0;
	case X86_MSR_MISC_ENABLE:
		/*
		 * With KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT off, the MWAIT bit
		 * is CPUID.1:ECX.MONITOR's, and needs SSE3 in CPUID to change.
		 */
		if (!x86_quirk(c, KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT) &&
		    ((v ^ c->misc_enable) & X86_MISC_ENABLE_MWAIT)) {
			uint32_t leaf1[4];

			x86_cpuid(c, 1, 0, leaf1);
			if (!(leaf1[2] & 1u))
				return -EINVAL;
			c->misc_enable = v;
			x86_cpuid_runtime(c, c->cpuid, c->ncpuid);
			return 0;
		}
		c->misc_enable = v;
		return 0;
	case X86_MSR_KVM_SYSTEM_TIME:
	case X86_MSR_KVM_SYSTEM_TIME_NEW:
		if (!pv_clock_msr(c, idx))
			return -EOPNOTSUPP;
		/*
		 * Any value, as KVM (bit 0 enables; a GPA without memory
		 * just leaves the structure unwritten); the vCPU layer
		 * writes it before the guest runs on.
		 */
		c->kvm_system_time = v;
		c->pv_req |= X86_PV_CLOCK;
		return 0;
	case X86_MSR_KVM_STEAL_TIME:
		/* 64-byte aligned: bits 1-5 are reserved. */
		if (!x86_pv_has(c, X86_KVM_FEATURE_STEAL_TIME))
			return -EOPNOTSUPP;
		if (v & 0x3e)
			return -EINVAL;
		c->kvm_steal_time = v;
		if (v & 1)
			c->pv_req |= X86_PV_STEAL;
		return 0;
	case X86_MSR_KVM_POLL_CONTROL:
		if (!x86_pv_has(c, X86_KVM_FEATURE_POLL_CONTROL))
			return -EOPNOTSUPP;
		if (v & ~1ull)
			return -EINVAL;
		c->kvm_poll_control = v;
		return 0;
	case X86_MSR_KVM_WALL_CLOCK:
	case X86_MSR_KVM_WALL_CLOCK_NEW:
		if (!pv_clock_msr(c, idx))
			return -EOPNOTSUPP;
		if (c->kvm_wall_clock)
			__atomic_store_n(c->kvm_wall_clock, v,
					 __ATOMIC_RELAXED);
		else
			c->kvm_wall_clock_own = v;
		c->pv_req |= X86_PV_WALL;
		return 0;
	}
	return -EINVAL;
}

/*
 * KVM's order: msrs_to_save first, then emulated_msrs.  The TSC deadline
 * (0x6e0) and MCG_STATUS/MCG_CTL (0x17a, 0x17b) are the vCPU layer's
 * (its APIC and machine-check banks), which KVM_GET/SET_MSRS ask first.
 */
static const uint32_t msr_list[] = {
	X86_MSR_STAR,
	X86_MSR_CSTAR,
	X86_MSR_KERNEL_GS_BASE,
	X86_MSR_SFMASK,
	X86_MSR_LSTAR,
	X86_MSR_TSC,
	X86_MSR_TSC_AUX,
	X86_MSR_KVM_SYSTEM_TIME,
	X86_MSR_KVM_WALL_CLOCK,
	X86_MSR_KVM_SYSTEM_TIME_NEW,
	X86_MSR_KVM_WALL_CLOCK_NEW,
	X86_MSR_KVM_STEAL_TIME,
	X86_MSR_KVM_POLL_CONTROL,
	X86_MSR_TSC_ADJUST,
	0x6e0,
	X86_MSR_MISC_ENABLE,
	0x17a,
	0x17b,
	X86_MSR_PLATFORM_INFO,
	X86_MSR_UCODE_REV,
	X86_MSR_K7_HWCR,
	X86_MSR_POWER_CTL,
};

const uint32_t *x86_msr_list(unsigned *n)
{
	*n = sizeof(msr_list) / sizeof(msr_list[0]);
	return msr_list;
}

/*
 * The one feature MSR: the microcode revision, which a VMM reads from
 * /dev/kvm to give its vCPUs.  The "host" has none loaded, so it reads
 * as KVM's vCPU default.
 */

static const uint32_t feature_msr_list[] = {X86_MSR_UCODE_REV};

const uint32_t *x86_feature_msr_list(unsigned *n)
{
	*n = sizeof(feature_msr_list) / sizeof(feature_msr_list[0]);
	return feature_msr_list;
}

int x86_get_feature_msr(uint32_t idx, uint64_t *v)
{
	if (idx != X86_MSR_UCODE_REV)
		return -EINVAL;
	*v = X86_UCODE_REV_DEFAULT;
	return 0;
}
