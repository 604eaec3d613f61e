// SPDX-License-Identifier: MIT
/*
 * Machine-check banks (src/mce.c) against x86.c's rules: KVM_X86_SETUP_MCE
 * checks, the MCG/MCi MSRs for guest and host, and what KVM_X86_SET_MCE
 * does with a UCNA, an uncorrected and a corrected error.  The CMCI
 * delivery through the APIC is the kernel's ucna_injection_test.
 */
#include <errno.h>

#include "tap.h"

#include "mce.h"

#define VAL (1ULL << 63)
#define OVER (1ULL << 62)
#define UC (1ULL << 61)
#define PCC (1ULL << 57)
#define CTL2(b) (0x280u + (b))
#define CTL(b) (0x400u + 4 * (b))
#define STATUS(b) (0x401u + 4 * (b))

static void test_setup_and_msrs(void)
{
	struct gmem_mce m;
	uint64_t v;

	gmem_mce_init(&m);
	CHECK_EQ(gmem_mce_rdmsr(&m, 0x179, &v, false), 0);
	CHECK_EQ(v, 32u);
	CHECK_EQ(gmem_mce_setup(&m, 0), -EINVAL);
	CHECK_EQ(gmem_mce_setup(&m, 33), -EINVAL);
	CHECK_EQ(gmem_mce_setup(&m, 4 | (1ULL << 11)), -EINVAL); /* TES_P */
	/* Without CTL_P or CMCI_P: MCG_CTL and CTL2 #GP for the guest. */
	CHECK_EQ(gmem_mce_setup(&m, 4), 0);
	CHECK_EQ(gmem_mce_rdmsr(&m, 0x17b, &v, false), 1);
	CHECK_EQ(gmem_mce_rdmsr(&m, 0x17b, &v, true), 0);
	CHECK_EQ(gmem_mce_wrmsr(&m, 0x17b, 0, true, false), 0);
	CHECK_EQ(gmem_mce_wrmsr(&m, 0x17b, 0, false, false), 1);
	CHECK_EQ(gmem_mce_wrmsr(&m, CTL2(0), 1ULL << 30, false, false), 1);
	CHECK_EQ(gmem_mce_wrmsr(&m, CTL2(0), 0, true, false), 0);
	/* Banks: MCi_CTL at all ones after setup, past the count #GP. */
	CHECK_EQ(gmem_mce_rdmsr(&m, CTL(3), &v, false), 0);
	CHECK_EQ(v, ~0ULL);
	CHECK_EQ(gmem_mce_rdmsr(&m, CTL(4), &v, false), 1);
	CHECK_EQ(gmem_mce_wrmsr(&m, CTL(1), 0x1234, false, false), 1);
	CHECK_EQ(
		gmem_mce_wrmsr(&m, CTL(1), ~0ULL & ~(1ULL << 10), false, false),
		0);
	/* MCi_STATUS: the guest clears it; sets only with McStatusWrEn. */
	CHECK_EQ(gmem_mce_wrmsr(&m, STATUS(1), 5, false, false), 1);
	CHECK_EQ(gmem_mce_wrmsr(&m, STATUS(1), 5, false, true), 0);
	CHECK_EQ(gmem_mce_wrmsr(&m, STATUS(1), 6, true, false), 0);
	CHECK_EQ(gmem_mce_wrmsr(&m, STATUS(1), 0, false, false), 0);
	/* MCG_CAP is read-only; not an MCE MSR at all: -1. */
	CHECK_EQ(gmem_mce_wrmsr(&m, 0x179, 4, true, false), 1);
	CHECK_EQ(gmem_mce_rdmsr(&m, 0x10, &v, true), -1);
	/* With CTL_P and CMCI_P: MCG_CTL all ones, CTL2's reserved bits. */
	CHECK_EQ(gmem_mce_setup(&m, 8 | GMEM_MCG_CTL_P | GMEM_MCG_CMCI_P), 0);
	CHECK_EQ(gmem_mce_rdmsr(&m, 0x17b, &v, false), 0);
	CHECK_EQ(v, ~0ULL);
	CHECK_EQ(gmem_mce_wrmsr(&m, 0x17b, 1, false, false), 1);
	CHECK_EQ(gmem_mce_wrmsr(&m, CTL2(7), (1ULL << 30) | 5, false, false),
		 0);
	CHECK_EQ(gmem_mce_wrmsr(&m, CTL2(7), 1ULL << 29, false, false), 1);
	CHECK_EQ(gmem_mce_wrmsr(&m, CTL2(8), 0, false, false), 1);
	tap_result("KVM_X86_SETUP_MCE and the MCG/MCi MSRs' rules");
}

