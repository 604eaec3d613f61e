// SPDX-License-Identifier: MIT
/*
 * The local APIC (src/lapic.c) on its own, with time passed in: the RESET
 * state; the IDs of both modes following IA32_APIC_BASE; which x2APIC MSR
 * accesses #GP; xAPIC MMIO widths, offsets and the hole when disabled;
 * priority (IRR above PPR, TPR, ISR and EOI); the software disable; the
 * timer's count, expiry and modes; IPI destinations (physical, logical
 * flat and cluster, x2APIC clusters, shorthands, broadcast) and the kick
 * of their targets; NMI, INIT and SIPI IPIs (counted and latched for the
 * vCPU, even with the APIC software-disabled); INIT's reset, which keeps
 * the ID; remote-read IPIs and KVM_HC_SEND_IPI's map; KVM_GET/SET_LAPIC's
 * x2APIC ID rules.  Guest-level behaviour is in the kernel's xapic and APIC
 * timer selftests.
 */
#include <errno.h>
#include <string.h>

#include "tap.h"

#include "ioapic.h"
#include "lapic.h"

#define BASE (GMEM_APIC_DEFAULT_BASE | GMEM_APIC_BASE_ENABLE)
#define X2 (BASE | GMEM_APIC_BASE_X2APIC)
#define MSR(off) (GMEM_MSR_X2APIC_FIRST + ((off) >> 4))
#define KICK 4

static int kicks[8], nmis[8];

static struct gmem_lapic *make(uint32_t id, uint64_t base)
{
	struct gmem_lapic *a;

	if (gmem_lapic_create(id, &kicks[id % 8], KICK, &nmis[id % 8], 1, &a))
		return NULL;
	gmem_lapic_reset(a, base, false);
	return a;
}

static uint32_t reg(struct gmem_lapic *a, unsigned int off)
{
	struct kvm_lapic_state s;
	uint32_t v;

	gmem_lapic_get_state(a, &s, true, 0);
	memcpy(&v, s.regs + off, 4);
	return v;
}

static uint32_t mmio_rd(struct gmem_lapic *a, unsigned int off)
{
	uint32_t v = 0;
	int ev;

	gmem_lapic_mmio(a, GMEM_APIC_DEFAULT_BASE + off, false, &v, 4, true, 0,
			&ev);
	return v;
}

static int mmio_wr(struct gmem_lapic *a, unsigned int off, uint32_t v,
		   uint64_t now)
{
	int ev;

	gmem_lapic_mmio(a, GMEM_APIC_DEFAULT_BASE + off, true, &v, 4, true, now,
			&ev);
	return ev;
}

static void sw_enable(struct gmem_lapic *a)
{
	mmio_wr(a, 0xf0, 0x1ff, 0);
}

static void test_reset_and_ids(void)
{
	struct gmem_lapic *a = make(3, BASE);
	uint64_t v;

	REQUIRE(a);
	CHECK_EQ(reg(a, 0x20), 3u << 24);
	CHECK_EQ(reg(a, 0x30), 0x50014u);
	CHECK_EQ(reg(a, 0xf0), 0xffu);
	CHECK_EQ(reg(a, 0xe0), 0xffffffffu);
	for (unsigned int off = 0x320; off <= 0x370; off += 0x10)
		CHECK_EQ(reg(a, off), 1u << 16);
	/* xAPIC: the ID is writable (bits 31:24), the MSRs #GP. */
	mmio_wr(a, 0x20, 0x12345678, 0);
	CHECK_EQ(mmio_rd(a, 0x20), 0x12000000u);
	CHECK_EQ(gmem_lapic_rdmsr(a, MSR(0x20), &v, 0), 1);
	/* x2APIC: the vCPU id, LDR cluster 0 bit 3, MMIO a hole. */
	gmem_lapic_set_base(a, X2);
	CHECK_EQ(gmem_lapic_rdmsr(a, MSR(0x20), &v, 0), 0);
	CHECK_EQ(v, 3u);
	CHECK_EQ(gmem_lapic_rdmsr(a, MSR(0xd0), &v, 0), 0);
	CHECK_EQ(v, 1u << 3);
	CHECK_EQ(mmio_rd(a, 0x30), 0xffffffffu);
	/* Back to xAPIC without disabling (KVM ABI): the xAPIC ID again. */
	gmem_lapic_set_base(a, BASE);
	CHECK_EQ(mmio_rd(a, 0x20), 3u << 24);
	/* Disabled: the page is a hole; enabling sets the xAPIC ID. */
	mmio_wr(a, 0x20, 0x7f000000, 0);
	gmem_lapic_set_base(a, GMEM_APIC_DEFAULT_BASE);
	CHECK_EQ(mmio_rd(a, 0x20), 0xffffffffu);
	gmem_lapic_set_base(a, BASE);
	CHECK_EQ(mmio_rd(a, 0x20), 3u << 24);
	gmem_lapic_destroy(a);
	tap_result("RESET state, and the ID following the APIC's mode");
}

