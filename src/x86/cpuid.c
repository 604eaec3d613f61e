// SPDX-License-Identifier: MIT
/*
 * CPUID: the default table (what the model implements), the guest's
 * table with what follows from it (MAXPHYADDR, CR4 bits, XCR0, the x87
 * pointer rules, KVM's PV leaves), and the instruction's lookup.
 */
#include <errno.h>

#include "x86/internal.h"

/* What the model implements, as a default CPUID table. */
static const struct kvm_cpuid_entry2 default_cpuid[] = {
	/* max basic leaf 0xd, "GenuineIntel" */
	{.function = 0,
	 .eax = 0xd,
	 .ebx = 0x756e6547,
	 .ecx = 0x6c65746e,
	 .edx = 0x49656e69},
	/*
	 * family 6; ECX: SSE3(0) SSSE3(9) SSE4.1(19) SSE4.2(20) x2APIC(21,
	 * as KVM always reports it; the APIC is the irqchip's) MOVBE(22)
	 * POPCNT(23) XSAVE(26) AVX(28, with X86_AVX) hypervisor(31), and
	 * OSXSAVE(27) following CR4 (x86_cpuid_runtime()); EDX: FPU(0) TSC(4)
	 * MSR(5) PAE(6) MCE(7) CX8(8) MCA(14, the vCPU layer's banks) CMOV(15)
	 * FXSR(24) SSE(25) SSE2(26).  No MMX(23): the MMX-register forms of
	 * SSE instructions stay #UD.
	 */
	{.function = 1,
	 .eax = 0x000606a0,
	 .ecx = (1u << 0) | (1u << 9) | (1u << 19) | (1u << 20) | (1u << 21) |
		(1u << 22) | (1u << 23) | (1u << 26) |
		(X86_AVX ? 1u << 28 : 0) | (1u << 31),
	 .edx = (1u << 0) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 7) |
		(1u << 8) | (1u << 14) | (1u << 15) | (1u << 24) | (1u << 25) |
		(1u << 26)},
	/* EBX: BMI1(3) SMEP(7) SMAP(20) */
	{.function = 7,
	 .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
	 .ebx = (1u << 1) | (1u << 3) | (1u << 7) | (1u << 20)},
	/*
	 * XSAVE (sse.c): x87, SSE and, with X86_AVX, YMM (sub-leaf 2: 256
	 * bytes at 576); the same size in either format (EBX follows
	 * XCR0); XSAVEOPT, XSAVEC, XGETBV with ECX = 1, no XSAVES (no
	 * IA32_XSS, no supervisor components).
	 */
	{.function = 0xd,
	 .index = 0,
	 .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
	 .eax = X86_XCR0_SUPPORTED,
	 .ebx = X86_XSAVE_SUPPORTED_SIZE,
	 .ecx = X86_XSAVE_SUPPORTED_SIZE},
	{.function = 0xd,
	 .index = 1,
	 .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
	 .eax = X86_XSAVE_XSAVEOPT | X86_XSAVE_XSAVEC | X86_XSAVE_XGETBV1,
	 .ebx = X86_XSAVE_SUPPORTED_SIZE},
#if X86_AVX
	{.function = 0xd,
	 .index = 2,
	 .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
	 .eax = X86_XSAVE_YMM_SIZE,
	 .ebx = X86_XSAVE_YMM_OFF},
#endif
	/*
	 * KVM's paravirtual leaves: the signature "KVMKVMKVM\0\0\0", and of
	 * KVM's features those gmem has: CLOCKSOURCE(0) and CLOCKSOURCE2(3)
	 * (kvmclock through either MSR pair), NOP_IO_DELAY(1) (port I/O
	 * needs no delay), STEAL_TIME(5) (the vCPU thread's run delay, as
	 * KVM's), PV_UNHALT(7) (KVM_HC_KICK_CPU), PV_SEND_IPI(11),
	 * POLL_CONTROL(12) (its MSR, a hint), PV_SCHED_YIELD(13) (the
	 * hypercall, which returns 0) and CLOCKSOURCE_STABLE_BIT(24)
	 * (PVCLOCK_TSC_STABLE_BIT is set when the clock is stable).  No async
	 * PF, PV EOI or PV TLB flush.
	 */
	{.function = 0x40000000,
	 .eax = 0x40000001,
	 .ebx = 0x4b4d564b,
	 .ecx = 0x564b4d56,
	 .edx = 0x0000004d},
	{.function = 0x40000001,
	 .eax = (1u << 0) | (1u << 1) | (1u << 3) | (1u << 5) | (1u << 7) |
		(1u << 11) | (1u << 12) | (1u << 13) | (1u << 24)},
	{.function = 0x80000000, .eax = 0x80000008},
	/* ECX: LAHF(0) ABM/LZCNT(5); EDX: SYSCALL(11) NX(20) 1G(26)
	 * RDTSCP(27) LM(29) */
	{.function = 0x80000001,
	 .ecx = (1u << 0) | (1u << 5),
	 .edx = (1u << 11) | (1u << 20) | (1u << 26) | (1u << 27) | (1u << 29)},
	{.function = 0x80000008, .eax = 0x3030},
};

