// SPDX-License-Identifier: MIT
/*
 * The local APIC (lapic.h).  The register page is kept as KVM keeps it:
 * one 32-bit word per 16-byte register slot, at the xAPIC offsets, with
 * the x2APIC ICR split across ICR (low) and ICR2 (high) so that
 * KVM_GET/SET_LAPIC need no conversion of it.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lapic.h"
#include "util.h"

/* Register offsets. */
enum {
	R_ID = 0x20,
	R_LVR = 0x30,
	R_TPR = 0x80,
	R_APR = 0x90,
	R_PPR = 0xa0,
	R_EOI = 0xb0,
	R_LDR = 0xd0,
	R_DFR = 0xe0,
	R_SPIV = 0xf0,
	R_ISR = 0x100,
	R_TMR = 0x180,
	R_IRR = 0x200,
	R_ESR = 0x280,
	R_LVTCMCI = 0x2f0,
	R_ICR = 0x300,
	R_ICR2 = 0x310,
	R_LVTT = 0x320,
	R_LVTTHMR = 0x330,
	R_LVTPC = 0x340,
	R_LVT0 = 0x350,
	R_LVT1 = 0x360,
	R_LVTERR = 0x370,
	R_TMICT = 0x380,
	R_TMCCT = 0x390,
	R_TDCR = 0x3e0,
	R_SELF_IPI = 0x3f0,
};

#define SPIV_ENABLED (1u << 8)
#define LVT_MASKED (1u << 16)
#define LVT_VECTOR 0xffu
#define LVT_PENDING (1u << 12)
#define LVT_DM_MASK 0x700u
#define LVT_LINT_BITS ((1u << 13) | (1u << 14) | (1u << 15))
#define LVT_BASE (LVT_MASKED | LVT_PENDING | LVT_VECTOR)
#define TIMER_PERIODIC (1u << 17)
#define TIMER_TSCDEADLINE (2u << 17)
#define TIMER_MODE (3u << 17)

#define ICR_DM(lo) (((lo) >> 8) & 7)
#define ICR_LOGICAL (1u << 11)
#define ICR_BUSY (1u << 12)
#define ICR_ASSERT (1u << 14)
#define ICR_LEVEL (1u << 15)
#define ICR_SHORTHAND(lo) (((lo) >> 18) & 3)
#define X2APIC_ICR_RSVD (0xfff00000ULL | (3ULL << 16) | (1ULL << 13))

enum {
	DM_FIXED = 0,
	DM_LOWEST = 1,
	DM_REMRD = 3,
	DM_NMI = 4,
	DM_INIT = 5,
	DM_SIPI = 6
};
enum { SH_NONE, SH_SELF, SH_ALL, SH_ALL_BUT_SELF };

/* APIC_VERSION and the LVT count: six, seven with CMCI (MCG_CMCI_P). */
#define LVR_VALUE(nlvt) (0x14u | ((nlvt)-1) << 16)
#define NR_LVT_MAX 7

/* KVM's floor on a periodic timer's period (min_timer_period_us). */
#define MIN_PERIOD_NS 200000ULL

struct gmem_lapic {
	uint32_t regs[KVM_APIC_REG_SIZE / 4]; /* atomic words */
	uint32_t id;			      /* the vCPU id: x2APIC ID */
	uint64_t base;			      /* atomic: IA32_APIC_BASE */
	int *kick;
	int kick_bit;
	int *nmi;		/* the vCPU's NMI queue (atomic) */
	unsigned int init_sipi; /* atomic: GMEM_LAPIC_INIT | _SIPI */
	int unhalt; /* atomic: a remote-read IPI (KVM's pv_unhalted) */
	unsigned int sipi_vector; /* atomic; published before the SIPI bit */
	int level_eoi; /* owner only: a level-triggered vector's EOI, or -1 */
	struct gmem_apic_map *map;
	uint64_t bus_cycle_ns;
	uint32_t timer_mode_mask;
	unsigned int nr_lvt; /* 6, or 7 with LVTCMCI */

	/* The timer (owner only): armed while expire_ns != 0. */
	uint64_t expire_ns;
	uint64_t period_ns; /* one-shot or periodic length in ns */
	uint64_t tscdeadline;
	unsigned int divide;
};

/*
 * Relaxed: each register word stands alone; the IRR/ISR bitmaps, which
 * another thread sets, use the ordered vec_*() helpers instead.
 */
static inline uint32_t rd(const struct gmem_lapic *a, unsigned int off)
{
	return __atomic_load_n(&a->regs[off >> 2], __ATOMIC_RELAXED);
}

static inline void wr(struct gmem_lapic *a, unsigned int off, uint32_t v)
{
	__atomic_store_n(&a->regs[off >> 2], v, __ATOMIC_RELAXED);
}

/*
 * Acquire, paired with gmem_lapic_set_base()'s release: a thread that
 * sees the new base also sees what the owner wrote before setting it.
 */
static inline uint64_t base_of(const struct gmem_lapic *a)
{
	return __atomic_load_n(&a->base, __ATOMIC_ACQUIRE);
}

static inline bool hw_enabled(uint64_t base)
{
	return base & GMEM_APIC_BASE_ENABLE;
}

static inline bool x2apic(uint64_t base)
{
	return (base & (GMEM_APIC_BASE_ENABLE | GMEM_APIC_BASE_X2APIC)) ==
	       (GMEM_APIC_BASE_ENABLE | GMEM_APIC_BASE_X2APIC);
}