static void test_msrs_and_mmio(void)
{
	struct gmem_lapic *a = make(1, X2);
	uint64_t v;
	uint16_t w = 0;
	int ev;

	REQUIRE(a);
	/* Read-only, write-only and absent registers, reserved bits. */
	CHECK_EQ(gmem_lapic_wrmsr(a, MSR(0x30), 0, 0), 1);   /* LVR */
	CHECK_EQ(gmem_lapic_wrmsr(a, MSR(0x20), 1, 0), 1);   /* ID */
	CHECK_EQ(gmem_lapic_rdmsr(a, MSR(0xb0), &v, 0), 1);  /* EOI */
	CHECK_EQ(gmem_lapic_rdmsr(a, MSR(0x3f0), &v, 0), 1); /* SELF */
	CHECK_EQ(gmem_lapic_rdmsr(a, MSR(0x310), &v, 0), 1); /* ICR2 */
	CHECK_EQ(gmem_lapic_rdmsr(a, MSR(0x40), &v, 0), 1);  /* absent */
	CHECK_EQ(gmem_lapic_wrmsr(a, MSR(0x80), 1ULL << 32, 0), 1);
	CHECK_EQ(gmem_lapic_wrmsr(a, MSR(0x280), 1, 0), 1); /* ESR */
	CHECK_EQ(gmem_lapic_wrmsr(a, MSR(0x280), 0, 0), 0);
	CHECK_EQ(gmem_lapic_wrmsr(a, MSR(0x3f0), 0x100, 0), 1);
	/* ICR: one 64-bit register; reserved bits #GP; BUSY dropped. */
	CHECK_EQ(gmem_lapic_wrmsr(a, MSR(0x300), 1ULL << 20, 0), 1);
	CHECK_EQ(gmem_lapic_wrmsr(a, MSR(0x300), 1ULL << 13, 0), 1);
	CHECK_EQ(gmem_lapic_wrmsr(a, MSR(0x300),
				  0x1234567800004000ULL | (1u << 12) | 0x30, 0),
		 GMEM_LAPIC_EVENT);
	CHECK_EQ(gmem_lapic_rdmsr(a, MSR(0x300), &v, 0), 0);
	CHECK_EQ(v, 0x1234567800004030ULL);
	CHECK_EQ(reg(a, 0x310), 0x12345678u);
	gmem_lapic_destroy(a);

	a = make(2, BASE);
	REQUIRE(a);
	/* xAPIC ICR2 keeps bits 31:24; ICR keeps all but BUSY. */
	mmio_wr(a, 0x310, 0xffffffff, 0);
	CHECK_EQ(mmio_rd(a, 0x310), 0xff000000u);
	mmio_wr(a, 0x300, 0xffff7fff & ~0x700u, 0);
	CHECK_EQ(mmio_rd(a, 0x300), 0xffff6fffu & ~0x700u);
	/* Writes that are not 32-bit and aligned do nothing. */
	w = 0xff;
	gmem_lapic_mmio(a, GMEM_APIC_DEFAULT_BASE + 0x80, true, &w, 2, true, 0,
			&ev);
	mmio_wr(a, 0x84, 0xff, 0);
	CHECK_EQ(mmio_rd(a, 0x80), 0u);
	/* A byte read within a register. */
	mmio_wr(a, 0x80, 0x5a, 0);
	w = 0;
	gmem_lapic_mmio(a, GMEM_APIC_DEFAULT_BASE + 0x80, false, &w, 1, true, 0,
			&ev);
	CHECK_EQ(w, 0x5a);
	/* Outside the page: not the APIC's. */
	CHECK(!gmem_lapic_mmio(a, GMEM_APIC_DEFAULT_BASE + 0x1000, false, &w, 2,
			       true, 0, &ev));
	CHECK(!gmem_lapic_mmio(a, GMEM_APIC_DEFAULT_BASE + 0xfff, false, &w, 2,
			       true, 0, &ev));
	/* Disabled, without the MMIO-hole quirk: not the APIC's page. */
	gmem_lapic_set_base(a, GMEM_APIC_DEFAULT_BASE);
	CHECK(!gmem_lapic_mmio(a, GMEM_APIC_DEFAULT_BASE + 0x20, false, &w, 2,
			       false, 0, &ev));
	CHECK(gmem_lapic_mmio(a, GMEM_APIC_DEFAULT_BASE + 0x20, false, &w, 2,
			      true, 0, &ev));
	/* LINT0_REENABLED: the BSP's LVT0 in ExtINT mode after RESET. */
	gmem_lapic_reset(a, BASE | GMEM_APIC_BASE_BSP, true);
	CHECK_EQ(reg(a, 0x350), 0x700u);
	gmem_lapic_destroy(a);
	tap_result("x2APIC MSR #GPs and masks, xAPIC MMIO widths");
}