static const struct kvm_cpuid_entry2 *cpuid_find(const struct x86_cpu *c,
						 uint32_t leaf, uint32_t sub);

/* KVM's cpuid_query_maxphyaddr(): 0x80000008 EAX[7:0], else 36. */
static unsigned table_maxphyaddr(const struct x86_cpu *c)
{
	const struct kvm_cpuid_entry2 *e = cpuid_find(c, 0x80000000, 0);

	if (!e || e->eax < 0x80000008 || !(e = cpuid_find(c, 0x80000008, 0)))
		return 36;
	return e->eax & 0xff;
}

/* KVM's cpuid_entry2_find(): the first entry of @fn that @idx matches. */
static struct kvm_cpuid_entry2 *
entry_find(struct kvm_cpuid_entry2 *e, unsigned n, uint32_t fn, uint32_t idx)
{
	for (unsigned k = 0; k < n; k++)
		if (e[k].function == fn &&
		    (!(e[k].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) ||
		     e[k].index == idx))
			return &e[k];
	return NULL;
}

/*
 * KVM_CPUID_FEATURES: the leaf after the first 0x40000x00 leaf with KVM's
 * signature (whatever that leaf's EAX says, as in KVM).
 */
static struct kvm_cpuid_entry2 *kvm_features(struct kvm_cpuid_entry2 *e,
					     unsigned n)
{
	for (uint32_t base = 0x40000000; base < 0x50000000; base += 0x100) {
		const struct kvm_cpuid_entry2 *s = entry_find(e, n, base, 0);

		if (s && s->ebx == 0x4b4d564b && s->ecx == 0x564b4d56 &&
		    s->edx == 0x4d)
			return entry_find(e, n, base + 1, 0);
	}
	return NULL;
}

/* KVM's cpuid_get_supported_xcr0(): leaf 0xD's EDX:EAX, of what we have. */
static uint64_t table_xcr0(struct kvm_cpuid_entry2 *e, unsigned n)
{
	const struct kvm_cpuid_entry2 *d = entry_find(e, n, 0xd, 0);

	if (!d)
		return 0;
	return (d->eax | (uint64_t)d->edx << 32) & X86_XCR0_SUPPORTED;
}

void x86_cpuid_runtime(const struct x86_cpu *c, struct kvm_cpuid_entry2 *e,
		       unsigned n)
{
	struct kvm_cpuid_entry2 *b = entry_find(e, n, 1, 0);

	if (b) {
		b->ecx &= ~(1u << 27);
		if (c->cr4 & X86_CR4_OSXSAVE)
			b->ecx |= 1u << 27;
		/* Without the quirk, MONITOR follows MISC_ENABLE.MWAIT. */
		if (!x86_quirk(c, KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT)) {
			b->ecx &= ~(1u << 3);
			if (c->misc_enable & X86_MISC_ENABLE_MWAIT)
				b->ecx |= 1u << 3;
		}
	}
	/* Both formats have the same size with the components the model has. */
	if ((b = entry_find(e, n, 0xd, 0)))
		b->ebx = x86_xsave_size(c->xcr0);
	if ((b = entry_find(e, n, 0xd, 1)) &&
	    (b->eax & (X86_XSAVE_XSAVEC | X86_XSAVE_XSAVES)))
		b->ebx = x86_xsave_size(c->xcr0);
	/* A guest whose HLT does not exit has no use for PV unhalt. */
	if (c->hlt_in_guest && (b = kvm_features(e, n)))
		b->eax &= ~(1u << X86_KVM_FEATURE_PV_UNHALT);
}