static inline bool sw_enabled(const struct gmem_lapic *a)
{
	return rd(a, R_SPIV) & SPIV_ENABLED;
}

/* The 256-bit vector registers (ISR, TMR, IRR): eight words 16 bytes apart. */
static inline unsigned int vec_off(unsigned int reg, unsigned int v)
{
	return reg + (v >> 5) * 0x10;
}

static inline void vec_set(struct gmem_lapic *a, unsigned int reg,
			   unsigned int v)
{
	/*
	 * Release: an IRR bit becomes visible only after the TMR bit that
	 * accept() set for it, which vec_highest()'s acquire then sees.
	 */
	__atomic_fetch_or(&a->regs[vec_off(reg, v) >> 2], 1u << (v & 31),
			  __ATOMIC_RELEASE);
}

static inline void vec_clear(struct gmem_lapic *a, unsigned int reg,
			     unsigned int v)
{
	__atomic_fetch_and(&a->regs[vec_off(reg, v) >> 2], ~(1u << (v & 31)),
			   __ATOMIC_RELEASE);
}

static int vec_highest(const struct gmem_lapic *a, unsigned int reg)
{
	/* Highest vector first, as the APIC's priority logic scans. */
	for (int w = 7; w >= 0; w--) {
		uint32_t bits = __atomic_load_n(&a->regs[(reg + w * 0x10) >> 2],
						__ATOMIC_ACQUIRE);

		if (bits)
			return w * 32 + 31 - __builtin_clz(bits);
	}
	return -1;
}

/*
 * SDM 10.12.10.2: the x2APIC logical ID is derived from the APIC ID,
 * cluster (ID[19:4]) in bits 31:16 and a one-hot bit of ID[3:0] below.
 */
static uint32_t x2apic_ldr(uint32_t id)
{
	return ((id >> 4) << 16) | (1u << (id & 0xf));
}