static void test_priority(void)
{
	struct gmem_lapic *a = make(0, X2);
	uint64_t v;

	REQUIRE(a);
	/* Software-disabled: a self-IPI is not accepted. */
	gmem_lapic_wrmsr(a, MSR(0x3f0), 0x51, 0);
	CHECK_EQ(gmem_lapic_pending(a, 0), -1);
	gmem_lapic_wrmsr(a, MSR(0xf0), 0x1ff, 0);
	gmem_lapic_wrmsr(a, MSR(0x3f0), 0x31, 0);
	gmem_lapic_wrmsr(a, MSR(0x3f0), 0x51, 0);
	CHECK_EQ(gmem_lapic_pending(a, 0), 0x51);
	gmem_lapic_ack(a, 0x51);
	CHECK_EQ(reg(a, 0xa0), 0x50u); /* PPR from ISR */
	/* 0x31 is below the class in service. */
	CHECK_EQ(gmem_lapic_pending(a, 0), -1);
	CHECK_EQ(gmem_lapic_wrmsr(a, MSR(0xb0), 0, 0), GMEM_LAPIC_EVENT);
	CHECK_EQ(reg(a, 0x100 + 0x20), 0u);
	CHECK_EQ(gmem_lapic_pending(a, 0), 0x31);
	/* TPR: the class and below are held back; CR8 is TPR[7:4]. */
	gmem_lapic_wrmsr(a, MSR(0x80), 0x3f, 0);
	CHECK_EQ(gmem_lapic_pending(a, 0), -1);
	CHECK_EQ(gmem_lapic_get_cr8(a), 3u);
	gmem_lapic_set_cr8(a, 2);
	CHECK_EQ(gmem_lapic_rdmsr(a, MSR(0x80), &v, 0), 0);
	CHECK_EQ(v, 0x20u);
	CHECK_EQ(gmem_lapic_pending(a, 0), 0x31);
	/* Clearing the software enable masks every LVT entry. */
	gmem_lapic_wrmsr(a, MSR(0x350), 0x40, 0);
	gmem_lapic_wrmsr(a, MSR(0xf0), 0xff, 0);
	CHECK_EQ(reg(a, 0x350), 0x10040u);
	gmem_lapic_wrmsr(a, MSR(0x350), 0x40, 0);
	CHECK_EQ(reg(a, 0x350), 0x10040u);
	gmem_lapic_destroy(a);
	tap_result("IRR above PPR, ISR and EOI, TPR and CR8, software disable");
}

