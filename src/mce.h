/* SPDX-License-Identifier: MIT */
/*
 * Machine-check banks of a vCPU, as Linux 6.12's x86.c emulates them
 * (KVM_X86_SETUP_MCE, KVM_X86_SET_MCE, the MCG and MCi MSRs): up to 32
 * banks of CTL/STATUS/ADDR/MISC, CTL2 with CMCI when MCG_CMCI_P is set,
 * MCG_CTL with MCG_CTL_P, and the injection rules: a UCNA is reported
 * by CMCI, another uncorrected error by #MC (or a shutdown when CR4.MCE
 * is clear or one is in progress), a corrected one is only logged.
 * Owned by the vCPU's thread.
 */
#ifndef GMEM_MCE_H
#define GMEM_MCE_H

#include <stdbool.h>
#include <stdint.h>

#include <gmem/uapi.h>

#define GMEM_MCE_MAX_BANKS 32

/* KVM_X86_GET_MCE_CAP_SUPPORTED: MCG_CTL_P, MCG_CMCI_P, MCG_SER_P. */
#define GMEM_MCG_CTL_P (1ULL << 8)
#define GMEM_MCG_CMCI_P (1ULL << 10)
#define GMEM_MCG_SER_P (1ULL << 24)
#define GMEM_MCE_CAP_SUPPORTED \
	(GMEM_MCG_CTL_P | GMEM_MCG_CMCI_P | GMEM_MCG_SER_P)

struct gmem_mce {
	uint64_t mcg_cap, mcg_status, mcg_ctl;
	uint64_t banks[GMEM_MCE_MAX_BANKS * 4]; /* CTL, STATUS, ADDR, MISC */
	uint64_t ctl2[GMEM_MCE_MAX_BANKS];
};

/* A new vCPU's: 32 banks, no capability bits, everything 0. */
void gmem_mce_init(struct gmem_mce *m);

/* KVM_X86_SETUP_MCE: -EINVAL for 0 or > 32 banks or unsupported bits. */
int gmem_mce_setup(struct gmem_mce *m, uint64_t mcg_cap);

/*
 * An MCE MSR: 0, 1 for #GP (or a failed KVM_GET/SET_MSRS), -1 not one.
 * @host: the VMM's access; @status_wren: HWCR.McStatusWrEn on an AMD
 * guest (non-zero MCi_STATUS writes from the guest).
 */
int gmem_mce_rdmsr(const struct gmem_mce *m, uint32_t msr, uint64_t *v,
		   bool host);
int gmem_mce_wrmsr(struct gmem_mce *m, uint32_t msr, uint64_t v, bool host,
		   bool status_wren);

/* What KVM_X86_SET_MCE asks of the vCPU. */
enum gmem_mce_action {
	GMEM_MCE_LOGGED,   /* nothing more */
	GMEM_MCE_CMCI,	   /* the APIC's CMCI LVT entry fires */
	GMEM_MCE_MC,	   /* #MC is injected */
	GMEM_MCE_SHUTDOWN, /* triple fault */
};

/* KVM_X86_SET_MCE: -EINVAL (bad bank, no VAL), or an action. */
int gmem_mce_inject(struct gmem_mce *m, const struct kvm_x86_mce *mce,
		    bool cr4_mce);

#endif /* GMEM_MCE_H */