static void test_inject(void)
{
	struct gmem_mce m;
	struct kvm_x86_mce e = {.status = VAL | UC, .addr = 0x1000, .bank = 2};
	uint64_t v;

	gmem_mce_init(&m);
	REQUIRE(gmem_mce_setup(&m, 4 | GMEM_MCG_CTL_P | GMEM_MCG_CMCI_P) == 0);
	CHECK_EQ(gmem_mce_inject(
			 &m, &(struct kvm_x86_mce){.status = VAL, .bank = 4},
			 true),
		 -EINVAL);
	CHECK_EQ(gmem_mce_inject(&m, &(struct kvm_x86_mce){.status = UC}, true),
		 -EINVAL);
	/* A UCNA: logged, and CMCI only once CTL2.CMCI_EN is set. */
	CHECK_EQ(gmem_mce_inject(&m, &e, true), GMEM_MCE_LOGGED);
	gmem_mce_rdmsr(&m, 0x402 + 8, &v, false);
	CHECK_EQ(v, 0x1000u);
	gmem_mce_wrmsr(&m, CTL2(2), 1ULL << 30, false, false);
	CHECK_EQ(gmem_mce_inject(&m, &e, true), GMEM_MCE_CMCI);
	/* Uncorrected with PCC: #MC, OVER on the second, shutdown without
	 * CR4.MCE or while MCIP is set. */
	e.status = VAL | UC | PCC;
	e.bank = 1;
	CHECK_EQ(gmem_mce_inject(&m, &e, false), GMEM_MCE_SHUTDOWN);
	CHECK_EQ(gmem_mce_inject(&m, &e, true), GMEM_MCE_MC);
	CHECK_EQ(gmem_mce_inject(&m, &e, true), GMEM_MCE_MC);
	gmem_mce_rdmsr(&m, STATUS(1), &v, false);
	CHECK_EQ(v, VAL | UC | PCC | OVER);
	e.mcg_status = 1ULL << 2; /* MCIP */
	CHECK_EQ(gmem_mce_inject(&m, &e, true), GMEM_MCE_MC);
	CHECK_EQ(gmem_mce_inject(&m, &e, true), GMEM_MCE_SHUTDOWN);
	/* Reporting off for the bank: logged nowhere, nothing raised. */
	gmem_mce_wrmsr(&m, CTL(0), 0, false, false);
	e.bank = 0;
	e.mcg_status = 0;
	CHECK_EQ(gmem_mce_inject(&m, &e, true), GMEM_MCE_LOGGED);
	gmem_mce_rdmsr(&m, STATUS(0), &v, false);
	CHECK_EQ(v, 0u);
	/* Corrected: logged, OVER on a second; kept under an uncorrected. */
	e.status = VAL | 0x17;
	e.bank = 3;
	CHECK_EQ(gmem_mce_inject(&m, &e, true), GMEM_MCE_LOGGED);
	CHECK_EQ(gmem_mce_inject(&m, &e, true), GMEM_MCE_LOGGED);
	gmem_mce_rdmsr(&m, STATUS(3), &v, false);
	CHECK_EQ(v, VAL | OVER | 0x17);
	e.bank = 1;
	CHECK_EQ(gmem_mce_inject(&m, &e, true), GMEM_MCE_LOGGED);
	gmem_mce_rdmsr(&m, STATUS(1), &v, false);
	CHECK_EQ(v, VAL | UC | PCC | OVER);
	tap_result("KVM_X86_SET_MCE: UCNA, #MC, shutdown, corrected errors");
}

int main(void)
{
	tap_plan(2, 30);
	test_setup_and_msrs();
	test_inject();
	return tap_done();
}