static void test_timer(void)
{
	struct gmem_lapic *a = make(0, BASE);
	uint64_t t0 = 1000000;

	REQUIRE(a);
	sw_enable(a);
	/* One-shot, divide by 1 (TDCR 0xb), 1 ns per bus cycle. */
	mmio_wr(a, 0x320, 0x40, t0);
	mmio_wr(a, 0x3e0, 0xb, t0);
	mmio_wr(a, 0x380, 5000, t0);
	CHECK_EQ(gmem_lapic_next_timer(a), t0 + 5000);
	{
		uint32_t c;
		int ev;

		gmem_lapic_mmio(a, GMEM_APIC_DEFAULT_BASE + 0x390, false, &c, 4,
				true, t0 + 1500, &ev);
		CHECK_EQ(c, 3500u);
	}
	CHECK_EQ(gmem_lapic_pending(a, t0 + 4999), -1);
	CHECK_EQ(gmem_lapic_pending(a, t0 + 5000), 0x40);
	CHECK_EQ(gmem_lapic_next_timer(a), UINT64_MAX);
	gmem_lapic_ack(a, 0x40);
	mmio_wr(a, 0xb0, 0, t0);
	/* Divide by 2 (TDCR 0): the count runs at half the rate. */
	mmio_wr(a, 0x3e0, 0, t0);
	mmio_wr(a, 0x380, 1000, t0);
	CHECK_EQ(gmem_lapic_next_timer(a), t0 + 2000);
	/* Periodic, at KVM's 200 us floor; masked: runs, delivers nothing. */
	mmio_wr(a, 0x320, 0x10041 | (1u << 17), t0);
	mmio_wr(a, 0x380, 10, t0);
	CHECK_EQ(gmem_lapic_next_timer(a), t0 + 200000);
	CHECK_EQ(gmem_lapic_pending(a, t0 + 200000), -1);
	CHECK_EQ(gmem_lapic_next_timer(a), t0 + 400000);
	/* Missed periods come as one interrupt, the phase kept. */
	mmio_wr(a, 0x320, 0x41 | (1u << 17), t0);
	CHECK_EQ(gmem_lapic_pending(a, t0 + 1000000 + 50), 0x41);
	CHECK_EQ(gmem_lapic_next_timer(a), t0 + 1200000);
	/* TSC-deadline mode needs CPUID's bit; entering it stops the timer. */
	mmio_wr(a, 0x320, 0x42 | (2u << 17), t0);
	CHECK_EQ(mmio_rd(a, 0x320) & (3u << 17), 0u);
	gmem_lapic_set_tsc_deadline_cap(a, true);
	mmio_wr(a, 0x320, 0x42 | (2u << 17), t0);
	CHECK_EQ(mmio_rd(a, 0x380), 0u);
	CHECK_EQ(gmem_lapic_next_timer(a), UINT64_MAX);
	mmio_wr(a, 0x380, 77, t0); /* ignored in this mode */
	CHECK_EQ(mmio_rd(a, 0x380), 0u);
	gmem_lapic_set_tsc_deadline(a, 123456, t0 + 777);
	CHECK_EQ(gmem_lapic_get_tsc_deadline(a), 123456u);
	CHECK_EQ(gmem_lapic_pending(a, t0 + 776), 0x41); /* still in IRR */
	gmem_lapic_ack(a, 0x41);
	mmio_wr(a, 0xb0, 0, t0);
	CHECK_EQ(gmem_lapic_pending(a, t0 + 777), 0x42);
	CHECK_EQ(gmem_lapic_get_tsc_deadline(a), 0u);
	gmem_lapic_destroy(a);
	tap_result("timer: count, expiry, divider, periodic floor, deadline");
}

static void test_ipis(void)
{
	struct gmem_apic_map m;
	struct gmem_lapic *a[4];

	REQUIRE(gmem_apic_map_init(&m) == 0);
	for (uint32_t i = 0; i < 4; i++) {
		a[i] = make(i, BASE);
		REQUIRE(a[i]);
		sw_enable(a[i]);
		REQUIRE(gmem_apic_map_add(&m, a[i]) == 0);
		kicks[i] = 0;
	}
	/* Physical: only APIC 2, which is kicked. */
	mmio_wr(a[0], 0x310, 2u << 24, 0);
	CHECK_EQ(mmio_wr(a[0], 0x300, 0x4060, 0), 1);
	CHECK_EQ(gmem_lapic_pending(a[2], 0), 0x60);
	CHECK_EQ(kicks[2], KICK);
	CHECK_EQ(gmem_lapic_pending(a[1], 0) + gmem_lapic_pending(a[3], 0), -2);
	/* Flat logical: LDR bits 1 and 3 set on APICs 1 and 3. */
	mmio_wr(a[1], 0xd0, 0x02000000, 0);
	mmio_wr(a[3], 0xd0, 0x08000000, 0);
	mmio_wr(a[0], 0x310, 0x0a000000, 0);
	mmio_wr(a[0], 0x300, 0x4861, 0);
	CHECK_EQ(gmem_lapic_pending(a[1], 0), 0x61);
	CHECK_EQ(gmem_lapic_pending(a[3], 0), 0x61);
	CHECK_EQ(gmem_lapic_pending(a[2], 0), 0x60);
	/* Cluster logical: cluster 1, member 1, on APIC 3 only. */
	mmio_wr(a[3], 0xe0, 0x0fffffff, 0);
	mmio_wr(a[3], 0xd0, 0x11000000, 0);
	mmio_wr(a[1], 0xe0, 0x0fffffff, 0);
	mmio_wr(a[1], 0xd0, 0x21000000, 0);
	mmio_wr(a[0], 0x310, 0x11000000, 0);
	mmio_wr(a[0], 0x300, 0x4870, 0);
	CHECK_EQ(gmem_lapic_pending(a[3], 0), 0x70);
	CHECK_EQ(gmem_lapic_pending(a[1], 0), 0x61);
	/* All but self, and broadcast: everyone else / everyone. */
	mmio_wr(a[0], 0x300, 0xc4080, 0);
	CHECK_EQ(gmem_lapic_pending(a[0], 0), -1);
	CHECK_EQ(gmem_lapic_pending(a[2], 0), 0x80);
	mmio_wr(a[0], 0x310, 0xff000000, 0);
	mmio_wr(a[0], 0x300, 0x4090, 0);
	CHECK_EQ(gmem_lapic_pending(a[0], 0), 0x90);
	CHECK_EQ(gmem_lapic_pending(a[1], 0), 0x90);
	/* Not accepted: a level deassert, SMI, a disabled APIC. */
	mmio_wr(a[0], 0x310, 2u << 24, 0);
	mmio_wr(a[0], 0x300, 0x80a0, 0);
	mmio_wr(a[0], 0x300, 0x42a1, 0);
	gmem_lapic_set_base(a[2], GMEM_APIC_DEFAULT_BASE);
	mmio_wr(a[0], 0x300, 0x40a2, 0);
	gmem_lapic_set_base(a[2], BASE);
	CHECK_EQ(gmem_lapic_pending(a[2], 0), 0x90);
	CHECK_EQ(nmis[2], 0);
	/* x2APIC: 32-bit destination, cluster LDR from the id. */
	gmem_lapic_set_base(a[0], X2);
	gmem_lapic_set_base(a[3], X2);
	gmem_lapic_wrmsr(a[0], MSR(0x300), (3ULL << 32) | 0x40b0, 0);
	CHECK_EQ(gmem_lapic_pending(a[3], 0), 0xb0);
	gmem_lapic_wrmsr(a[0], MSR(0x300), ((1ULL << 3) << 32) | 0x48c0, 0);
	CHECK_EQ(gmem_lapic_pending(a[3], 0), 0xc0);
	for (int i = 0; i < 4; i++) {
		gmem_apic_map_remove(&m, a[i]);
		gmem_lapic_destroy(a[i]);
	}
	gmem_apic_map_destroy(&m);
	tap_result("IPIs: physical, flat and cluster logical, x2APIC, "
		   "shorthands, broadcast, refusals");
}

