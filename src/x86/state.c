// SPDX-License-Identifier: MIT
/*
 * The CPU model's state API: creation, the caches a VMM invalidates, and
 * registers in KVM's layouts.
 */
#include <errno.h>

#include "x86/internal.h"

int x86_cpu_init(struct x86_cpu *c, const struct x86_bus *bus, void *ctx)
{
	const struct kvm_cpuid_entry2 *t;
	unsigned n;

	memset(c, 0, sizeof(*c));
	c->bus = bus;
	c->bus_ctx = ctx;
	if (x86_decoder_init(c))
		return -ENOMEM;
	/* Every entry empty (tag ~0): nothing translates before CR3 is set. */
	x86_tlb_flush(c);
	/*
	 * A flat 64-bit supervisor state: the model runs long mode only, so
	 * the VMM must give page tables (CR3) and descriptor tables anyway.
	 */
	for (unsigned s = 0; s < X86_NSEG; s++)
		x86_load_flat(&c->seg[s], 0, 0, s == X86_CS);
	c->tr.type = 0xb;
	c->tr.present = 1;
	c->tr.limit = 0xffff;
	c->ldt.unusable = 1;
	c->gdt.limit = 0xffff;
	c->idt.limit = 0xffff;
	c->cr0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_ET | X86_CR0_NE | X86_CR0_WP;
	c->cr4 = X86_CR4_PAE;
	c->efer = X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE | X86_EFER_SCE;
	c->rflags = 2;
	/* IA32_APIC_BASE at reset: the default page, enabled, BSP. */
	c->apic_base = 0xfee00000 | (1u << 11) | (1u << 8);
	/* Until CPUID says otherwise (x86_set_maxphyaddr()). */
	c->maxphyaddr = 48;
	x86_paging_update(c);
	/* Base 0 at ns 0: at 1 GHz the TSC reads host monotonic ns. */
	c->tsc_khz = X86_TSC_KHZ;
	/* What KVM's vCPU reset (fpstate_init) leaves: XMM zero. */
	c->mxcsr = X86_MXCSR_DEFAULT;
	c->xcr0 = X86_XFEATURE_FP; /* kvm_vcpu_reset(): x87 only */
	c->x87.fcw = X86_FCW_DEFAULT;
	c->dr6 = X86_DR6_INIT;
	c->dr7 = X86_DR7_INIT;
	c->ucode_rev = X86_UCODE_REV_DEFAULT;
	c->kvm_poll_control = 1; /* kvm_arch_vcpu_postcreate() */
	/* kvm_vcpu_reset(): no BTS, no PEBS (and no MWAIT enable). */
	c->misc_enable =
		X86_MISC_ENABLE_PEBS_UNAVAIL | X86_MISC_ENABLE_BTS_UNAVAIL;
	/*
	 * KVM's vCPU starts with KVM_GET_SUPPORTED_CPUID's table until the
	 * VMM sets its own.
	 */
	t = x86_supported_cpuid(&n);
	x86_set_cpuid(c, t, n);
	return 0;
}

void x86_cpu_destroy(struct x86_cpu *c)
{
	x86_decoder_fini(c);
}

/*
 * Decodes hang off TLB entries and are keyed by guest-physical page:
 * both go together, or a decode could outlive the mapping it came from.
 */
void x86_cpu_flush(struct x86_cpu *c)
{
	x86_tlb_flush(c);
	x86_dc_flush(c);
}

/*
 * Reached after a longjmp out of a handler (x86.h): no record is in use
 * any more, so dead decode pages are freed now, and the stop record the
 * run was filling is forgotten.
 */
void x86_cpu_abandon(struct x86_cpu *c)
{
	x86_cpu_flush(c);
	x86_dc_free_dead(c);
	c->stop = NULL;
}

void x86_cpu_invalidate_gpa(struct x86_cpu *c, uint64_t start, uint64_t end)
{
	/*
	 * Both aliases of a page (with and without the XO bit) hold the same
	 * memory, so the range is compared with the bit stripped.
	 */
	uint64_t s = start & ~c->xo_bit & ~0xfffull;
	uint64_t e = end & ~c->xo_bit;

	/* Links between decoded records may point into what is dropped here. */
	c->gen++;
	for (unsigned k = 0; k < X86_TLB_SIZE; k++) {
		uint64_t g = c->tlb[k].gpa & ~c->xo_bit;

		/*
		 * A TLB entry caches the page's host address: it must not
		 * outlive a memslot change or a guest_memfd hole punched under
		 * it.
		 */
		if (c->tlb[k].tag != ~0ull && g >= s && g < e)
			c->tlb[k].tag = ~0ull;
	}
	for (unsigned b = 0; b < X86_DC_BUCKETS; b++) {
		struct x86_dpage *dp = c->dc[b], *nx;

		for (; dp; dp = nx) {
			/*
			 * The next pointer is read first: dropping unlinks @dp
			 * from the bucket.
			 */
			nx = dp->next;
			if (dp->gpa >= s && dp->gpa < e)
				x86_dc_drop_page(c, dp);
		}
	}
}