static void kick(struct gmem_lapic *a)
{
	/*
	 * The bit first, then the wake: the owner's futex wait compares the
	 * word, so a kick that lands just before it sleeps is not lost.
	 */
	__atomic_fetch_or(a->kick, a->kick_bit, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, a->kick, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* ---- Priority ------------------------------------------------------ */

/*
 * SDM 10.8.3.1: PPR is TPR when TPR's class is at least that of the
 * highest in-service vector, else that vector's class (low nibble 0).
 */
static void update_ppr(struct gmem_lapic *a)
{
	uint32_t tpr = rd(a, R_TPR);
	int isr = vec_highest(a, R_ISR);
	uint32_t isrv = isr < 0 ? 0 : (uint32_t)isr;

	wr(a, R_PPR, (tpr & 0xf0) >= (isrv & 0xf0) ? tpr & 0xff : isrv & 0xf0);
}

/*
 * The vCPU took @vector: it moves from requested to in service, which
 * may raise PPR above what is still pending.
 */
void gmem_lapic_ack(struct gmem_lapic *a, int vector)
{
	vec_clear(a, R_IRR, (unsigned int)vector);
	vec_set(a, R_ISR, (unsigned int)vector);
	update_ppr(a);
}

unsigned int gmem_lapic_get_cr8(const struct gmem_lapic *a)
{
	/*
	 * CR8 is TPR[7:4] (SDM 10.8.6): the subclass bits read and write as 0.
	 */
	return (rd(a, R_TPR) >> 4) & 0xf;
}

void gmem_lapic_set_cr8(struct gmem_lapic *a, unsigned int cr8)
{
	wr(a, R_TPR, (cr8 & 0xf) << 4);
	update_ppr(a);
}

/* ---- Accepting an interrupt ------------------------------------------- */

/*
 * __apic_accept_irq() for fixed and lowest-priority delivery: an enabled
 * APIC (hardware and software) takes it into IRR, TMR following the
 * trigger mode; a level-triggered deassert is nothing.
 */
static bool accept(struct gmem_lapic *a, uint32_t lo)
{
	unsigned int v = lo & 0xff;

	/*
	 * __apic_accept_irq(): NMI, INIT and SIPI need no software enable;
	 * a level-triggered de-assert is dropped, for INIT too.
	 */
	switch (ICR_DM(lo)) {
	case DM_FIXED:
	case DM_LOWEST:
		break;
	case DM_NMI:
		__atomic_fetch_add(a->nmi, 1, __ATOMIC_SEQ_CST);
		return true;
	case DM_REMRD:
		/* KVM_HC_KICK_CPU's mode: no read, the vCPU leaves HLT. */
		__atomic_store_n(&a->unhalt, 1, __ATOMIC_SEQ_CST);
		return true;
	case DM_INIT:
		if ((lo & ICR_LEVEL) && !(lo & ICR_ASSERT))
			return false;
		__atomic_store_n(&a->init_sipi, GMEM_LAPIC_INIT,
				 __ATOMIC_SEQ_CST);
		return true;
	case DM_SIPI:
		__atomic_store_n(&a->sipi_vector, v, __ATOMIC_RELAXED);
		__atomic_fetch_or(&a->init_sipi, GMEM_LAPIC_SIPI,
				  __ATOMIC_SEQ_CST);
		return true;
	default: /* SMI, ExtINT and the reserved modes: not modelled */
		return false;
	}
	if ((lo & ICR_LEVEL) && !(lo & ICR_ASSERT))
		return false;
	/* Fixed and lowest-priority interrupts to a disabled APIC are lost. */
	if (!hw_enabled(base_of(a)) || !sw_enabled(a))
		return false;
	/* TMR tells a later EOI whether the source was level-triggered. */
	if (lo & ICR_LEVEL)
		vec_set(a, R_TMR, v);
	else
		vec_clear(a, R_TMR, v);
	vec_set(a, R_IRR, v);
	return true;
}

/* ---- The timer ---------------------------------------------------- */

static inline uint32_t timer_mode(const struct gmem_lapic *a)
{
	/*
	 * Without TSC-deadline support bit 18 of LVTT is reserved: the mask
	 * keeps the mode to one-shot or periodic.
	 */
	return rd(a, R_LVTT) & a->timer_mode_mask;
}

static void update_divide(struct gmem_lapic *a)
{
	uint32_t d = rd(a, R_TDCR);

	/* TDCR bits 3,1:0 encode 2^(n+1), with 0b1011 meaning 1. */
	a->divide = 1u << ((((d & 3) | ((d & 8) >> 1)) + 1) & 7);
}

static void timer_stop(struct gmem_lapic *a)
{
	/*
	 * expire_ns == 0 is the disarmed state; the owner's run loop polls it.
	 */
	a->expire_ns = 0;
	a->period_ns = 0;
}

/* TMICT written (or restored): count down from it at the bus rate. */
static void timer_start(struct gmem_lapic *a, uint64_t now)
{
	uint32_t tmict = rd(a, R_TMICT);

	timer_stop(a);
	/* TSC-deadline mode ignores TMICT, and a count of 0 stops the timer. */
	if (timer_mode(a) == TIMER_TSCDEADLINE || !tmict)
		return;
	a->period_ns = (uint64_t)tmict * a->bus_cycle_ns * a->divide;
	if (timer_mode(a) == TIMER_PERIODIC && a->period_ns < MIN_PERIOD_NS)
		a->period_ns = MIN_PERIOD_NS;
	a->expire_ns = now + a->period_ns;
}

static uint32_t timer_current(const struct gmem_lapic *a, uint64_t now)
{
	uint64_t left;

	/*
	 * TMCCT is 0 once a one-shot timer expired or the timer is not
	 * counting.
	 */
	if (timer_mode(a) == TIMER_TSCDEADLINE || !rd(a, R_TMICT) ||
	    !a->period_ns || !a->expire_ns || a->expire_ns <= now)
		return 0;
	/* A periodic timer counts down from TMICT again after each period. */
	left = (a->expire_ns - now) % a->period_ns;
	return (uint32_t)(left / (a->bus_cycle_ns * a->divide));
}

/* Fire a due timer: its LVT vector into IRR unless masked. */
static void timer_check(struct gmem_lapic *a, uint64_t now)
{
	uint32_t lvtt;

	if (!a->expire_ns || now < a->expire_ns)
		return;
	lvtt = rd(a, R_LVTT);
	/* The timer's LVT has no delivery mode: fixed, edge-triggered. */
	if (!(lvtt & LVT_MASKED))
		accept(a, lvtt & LVT_VECTOR);
	switch (timer_mode(a)) {
	case TIMER_PERIODIC:
		/* Missed periods are one interrupt, as a late hrtimer gives. */
		a->expire_ns += a->period_ns;
		if (a->expire_ns <= now)
			a->expire_ns = now + a->period_ns -
				       (now - a->expire_ns) % a->period_ns;
		break;
	case TIMER_TSCDEADLINE:
		/*
		 * A deadline fires once; the guest writes the MSR again for
		 * another.
		 */
		a->tscdeadline = 0;
		a->expire_ns = 0;
		break;
	default:
		/* One-shot: disarmed, TMCCT reads 0 from now on. */
		a->expire_ns = 0;
		break;
	}
}

uint64_t gmem_lapic_next_timer(const struct gmem_lapic *a)
{
	/* For the vCPU's HLT: sleep no longer than the next expiry. */
	return a->expire_ns ? a->expire_ns : UINT64_MAX;
}

uint64_t gmem_lapic_get_tsc_deadline(const struct gmem_lapic *a)
{
	return timer_mode(a) == TIMER_TSCDEADLINE ? a->tscdeadline : 0;
}

void gmem_lapic_set_tsc_deadline(struct gmem_lapic *a, uint64_t tsc,
				 uint64_t at_ns)
{
	/* kvm_set_lapic_tscdeadline_msr(): ignored in the other modes. */
	if (timer_mode(a) != TIMER_TSCDEADLINE)
		return;
	a->tscdeadline = tsc;
	/*
	 * Deadline 0 disarms.  @at_ns is the caller's host time for @tsc; 1
	 * stands in for 0, which would mean "not armed".
	 */
	a->expire_ns = tsc ? (at_ns ? at_ns : 1) : 0;
}

void gmem_lapic_set_cmci(struct gmem_lapic *a, bool on)
{
	/*
	 * MCG_CMCI_P makes LVTCMCI exist, and the version's LVT count says so.
	 */
	a->nr_lvt = on ? NR_LVT_MAX : NR_LVT_MAX - 1;
	wr(a, R_LVR, LVR_VALUE(a->nr_lvt));
}

void gmem_lapic_deliver_cmci(struct gmem_lapic *a)
{
	uint32_t lvt = rd(a, R_LVTCMCI);

	/* kvm_apic_local_deliver(): fixed delivery, level from the entry. */
	if (a->nr_lvt == NR_LVT_MAX && !(lvt & LVT_MASKED) &&
	    !(lvt & LVT_DM_MASK))
		accept(a, (lvt & LVT_VECTOR) | ICR_ASSERT | (lvt & ICR_LEVEL));
}

void gmem_lapic_set_tsc_deadline_cap(struct gmem_lapic *a, bool on)
{
	a->timer_mode_mask = on ? TIMER_MODE : TIMER_PERIODIC;
}

/* apic_update_lvtt(): leaving or entering TSC-deadline mode stops it all. */
static void lvtt_written(struct gmem_lapic *a, uint32_t old)
{
	uint32_t mask = a->timer_mode_mask;

	/*
	 * Only a change in or out of TSC-deadline mode resets the timer;
	 * switching between one-shot and periodic keeps the count running.
	 */
	if (((old & mask) == TIMER_TSCDEADLINE) !=
	    ((rd(a, R_LVTT) & mask) == TIMER_TSCDEADLINE)) {
		timer_stop(a);
		wr(a, R_TMICT, 0);
		a->tscdeadline = 0;
	}
}

int gmem_lapic_pending(struct gmem_lapic *a, uint64_t now)
{
	int irr;

	/*
	 * Fire a due timer first, so its vector competes with what is pending.
	 */
	timer_check(a, now);
	/* A hardware-disabled APIC delivers nothing, even what is in IRR. */
	if (!hw_enabled(base_of(a)))
		return -1;
	irr = vec_highest(a, R_IRR);
	/* SDM 10.8.3: only a vector whose class is above PPR's is delivered. */
	if (irr < 0 || (uint32_t)(irr & 0xf0) <= rd(a, R_PPR))
		return -1;
	return irr;
}

/* ---- Registers ---------------------------------------------------- */

/* kvm_lapic_readable_reg_mask(): which offsets read at all. */
static bool readable(const struct gmem_lapic *a, unsigned int off, bool x2)
{
	switch (off) {
	case R_ID:
	case R_LVR:
	case R_TPR:
	case R_PPR:
	case R_LDR:
	case R_SPIV:
	case R_ESR:
	case R_ICR:
	case R_LVTT:
	case R_LVTTHMR:
	case R_LVTPC:
	case R_LVT0:
	case R_LVT1:
	case R_LVTERR:
	case R_TMICT:
	case R_TMCCT:
	case R_TDCR:
		return true;
	case R_LVTCMCI:
		return a->nr_lvt == NR_LVT_MAX;
	case R_APR:
	case R_DFR:
	case R_ICR2:
		return !x2;
	default:
		return off >= R_ISR && off < R_ESR;
	}
}

static uint32_t reg_read(struct gmem_lapic *a, unsigned int off, uint64_t now)
{
	/* TMCCT is computed from the time, never stored while counting. */
	if (off == R_TMCCT)
		return timer_current(a, now);
	return rd(a, off);
}

/* A guest's SPIV write: clearing the software enable masks every LVT. */
static void write_spiv(struct gmem_lapic *a, uint32_t v)
{
	wr(a, R_SPIV, v);
	/* SDM 10.4.7.2: while software-disabled, every LVT stays masked. */
	if (!(v & SPIV_ENABLED)) {
		for (unsigned int i = 0; i < NR_LVT_MAX - 1; i++)
			wr(a, R_LVTT + 0x10 * i,
			   rd(a, R_LVTT + 0x10 * i) | LVT_MASKED);
		if (a->nr_lvt == NR_LVT_MAX)
			wr(a, R_LVTCMCI, rd(a, R_LVTCMCI) | LVT_MASKED);
	}
}

static int send_ipi(struct gmem_lapic *a, uint32_t lo, uint32_t hi)
{
	/* A self-IPI needs no map. */
	if (ICR_SHORTHAND(lo) == SH_SELF) {
		accept(a, lo);
	} else if (a->map) {
		gmem_apic_map_send(a->map, a, (uint64_t)hi << 32 | lo);
	}
	return GMEM_LAPIC_EVENT;
}

/*
 * kvm_lapic_reg_write(): 0, GMEM_LAPIC_EVENT, or 1 for a register that is
 * read-only or absent in this mode (the x2APIC MSR's #GP; xAPIC MMIO
 * ignores it).
 */
static int reg_write(struct gmem_lapic *a, unsigned int off, uint32_t v,
		     uint64_t now)
{
	bool x2 = x2apic(base_of(a));
	uint32_t old;

	switch (off) {
	/*
	 * In x2APIC mode the ID is read-only (#GP); in xAPIC only bits 31:24.
	 */
	case R_ID:
		if (x2)
			return 1;
		wr(a, R_ID, v & 0xff000000u);
		return 0;
	case R_TPR:
		/*
		 * A lower TPR may unmask a pending interrupt: report an event.
		 */
		wr(a, R_TPR, v & 0xff);
		update_ppr(a);
		return GMEM_LAPIC_EVENT;
	case R_EOI: {
		/*
		 * EOI retires the highest in-service vector (the value written
		 * is ignored); a lower one may now be delivered.
		 */
		int isr = vec_highest(a, R_ISR);

		if (isr >= 0) {
			vec_clear(a, R_ISR, (unsigned int)isr);
			update_ppr(a);
			/* A level source (the IOAPIC) hears of it: TMR. */
			if (rd(a, vec_off(R_TMR, (unsigned int)isr)) >>
				    (isr & 31) &
			    1)
				a->level_eoi = isr;
		}
		return GMEM_LAPIC_EVENT;
	}
	case R_LDR:
		if (x2)
			return 1;
		wr(a, R_LDR, v & 0xff000000u);
		return 0;
	case R_DFR:
		if (x2)
			return 1;
		/* DFR bits 27:0 are reserved and read as ones. */
		wr(a, R_DFR, v | 0x0fffffffu);
		return 0;
	case R_SPIV:
		/* No directed EOI: the in-kernel IOAPIC has no EOI register. */
		write_spiv(a, v & 0x3ff);
		return GMEM_LAPIC_EVENT;
	case R_ICR:
		if (x2)
			return 1; /* 64 bits wide: gmem_lapic_wrmsr() */
		/* Delivery is instant here, so BUSY never reads as set. */
		v &= ~ICR_BUSY;
		wr(a, R_ICR, v);
		return send_ipi(a, v, rd(a, R_ICR2));
	case R_ICR2:
		if (x2)
			return 1;
		wr(a, R_ICR2, v & 0xff000000u);
		return 0;
	case R_LVTCMCI:
		if (a->nr_lvt != NR_LVT_MAX)
			return 1;
		/* fall through */
	case R_LVT0:
	case R_LVT1:
	case R_LVTTHMR:
	case R_LVTPC:
	case R_LVTERR: {
		/*
		 * Writable bits differ: only LINT0/1 have the pin, remote-IRR
		 * and trigger fields, and LVTERR has no delivery mode.
		 */
		uint32_t mask = LVT_BASE;

		if (off == R_LVT0 || off == R_LVT1)
			mask |= LVT_DM_MASK | LVT_LINT_BITS;
		else if (off != R_LVTERR)
			mask |= LVT_DM_MASK;
		/*
		 * SDM 10.4.7.2: an LVT written while software-disabled stays
		 * masked.
		 */
		if (!sw_enabled(a))
			v |= LVT_MASKED;
		wr(a, off, v & mask);
		return 0;
	}
	case R_LVTT:
		if (!sw_enabled(a))
			v |= LVT_MASKED;
		old = rd(a, R_LVTT);
		wr(a, R_LVTT, v & (LVT_BASE | a->timer_mode_mask));
		lvtt_written(a, old);
		return 0;
	case R_TMICT:
		/* KVM ignores TMICT writes in TSC-deadline mode. */
		if (timer_mode(a) == TIMER_TSCDEADLINE)
			return 0;
		wr(a, R_TMICT, v);
		update_divide(a);
		timer_start(a, now);
		return 0;
	case R_TDCR: {
		unsigned int was = a->divide;

		/* Only bits 3 and 1:0 exist. */
		wr(a, R_TDCR, v & 0xb);
		update_divide(a);
		/* A running count goes on at the new rate from where it is. */
		if (a->expire_ns && a->period_ns && a->divide != was) {
			uint64_t left =
				a->expire_ns > now ? a->expire_ns - now : 0;

			left = left / was * a->divide;
			a->period_ns = a->period_ns / was * a->divide;
			if (timer_mode(a) == TIMER_PERIODIC &&
			    a->period_ns < MIN_PERIOD_NS)
				a->period_ns = MIN_PERIOD_NS;
			a->expire_ns = now + left;
		}
		return 0;
	}
	case R_ESR:
		/* As KVM: the x2APIC ESR takes only a write of 0. */
		return x2 && v ? 1 : 0;
	case R_SELF_IPI:
		/*
		 * SELF IPI exists only in x2APIC mode: a fixed, edge, self
		 * interrupt.
		 */
		if (!x2 || (v & ~0xffu))
			return 1;
		return send_ipi(a, (SH_SELF << 18) | v, 0);
	default:
		return 1;
	}
}

int gmem_lapic_rdmsr(struct gmem_lapic *a, uint32_t msr, uint64_t *v,
		     uint64_t now)
{
	/* x2APIC MSR 0x800 + n is xAPIC register offset n * 16. */
	unsigned int off = (msr - GMEM_MSR_X2APIC_FIRST) << 4;

	if (!x2apic(base_of(a)))
		return 1;
	if (off == R_ICR) {
		*v = rd(a, R_ICR) | (uint64_t)rd(a, R_ICR2) << 32;
		return 0;
	}
	if (off > R_SELF_IPI || !readable(a, off, true))
		return 1;
	*v = reg_read(a, off, now);
	return 0;
}

int gmem_lapic_wrmsr(struct gmem_lapic *a, uint32_t msr, uint64_t v,
		     uint64_t now)
{
	unsigned int off = (msr - GMEM_MSR_X2APIC_FIRST) << 4;

	if (!x2apic(base_of(a)))
		return 1;
	if (off == R_ICR) {
		/* kvm_x2apic_icr_write(): one 64-bit register, BUSY dropped. */
		if (v & X2APIC_ICR_RSVD)
			return 1;
		v &= ~(uint64_t)ICR_BUSY;
		wr(a, R_ICR, (uint32_t)v);
		wr(a, R_ICR2, (uint32_t)(v >> 32));
		return send_ipi(a, (uint32_t)v, (uint32_t)(v >> 32));
	}
	/*
	 * Every x2APIC register but ICR is 32 bits: the high half is reserved.
	 */
	if (v >> 32)
		return 1;
	return reg_write(a, off, (uint32_t)v, now);
}

bool gmem_lapic_mmio(struct gmem_lapic *a, uint64_t gpa, bool write, void *data,
		     unsigned int len, bool hole, uint64_t now, int *event)
{
	uint64_t base = base_of(a);
	/* The APIC base is a physical address below the 52-bit MAXPHYADDR. */
	uint64_t page = base & ~0xfffULL & ((1ULL << 52) - 1);
	unsigned int off = (unsigned int)(gpa - page);
	uint32_t v = 0;

	*event = 0;
	if (gpa < page || gpa + len > page + 0x1000)
		return false;
	/*
	 * A disabled or x2APIC-mode APIC has no MMIO page: the access goes on
	 * to memory, or reads as all ones when nothing is behind it (@hole).
	 */
	if (!hw_enabled(base) || x2apic(base)) {
		if (!hole)
			return false;
		if (!write)
			memset(data, 0xff, len);
		return true;
	}
	if (write) {
		/* SDM 10.4.1: 32-bit accesses to 16-byte aligned registers. */
		if (len != 4 || (off & 0xf))
			return true;
		memcpy(&v, data, 4);
		*event = reg_write(a, off & 0xff0, v, now) == GMEM_LAPIC_EVENT;
		return true;
	}
	/*
	 * Reads of a register's other bytes and of unreadable offsets give 0.
	 */
	memset(data, 0, len);
	if ((off & 0xf) + len > 4 || off > R_SELF_IPI ||
	    !readable(a, off & ~0xfu, false))
		return true;
	v = reg_read(a, off & ~0xfu, now);
	memcpy(data, (uint8_t *)&v + (off & 0xf), len);
	return true;
}

/* ---- Mode, reset, state -------------------------------------------- */

void gmem_lapic_set_base(struct gmem_lapic *a, uint64_t base)
{
	uint64_t old = base_of(a);

	__atomic_store_n(&a->base, base, __ATOMIC_RELEASE);
	/* __kvm_apic_set_base(): the ID follows enabling and the mode. */
	/* Enabling: the APIC ID goes back to the xAPIC format. */
	if ((old ^ base) & base & GMEM_APIC_BASE_ENABLE)
		wr(a, R_ID, a->id << 24);
	/*
	 * SDM 10.12.5: entering x2APIC mode sets the ID and LDR from the x2APIC
	 * ID; LDR is read-only there.
	 */
	if ((old ^ base) & GMEM_APIC_BASE_X2APIC) {
		if (base & GMEM_APIC_BASE_X2APIC) {
			wr(a, R_ID, a->id);
			wr(a, R_LDR, x2apic_ldr(a->id));
		} else if (base & GMEM_APIC_BASE_ENABLE) {
			wr(a, R_ID, a->id << 24);
		}
	}
}

static void reset(struct gmem_lapic *a, uint64_t base, bool lint0_extint,
		  bool init)
{
	timer_stop(a);
	a->tscdeadline = 0;
	/* The xAPIC ID is set at RESET, kept at INIT. */
	if (!init)
		wr(a, R_ID, x2apic(base) ? a->id : a->id << 24);
	wr(a, R_LVR, LVR_VALUE(a->nr_lvt));
	for (unsigned int i = 0; i < NR_LVT_MAX - 1; i++)
		wr(a, R_LVTT + 0x10 * i, LVT_MASKED);
	wr(a, R_LVTCMCI, a->nr_lvt == NR_LVT_MAX ? LVT_MASKED : 0);
	if (lint0_extint)
		wr(a, R_LVT0, 7u << 8);
	wr(a, R_DFR, 0xffffffffu);
	wr(a, R_SPIV, 0xff);
	wr(a, R_TPR, 0);
	/* The x2APIC LDR is derived from the ID and survives INIT. */
	if (!x2apic(base))
		wr(a, R_LDR, 0);
	wr(a, R_ESR, 0);
	wr(a, R_ICR, 0);
	wr(a, R_ICR2, 0);
	wr(a, R_TDCR, 0);
	wr(a, R_TMICT, 0);
	/* Nothing requested or in service after RESET and INIT. */
	for (unsigned int i = 0; i < 8; i++) {
		wr(a, R_IRR + 0x10 * i, 0);
		wr(a, R_ISR + 0x10 * i, 0);
		wr(a, R_TMR + 0x10 * i, 0);
	}
	update_divide(a);
	update_ppr(a);
}

void gmem_lapic_reset(struct gmem_lapic *a, uint64_t base, bool lint0_extint)
{
	gmem_lapic_set_base(a, base);
	reset(a, base, lint0_extint, false);
}

void gmem_lapic_init(struct gmem_lapic *a, bool lint0_extint)
{
	reset(a, base_of(a), lint0_extint, true);
}

int gmem_lapic_take_level_eoi(struct gmem_lapic *a)
{
	int v = a->level_eoi;

	a->level_eoi = -1;
	return v;
}

bool gmem_lapic_unhalted(const struct gmem_lapic *a)
{
	/*
	 * Acquire pairs with the sender's store: the vCPU sees the kick's
	 * cause.
	 */
	return __atomic_load_n(&a->unhalt, __ATOMIC_ACQUIRE);
}

void gmem_lapic_clear_unhalt(struct gmem_lapic *a)
{
	__atomic_store_n(&a->unhalt, 0, __ATOMIC_RELAXED);
}

int gmem_apic_map_send_pv(struct gmem_apic_map *m, uint64_t bitmap[2],
			  uint32_t min, uint32_t lo)
{
	int count = 0;

	pthread_rwlock_rdlock(&m->lock);
	/* Two 64-ID windows, the second at min + 64 (a u32, as KVM's). */
	for (unsigned int w = 0; w < 2; w++, min += 64) {
		for (size_t i = 0; i < m->nr; i++) {
			struct gmem_lapic *t = m->apics[i];
			uint32_t off = t->id - min;

			/*
			 * An APIC ID below @min is no member of either window.
			 */
			if (!hw_enabled(base_of(t)) || t->id < min ||
			    off >= 64 || !(bitmap[w] >> off & 1))
				continue;
			/* Kicked per target: each one may be asleep in HLT. */
			if (accept(t, lo)) {
				count++;
				kick(t);
			}
		}
	}
	pthread_rwlock_unlock(&m->lock);
	return count;
}

unsigned int gmem_lapic_init_sipi(const struct gmem_lapic *a)
{
	return __atomic_load_n(&a->init_sipi, __ATOMIC_ACQUIRE);
}

unsigned int gmem_lapic_take_init_sipi(struct gmem_lapic *a, uint8_t *vector)
{
	/*
	 * Taken as one word so that an INIT and a SIPI that race the vCPU
	 * are seen together or not at all.
	 */
	unsigned int ev =
		__atomic_exchange_n(&a->init_sipi, 0, __ATOMIC_ACQUIRE);

	/* The vector was stored before the SIPI bit was set (accept()). */
	*vector = (uint8_t)__atomic_load_n(&a->sipi_vector, __ATOMIC_RELAXED);
	return ev;
}

void gmem_lapic_latch(struct gmem_lapic *a, unsigned int bits, bool on)
{
	/*
	 * Sequentially consistent like accept(): userspace latches
	 * (SET_MP_STATE, SET_VCPU_EVENTS) race senders on the same
	 * word.
	 */
	if (on)
		__atomic_fetch_or(&a->init_sipi, bits, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_and(&a->init_sipi, ~bits, __ATOMIC_SEQ_CST);
}

void gmem_lapic_set_sipi_vector(struct gmem_lapic *a, uint8_t vector)
{
	__atomic_store_n(&a->sipi_vector, vector, __ATOMIC_RELAXED);
}

int gmem_lapic_create(uint32_t id, int *kick_word, int kick_bit, int *nmi,
		      uint64_t bus_cycle_ns, struct gmem_lapic **out)
{
	struct gmem_lapic *a = gmem_zalloc(sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->id = id;
	a->kick = kick_word;
	a->kick_bit = kick_bit;
	a->nmi = nmi;
	a->bus_cycle_ns = bus_cycle_ns;
	/* TSC-deadline is off until CPUID advertises it. */
	a->timer_mode_mask = TIMER_PERIODIC;
	a->nr_lvt = NR_LVT_MAX - 1;
	a->level_eoi = -1;
	*out = a;
	return 0;
}

void gmem_lapic_destroy(struct gmem_lapic *a)
{
	gmem_free(a);
}

void gmem_lapic_get_state(struct gmem_lapic *a, struct kvm_lapic_state *s,
			  bool x2apic_format, uint64_t now)
{
	/* The page as stored, then TMCCT, which is computed, not stored. */
	for (unsigned int i = 0; i < KVM_APIC_REG_SIZE / 4; i++) {
		uint32_t v = rd(a, i * 4);

		memcpy(s->regs + i * 4, &v, 4);
	}
	{
		uint32_t tmcct = timer_current(a, now);

		memcpy(s->regs + R_TMCCT, &tmcct, 4);
	}
	/* kvm_apic_state_fixup(): the x2APIC ID in xAPIC format for old VMMs.
	 */
	if (x2apic(base_of(a)) && !x2apic_format) {
		uint32_t id = a->id << 24;

		memcpy(s->regs + R_ID, &id, 4);
	}
}

int gmem_lapic_set_state(struct gmem_lapic *a, const struct kvm_lapic_state *s,
			 bool x2apic_format, uint64_t now)
{
	uint32_t v, spiv;
	bool x2 = x2apic(base_of(a));

	memcpy(&spiv, s->regs + R_SPIV, 4);
	/*
	 * An x2APIC ID that does not match the vCPU id is refused, as in KVM.
	 */
	if (x2 && x2apic_format) {
		memcpy(&v, s->regs + R_ID, 4);
		if (v != a->id) {
			/* KVM has set SPIV already when it refuses. */
			wr(a, R_SPIV, spiv);
			return -EINVAL;
		}
	}
	for (unsigned int i = 0; i < KVM_APIC_REG_SIZE / 4; i++) {
		memcpy(&v, s->regs + i * 4, 4);
		wr(a, i * 4, v);
	}
	wr(a, R_SPIV, spiv);
	if (x2) {
		/* The x2APIC ID and LDR are the vCPU's, whatever came in. */
		wr(a, R_ID, a->id);
		wr(a, R_LDR, x2apic_ldr(a->id));
	}
	/* Derived registers are recomputed, not taken from the blob. */
	wr(a, R_LVR, LVR_VALUE(a->nr_lvt));
	update_ppr(a);
	/* A restored TSC deadline comes back through MSR_IA32_TSC_DEADLINE. */
	a->tscdeadline = 0;
	update_divide(a);
	/* The timer restarts from the restored count, which then reads 0. */
	timer_stop(a);
	if (timer_mode(a) != TIMER_TSCDEADLINE && rd(a, R_TMICT)) {
		uint32_t cur;

		memcpy(&cur, s->regs + R_TMCCT, 4);
		timer_start(a, now);
		/*
		 * TMCCT is the count left: expire after that many bus cycles
		 * instead of a full period.
		 */
		if (cur && a->period_ns)
			a->expire_ns = now + (uint64_t)cur * a->bus_cycle_ns *
						     a->divide;
	}
	wr(a, R_TMCCT, 0);
	return 0;
}

/* ---- Delivery ------------------------------------------------------ */

int gmem_apic_map_init(struct gmem_apic_map *m)
{
	memset(m, 0, sizeof(*m));
	/*
	 * Readers (senders on any thread) far outnumber writers (vCPU create
	 * and destroy), hence the rwlock.
	 */
	return -pthread_rwlock_init(&m->lock, NULL);
}

void gmem_apic_map_destroy(struct gmem_apic_map *m)
{
	pthread_rwlock_destroy(&m->lock);
	gmem_free(m->apics);
}

int gmem_apic_map_add(struct gmem_apic_map *m, struct gmem_lapic *a)
{
	int r;

	pthread_rwlock_wrlock(&m->lock);
	r = gmem_grow_array(&m->apics, m->nr, &m->cap, 8, sizeof(*m->apics));
	if (!r) {
		m->apics[m->nr++] = a;
		a->map = m;
	}
	pthread_rwlock_unlock(&m->lock);
	return r;
}

void gmem_apic_map_remove(struct gmem_apic_map *m, struct gmem_lapic *a)
{
	pthread_rwlock_wrlock(&m->lock);
	for (size_t i = 0; i < m->nr; i++)
		if (m->apics[i] == a) {
			/*
			 * Swap with the last: order decides only which target a
			 * lowest-priority IPI picks, and none is preferred.
			 */
			m->apics[i] = m->apics[--m->nr];
			break;
		}
	pthread_rwlock_unlock(&m->lock);
}

/* kvm_apic_match_physical_addr() and _logical_addr(). */
static bool match_dest(const struct gmem_lapic *t, uint64_t tbase,
		       uint32_t dest, bool logical, bool src_x2)
{
	bool tx2 = x2apic(tbase);

	/* The broadcast destination of the target's mode (0xff or ~0). */
	if (dest == (tx2 ? 0xffffffffu : 0xffu))
		return true;
	/* An xAPIC broadcast reaches x2APIC targets too (KVM's quirk). */
	if (!src_x2 && dest == 0xff)
		return true;
	if (!logical) {
		/* x2APIC and destinations above 0xff compare the 32-bit ID. */
		if (tx2 || dest > 0xff)
			return dest == t->id;
		return dest == rd(t, R_ID) >> 24;
	}
	if (tx2) {
		uint32_t ldr = rd(t, R_LDR);

		/*
		 * x2APIC logical: same cluster, and a common bit in the low 16.
		 */
		return (ldr >> 16) == (dest >> 16) && (ldr & dest & 0xffff);
	}
	{
		uint32_t lid = rd(t, R_LDR) >> 24;

		switch (rd(t, R_DFR)) {
		case 0xffffffffu: /* flat */
			return lid & dest;
		case 0x0fffffffu: /* cluster */
			return (lid >> 4) == (dest >> 4) && (lid & dest & 0xf);
		default:
			return false;
		}
	}
}

/*
 * The bus message @lo (ICR low-word layout) for @dest from @src (NULL for
 * a device's message): how many APICs accepted it.
 */
static int deliver(struct gmem_apic_map *m, struct gmem_lapic *src,
		   uint32_t dest, uint32_t lo, bool src_x2)
{
	unsigned int sh = ICR_SHORTHAND(lo), dm = ICR_DM(lo);
	int n = 0;

	/* The read lock keeps the target APICs alive while we deliver. */
	pthread_rwlock_rdlock(&m->lock);
	for (size_t i = 0; i < m->nr; i++) {
		struct gmem_lapic *t = m->apics[i];
		uint64_t tbase = base_of(t);
		bool hit;

		/* A hardware-disabled APIC is not on the bus at all. */
		if (!hw_enabled(tbase))
			continue;
		if (sh == SH_SELF)
			hit = t == src;
		else if (sh == SH_ALL)
			hit = true;
		else if (sh == SH_ALL_BUT_SELF)
			hit = t != src;
		else
			hit = match_dest(t, tbase, dest, lo & ICR_LOGICAL,
					 src_x2);
		if (!hit || !accept(t, lo))
			continue;
		n++;
		/*
		 * The sender's own vCPU is running this code and needs no kick.
		 */
		if (t != src)
			kick(t);
		/* Lowest priority: one of the targets (the first) takes it. */
		if (dm == DM_LOWEST)
			break;
	}
	pthread_rwlock_unlock(&m->lock);
	return n;
}

void gmem_apic_map_send(struct gmem_apic_map *m, struct gmem_lapic *src,
			uint64_t icr)
{
	uint32_t lo = (uint32_t)icr, hi = (uint32_t)(icr >> 32);
	bool src_x2 = x2apic(base_of(src));

	deliver(m, src, src_x2 ? hi : hi >> 24, lo, src_x2);
}

int gmem_apic_map_send_msi(struct gmem_apic_map *m, uint32_t dest, uint32_t lo)
{
	/* No shorthand on the bus; 0xff is the xAPIC broadcast (a quirk). */
	return deliver(m, NULL, dest, lo & ~(uint32_t)(3u << 18), false);
}