/*
 * NMI, INIT and SIPI IPIs go to the vCPU, not to IRR: an NMI counts in
 * its queue, INIT replaces what was latched, SIPI adds itself and its
 * vector; all with the APIC software-disabled, each target kicked.
 */
static void test_nmi_init_sipi(void)
{
	struct gmem_apic_map m;
	struct gmem_lapic *a[3];
	uint8_t vec = 0;

	REQUIRE(gmem_apic_map_init(&m) == 0);
	for (uint32_t i = 0; i < 3; i++) {
		a[i] = make(i, BASE);
		REQUIRE(a[i]);
		REQUIRE(gmem_apic_map_add(&m, a[i]) == 0);
		kicks[i] = nmis[i] = 0;
	}
	sw_enable(a[0]);
	/* NMI to APIC 1 (software-disabled), twice; then to all but self. */
	mmio_wr(a[0], 0x310, 1u << 24, 0);
	CHECK_EQ(mmio_wr(a[0], 0x300, 0x4400, 0), 1);
	mmio_wr(a[0], 0x300, 0x4400, 0);
	CHECK_EQ(nmis[1], 2);
	CHECK_EQ(kicks[1], KICK);
	mmio_wr(a[0], 0x300, 0xc4400, 0);
	CHECK(nmis[0] == 0 && nmis[1] == 3 && nmis[2] == 1);
	CHECK_EQ(gmem_lapic_pending(a[1], 0), -1);
	/* A self NMI through the shorthand. */
	mmio_wr(a[0], 0x300, 0x44400, 0);
	CHECK_EQ(nmis[0], 1);

	/* SIPI then INIT: the INIT replaces it.  Then a SIPI adds itself. */
	mmio_wr(a[0], 0x310, 2u << 24, 0);
	mmio_wr(a[0], 0x300, 0x4612, 0);
	CHECK_EQ(gmem_lapic_init_sipi(a[2]), GMEM_LAPIC_SIPI);
	kicks[2] = 0;
	mmio_wr(a[0], 0x300, 0x4500, 0);
	CHECK_EQ(kicks[2], KICK);
	CHECK_EQ(gmem_lapic_init_sipi(a[2]), GMEM_LAPIC_INIT);
	mmio_wr(a[0], 0x300, 0x4634, 0);
	CHECK_EQ(gmem_lapic_take_init_sipi(a[2], &vec),
		 GMEM_LAPIC_INIT | GMEM_LAPIC_SIPI);
	CHECK_EQ(vec, 0x34);
	CHECK_EQ(gmem_lapic_init_sipi(a[2]), 0);
	/* An INIT level de-assert is dropped; a level assert is taken. */
	mmio_wr(a[0], 0x300, 0x8500, 0);
	CHECK_EQ(gmem_lapic_init_sipi(a[2]), 0);
	mmio_wr(a[0], 0x300, 0xc500, 0);
	CHECK_EQ(gmem_lapic_init_sipi(a[2]), GMEM_LAPIC_INIT);
	gmem_lapic_latch(a[2], GMEM_LAPIC_INIT, false);
	CHECK_EQ(gmem_lapic_init_sipi(a[2]), 0);

	/* INIT's reset: LVTs masked, IRR cleared, the written ID kept. */
	mmio_wr(a[1], 0x20, 7u << 24, 0);
	mmio_wr(a[1], 0x350, 0x30, 0);
	gmem_lapic_init(a[1], false);
	CHECK_EQ(reg(a[1], 0x20), 7u << 24);
	CHECK_EQ(reg(a[1], 0x350), 1u << 16);
	CHECK_EQ(reg(a[1], 0xf0), 0xffu);
	gmem_lapic_reset(a[1], BASE, false);
	CHECK_EQ(reg(a[1], 0x20), 1u << 24);
	for (int i = 0; i < 3; i++) {
		gmem_apic_map_remove(&m, a[i]);
		gmem_lapic_destroy(a[i]);
	}
	gmem_apic_map_destroy(&m);
	tap_result("NMI, INIT and SIPI IPIs: counted and latched for the "
		   "vCPU; INIT's reset keeps the ID");
}