bool x86_pv_has(const struct x86_cpu *c, unsigned int feature)
{
	const struct kvm_cpuid_entry2 *f;

	if (!c->pv_enforce)
		return true;
	f = kvm_features((struct kvm_cpuid_entry2 *)c->cpuid, c->ncpuid);
	return f && (f->eax & (1u << feature));
}

/*
 * __kvm_set_xcr(): XCR0 only, x87 always, AVX only with SSE, MPX's two
 * and AVX-512's three components together, AMX's two together, nothing
 * beyond what the guest's leaf 0xD offers (x87 is always allowed).
 */
int x86_set_xcr(struct x86_cpu *c, uint32_t idx, uint64_t v)
{
	const uint64_t mpx = 3ull << 3, avx512 = 7ull << 5, amx = 3ull << 17;

	if (idx != 0 || !(v & X86_XFEATURE_FP))
		return -EINVAL;
	if ((v & X86_XFEATURE_YMM) && !(v & X86_XFEATURE_SSE))
		return -EINVAL;
	if (v & ~(c->guest_xcr0 | X86_XFEATURE_FP))
		return -EINVAL;
	if ((v & mpx) && (v & mpx) != mpx)
		return -EINVAL;
	if ((v & avx512) && (!(v & X86_XFEATURE_YMM) || (v & avx512) != avx512))
		return -EINVAL;
	if ((v & amx) && (v & amx) != amx)
		return -EINVAL;
	c->xcr0 = v;
	/* Leaf 0xD's sizes follow XCR0, as kvm_set_xcr() updates them. */
	x86_cpuid_runtime(c, c->cpuid, c->ncpuid);
	return 0;
}

/*
 * The CR4 bits a CPUID table allows (KVM's __cr4_reserved_bits()): the
 * always-there ones, and each feature's bit only where CPUID has it.
 */
uint64_t x86_cr4_allowed(const struct kvm_cpuid_entry2 *t, unsigned n)
{
	static const struct {
		uint32_t fn;
		uint8_t reg, bit;
		uint64_t cr4;
	} feat[] = {
		{7, 2, 2, 1ULL << 11},	/* UMIP */
		{7, 2, 16, 1ULL << 12}, /* LA57 */
		{1, 2, 5, 1ULL << 13},	/* VMXE */
		{1, 2, 6, 1ULL << 14},	/* SMXE */
		{7, 1, 0, 1ULL << 16},	/* FSGSBASE */
		{1, 2, 17, 1ULL << 17}, /* PCIDE */
		{1, 2, 26, 1ULL << 18}, /* OSXSAVE */
		{7, 1, 7, 1ULL << 20},	/* SMEP */
		{7, 1, 20, 1ULL << 21}, /* SMAP */
		{7, 2, 3, 1ULL << 22},	/* PKE */
	};
	/* VME PVI TSD DE PSE PAE MCE PGE PCE OSFXSR OSXMMEXCPT */
	uint64_t ok = 0x7ff;

	for (unsigned f = 0; f < ARRAY_SIZE(feat); f++) {
		for (unsigned k = 0; k < n; k++) {
			const uint32_t r[4] = {t[k].eax, t[k].ebx, t[k].ecx,
					       t[k].edx};

			if (t[k].function != feat[f].fn ||
			    ((t[k].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) &&
			     t[k].index))
				continue;
			if (r[feat[f].reg] >> feat[f].bit & 1)
				ok |= feat[f].cr4;
			break;
		}
	}
	return ok;
}

int x86_set_cpuid(struct x86_cpu *c, const struct kvm_cpuid_entry2 *e,
		  unsigned n)
{
	uint32_t o[4];

	if (n > X86_MAX_CPUID)
		return -E2BIG;
	memcpy(c->cpuid, e, n * sizeof(*e));
	c->ncpuid = n;
	c->guest_xcr0 = table_xcr0(c->cpuid, n);
	x86_cpuid_runtime(c, c->cpuid, n);
	x86_cpuid(c, 7, 0, o);
	c->x87_ptr_exc_only = o[1] >> 6 & 1;
	c->x87_zero_sel = o[1] >> 13 & 1;
	/* The guest's physical-address width is the table's, unless XO. */
	if (!c->xo_bit) {
		c->maxphyaddr = table_maxphyaddr(c);
		x86_paging_update(c);
		x86_cpu_flush(c);
	}
	return 0;
}

