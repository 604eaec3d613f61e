// SPDX-License-Identifier: MIT
/* Machine-check banks (mce.h), with KVM's checks in KVM's order. */
#include <errno.h>
#include <string.h>

#include "mce.h"

#define MSR_P5_MC_ADDR 0x0u
#define MSR_P5_MC_TYPE 0x1u
#define MSR_MCG_CAP 0x179u
#define MSR_MCG_STATUS 0x17au
#define MSR_MCG_CTL 0x17bu
#define MSR_MC0_CTL2 0x280u
#define MSR_MC0_CTL 0x400u

#define MCI_CTL2_CMCI_EN (1ULL << 30)
#define MCI_CTL2_THRESHOLD 0x7fffULL

#define MCI_STATUS_VAL (1ULL << 63)
#define MCI_STATUS_OVER (1ULL << 62)
#define MCI_STATUS_UC (1ULL << 61)
#define MCI_STATUS_PCC (1ULL << 57)
#define MCI_STATUS_S (1ULL << 56)
#define MCI_STATUS_AR (1ULL << 55)
#define MCG_STATUS_MCIP (1ULL << 2)

/* MCG_CAP[7:0] is the bank count (SDM 15.3.1.1). */
static inline unsigned int nbanks(const struct gmem_mce *m)
{
	return m->mcg_cap & 0xff;
}

void gmem_mce_init(struct gmem_mce *m)
{
	memset(m, 0, sizeof(*m));
	/*
	 * KVM_X86_SETUP_MCE has not run: the most banks, no MCG_CTL, no CMCI.
	 */
	m->mcg_cap = GMEM_MCE_MAX_BANKS;
}

int gmem_mce_setup(struct gmem_mce *m, uint64_t cap)
{
	unsigned int n = cap & 0xff;

	if (!n || n > GMEM_MCE_MAX_BANKS)
		return -EINVAL;
	/*
	 * Only the capability bits KVM supports, plus the count and the
	 * extended-register count field (bits 23:16) that KVM lets through.
	 */
	if (cap & ~(GMEM_MCE_CAP_SUPPORTED | 0xff | 0xff0000))
		return -EINVAL;
	m->mcg_cap = cap;
	/* KVM starts with reporting enabled in every bank. */
	if (cap & GMEM_MCG_CTL_P)
		m->mcg_ctl = ~0ULL;
	for (unsigned int b = 0; b < n; b++) {
		m->banks[b * 4] = ~0ULL;
		if (cap & GMEM_MCG_CMCI_P)
			m->ctl2[b] = 0;
	}
	return 0;
}

int gmem_mce_rdmsr(const struct gmem_mce *m, uint32_t msr, uint64_t *v,
		   bool host)
{
	switch (msr) {
	/* The P5 MSRs are read as 0 and refused on write, as KVM does. */
	case MSR_P5_MC_ADDR:
	case MSR_P5_MC_TYPE:
		*v = 0;
		return 0;
	case MSR_MCG_CAP:
		*v = m->mcg_cap;
		return 0;
	case MSR_MCG_CTL:
		/* Without MCG_CTL_P only the host may read it (a save). */
		if (!(m->mcg_cap & GMEM_MCG_CTL_P) && !host)
			return 1;
		*v = m->mcg_ctl;
		return 0;
	case MSR_MCG_STATUS:
		*v = m->mcg_status;
		return 0;
	}
	/* MCi_CTL2 (CMCI control), one per bank from 0x280. */
	if (msr >= MSR_MC0_CTL2 && msr < MSR_MC0_CTL2 + GMEM_MCE_MAX_BANKS) {
		if (msr - MSR_MC0_CTL2 >= nbanks(m))
			return 1;
		if (!(m->mcg_cap & GMEM_MCG_CMCI_P) && !host)
			return 1;
		*v = m->ctl2[msr - MSR_MC0_CTL2];
		return 0;
	}
	/* Four MSRs per bank from 0x400: CTL, STATUS, ADDR, MISC. */
	if (msr >= MSR_MC0_CTL && msr < MSR_MC0_CTL + 4 * GMEM_MCE_MAX_BANKS) {
		if (msr - MSR_MC0_CTL >= 4 * nbanks(m))
			return 1;
		*v = m->banks[msr - MSR_MC0_CTL];
		return 0;
	}
	/* -1: not a machine-check MSR; 1: one that faults (#GP). */
	return -1;
}