/*
 * A remote-read IPI (KVM_HC_KICK_CPU's) sets the target's unhalt flag,
 * software-disabled or not; KVM_HC_SEND_IPI's map reaches the APIC IDs
 * min + bit, fixed vectors only where software-enabled, and counts.
 */
static void test_pv_ipis(void)
{
	struct gmem_apic_map m;
	struct gmem_lapic *a[3];
	uint64_t map[2];

	REQUIRE(gmem_apic_map_init(&m) == 0);
	for (uint32_t i = 0; i < 3; i++) {
		a[i] = make(i, BASE);
		REQUIRE(a[i]);
		REQUIRE(gmem_apic_map_add(&m, a[i]) == 0);
		kicks[i] = 0;
	}
	sw_enable(a[0]);
	sw_enable(a[2]);
	mmio_wr(a[0], 0x310, 1u << 24, 0);
	mmio_wr(a[0], 0x300, 0x4300, 0); /* remote read, to APIC 1 */
	CHECK(gmem_lapic_unhalted(a[1]));
	CHECK(!gmem_lapic_unhalted(a[0]) && !gmem_lapic_unhalted(a[2]));
	CHECK_EQ(kicks[1], KICK);
	gmem_lapic_clear_unhalt(a[1]);
	CHECK(!gmem_lapic_unhalted(a[1]));

	/* Bits 0 and 2 from APIC 0: APICs 0 and 2, vector 0x61. */
	map[0] = 5;
	map[1] = 0;
	CHECK_EQ(gmem_apic_map_send_pv(&m, map, 0, 0x61), 2);
	CHECK_EQ(gmem_lapic_pending(a[0], 0), 0x61);
	CHECK_EQ(gmem_lapic_pending(a[2], 0), 0x61);
	CHECK_EQ(gmem_lapic_pending(a[1], 0), -1);
	/* APIC 1 is software-disabled: a fixed vector is not taken. */
	map[0] = 1;
	CHECK_EQ(gmem_apic_map_send_pv(&m, map, 1, 0x62), 0);
	/* The high word: min + 64 on, a u32 (wrapping, as KVM's). */
	map[0] = 0;
	map[1] = 1;
	CHECK_EQ(gmem_apic_map_send_pv(&m, map, 0, 0x62), 0);
	CHECK_EQ(gmem_apic_map_send_pv(&m, map, (uint32_t)-63, 0x300), 1);
	CHECK(gmem_lapic_unhalted(a[1]));
	for (int i = 0; i < 3; i++) {
		gmem_apic_map_remove(&m, a[i]);
		gmem_lapic_destroy(a[i]);
	}
	gmem_apic_map_destroy(&m);
	tap_result("remote-read IPIs unhalt; KVM_HC_SEND_IPI's APIC-ID map");
}