void x86_get_regs(const struct x86_cpu *c, struct kvm_regs *r)
{
	/*
	 * x86_flags() folds the lazy flags into rflags, a cache update only:
	 * the architectural state is unchanged.
	 */
	struct x86_cpu *m = (struct x86_cpu *)c; /* flags materialize */

	r->rax = c->gpr[X86_RAX];
	r->rbx = c->gpr[X86_RBX];
	r->rcx = c->gpr[X86_RCX];
	r->rdx = c->gpr[X86_RDX];
	r->rsi = c->gpr[X86_RSI];
	r->rdi = c->gpr[X86_RDI];
	r->rsp = c->gpr[X86_RSP];
	r->rbp = c->gpr[X86_RBP];
	r->r8 = c->gpr[X86_R8];
	r->r9 = c->gpr[X86_R9];
	r->r10 = c->gpr[X86_R10];
	r->r11 = c->gpr[X86_R11];
	r->r12 = c->gpr[X86_R12];
	r->r13 = c->gpr[X86_R13];
	r->r14 = c->gpr[X86_R14];
	r->r15 = c->gpr[X86_R15];
	r->rip = c->rip;
	r->rflags = x86_flags(m);
}

void x86_set_regs(struct x86_cpu *c, const struct kvm_regs *r)
{
	c->gpr[X86_RAX] = r->rax;
	c->gpr[X86_RBX] = r->rbx;
	c->gpr[X86_RCX] = r->rcx;
	c->gpr[X86_RDX] = r->rdx;
	c->gpr[X86_RSI] = r->rsi;
	c->gpr[X86_RDI] = r->rdi;
	c->gpr[X86_RSP] = r->rsp;
	c->gpr[X86_RBP] = r->rbp;
	c->gpr[X86_R8] = r->r8;
	c->gpr[X86_R9] = r->r9;
	c->gpr[X86_R10] = r->r10;
	c->gpr[X86_R11] = r->r11;
	c->gpr[X86_R12] = r->r12;
	c->gpr[X86_R13] = r->r13;
	c->gpr[X86_R14] = r->r14;
	c->gpr[X86_R15] = r->r15;
	c->rip = r->rip;
	/* Drops any lazy flag record, which would otherwise overwrite these. */
	x86_set_flags(c, r->rflags);
}

void x86_get_sregs(const struct x86_cpu *c, struct kvm_sregs *s)
{
	memset(s, 0, sizeof(*s));
	s->es = c->seg[X86_ES];
	s->cs = c->seg[X86_CS];
	s->ss = c->seg[X86_SS];
	s->ds = c->seg[X86_DS];
	s->fs = c->seg[X86_FS];
	s->gs = c->seg[X86_GS];
	s->tr = c->tr;
	s->ldt = c->ldt;
	s->gdt = c->gdt;
	s->idt = c->idt;
	s->cr0 = c->cr0;
	s->cr2 = c->cr2;
	s->cr3 = c->cr3;
	s->cr4 = c->cr4;
	s->cr8 = c->cr8;
	s->efer = c->efer;
	s->apic_base = c->apic_base;
}

/*
 * Accepts any state, as KVM does; x86_run() refuses to run outside
 * 64-bit mode (INTERNAL stop).  CPL is CS.DPL.
 */
int x86_set_sregs(struct x86_cpu *c, const struct kvm_sregs *s)
{
	c->seg[X86_ES] = s->es;
	c->seg[X86_CS] = s->cs;
	c->seg[X86_SS] = s->ss;
	c->seg[X86_DS] = s->ds;
	c->seg[X86_FS] = s->fs;
	c->seg[X86_GS] = s->gs;
	c->tr = s->tr;
	c->ldt = s->ldt;
	c->gdt = s->gdt;
	c->idt = s->idt;
	c->cr0 = s->cr0;
	c->cr2 = s->cr2;
	c->cr3 = s->cr3;
	c->cr8 = s->cr8;
	c->efer = s->efer;
	c->apic_base = s->apic_base;
	/*
	 * Through the setters, which recompute what depends on CR4, CPL and
	 * the paging mode (the TLB and the derived access masks).
	 */
	x86_set_cr4(c, s->cr4);
	x86_set_cpl(c, s->cs.dpl & 3);
	x86_paging_update(c);
	return 0;
}

uint64_t x86_get_rflags(struct x86_cpu *c)
{
	return x86_flags(c);
}