int gmem_mce_wrmsr(struct gmem_mce *m, uint32_t msr, uint64_t v, bool host,
		   bool status_wren)
{
	switch (msr) {
	case MSR_MCG_STATUS:
		/*
		 * Whatever is written: the guest clears MCIP when its handler
		 * is done.
		 */
		m->mcg_status = v;
		return 0;
	case MSR_MCG_CTL:
		/*
		 * Without MCG_CTL_P only the host's restore of 0 is accepted.
		 */
		if (!(m->mcg_cap & GMEM_MCG_CTL_P) && (v || !host))
			return 1;
		if (v != 0 && v != ~0ULL)
			return 1;
		m->mcg_ctl = v;
		return 0;
	case MSR_P5_MC_ADDR:
	case MSR_P5_MC_TYPE:
	/* MCG_CAP is set by KVM_X86_SETUP_MCE, never by WRMSR. */
	case MSR_MCG_CAP:
		return 1;
	}
	if (msr >= MSR_MC0_CTL2 && msr < MSR_MC0_CTL2 + GMEM_MCE_MAX_BANKS) {
		if (msr - MSR_MC0_CTL2 >= nbanks(m))
			return 1;
		/*
		 * Without CMCI the host may still write 0 (a restore of the
		 * default).
		 */
		if (!(m->mcg_cap & GMEM_MCG_CMCI_P) && (v || !host))
			return 1;
		if (v & ~(MCI_CTL2_CMCI_EN | MCI_CTL2_THRESHOLD))
			return 1;
		m->ctl2[msr - MSR_MC0_CTL2] = v;
		return 0;
	}
	if (msr >= MSR_MC0_CTL && msr < MSR_MC0_CTL + 4 * GMEM_MCE_MAX_BANKS) {
		unsigned int i = msr - MSR_MC0_CTL;

		if (i >= 4 * nbanks(m))
			return 1;
		/* MCi_CTL: 0 or all ones (bits 10 and 0 may be clear). */
		if (i % 4 == 0 && v && (v | (1ULL << 10) | 1) != ~0ULL)
			return 1;
		/* MCi_STATUS: the guest may only clear it, unless AMD lets. */
		if (i % 4 == 1 && !host && v && !status_wren)
			return 1;
		m->banks[i] = v;
		return 0;
	}
	return -1;
}

int gmem_mce_inject(struct gmem_mce *m, const struct kvm_x86_mce *mce,
		    bool cr4_mce)
{
	uint64_t *b, status = mce->status;

	/* Like KVM_X86_SET_MCE: the bank must exist and the record be valid. */
	if (mce->bank >= nbanks(m) || !(status & MCI_STATUS_VAL))
		return -EINVAL;
	b = &m->banks[4 * mce->bank];
	/* A UCNA (uncorrected, no action): logged, and signalled by CMCI. */
	if (!mce->mcg_status && (status & MCI_STATUS_UC) &&
	    !(status & (MCI_STATUS_PCC | MCI_STATUS_S | MCI_STATUS_AR))) {
		b[1] = status;
		b[2] = mce->addr;
		b[3] = mce->misc;
		m->mcg_status = mce->mcg_status;
		return (m->mcg_cap & GMEM_MCG_CMCI_P) &&
				       (m->ctl2[mce->bank] & MCI_CTL2_CMCI_EN)
			       ? GMEM_MCE_CMCI
			       : GMEM_MCE_LOGGED;
	}
	if (status & MCI_STATUS_UC) {
		/* Uncorrected reporting off, globally or for the bank. */
		if ((m->mcg_cap & GMEM_MCG_CTL_P) && m->mcg_ctl != ~0ULL)
			return GMEM_MCE_LOGGED;
		if (b[0] != ~0ULL)
			return GMEM_MCE_LOGGED;
		/*
		 * The guest has MCIP set or CR4.MCE clear: a second #MC, or one
		 * the guest cannot take, shuts the machine down.
		 */
		if ((m->mcg_status & MCG_STATUS_MCIP) || !cr4_mce)
			return GMEM_MCE_SHUTDOWN;
		/*
		 * A still-valid record in the bank is overwritten: say so with
		 * OVER.
		 */
		if (b[1] & MCI_STATUS_VAL)
			status |= MCI_STATUS_OVER;
		b[2] = mce->addr;
		b[3] = mce->misc;
		m->mcg_status = mce->mcg_status;
		b[1] = status;
		return GMEM_MCE_MC;
	}
	/* Corrected: logged unless an uncorrected one is there already. */
	/*
	 * A corrected error never replaces an uncorrected one still in the
	 * bank.
	 */
	if (!(b[1] & MCI_STATUS_VAL) || !(b[1] & MCI_STATUS_UC)) {
		if (b[1] & MCI_STATUS_VAL)
			status |= MCI_STATUS_OVER;
		b[2] = mce->addr;
		b[3] = mce->misc;
		b[1] = status;
	} else {
		b[1] |= MCI_STATUS_OVER;
	}
	return GMEM_MCE_LOGGED;
}