static void test_state(void)
{
	struct gmem_lapic *a = make(5, X2);
	struct kvm_lapic_state s;
	uint32_t v;

	REQUIRE(a);
	/* Without USE_32BIT_IDS the x2APIC ID reads shifted, any is taken. */
	gmem_lapic_get_state(a, &s, false, 0);
	memcpy(&v, s.regs + 0x20, 4);
	CHECK_EQ(v, 5u << 24);
	v = 9u << 24;
	memcpy(s.regs + 0x20, &v, 4);
	CHECK_EQ(gmem_lapic_set_state(a, &s, false, 0), 0);
	CHECK_EQ(reg(a, 0x20), 5u);
	/* With it, a mismatched ID is -EINVAL. */
	v = 9;
	memcpy(s.regs + 0x20, &v, 4);
	CHECK_EQ(gmem_lapic_set_state(a, &s, true, 0), -EINVAL);
	v = 5;
	memcpy(s.regs + 0x20, &v, 4);
	/* IRR, TPR and a running count come back. */
	v = 1u << 3;
	memcpy(s.regs + 0x200 + 0x30, &v, 4); /* vector 0x63 */
	v = 0xffu | 0x100;
	memcpy(s.regs + 0xf0, &v, 4);
	v = 0x50;
	memcpy(s.regs + 0x320, &v, 4);
	v = 0xb;
	memcpy(s.regs + 0x3e0, &v, 4);
	v = 1000;
	memcpy(s.regs + 0x380, &v, 4);
	v = 400;
	memcpy(s.regs + 0x390, &v, 4);
	CHECK_EQ(gmem_lapic_set_state(a, &s, true, 100), 0);
	CHECK_EQ(gmem_lapic_pending(a, 100), 0x63);
	CHECK_EQ(gmem_lapic_next_timer(a), 500u);
	gmem_lapic_get_state(a, &s, true, 200);
	memcpy(&v, s.regs + 0x390, 4);
	CHECK_EQ(v, 300u);
	gmem_lapic_destroy(a);
	tap_result("KVM_GET/SET_LAPIC: x2APIC ID formats, IRR and the timer");
}

/* The IOAPIC's bus in these tests: the messages, and what answers. */
static struct {
	int n, answer, acks;
	uint32_t dest, lo;
	unsigned int acked;
} bus;

static void bus_ack(void *ctx, unsigned int pin)
{
	(void)ctx;
	bus.acks++;
	bus.acked = pin;
}

static int bus_deliver(void *ctx, uint32_t dest, uint32_t lo)
{
	(void)ctx;
	bus.n++;
	bus.dest = dest;
	bus.lo = lo;
	return bus.answer;
}

static uint32_t io_rd(struct gmem_ioapic *io, uint32_t sel)
{
	uint32_t v = 0;

	gmem_ioapic_mmio(io, GMEM_IOAPIC_BASE, true, &sel, 4);
	gmem_ioapic_mmio(io, GMEM_IOAPIC_BASE + 0x10, false, &v, 4);
	return v;
}

static void io_wr(struct gmem_ioapic *io, uint32_t sel, uint32_t v)
{
	gmem_ioapic_mmio(io, GMEM_IOAPIC_BASE, true, &sel, 4);
	gmem_ioapic_mmio(io, GMEM_IOAPIC_BASE + 0x10, true, &v, 4);
}

/*
 * The IOAPIC (KVM's ioapic.c): its registers, edge and level pins with
 * KVM_IRQ_LINE's statuses, Remote IRR and the level EOI's resend.
 */