void x86_set_maxphyaddr(struct x86_cpu *c, unsigned m, bool xo)
{
	c->maxphyaddr = m;
	c->xo_bit = xo ? 1ull << m : 0;
	x86_paging_update(c);
	x86_cpu_flush(c);
}

/*
 * The table, then, once the XO alias is on, what the model enforces
 * regardless of KVM_SET_CPUID2: MAXPHYADDR in 0x80000008 and the gmem
 * hypervisor leaves (DESIGN 3.5).  Without it the table alone answers, as
 * in KVM.
 */
static const struct kvm_cpuid_entry2 *cpuid_find(const struct x86_cpu *c,
						 uint32_t leaf, uint32_t sub)
{
	for (unsigned k = 0; k < c->ncpuid; k++) {
		const struct kvm_cpuid_entry2 *e = &c->cpuid[k];

		if (e->function != leaf)
			continue;
		if ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) &&
		    e->index != sub)
			continue;
		return e;
	}
	return NULL;
}

/*
 * A leaf the table lacks, as KVM's get_out_of_range_cpuid_entry(): on an
 * Intel guest a leaf above the maximum of its class (basic, 0x4xxxxx00,
 * extended, 0xc0000000), or of a class the table lacks, reads as the
 * highest basic leaf, as Intel processors do; an AMD guest reads zeros.
 */
static const struct kvm_cpuid_entry2 *
cpuid_out_of_range(const struct x86_cpu *c, uint32_t leaf, uint32_t sub)
{
	static const char *const amd[] = {"AuthenticAMD", "AMDisbetter!",
					  "HygonGenuine"};
	const struct kvm_cpuid_entry2 *basic = cpuid_find(c, 0, 0);
	const struct kvm_cpuid_entry2 *class;
	uint32_t base, vendor[3];

	if (!basic)
		return NULL;
	/* The vendor string is EBX, EDX, ECX. */
	vendor[0] = basic->ebx;
	vendor[1] = basic->edx;
	vendor[2] = basic->ecx;
	for (unsigned k = 0; k < 3; k++)
		if (!memcmp(vendor, amd[k], 12))
			return NULL;
	if (leaf >= 0x40000000 && leaf <= 0x4fffffff)
		base = leaf & 0xffffff00;
	else if (leaf >= 0xc0000000)
		base = 0xc0000000;
	else
		base = leaf & 0x80000000;
	class = cpuid_find(c, base, 0);
	if (class && leaf <= class->eax)
		return NULL;
	return cpuid_find(c, basic->eax, sub);
}

void x86_cpuid(const struct x86_cpu *c, uint32_t leaf, uint32_t sub,
	       uint32_t out[4])
{
	const struct kvm_cpuid_entry2 *e = cpuid_find(c, leaf, sub);

	if (!e)
		e = cpuid_out_of_range(c, leaf, sub);
	out[0] = e ? e->eax : 0;
	out[1] = e ? e->ebx : 0;
	out[2] = e ? e->ecx : 0;
	out[3] = e ? e->edx : 0;
	if (!c->xo_bit)
		return;
	if (leaf == 0x80000008)
		out[0] = (out[0] & ~0xffu) | c->maxphyaddr;
	if (leaf == 0x40000000) {
		out[0] = 0x40000001;
		out[1] = out[2] = out[3] = 0x6d656d67; /* "gmem" */
	}
	if (leaf == 0x40000001) {
		out[0] = 1;
		out[1] = out[2] = out[3] = 0;
	}
}

unsigned x86_host_maxphyaddr(void)
{
	for (size_t i = 0; i < sizeof(default_cpuid) / sizeof(default_cpuid[0]);
	     i++)
		if (default_cpuid[i].function == 0x80000008)
			return default_cpuid[i].eax & 0xff;
	return 36;
}

/* KVM_GET_SUPPORTED_CPUID: the default table is what the model supports. */
const struct kvm_cpuid_entry2 *x86_supported_cpuid(unsigned *n)
{
	*n = sizeof(default_cpuid) / sizeof(default_cpuid[0]);
	return default_cpuid;
}