static void test_ioapic(void)
{
	struct gmem_ioapic io;
	uint32_t v = 0;

	REQUIRE(gmem_ioapic_init(
			&io, &(struct gmem_ioapic_bus){.deliver = bus_deliver,
						       .ack = bus_ack}) == 0);
	bus.answer = 1;
	CHECK_EQ(io_rd(&io, 1), 0x170011u);
	io_wr(&io, 0, 0x0f000000u);
	CHECK_EQ(io_rd(&io, 0), 0x0f000000u);
	CHECK_EQ(io_rd(&io, 0x10 + 2 * 7), 1u << 16); /* masked at reset */
	CHECK_EQ(io_rd(&io, 0x10 + 2 * 24), ~0u);     /* past the table */
	CHECK(!gmem_ioapic_mmio(&io, GMEM_IOAPIC_BASE + 0x100, false, &v, 4));
	/* Masked: nothing goes out, status -1. */
	CHECK_EQ(gmem_ioapic_set_irq(&io, 3, 0, true), -1);
	CHECK_EQ(bus.n, 0);
	/* Edge pin 3: vector 0x30, logical, destination 0x22. */
	io_wr(&io, 0x10 + 2 * 3 + 1, 0x22000000u);
	io_wr(&io, 0x10 + 2 * 3, 0x0830);
	CHECK_EQ(bus.n, 0); /* unmasking an edge line sends nothing */
	CHECK_EQ(gmem_ioapic_set_irq(&io, 3, 0, false), 1);
	CHECK_EQ(gmem_ioapic_set_irq(&io, 3, 0, true), 1);
	CHECK_EQ(bus.n, 1);
	CHECK_EQ(bus.dest, 0x22u);
	CHECK_EQ(bus.lo, 0x4830u);
	CHECK_EQ(gmem_ioapic_set_irq(&io, 3, 0, true), 0); /* no new edge */
	CHECK_EQ(bus.n, 1);
	/* Level pin 5, vector 0x50: Remote IRR until the EOI. */
	io_wr(&io, 0x10 + 2 * 5, 0x8050);
	CHECK_EQ(gmem_ioapic_set_irq(&io, 5, 0, true), 1);
	CHECK_EQ(bus.n, 2);
	CHECK_EQ(bus.lo, 0xc050u);
	CHECK_EQ(io_rd(&io, 0x10 + 2 * 5), 0xc050u); /* Remote IRR (14) */
	CHECK_EQ(gmem_ioapic_set_irq(&io, 5, 0, true), -1);
	/* A guest write keeps Remote IRR, which it cannot set or clear. */
	io_wr(&io, 0x10 + 2 * 5, 0x8050);
	CHECK_EQ(io_rd(&io, 0x10 + 2 * 5), 0xc050u);
	CHECK_EQ(bus.n, 2);
	gmem_ioapic_eoi(&io, 0x51); /* another vector: nothing */
	CHECK_EQ(bus.n, 2);
	CHECK_EQ(bus.acks, 0);
	gmem_ioapic_eoi(&io, 0x50); /* still high: sent again */
	CHECK_EQ(bus.n, 3);
	CHECK_EQ(bus.acks, 1);
	CHECK_EQ(bus.acked, 5u);
	/* Two sources: the line stays high until both let go. */
	CHECK_EQ(gmem_ioapic_set_irq(&io, 5, 1, true), -1);  /* Remote IRR */
	CHECK_EQ(gmem_ioapic_set_irq(&io, 5, 0, false), -1); /* still high */
	gmem_ioapic_eoi(&io, 0x50);
	CHECK_EQ(bus.n, 4);
	CHECK_EQ(gmem_ioapic_set_irq(&io, 5, 1, false), 1);
	gmem_ioapic_eoi(&io, 0x50);
	CHECK_EQ(bus.n, 4);
	CHECK_EQ(gmem_ioapic_set_irq(&io, 5, 0, true), 1);
	CHECK_EQ(bus.n, 5);
	CHECK_EQ(gmem_ioapic_set_irq(&io, 5, 0, false), 1);
	gmem_ioapic_eoi(&io, 0x50);
	CHECK_EQ(bus.n, 5);
	CHECK_EQ(io_rd(&io, 0x10 + 2 * 5), 0x8050u);
	/* Nobody takes it: -1, and Remote IRR stays clear. */
	bus.answer = 0;
	CHECK_EQ(gmem_ioapic_set_irq(&io, 5, 0, true), -1);
	CHECK_EQ(io_rd(&io, 0x10 + 2 * 5), 0x8050u);
	/* Unmasking a level line that is high sends it; edge clears IRR. */
	bus.answer = 1;
	io_wr(&io, 0x10 + 2 * 5, 0x18050);
	CHECK_EQ(gmem_ioapic_set_irq(&io, 5, 0, true), -1);
	io_wr(&io, 0x10 + 2 * 5, 0x8050);
	CHECK_EQ(bus.n, 7);
	CHECK_EQ(io_rd(&io, 0x10 + 2 * 5), 0xc050u);
	io_wr(&io, 0x10 + 2 * 5, 0x0050);
	CHECK_EQ(io_rd(&io, 0x10 + 2 * 5), 0x0050u);
	gmem_ioapic_destroy(&io);
	tap_result("IOAPIC: registers, edge and level pins, Remote IRR, EOI");
}

int main(void)
{
	tap_plan(9, 30);
	test_reset_and_ids();
	test_msrs_and_mmio();
	test_priority();
	test_timer();
	test_ipis();
	test_nmi_init_sipi();
	test_pv_ipis();
	test_state();
	test_ioapic();
	return tap_done();
}
