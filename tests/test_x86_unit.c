// SPDX-License-Identifier: MIT
/*
 * Unit tests of the CPU model on the flat-memory backend: instruction
 * semantics, paging faults with their error codes, exceptions, and the
 * stops (MMIO, I/O, HLT, VMCALL, kick, stage-2 exit, shutdown).
 */
#include "tap.h"
#include "x86_harness.h"

static struct hvm vm;

/* Reset the VM and load @code at H_CODE. */
static void setup(const uint8_t *b, const uint8_t *e)
{
	hvm_destroy(&vm);
	REQUIRE(hvm_init(&vm, 16 << 20) == 0);
	hvm_load(&vm, H_CODE, b, e);
}

#define SETUP(name) setup(name, name##_end)

/* Guest memory at any alignment. */
static uint64_t ld(uint64_t gpa, unsigned len)
{
	uint64_t v = 0;

	memcpy(&v, vm.mem + gpa, len);
	return v;
}

static uint64_t flags(void)
{
	struct kvm_regs r;

	x86_get_regs(&vm.cpu, &r);
	return r.rflags;
}

/* Error code and return RIP of the frame of a handler that just ran. */
static uint64_t frame(unsigned n)
{
	return *hvm_q(&vm, vm.cpu.gpr[X86_RSP] + 8 * n);
}

GUEST_CODE(g_arith, "mov $5, %eax\n"
		    "add $7, %eax\n" /* 12 */
		    "mov $-1, %rbx\n"
		    "add $1, %rbx\n"	    /* 0, CF ZF */
		    "adc $0, %eax\n"	    /* 13 */
		    "imul $3, %eax, %ecx\n" /* 39 */
		    "mov $100, %eax\n"
		    "xor %edx, %edx\n"
		    "mov $7, %esi\n"
		    "div %esi\n"		 /* 14 r 2 */
		    "shl $4, %rdx\n"		 /* 32 */
		    "lea 1(%rdx,%rcx,2), %rdi\n" /* 32+78+1 = 111 */
		    "mov $0x8000000000000000, %r8\n"
		    "sar $63, %r8\n"	  /* -1 */
		    "movzbl %r8b, %r9d\n" /* 255 */
		    "movsbq %r9b, %r10\n" /* -1 */
		    "bsf %rdx, %r11\n"	  /* 5 */
		    "cmp $112, %rdi\n"	  /* 111 < 112: CF SF */
		    "setb %r12b\n"
		    "setl %r13b\n"
		    "cmovb %rdi, %r14\n"
		    "mov $0x1234, %ah\n"
		    "hlt\n");

static void t_arith(void)
{
	SETUP(g_arith);
	vm.cpu.gpr[X86_R12] = 0xff00;
	CHECK_EQ(hvm_run(&vm, 1000), X86_STOP_HLT);
	CHECK_EQ(vm.cpu.gpr[X86_RAX], 14 | 0x34 << 8);
	CHECK_EQ(vm.cpu.gpr[X86_RBX], 0);
	CHECK_EQ(vm.cpu.gpr[X86_RCX], 39);
	CHECK_EQ(vm.cpu.gpr[X86_RDX], 32);
	CHECK_EQ(vm.cpu.gpr[X86_RDI], 111);
	CHECK_EQ(vm.cpu.gpr[X86_R8], -1);
	CHECK_EQ(vm.cpu.gpr[X86_R9], 255);
	CHECK_EQ(vm.cpu.gpr[X86_R10], -1);
	CHECK_EQ(vm.cpu.gpr[X86_R11], 5);
	CHECK_EQ(vm.cpu.gpr[X86_R12], 0xff01);
	CHECK_EQ(vm.cpu.gpr[X86_R13], 1);
	CHECK_EQ(vm.cpu.gpr[X86_R14], 111);
	CHECK_EQ(flags() & (X86_CF | X86_ZF | X86_SF | X86_OF),
		 X86_CF | X86_SF);
	CHECK_EQ(vm.cpu.rip, H_CODE + (g_arith_end - g_arith));
	CHECK_EQ(vm.stop.executed, 23);
	tap_result("arithmetic, flags, setcc, cmov");
}

GUEST_CODE(g_flow, "xor %eax, %eax\n"
		   "mov $100, %ecx\n"
		   "1: add %rcx, %rax\n"
		   "loop 1b\n" /* 5050 */
		   "mov $10, %edi\n"
		   "call 2f\n"
		   "jmp 3f\n"
		   "2: push %rbp\n"
		   "mov %rsp, %rbp\n"
		   "lea (%rdi,%rdi,4), %rbx\n"
		   "leave\n"
		   "ret\n"
		   "3: lea 4f(%rip), %rdx\n"
		   "jmp *%rdx\n"
		   "ud2\n"
		   "4: mov $1, %esi\n"
		   "test %esi, %esi\n"
		   "jz 5f\n"
		   "dec %esi\n"
		   "jnz 5f\n"
		   "mov $42, %esi\n"
		   "5: hlt\n");

static void t_flow(void)
{
	SETUP(g_flow);
	CHECK_EQ(hvm_run(&vm, 10000), X86_STOP_HLT);
	CHECK_EQ(vm.cpu.gpr[X86_RAX], 5050);
	CHECK_EQ(vm.cpu.gpr[X86_RBX], 50);
	CHECK_EQ(vm.cpu.gpr[X86_RSI], 42);
	CHECK_EQ(vm.cpu.gpr[X86_RSP], H_STACK);
	tap_result("loops, call/ret, leave, indirect jmp");
}

GUEST_CODE(g_string, "mov $0x20000, %esi\n"
		     "mov $0x21000, %edi\n"
		     "mov $100, %ecx\n"
		     "rep movsb\n"
		     "mov $0x22000, %edi\n"
		     "mov $0x1122334455667788, %rax\n"
		     "mov $8, %ecx\n"
		     "rep stosq\n"
		     "mov $0x20000, %edi\n"
		     "mov $0x2a, %al\n"
		     "mov $1000, %ecx\n"
		     "repne scasb\n"
		     "mov %rdi, %r8\n"
		     "mov $0x20000, %esi\n"
		     "mov $0x21000, %edi\n"
		     "mov $100, %ecx\n"
		     "repe cmpsb\n"
		     "mov %rcx, %r9\n"
		     "std\n"
		     "mov $0x22007, %esi\n"
		     "lodsb\n"
		     "cld\n"
		     "hlt\n");

static void t_string(void)
{
	SETUP(g_string);
	for (unsigned i = 0; i < 100; i++)
		vm.mem[H_DATA + i] = i;
	vm.mem[H_DATA + 42] = 0x2a;
	CHECK_EQ(hvm_run(&vm, 10000), X86_STOP_HLT);
	CHECK(memcmp(vm.mem + H_DATA, vm.mem + H_DATA + 0x1000, 100) == 0);
	CHECK_EQ(*hvm_q(&vm, 0x22000 + 56), 0x1122334455667788ll);
	CHECK_EQ(vm.cpu.gpr[X86_R8], 0x20000 + 43);
	CHECK_EQ(vm.cpu.gpr[X86_R9], 0);
	CHECK_EQ(vm.cpu.gpr[X86_RSI], 0x22006);
	CHECK_EQ(vm.cpu.gpr[X86_RAX] & 0xff, 0x11);
	tap_result("string instructions with REP/REPE/REPNE and DF");
}

GUEST_CODE(g_pf_read, "mov $0x5a, %ebx\n"
		      "mov 0x30008, %rbx\n"
		      "hlt\n");

static void t_pf_notpresent(void)
{
	SETUP(g_pf_read);
	*hvm_pte(&vm, 0x30000) &= ~1ull;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 14);
	CHECK_EQ(frame(0), 0);		/* error code */
	CHECK_EQ(frame(1), H_CODE + 5); /* faulting RIP */
	CHECK_EQ(frame(2), SEL_KCODE);
	CHECK_EQ(frame(4), H_STACK);
	CHECK_EQ(vm.cpu.cr2, 0x30008);
	CHECK_EQ(vm.cpu.gpr[X86_RBX], 0x5a);
	tap_result("#PF not present: error code 0, CR2, frame");
}

GUEST_CODE(g_pf_write, "movq $7, 0x30010\n"
		       "hlt\n");

static void t_pf_ro(void)
{
	SETUP(g_pf_write);
	*hvm_pte(&vm, 0x30000) &= ~2ull;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 14);
	CHECK_EQ(frame(0), X86_PFEC_P | X86_PFEC_W);
	CHECK_EQ(vm.cpu.cr2, 0x30010);
	CHECK_EQ(*hvm_q(&vm, 0x30010), 0);
	tap_result("#PF write to read-only page with CR0.WP");
}

static void t_pf_user(void)
{
	SETUP(g_pf_read);
	*hvm_pte(&vm, 0x30000) &= ~4ull;
	hvm_set_cpl(&vm, 3);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 14);
	CHECK_EQ(frame(0), X86_PFEC_P | X86_PFEC_U);
	CHECK_EQ(frame(2), SEL_UCODE | 3);
	CHECK_EQ(frame(4), H_STACK);
	CHECK_EQ(frame(5), SEL_UDATA | 3);
	CHECK_EQ(vm.cpu.gpr[X86_RSP], H_RSP0 - 48); /* TSS.RSP0 */
	CHECK_EQ(vm.cpu.cpl, 0);
	CHECK_EQ(vm.cpu.cr2, 0x30008);
	tap_result("#PF user access to supervisor page, stack switch");
}

GUEST_CODE(g_nx, "mov $0x30000, %eax\n"
		 "jmp *%rax\n");

static void t_pf_nx(void)
{
	SETUP(g_nx);
	*hvm_pte(&vm, 0x30000) |= 1ull << 63;
	vm.mem[0x30000] = 0xf4;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 14);
	CHECK_EQ(frame(0), X86_PFEC_P | X86_PFEC_I);
	CHECK_EQ(frame(1), 0x30000);
	CHECK_EQ(vm.cpu.cr2, 0x30000);
	tap_result("#PF instruction fetch from NX page");
}

GUEST_CODE(g_rsvd, "mov 0x30000, %eax\n"
		   "hlt\n");

static void t_pf_rsvd(void)
{
	SETUP(g_rsvd);
	x86_set_maxphyaddr(&vm.cpu, 40, false);
	*hvm_pte(&vm, 0x30000) |= 1ull << 40;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 14);
	CHECK_EQ(frame(0), X86_PFEC_P | X86_PFEC_RSVD);
	tap_result("#PF reserved bit (bit M without XO alias)");
}

/* The guest's CPUID with 0x80000008's MAXPHYADDR at @m. */
static void set_guest_maxphyaddr(unsigned m)
{
	static struct kvm_cpuid_entry2 t[X86_MAX_CPUID];
	unsigned n;
	const struct kvm_cpuid_entry2 *sup = x86_supported_cpuid(&n);

	memcpy(t, sup, n * sizeof(*t));
	for (unsigned k = 0; k < n; k++)
		if (t[k].function == 0x80000008)
			t[k].eax = (t[k].eax & ~0xffu) | m;
	REQUIRE(x86_set_cpuid(&vm.cpu, t, n) == 0);
}

GUEST_CODE(g_rsvd_2m, "mov 0x200000, %eax\n"
		      "hlt\n");
GUEST_CODE(g_cr3_rsvd, "mov %cr3, %rax\n"
		       "bts $36, %rax\n"
		       "mov %rax, %cr3\n"
		       "hlt\n");

/*
 * KVM_CAP_SMALLER_MAXPHYADDR: a guest MAXPHYADDR of 36 from CPUID makes
 * bits 36-47, legal for the host, reserved in every guest PTE (leaf and
 * not) and in CR3; back at 48 they are address bits again.
 */
static void t_smaller_maxphyaddr(void)
{
	uint32_t o[4];

	SETUP(g_rsvd);
	set_guest_maxphyaddr(36);
	x86_cpuid(&vm.cpu, 0x80000008, 0, o);
	CHECK_EQ(o[0] & 0xff, 36);
	*hvm_pte(&vm, 0x30000) |= 1ull << 36;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 14);
	CHECK_EQ(frame(0), X86_PFEC_P | X86_PFEC_RSVD);
	CHECK_EQ(vm.cpu.cr2, 0x30000);

	/* A 2 MiB leaf, then a PDE pointing at a page table. */
	SETUP(g_rsvd_2m);
	set_guest_maxphyaddr(36);
	*hvm_q(&vm, H_PD + 8) |= 1ull << 40;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 14);
	CHECK_EQ(frame(0), X86_PFEC_P | X86_PFEC_RSVD);
	CHECK_EQ(vm.cpu.cr2, 0x200000);
	SETUP(g_rsvd_2m);
	set_guest_maxphyaddr(36);
	*hvm_q(&vm, H_PD + 8) = 0x40000 | 7 | 1ull << 47;
	*hvm_q(&vm, 0x40000) = 0x200000 | 7;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 14);
	CHECK_EQ(frame(0), X86_PFEC_P | X86_PFEC_RSVD);
	SETUP(g_rsvd_2m);
	set_guest_maxphyaddr(36);
	*hvm_q(&vm, H_PD + 8) = 0x40000 | 7;
	*hvm_q(&vm, 0x40000) = 0x200000 | 7;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), -1);

	/* Back at 48, bit 36 is an address bit: the walk goes there. */
	SETUP(g_rsvd);
	set_guest_maxphyaddr(36);
	set_guest_maxphyaddr(48);
	*hvm_pte(&vm, 0x30000) |= 1ull << 36;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_MMIO);

	/* EFER.NXE off: NX is reserved too, from the same masks. */
	SETUP(g_rsvd);
	set_guest_maxphyaddr(36);
	*hvm_pte(&vm, 0x30000) |= 1ull << 63;
	CHECK_EQ(x86_set_msr(&vm.cpu, X86_MSR_EFER,
			     X86_EFER_LME | X86_EFER_LMA | X86_EFER_SCE),
		 0);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 14);
	CHECK_EQ(frame(0), X86_PFEC_P | X86_PFEC_RSVD);

	SETUP(g_cr3_rsvd);
	set_guest_maxphyaddr(36);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 13);
	tap_result("smaller MAXPHYADDR from CPUID: #PF(RSVD) above it in "
		   "leaf and table entries, #GP for CR3, NX without NXE");
}

GUEST_CODE(g_rsvd_x87, "flds 0x30000\n"
		       "hlt\n");

/*
 * KVM_CAP_SMALLER_MAXPHYADDR: a PTE bit at the guest's MAXPHYADDR (40)
 * but below the host's (48) is one hardware walks through under TDP, so
 * FLDS, which KVM's emulator cannot emulate, is an emulation failure
 * (#UD without the capability) where MOV gets #PF(RSVD); a bit above the
 * host's MAXPHYADDR is #PF(RSVD) for both.
 */
static void t_pf_rsvd_smaller(void)
{
	static const bool on = true;

	SETUP(g_rsvd_x87);
	x86_set_maxphyaddr(&vm.cpu, 40, false);
	*hvm_pte(&vm, 0x30000) |= 1ull << 40;
	vm.cpu.exit_on_emulation_failure = &on;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_INTERNAL);
	CHECK_EQ(vm.cpu.rip, H_CODE);
	CHECK_EQ(vm.stop.internal.insn_len, 7);
	CHECK_EQ(vm.stop.internal.insn[0], 0xd9);
	vm.cpu.exit_on_emulation_failure = NULL;
	SETUP(g_rsvd_x87);
	x86_set_maxphyaddr(&vm.cpu, 40, false);
	*hvm_pte(&vm, 0x30000) |= 1ull << 40;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_UD);
	SETUP(g_rsvd_x87);
	x86_set_maxphyaddr(&vm.cpu, 40, false);
	*hvm_pte(&vm, 0x30000) |= 1ull << 50;
	vm.cpu.exit_on_emulation_failure = &on;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 14);
	CHECK_EQ(frame(0), X86_PFEC_P | X86_PFEC_RSVD);
	vm.cpu.exit_on_emulation_failure = NULL;
	tap_result("smaller MAXPHYADDR: x87 through a guest-only reserved bit "
		   "is an emulation failure, MOV a #PF(RSVD)");
}

GUEST_CODE(g_xo, "mov $0x30000, %eax\n"
		 "call *%rax\n"	      /* fetch through the alias works */
		 "mov (%rax), %ebx\n" /* read does not */
		 "hlt\n");

static void t_xo(void)
{
	SETUP(g_xo);
	x86_set_maxphyaddr(&vm.cpu, 40, true);
	*hvm_pte(&vm, 0x30000) |= 1ull << 40;
	vm.mem[0x30000] = 0xc3; /* ret */
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 14);
	CHECK_EQ(frame(0), X86_PFEC_P);
	CHECK_EQ(frame(1), H_CODE + 7);
	CHECK_EQ(vm.cpu.cr2, 0x30000);

	uint32_t o[4];

	x86_cpuid(&vm.cpu, 0x80000008, 0, o);
	CHECK_EQ(o[0] & 0xff, 40);
	x86_cpuid(&vm.cpu, 0x40000001, 0, o);
	CHECK_EQ(o[0] & 1, 1);
	tap_result("XO alias: fetch works, read gives #PF P=1 W=0");
}

GUEST_CODE(g_ud, "nop\nud2\n");
GUEST_CODE(g_de, "xor %ecx, %ecx\nmov $1, %eax\ndiv %ecx\n");
GUEST_CODE(g_gp, "hlt\n");

static void t_exceptions(void)
{
	SETUP(g_ud);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 6);
	CHECK_EQ(frame(0), H_CODE + 1);

	SETUP(g_de);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 0);
	CHECK_EQ(frame(0), H_CODE + 7);
	CHECK_EQ(vm.cpu.gpr[X86_RAX], 1);

	SETUP(g_gp);
	hvm_set_cpl(&vm, 3);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 13);
	CHECK_EQ(frame(0), 0);
	CHECK_EQ(frame(1), H_CODE);
	tap_result("#UD, #DE, #GP(0) from HLT at CPL 3");
}

static void t_double_triple(void)
{
	/* #UD with an unmapped stack: #PF, then #PF again: #DF on IST1. */
	SETUP(g_ud);
	hvm_set_gate(&vm, 8, H_HANDLERS + 8 * 16, 0xe, 0, 1);
	vm.cpu.gpr[X86_RSP] = 0x31000;
	*hvm_pte(&vm, 0x30000) &= ~1ull;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 8);
	CHECK_EQ(frame(0), 0);
	CHECK_EQ(vm.cpu.gpr[X86_RSP], H_IST1 - 48);

	/* Without IST the #DF frame faults too: triple fault. */
	SETUP(g_ud);
	vm.cpu.gpr[X86_RSP] = 0x31000;
	*hvm_pte(&vm, 0x30000) &= ~1ull;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_SHUTDOWN);

	/* IDT limit 0: #UD -> #GP -> #DF -> shutdown. */
	SETUP(g_ud);
	vm.cpu.idt.limit = 0;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_SHUTDOWN);
	tap_result("#DF on IST, triple fault -> SHUTDOWN");
}

GUEST_CODE(g_mmio, "mov $0x12345678, %ebx\n"
		   "mov 0x1000000, %eax\n"
		   "mov %ebx, 0x1000010\n"
		   "add %eax, 0x1000020\n"
		   "hlt\n");

static void t_mmio(void)
{
	SETUP(g_mmio);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_MMIO);
	CHECK_EQ(vm.stop.mmio.gpa, 0x1000000);
	CHECK_EQ(vm.stop.mmio.len, 4);
	CHECK_EQ(vm.stop.mmio.is_write, 0);
	CHECK_EQ(vm.cpu.rip, H_CODE + 5);
	x86_complete_mmio(&vm.cpu, 0xabcd);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_MMIO);
	CHECK_EQ(vm.cpu.gpr[X86_RAX], 0xabcd);
	CHECK_EQ(vm.stop.mmio.gpa, 0x1000010);
	CHECK_EQ(vm.stop.mmio.is_write, 1);
	CHECK_EQ(vm.stop.mmio.data[0], 0x78);
	CHECK_EQ(vm.stop.mmio.data[3], 0x12);
	/* RMW: read stop, then write stop, then done. */
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_MMIO);
	CHECK_EQ(vm.stop.mmio.gpa, 0x1000020);
	CHECK_EQ(vm.stop.mmio.is_write, 0);
	x86_complete_mmio(&vm.cpu, 1);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_MMIO);
	CHECK_EQ(vm.stop.mmio.is_write, 1);
	CHECK_EQ(vm.stop.mmio.data[0], 0xce); /* 0xabcd + 1 */
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	tap_result("MMIO read/write stops and completion");
}

GUEST_CODE(g_io, "mov $0x41, %al\n"
		 "out %al, $0x10\n"
		 "mov $0x3f8, %dx\n"
		 "in %dx, %ax\n"
		 "vmcall\n"
		 "hlt\n");

static void t_io(void)
{
	SETUP(g_io);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_IO);
	CHECK_EQ(vm.stop.io.port, 0x10);
	CHECK_EQ(vm.stop.io.is_write, 1);
	CHECK_EQ(vm.stop.io.size, 1);
	CHECK_EQ(vm.stop.io.data, 0x41);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_IO);
	CHECK_EQ(vm.stop.io.port, 0x3f8);
	CHECK_EQ(vm.stop.io.is_write, 0);
	CHECK_EQ(vm.stop.io.size, 2);
	x86_complete_in(&vm.cpu, 0xbeef);
	CHECK_EQ(vm.cpu.gpr[X86_RAX] & 0xffff, 0xbeef);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_VMCALL);
	CHECK_EQ(vm.cpu.rip, H_CODE + 13);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(vm.cpu.rip, H_CODE + 14);
	tap_result("OUT, IN + completion, VMCALL, HLT");
}

/*
 * OUTS as KVM's emulator runs it: one element per exit, RIP at a REP
 * OUTS until an execution finds RCX 0; an MMIO source is read first; an
 * FS override; a 32-bit address size keeps the bits above it, and RCX 0
 * then clears RCX on an Intel guest.
 */
GUEST_CODE(g_outs, "mov $0x20000, %esi\n"
		   "mov $0x3f8, %edx\n"
		   "mov $3, %ecx\n"
		   "rep outsb\n" /* H_CODE + 15 */
		   "xor %ecx, %ecx\n"
		   "rep outsb\n" /* RCX 0: nothing */
		   "mov $0x1000000, %esi\n"
		   "outsw\n"
		   "mov $0xc0000100, %ecx\n"
		   "mov $0x20000, %eax\n"
		   "xor %edx, %edx\n"
		   "wrmsr\n"
		   "mov $0x10, %esi\n"
		   "mov $0x3f8, %edx\n"
		   "outsl %fs:(%rsi), (%dx)\n"
		   "mov $0x100020020, %rsi\n"
		   "mov $0x100000001, %rcx\n"
		   "lea 1f(%rip), %r8\n"
		   "1: .byte 0x67, 0xf3, 0x6e\n" /* addr32 rep outsb */
		   "hlt\n");

static void t_outs(void)
{
	SETUP(g_outs);
	vm.mem[H_DATA] = 0x11;
	vm.mem[H_DATA + 1] = 0x22;
	vm.mem[H_DATA + 2] = 0x33;
	*(uint32_t *)(vm.mem + H_DATA + 0x10) = 0xcafef00d;
	vm.mem[H_DATA + 0x20] = 0x44;
	for (unsigned k = 0; k < 3; k++) {
		CHECK_EQ(hvm_run(&vm, 100), X86_STOP_IO);
		CHECK_EQ(vm.stop.io.port, 0x3f8);
		CHECK_EQ(vm.stop.io.is_write, 1);
		CHECK_EQ(vm.stop.io.size, 1);
		CHECK_EQ(vm.stop.io.count, 1);
		CHECK_EQ(vm.stop.io.data, 0x11u * (k + 1));
		CHECK_EQ(vm.cpu.gpr[X86_RSI], H_DATA + k + 1);
		CHECK_EQ(vm.cpu.gpr[X86_RCX], 2 - k);
		CHECK_EQ(vm.cpu.rip, H_CODE + 15);
		CHECK(flags() & X86_RF); /* under way */
	}
	/* The MMIO read comes first, then the OUT of what it read. */
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_MMIO);
	CHECK_EQ(vm.stop.mmio.gpa, 0x1000000);
	CHECK_EQ(vm.stop.mmio.len, 2);
	CHECK_EQ(vm.stop.mmio.is_write, 0);
	x86_complete_mmio(&vm.cpu, 0xbeef);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_IO);
	CHECK_EQ(vm.stop.io.size, 2);
	CHECK_EQ(vm.stop.io.data, 0xbeef);
	CHECK_EQ(vm.cpu.gpr[X86_RSI], 0x1000002);
	CHECK(!(flags() & X86_RF)); /* cleared when RCX 0 retired it */
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_IO);
	CHECK_EQ(vm.stop.io.size, 4);
	CHECK_EQ(vm.stop.io.data, 0xcafef00d);
	CHECK_EQ(vm.cpu.gpr[X86_RSI], 0x14);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_IO);
	CHECK_EQ(vm.stop.io.data, 0x44);
	CHECK_EQ(vm.cpu.gpr[X86_RSI], 0x100020021ull);
	CHECK_EQ(vm.cpu.gpr[X86_RCX], 0x100000000ull);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(vm.cpu.gpr[X86_RCX], 0);
	CHECK_EQ(vm.cpu.rip, vm.cpu.gpr[X86_R8] + 3 + 1);
	tap_result("OUTS: one element per stop, REP, MMIO source, FS, addr32");
}

/* Completion of an INS stop with @n elements of @sz bytes: k + base. */
static void ins_answer(unsigned n, unsigned sz, unsigned base)
{
	uint8_t buf[1024] = {0};

	for (unsigned k = 0; k < n; k++) {
		uint32_t v = k + base;

		memcpy(buf + k * sz, &v, sz);
	}
	x86_complete_pio_in(&vm.cpu, buf, sizeof(buf));
}

/*
 * INS batches: KVM's count (bytes left in the page against elements, at
 * most 1024 bytes, at most RCX), the writes done on re-execution, DF,
 * a VMM lowering RCX during the exit, and a #PF on the destination that
 * is only seen once the VMM answered.
 */
GUEST_CODE(g_ins, "mov $0x20ff0, %edi\n"
		  "mov $0x80, %edx\n"
		  "mov $100, %ecx\n"
		  "rep insw\n" /* H_CODE + 15 */
		  "std\n"
		  "mov $0x22010, %edi\n"
		  "mov $20, %ecx\n"
		  "rep insb\n" /* H_CODE + 29 */
		  "cld\n"
		  "mov $0x30000, %edi\n"
		  "insl\n" /* H_CODE + 37 */
		  "hlt\n");

static void t_ins(void)
{
	SETUP(g_ins);
	*hvm_pte(&vm, 0x30000) &= ~1ull;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_IO);
	CHECK_EQ(vm.stop.io.is_write, 0);
	CHECK_EQ(vm.stop.io.size, 2);
	CHECK_EQ(vm.stop.io.count, 16); /* 16 bytes left in the page */
	CHECK_EQ(vm.cpu.rip, H_CODE + 15);
	ins_answer(16, 2, 1);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_IO);
	CHECK_EQ(vm.stop.io.count, 84);
	CHECK_EQ(vm.cpu.gpr[X86_RDI], 0x21010);
	CHECK_EQ(vm.cpu.gpr[X86_RCX], 84);
	CHECK_EQ(ld(0x20ff0, 2), 1);
	CHECK_EQ(ld(0x2100e, 2), 16);
	ins_answer(84, 2, 100);
	/* DF: the bytes below RDI; 0 left in the page still asks for 1. */
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_IO);
	CHECK_EQ(ld(0x21010, 2), 100);
	CHECK_EQ(ld(0x21010 + 166, 2), 183);
	CHECK_EQ(vm.cpu.rip, H_CODE + 29);
	CHECK_EQ(vm.stop.io.size, 1);
	CHECK_EQ(vm.stop.io.count, 16);
	ins_answer(16, 1, 1);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_IO);
	CHECK_EQ(vm.mem[0x22010], 1);
	CHECK_EQ(vm.mem[0x22001], 16);
	CHECK_EQ(vm.cpu.gpr[X86_RDI], 0x22000);
	CHECK_EQ(vm.stop.io.count, 1);
	ins_answer(1, 1, 0x77);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_IO);
	CHECK_EQ(vm.mem[0x22000], 0x77);
	CHECK_EQ(vm.stop.io.count, 3);
	CHECK_EQ(vm.cpu.gpr[X86_RCX], 3);
	/* The VMM lowers RCX: one element is written, the INS retires. */
	vm.cpu.gpr[X86_RCX] = 1;
	ins_answer(3, 1, 0xa);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_IO);
	CHECK_EQ(vm.mem[0x21fff], 0xa);
	CHECK_EQ(vm.mem[0x21ffe], 0);
	CHECK_EQ(vm.cpu.gpr[X86_RCX], 0);
	CHECK_EQ(vm.cpu.rip, H_CODE + 37);
	CHECK_EQ(vm.stop.io.size, 4);
	CHECK_EQ(vm.stop.io.count, 1);
	/* #PF on the write, after the exit; RDI unchanged. */
	x86_complete_in(&vm.cpu, 0x12345678);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 14);
	CHECK_EQ(frame(0), X86_PFEC_W);
	CHECK_EQ(frame(1), H_CODE + 37);
	CHECK_EQ(vm.cpu.cr2, 0x30000);
	CHECK_EQ(vm.cpu.gpr[X86_RDI], 0x30000);
	tap_result("INS: KVM's batches, completion, DF, RCX lowered, #PF");
}

/*
 * A REP INS whose first write faults drops the batch the VMM answered:
 * the #PF handler's first instruction, an INSL (EDI: a mapped page), asks
 * the VMM again instead of taking the stale bytes.
 */
GUEST_CODE(g_ins_pf, "movabs $0x100020000, %rdi\n"
		     "mov $0x80, %edx\n"
		     "mov $1000, %ecx\n"
		     "rep insb\n");

static void t_ins_fault(void)
{
	static const uint8_t pf[] = {0x67, 0x6d, 0xf4}; /* addr32 insl; hlt */

	SETUP(g_ins_pf);
	memcpy(vm.mem + H_HANDLERS + 14 * 16, pf, sizeof(pf));
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_IO);
	CHECK_EQ(vm.stop.io.size, 1);
	CHECK_EQ(vm.stop.io.count, 1000);
	ins_answer(1000, 1, 1);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_IO);
	CHECK_EQ(vm.cpu.rip, H_HANDLERS + 14 * 16);
	CHECK_EQ(vm.cpu.cr2, 0x100020000ull);
	CHECK_EQ(vm.stop.io.size, 4);
	CHECK_EQ(vm.stop.io.count, 1);
	CHECK_EQ(ld(0x20000, 4), 0);
	x86_complete_in(&vm.cpu, 0x12345678);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(ld(0x20000, 4), 0x12345678);
	CHECK_EQ(vm.cpu.gpr[X86_RCX], 1000);
	tap_result("INS: a faulting batch is dropped with the fault");
}

GUEST_CODE(g_spin, "1: inc %rax\njmp 1b\n");

static void t_kick(void)
{
	volatile int kick = 0;
	volatile uint8_t ie = 0;

	SETUP(g_spin);
	CHECK_EQ(hvm_run(&vm, 5000), X86_STOP_BUDGET);
	CHECK_EQ(vm.stop.executed, 5000);
	vm.cpu.kick = &kick;
	vm.cpu.immediate_exit = &ie;
	kick = 1;
	CHECK_EQ(hvm_run(&vm, 5000), X86_STOP_KICK);
	kick = 0;
	ie = 1;
	CHECK_EQ(hvm_run(&vm, 5000), X86_STOP_KICK);
	ie = 0;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_BUDGET);
	tap_result("budget, kick and immediate_exit");
}

GUEST_CODE(g_s2, "mov $1, %ecx\n"
		 "push %rcx\n"
		 "hlt\n");

static void t_s2_exit(void)
{
	SETUP(g_s2);
	vm.exit_gpa = H_STACK - 0x1000;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_S2_EXIT);
	CHECK_EQ(vm.cpu.rip, H_CODE + 5);
	CHECK_EQ(vm.cpu.gpr[X86_RSP], H_STACK);
	vm.exit_gpa = ~0ull;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(vm.cpu.gpr[X86_RSP], H_STACK - 8);
	tap_result("stage-2 exit: no side effect, re-execution");
}

GUEST_CODE(g_smc, "lea 1f(%rip), %rbx\n"
		  "mov $0, %ecx\n"
		  "2: movb $0x90, (%rbx)\n" /* turn the ud2 into nop nop */
		  "movb $0x90, 1(%rbx)\n"
		  "1: ud2\n"
		  "hlt\n");

static void t_smc(void)
{
	SETUP(g_smc);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(vm.cpu.rip, H_CODE + (g_smc_end - g_smc));
	tap_result("self-modifying code drops the decode cache");
}

GUEST_CODE(g_sys, "mov $0xc0000082, %ecx\n" /* LSTAR */
		  "lea 1f(%rip), %rax\n"
		  "mov %rax, %rdx\n"
		  "shr $32, %rdx\n"
		  "wrmsr\n"
		  "mov $0xc0000081, %ecx\n" /* STAR */
		  "xor %eax, %eax\n"
		  "mov $0x00180008, %edx\n"
		  "wrmsr\n"
		  "mov $0xc0000102, %ecx\n" /* KERNEL_GS_BASE */
		  "mov $0x5000, %eax\n"
		  "xor %edx, %edx\n"
		  "wrmsr\n"
		  "lea 2f(%rip), %rcx\n"
		  "mov $0x202, %r11d\n"
		  "sysretq\n"
		  "2: mov $7, %r12d\n" /* user mode */
		  "syscall\n"
		  "hlt\n"
		  "1: swapgs\n" /* kernel entry */
		  "mov %gs:8, %r13\n"
		  "mov %cr3, %r14\n"
		  "hlt\n");

static void t_syscall(void)
{
	SETUP(g_sys);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(vm.cpu.gpr[X86_R12], 7);
	CHECK_EQ(vm.cpu.cpl, 0);
	CHECK_EQ(vm.cpu.seg[X86_CS].selector, 8);
	CHECK_EQ(vm.cpu.gpr[X86_R13], *hvm_q(&vm, 0x5008));
	CHECK_EQ(vm.cpu.gpr[X86_R14], H_PML4);
	CHECK_EQ(vm.cpu.gpr[X86_R11] & X86_IF, X86_IF);
	tap_result("WRMSR, SYSRET, SYSCALL, SWAPGS, MOV from CR3");
}

/* The microcode revision: a guest write is ignored, as KVM ignores it. */
GUEST_CODE(g_ucode, "mov $0x8b, %ecx\n"
		    "xor %eax, %eax\n"
		    "xor %edx, %edx\n"
		    "wrmsr\n"
		    "rdmsr\n"
		    "hlt\n");

static void t_ucode_rev(void)
{
	uint64_t v;

	SETUP(g_ucode);
	CHECK_EQ(x86_set_msr(&vm.cpu, X86_MSR_UCODE_REV, 0x4200000000ull), 0);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(vm.cpu.gpr[X86_RDX], 0x42);
	CHECK_EQ(vm.cpu.gpr[X86_RAX], 0);
	CHECK_EQ(x86_get_msr(&vm.cpu, X86_MSR_UCODE_REV, &v), 0);
	CHECK_EQ(v, 0x4200000000ull);
	tap_result("IA32_UCODE_REV: the VMM's value, guest writes ignored");
}

/* MSR_PLATFORM_INFO: read, then written (always #GP). */
GUEST_CODE(g_pinfo_rd, "mov $0xce, %ecx\n"
		       "rdmsr\n"
		       "hlt\n");
GUEST_CODE(g_pinfo_wr, "mov $0xce, %ecx\n"
		       "xor %eax, %eax\n"
		       "xor %edx, %edx\n"
		       "wrmsr\n"
		       "hlt\n");

static void t_platform_info(void)
{
	bool readable = true;
	uint64_t v;

	SETUP(g_pinfo_rd);
	CHECK_EQ(x86_get_msr(&vm.cpu, X86_MSR_PLATFORM_INFO, &v), 0);
	CHECK_EQ(v, 0);
	CHECK_EQ(x86_set_msr(&vm.cpu, X86_MSR_PLATFORM_INFO, 0x1ff00), 0);
	vm.cpu.platform_info_readable = &readable;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), -1);
	CHECK_EQ(vm.cpu.gpr[X86_RAX], 0x1ff00);
	CHECK_EQ(vm.cpu.gpr[X86_RDX], 0);
	/* The VM turned it off: #GP, RAX untouched. */
	SETUP(g_pinfo_rd);
	CHECK_EQ(x86_set_msr(&vm.cpu, X86_MSR_PLATFORM_INFO, 0x1ff00), 0);
	readable = false;
	vm.cpu.platform_info_readable = &readable;
	vm.cpu.gpr[X86_RAX] = 7;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_GP);
	CHECK_EQ(vm.cpu.gpr[X86_RAX], 7);
	/* Readable or not, the guest cannot write it. */
	SETUP(g_pinfo_wr);
	CHECK_EQ(x86_set_msr(&vm.cpu, X86_MSR_PLATFORM_INFO, 0x1ff00), 0);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_GP);
	CHECK_EQ(x86_get_msr(&vm.cpu, X86_MSR_PLATFORM_INFO, &v), 0);
	CHECK_EQ(v, 0x1ff00);
	tap_result("MSR_PLATFORM_INFO: the VMM's value; the guest's RDMSR "
		   "#GP when the VM hides it, its WRMSR always");
}

GUEST_CODE(g_int, "int $0x80\n"
		  "hlt\n");

GUEST_CODE(g_iret, "mov %rsp, %rax\n"
		   "push $0x23\n"  /* SS */
		   "push %rax\n"   /* RSP */
		   "push $0x202\n" /* RFLAGS */
		   "push $0x2b\n"  /* CS */
		   "lea 1f(%rip), %rax\n"
		   "push %rax\n"
		   "iretq\n"
		   "1: int3\n");

static void t_int_iret(void)
{
	SETUP(g_int);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 0x80);
	CHECK_EQ(frame(0), H_CODE + 2);

	SETUP(g_iret);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 3);
	CHECK_EQ(frame(0), H_CODE + (g_iret_end - g_iret));
	CHECK_EQ(frame(1), SEL_UCODE | 3);
	CHECK_EQ(frame(2) & X86_IF, X86_IF);

	/* INT from CPL 3 to a DPL 0 gate: #GP(vec*8+2). */
	SETUP(g_int);
	hvm_set_gate(&vm, 0x80, H_HANDLERS + 0x800, 0xe, 0, 0);
	hvm_set_cpl(&vm, 3);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 13);
	CHECK_EQ(frame(0), 0x80 * 8 + 2);
	tap_result("INT n, INT3, IRETQ to CPL 3, gate DPL check");
}

GUEST_CODE(g_split, "mov $0x1122334455667788, %rax\n"
		    "mov %rax, 0x30ffc\n"
		    "mov 0x30ffc, %rbx\n"
		    "hlt\n");

static void t_split(void)
{
	SETUP(g_split);
	*hvm_pte(&vm, 0x31000) &= ~1ull;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 14);
	CHECK_EQ(frame(0), X86_PFEC_W);
	CHECK_EQ(vm.cpu.cr2, 0x31000);
	CHECK_EQ(ld(0x30ffc, 4), 0); /* nothing written */

	SETUP(g_split);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(vm.cpu.gpr[X86_RBX], 0x1122334455667788ll);
	CHECK_EQ(ld(0x31000, 4), 0x11223344);
	tap_result("page-crossing access: fault on 2nd page, no partial write");
}

GUEST_CODE(g_fsplit, "mov $0x30ffe, %eax\njmp *%rax\n");

static void t_fetch_split(void)
{
	static const uint8_t insn[] = {0xb8, 0x78, 0x56, 0x34, 0x12, 0xf4};

	SETUP(g_fsplit);
	memcpy(vm.mem + 0x30ffe, insn, sizeof(insn));
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(vm.cpu.gpr[X86_RAX], 0x12345678);
	CHECK_EQ(vm.cpu.rip, 0x31004);

	SETUP(g_fsplit);
	memcpy(vm.mem + 0x30ffe, insn, sizeof(insn));
	*hvm_pte(&vm, 0x31000) |= 1ull << 63;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 14);
	CHECK_EQ(frame(0), X86_PFEC_P | X86_PFEC_I);
	CHECK_EQ(frame(1), 0x30ffe);
	CHECK_EQ(vm.cpu.cr2, 0x31000);
	tap_result("instruction crossing a page: decode, NX on 2nd page");
}

GUEST_CODE(g_ad, "mov 0x30000, %eax\n"
		 "hlt\n"
		 "mov %eax, 0x30000\n"
		 "hlt\n");

static void t_ad(void)
{
	SETUP(g_ad);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(*hvm_pte(&vm, 0x30000) & 0x60, 0x20); /* A, not D */
	CHECK_EQ(*hvm_q(&vm, H_PML4) & 0x20, 0x20);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(*hvm_pte(&vm, 0x30000) & 0x60, 0x60); /* and D */
	tap_result("accessed and dirty bits");
}

GUEST_CODE(g_huge, "mov $0x40020000, %eax\n"
		   "mov (%rax), %rbx\n"
		   "movq $5, 8(%rax)\n"
		   "hlt\n");

static void t_huge(void)
{
	SETUP(g_huge);
	/* PDPT[1]: a 1 GiB page onto guest-physical 0. */
	*hvm_q(&vm, H_PDPT + 8) = 0x87;
	*hvm_q(&vm, H_DATA) = 0x77;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(vm.cpu.gpr[X86_RBX], 0x77);
	CHECK_EQ(*hvm_q(&vm, H_DATA + 8), 5);
	CHECK_EQ(*hvm_q(&vm, H_PDPT + 8) & 0x60, 0x60);

	/* A 1 GiB PDPTE with bit 13 set is reserved. */
	SETUP(g_huge);
	*hvm_q(&vm, H_PDPT + 8) = 0x87 | 1ull << 13;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 14);
	CHECK_EQ(frame(0), X86_PFEC_P | X86_PFEC_RSVD);
	tap_result("1 GiB pages, reserved bits of a large page");
}

GUEST_CODE(g_smep, "mov $0x30000, %eax\njmp *%rax\n");

static void t_smep(void)
{
	SETUP(g_smep);
	vm.cpu.cr4 |= X86_CR4_SMEP;
	*hvm_pte(&vm, H_CODE) &= ~4ull;
	*hvm_pte(&vm, H_HANDLERS) &= ~4ull;
	vm.mem[0x30000] = 0xf4;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 14);
	CHECK_EQ(frame(0), X86_PFEC_P | X86_PFEC_I);
	tap_result("SMEP: supervisor fetch from a user page");
}

GUEST_CODE(g_dt, "sgdt 0x20000\n"
		 "sidt 0x20010\n"
		 "movw $0x7f, 0x20020\n"
		 "movq $0x5000, 0x20022\n"
		 "lgdt 0x20020\n"
		 "mov $0x30, %ax\n"
		 "ltr %ax\n"
		 "mov %cr0, %rbx\n"
		 "mov %cr4, %rcx\n"
		 "or $0x200, %rcx\n" /* OSFXSR */
		 "mov %rcx, %cr4\n"
		 "xor %eax, %eax\n"
		 "cpuid\n"
		 "mov %ebx, %r8d\n"
		 "mov $0x80000008, %eax\n"
		 "cpuid\n"
		 "mov %eax, %r9d\n"
		 "rdtsc\n"
		 "mov %eax, %r10d\n"
		 "rdtsc\n"
		 "sub %r10d, %eax\n"
		 "mov %eax, %r10d\n"
		 "invlpg 0x20000\n"
		 "wbinvd\n"
		 "hlt\n");

static void t_system(void)
{
	SETUP(g_dt);
	vm.cpu.tr.type = 0x9;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(ld(0x20000, 2), 8 * 8 - 1);
	CHECK_EQ(ld(0x20002, 8), H_GDT);
	CHECK_EQ(ld(0x20010, 2), 256 * 16 - 1);
	CHECK_EQ(vm.cpu.gdt.limit, 0x7f);
	CHECK_EQ(vm.cpu.tr.base, H_TSS);
	CHECK_EQ(vm.cpu.tr.limit, 0x67);
	CHECK_EQ((*hvm_q(&vm, H_GDT + 0x30) >> 40) & 0xf, 0xb); /* busy */
	CHECK_EQ(vm.cpu.cr4 & X86_CR4_OSFXSR, X86_CR4_OSFXSR);
	CHECK_EQ(vm.cpu.gpr[X86_R8], 0x756e6547); /* "Genu" */
	CHECK_EQ(vm.cpu.gpr[X86_R9] & 0xff, 48);
	CHECK(vm.cpu.gpr[X86_R10] < 1000000000);
	tap_result("SGDT/SIDT/LGDT, LTR, MOV CR, CPUID, RDTSC, INVLPG");
}

GUEST_CODE(g_cr_bad, "mov %cr0, %rax\nbtr $31, %rax\nmov %rax, %cr0\n");
GUEST_CODE(g_msr_bad, "mov $0x12345, %ecx\nrdmsr\n");
GUEST_CODE(g_noncanon, "mov $0x8000000000000000, %rax\nmov (%rax), %rbx\n");
GUEST_CODE(g_cpl3_out, "out %al, $0x80\n");
GUEST_CODE(g_cpl3_ins, "rep insb\n");
GUEST_CODE(g_cpl3_outs, "outsb\n");
GUEST_CODE(g_cpl3_cli, "cli\n");
GUEST_CODE(g_cpl3_cr, "mov %cr3, %rax\n");
GUEST_CODE(g_cpl3_msr, "wrmsr\n");
GUEST_CODE(g_cpl3_lidt, "lidt 0x20000\n");

static int gp_at(const uint8_t *b, const uint8_t *e, unsigned cpl)
{
	setup(b, e);
	if (cpl)
		hvm_set_cpl(&vm, 3);
	if (hvm_run(&vm, 100) != X86_STOP_HLT || hvm_vector(&vm) != 13)
		return -1;
	return frame(0);
}

#define GP_AT(name, cpl) gp_at(name, name##_end, cpl)

static void t_gp(void)
{
	CHECK_EQ(GP_AT(g_cr_bad, 0), 0);
	CHECK_EQ(GP_AT(g_msr_bad, 0), 0);
	CHECK_EQ(GP_AT(g_noncanon, 0), 0);
	CHECK_EQ(GP_AT(g_cpl3_out, 1), 0);
	CHECK_EQ(GP_AT(g_cpl3_ins, 1), 0);
	CHECK_EQ(GP_AT(g_cpl3_outs, 1), 0);
	CHECK_EQ(GP_AT(g_cpl3_cli, 1), 0);
	CHECK_EQ(GP_AT(g_cpl3_cr, 1), 0);
	CHECK_EQ(GP_AT(g_cpl3_msr, 1), 0);
	CHECK_EQ(GP_AT(g_cpl3_lidt, 1), 0);
	tap_result("#GP(0): bad CR0/MSR, non-canonical, privileged at CPL 3");
}

GUEST_CODE(g_xo_smc, "mov $0x30000, %eax\n"
		     "call *%rax\n" /* through the alias: returns 1 */
		     "mov %ebx, %r8d\n"
		     "movb $2, 0x32001\n" /* patch via a normal mapping */
		     "mov $0x30000, %eax\n"
		     "call *%rax\n"
		     "mov $0x31000, %eax\n"
		     "movb $0, (%rax)\n" /* write through the alias */
		     "hlt\n");

static void t_xo_smc(void)
{
	static const uint8_t fn[] = {0xb3, 0x01, 0xc3}; /* mov $1, bl */

	SETUP(g_xo_smc);
	x86_set_maxphyaddr(&vm.cpu, 40, true);
	memcpy(vm.mem + 0x30000, fn, sizeof(fn));
	/*
	 * 0x30000 and 0x31000 map guest-physical 0x30000 through the XO
	 * alias, 0x32000 maps it normally.
	 */
	*hvm_pte(&vm, 0x30000) = 0x30000 | 1ull << 40 | 7;
	*hvm_pte(&vm, 0x31000) = 0x30000 | 1ull << 40 | 7;
	*hvm_pte(&vm, 0x32000) = 0x30000 | 7;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(vm.cpu.gpr[X86_R8], 1);
	CHECK_EQ(vm.cpu.gpr[X86_RBX] & 0xff, 2); /* re-decoded */
	CHECK_EQ(hvm_vector(&vm), 14);
	CHECK_EQ(frame(0), X86_PFEC_P | X86_PFEC_W);
	CHECK_EQ(vm.cpu.cr2, 0x31000);
	tap_result("XO alias: write #PF W=1; SMC through another alias");
}

static void t_inject(void)
{
	SETUP(g_spin);
	x86_inject(&vm.cpu, 0x20, false, 0);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), 0x20);
	CHECK_EQ(frame(0), H_CODE);
	CHECK_EQ(frame(2) & X86_IF, 0);
	tap_result("x86_inject delivers at the next run");
}

GUEST_CODE(g_window, "cli\n"
		     "sti\n"
		     "nop\n" /* under STI's shadow */
		     "nop\n"
		     "cli\n"
		     "pushfq\n"
		     "orq $0x200, (%rsp)\n"
		     "popfq\n"
		     "nop\n"
		     "hlt\n");

/*
 * The interrupt window: with irq_window set, STI stops the run after the
 * instruction its shadow covers (int_shadow on until then), POPF that
 * sets IF right after itself; without it neither stops.
 */
static void t_irq_window(void)
{
	SETUP(g_window);
	vm.cpu.irq_window = true;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_KICK);
	CHECK_EQ(vm.cpu.rip, H_CODE + 3); /* cli, sti, nop */
	CHECK(!vm.cpu.int_shadow);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_KICK);
	CHECK_EQ(vm.cpu.rip, H_CODE + 15); /* after popfq */
	CHECK(flags() & X86_IF);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	/* The shadow is there right after STI, whatever irq_window says. */
	SETUP(g_window);
	CHECK_EQ(hvm_run(&vm, 2), X86_STOP_BUDGET);
	CHECK(vm.cpu.int_shadow);
	CHECK_EQ(hvm_run(&vm, 1), X86_STOP_BUDGET);
	CHECK(!vm.cpu.int_shadow);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	tap_result("STI shadow and interrupt-window stops");
}

GUEST_CODE(g_rep, "mov $0x100000, %edi\n"
		  "mov $0x200000, %ecx\n"
		  "mov $0xab, %al\n"
		  "rep stosb\n"
		  "hlt\n");

static void t_rep_long(void)
{
	volatile int kick = 0;

	SETUP(g_rep);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_BUDGET);
	CHECK(vm.cpu.gpr[X86_RCX] > 0 && vm.cpu.gpr[X86_RCX] < 0x200000);
	CHECK_EQ(vm.cpu.rip, H_CODE + 12); /* still at the REP */
	vm.cpu.kick = &kick;
	kick = 1;
	CHECK_EQ(hvm_run(&vm, 1 << 30), X86_STOP_KICK);
	kick = 0;
	CHECK_EQ(hvm_run(&vm, 1 << 30), X86_STOP_HLT);
	CHECK_EQ(vm.cpu.gpr[X86_RCX], 0);
	CHECK_EQ(vm.mem[0x2fffff], 0xab);
	CHECK_EQ(vm.mem[0x300000], 0);
	tap_result("long REP STOSB is interruptible and resumes");
}

GUEST_CODE(g_sreg, "mov $0x10, %eax\n"
		   "mov %eax, %ds\n"
		   "mov %ds, %ebx\n"
		   "mov $0x20, %ecx\n"
		   "mov %ecx, %es\n"
		   "mov %es, %rdx\n"
		   "xor %eax, %eax\n"
		   "mov %eax, %fs\n"
		   "mov $0x38, %eax\n" /* beyond the GDT limit */
		   "mov %eax, %ds\n"
		   "hlt\n");

static void t_sreg(void)
{
	unsigned ncpuid = 0;

	SETUP(g_sreg);
	vm.cpu.gdt.limit = 0x37;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(vm.cpu.gpr[X86_RBX], 0x10);
	CHECK_EQ(vm.cpu.gpr[X86_RDX], 0x20);
	CHECK_EQ(vm.cpu.seg[X86_ES].dpl, 3);
	CHECK_EQ(vm.cpu.seg[X86_FS].selector, 0);
	CHECK_EQ(hvm_vector(&vm), 13);
	CHECK_EQ(frame(0), 0x38);
	CHECK(x86_supported_cpuid(&ncpuid) && ncpuid >= 5);
	CHECK_EQ(x86_get_rflags(&vm.cpu) & 2, 2);

	uint32_t o[4], hi[4];

	x86_cpuid(&vm.cpu, 0xd, 0, hi);
	x86_cpuid(&vm.cpu, 0x1234, 0, o); /* above the max basic leaf */
	CHECK(memcmp(o, hi, sizeof(o)) == 0);
	/*
	 * The table answers the hypervisor leaves until XO is on: KVM's
	 * signature leaf, and past its last leaf, as in KVM on an Intel
	 * guest, the highest basic leaf.
	 */
	x86_cpuid(&vm.cpu, 0x40000000, 0, o);
	CHECK_EQ(o[0], 0x40000001);
	CHECK(!memcmp(&o[1], "KVMKVMKVM\0\0\0", 12));
	x86_cpuid(&vm.cpu, 0x40000002, 0, o);
	CHECK(memcmp(o, hi, sizeof(o)) == 0);
	x86_cpuid(&vm.cpu, 0x80000009, 0, o);
	CHECK(memcmp(o, hi, sizeof(o)) == 0);
	x86_cpuid(&vm.cpu, 0x80000008, 0, o);
	CHECK_EQ(o[0] & 0xff, 48);
	x86_set_maxphyaddr(&vm.cpu, 40, true);
	x86_cpuid(&vm.cpu, 0x40000000, 0, o);
	CHECK_EQ(o[0], 0x40000001);
	CHECK_EQ(o[1], 0x6d656d67);
	x86_cpuid(&vm.cpu, 0x40000001, 0, o);
	CHECK_EQ(o[0], 1);
	x86_cpuid(&vm.cpu, 0x80000008, 0, o);
	CHECK_EQ(o[0] & 0xff, 40);
	x86_set_maxphyaddr(&vm.cpu, 48, false);
	tap_result("MOV to/from segment registers; supported CPUID; gmem "
		   "leaves only with XO");
}

GUEST_CODE(g_forms, "mov 1f(%rip), %rax\n"
		    "movzbl 1f+7(%rip), %ebx\n"
		    "movsbq 1f+7(%rip), %rcx\n"
		    "mov $3, %esi\n"
		    "mov 0x20000(,%rsi,8), %rdx\n"
		    "movswl 0x20000(,%rsi,2), %edi\n"
		    "mov $0x20000, %r8d\n"
		    "mov %rax, 8(%r8,%rsi,8)\n"
		    "mov %edx, 1f(%rip)\n"
		    "mov 1f(%rip), %r9\n"
		    "hlt\n"
		    "1: .quad 0x8877665544332211\n");

static void t_forms(void)
{
	SETUP(g_forms);
	memcpy(vm.mem + 0x20018, &(uint64_t){0x0123456789abcdefull}, 8);
	memcpy(vm.mem + 0x20006, &(uint16_t){0x8001}, 2);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(vm.cpu.gpr[X86_RAX], 0x8877665544332211ull);
	CHECK_EQ(vm.cpu.gpr[X86_RBX], 0x88);
	CHECK_EQ(vm.cpu.gpr[X86_RCX], (uint64_t)(int8_t)0x88);
	CHECK_EQ(vm.cpu.gpr[X86_RDX], 0x0123456789abcdefull);
	CHECK_EQ(vm.cpu.gpr[X86_RDI], 0xffff8001ull);
	CHECK_EQ(ld(0x20020, 8), 0x8877665544332211ull);
	CHECK_EQ(vm.cpu.gpr[X86_R9], 0x8877665589abcdefull);
	tap_result(
		"memory forms: RIP-relative, index without base, base+index");
}

GUEST_CODE(g_bits, "mov $0x20010, %ebx\n"
		   "mov $100, %eax\n"
		   "bts %rax, (%rbx)\n" /* byte 0x20010 + 12, bit 4 */
		   "setc %r8b\n"
		   "mov $-1, %rax\n"
		   "lock btc %rax, (%rbx)\n" /* bit 7 of byte 0x2000f */
		   "bt $4, 12(%rbx)\n"
		   "setc %r9b\n"
		   "xor %ecx, %ecx\n"
		   "jrcxz 1f\n"
		   "ud2\n"
		   "1: pushf\n"
		   "cli\n"
		   "pushf\n"
		   "pop %r10\n"
		   "popf\n"
		   "pushf\n"
		   "pop %r11\n"
		   "hlt\n");

static void t_bits(void)
{
	SETUP(g_bits);
	vm.cpu.rflags |= X86_IF;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(vm.mem[0x2001c], 0x10);
	CHECK_EQ(vm.mem[0x2000f], 0x80);
	CHECK_EQ(vm.cpu.gpr[X86_R8] & 0xff, 0);
	CHECK_EQ(vm.cpu.gpr[X86_R9] & 0xff, 1);
	CHECK_EQ(vm.cpu.gpr[X86_R10] & X86_IF, 0);
	CHECK_EQ(vm.cpu.gpr[X86_R11] & X86_IF, X86_IF);
	tap_result(
		"BT* with a register bit offset into memory, JRCXZ, POPF IF");
}

/* ---- SSE ------------------------------------------------------------ */

/* Set and clear CR0/CR4 bits, as a VMM's KVM_SET_SREGS would. */
static void set_cr(uint64_t cr0_set, uint64_t cr0_clr, uint64_t cr4_set,
		   uint64_t cr4_clr)
{
	struct kvm_sregs s;

	x86_get_sregs(&vm.cpu, &s);
	s.cr0 = (s.cr0 | cr0_set) & ~cr0_clr;
	s.cr4 = (s.cr4 | cr4_set) & ~cr4_clr;
	x86_set_sregs(&vm.cpu, &s);
}

#define OSFXSR (X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT)

GUEST_CODE(g_pxor, "pxor %xmm1, %xmm1\nhlt\n");
GUEST_CODE(g_ldmxcsr, "ldmxcsr 0x20000\nhlt\n");
GUEST_CODE(g_clts, "clts\npxor %xmm1, %xmm1\nhlt\n");

static void t_sse_avail(void)
{
	SETUP(g_pxor); /* the harness leaves CR4.OSFXSR clear */
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_UD);
	CHECK_EQ(frame(0), H_CODE);

	SETUP(g_ldmxcsr);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_UD);

	SETUP(g_pxor);
	set_cr(X86_CR0_EM, 0, OSFXSR, 0);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_UD);

	/* #NM has no error code: the frame starts with RIP. */
	SETUP(g_pxor);
	set_cr(X86_CR0_TS, 0, OSFXSR, 0);
	vm.cpu.xmm[1].q[0] = 5;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_NM);
	CHECK_EQ(frame(0), H_CODE);
	CHECK_EQ(vm.cpu.xmm[1].q[0], 5);

	SETUP(g_clts); /* what an #NM handler does */
	set_cr(X86_CR0_TS, 0, OSFXSR, 0);
	vm.cpu.xmm[1].q[0] = 5;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), -1);
	CHECK_EQ(vm.cpu.xmm[1].q[0], 0);
	CHECK_EQ(vm.cpu.cr0 & X86_CR0_TS, 0);
	tap_result("SSE: #UD without CR4.OSFXSR or with CR0.EM, #NM with "
		   "CR0.TS, CLTS");
}

GUEST_CODE(g_divsd, "divsd %xmm1, %xmm0\nhlt\n");

/*
 * An unmasked SIMD exception: #XM with CR4.OSXMMEXCPT, #UD without, the
 * flag set in MXCSR and the destination not written; masked, the
 * default result and a sticky flag.
 */
static void t_sse_xm(void)
{
	const uint64_t one = 0x3ff0000000000000ull;

	for (unsigned k = 0; k < 3; k++) {
		setup(g_divsd, g_divsd_end);
		set_cr(0, 0, OSFXSR, k == 1 ? X86_CR4_OSXMMEXCPT : 0);
		vm.cpu.mxcsr = k == 2 ? 0x1f80 : 0x1f80 & ~0x200; /* ZM */
		vm.cpu.xmm[0].q[0] = one;
		vm.cpu.xmm[1].q[0] = 0;
		CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
		CHECK_EQ(hvm_vector(&vm), k == 0   ? X86_XM
					  : k == 1 ? X86_UD
						   : -1);
		CHECK_EQ(vm.cpu.mxcsr & 0x3f, 0x04); /* ZE */
		CHECK_EQ(vm.cpu.xmm[0].q[0],
			 k == 2 ? 0x7ff0000000000000ull : one);
		if (k < 2)
			CHECK_EQ(frame(0), H_CODE);
	}
	tap_result("SSE: unmasked divide by zero is #XM (#UD without "
		   "OSXMMEXCPT), destination unchanged, ZE set");
}

GUEST_CODE(g_movaps_ld, "movaps (%rax), %xmm0\nhlt\n");
GUEST_CODE(g_movdqa_st, "pcmpeqb %xmm0, %xmm0\nmovdqa %xmm0, (%rax)\nhlt\n");
GUEST_CODE(g_paddb_m, "paddb (%rax), %xmm0\nhlt\n");
GUEST_CODE(g_movdqu_ld, "movdqu (%rax), %xmm0\nmovq 8(%rax), %xmm1\nhlt\n");

/* Run @code with RAX = @a and OSFXSR; the vector taken, or -1. */
static int sse_at(const uint8_t *b, const uint8_t *e, uint64_t a)
{
	setup(b, e);
	set_cr(0, 0, OSFXSR, 0);
	vm.cpu.gpr[X86_RAX] = a;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	return hvm_vector(&vm);
}

static void t_sse_align(void)
{
	CHECK_EQ(sse_at(g_movaps_ld, g_movaps_ld_end, 0x20008), X86_GP);
	CHECK_EQ(frame(0), 0);
	CHECK_EQ(frame(1), H_CODE);
	CHECK_EQ(sse_at(g_movaps_ld, g_movaps_ld_end, 0x20010), -1);

	CHECK_EQ(sse_at(g_movdqa_st, g_movdqa_st_end, 0x20004), X86_GP);
	CHECK_EQ(ld(0x20004, 8), 0); /* nothing stored */
	CHECK_EQ(sse_at(g_movdqa_st, g_movdqa_st_end, 0x20000), -1);
	CHECK_EQ(ld(0x20008, 8), ~0ull);

	/* Legacy SSE arithmetic wants aligned memory too. */
	CHECK_EQ(sse_at(g_paddb_m, g_paddb_m_end, 0x20001), X86_GP);
	/* Unaligned moves and 8-byte operands do not. */
	CHECK_EQ(sse_at(g_movdqu_ld, g_movdqu_ld_end, 0x20003), -1);

	/* Alignment is checked before translation: #GP, not #PF. */
	setup(g_movaps_ld, g_movaps_ld_end);
	set_cr(0, 0, OSFXSR, 0);
	*hvm_pte(&vm, 0x30000) &= ~1ull;
	vm.cpu.gpr[X86_RAX] = 0x30008;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_GP);
	tap_result("SSE: #GP(0) on misaligned MOVAPS/MOVDQA/PADDB m128, "
		   "before #PF");
}

GUEST_CODE(g_sse_split, "movups 0x30ff8, %xmm0\n"
			"movups %xmm0, 0x31ff8\n"
			"hlt\n");
/* A 16-byte store over the instruction after it (self-modifying). */
GUEST_CODE(g_sse_smc, "movups (%rbx), %xmm0\n"
		      "movups %xmm0, 1f(%rip)\n"
		      "1: mov $1, %eax\n"
		      "hlt\n"
		      ".fill 16, 1, 0x90\n");

static void t_sse_split(void)
{
	SETUP(g_sse_split);
	set_cr(0, 0, OSFXSR, 0);
	for (unsigned k = 0; k < 16; k++)
		vm.mem[0x30ff8 + k] = 0x11 * (k + 1);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), -1);
	CHECK_EQ(vm.cpu.xmm[0].q[0], 0x8877665544332211ull);
	CHECK_EQ(vm.cpu.xmm[0].q[1], 0x10ffeeddccbbaa99ull);
	CHECK_EQ(ld(0x31ff8, 8), 0x8877665544332211ull);
	CHECK_EQ(ld(0x32000, 8), 0x10ffeeddccbbaa99ull);

	/* The second page faults: #PF there, nothing of the store done. */
	SETUP(g_sse_split);
	set_cr(0, 0, OSFXSR, 0);
	memset(vm.mem + 0x30ff8, 0x5a, 16);
	*hvm_pte(&vm, 0x32000) &= ~1ull;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_PF_VEC);
	CHECK_EQ(frame(0), X86_PFEC_W);
	CHECK_EQ(vm.cpu.cr2, 0x32000);
	CHECK_EQ(ld(0x31ff8, 8), 0);
	CHECK_EQ(vm.cpu.xmm[0].q[1], 0x5a5a5a5a5a5a5a5aull);

	/* mov $2, %eax; hlt; nop x10: the new bytes must be what runs. */
	SETUP(g_sse_smc);
	set_cr(0, 0, OSFXSR, 0);
	memcpy(vm.mem + 0x20000,
	       "\xb8\x02\x00\x00\x00\xf4\x90\x90\x90\x90\x90"
	       "\x90\x90\x90\x90\x90",
	       16);
	vm.cpu.gpr[X86_RBX] = 0x20000;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(vm.cpu.gpr[X86_RAX], 2);
	tap_result("SSE: page-crossing MOVUPS load/store, #PF on the 2nd page "
		   "without a partial store, 16-byte self-modifying store");
}

GUEST_CODE(g_sse_mmio, "movq (%rax), %xmm1\n"
		       "movdqu (%rax), %xmm2\n"
		       "hlt\n");

static void t_sse_mmio(void)
{
	SETUP(g_sse_mmio);
	set_cr(0, 0, OSFXSR, 0);
	vm.cpu.gpr[X86_RAX] = 0x1000000;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_MMIO);
	CHECK_EQ(vm.stop.mmio.gpa, 0x1000000);
	CHECK_EQ(vm.stop.mmio.len, 8);
	x86_complete_mmio(&vm.cpu, 0x1122334455667788ull);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_INTERNAL);
	CHECK_EQ(vm.cpu.xmm[1].q[0], 0x1122334455667788ull);
	CHECK_EQ(vm.cpu.rip, H_CODE + 4); /* at the MOVDQU */
	tap_result("SSE: 8-byte MMIO load completes; 16-byte MMIO is INTERNAL");
}

/* FXSAVE64 a state, clobber it, FXRSTOR64 it back; FXSAVE (32-bit). */
GUEST_CODE(g_fx, "mov $0x21000, %eax\n"
		 "movdqu (%rax), %xmm3\n"
		 "movdqu 16(%rax), %xmm15\n"
		 "ldmxcsr 32(%rax)\n"
		 "fxsave64 0x22000\n"
		 "pxor %xmm3, %xmm3\n"
		 "pxor %xmm15, %xmm15\n"
		 "ldmxcsr 36(%rax)\n"
		 "fxrstor64 0x22000\n"
		 "stmxcsr 40(%rax)\n"
		 "fxsave 0x23000\n"
		 "hlt\n");
GUEST_CODE(g_fxrstor, "fxrstor64 (%rax)\nhlt\n");
GUEST_CODE(g_fxsave, "fxsave64 (%rax)\nhlt\n");

static void t_fxsave(void)
{
	uint8_t img[512], img2[512];
	uint32_t o[4];

	/* Reset state, as KVM's: FCW 0x37f, MXCSR 0x1f80, XMM 0. */
	SETUP(g_fx);
	x86_get_fxsave(&vm.cpu, img);
	CHECK_EQ(img[0] | img[1] << 8, X86_FCW_DEFAULT);
	CHECK_EQ(img[24] | img[25] << 8, X86_MXCSR_DEFAULT);
	CHECK_EQ(img[28] | img[29] << 8 | img[30] << 16, 0xffff);
	for (unsigned k = 160; k < 512; k++)
		CHECK_EQ(img[k], 0);

	set_cr(0, 0, OSFXSR, 0);
	for (unsigned k = 0; k < 32; k++)
		vm.mem[0x21000 + k] = k + 1;
	memcpy(vm.mem + 0x21020, &(uint32_t){0x9fc0}, 4); /* FTZ DAZ RZ */
	memcpy(vm.mem + 0x21024, &(uint32_t){0x1f80}, 4);
	memset(vm.mem + 0x22000, 0xcc, 512);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), -1);
	CHECK_EQ(ld(0x22000, 2), X86_FCW_DEFAULT);
	CHECK_EQ(ld(0x22018, 4), 0x9fc0);
	CHECK_EQ(ld(0x2201c, 4), X86_MXCSR_MASK);
	CHECK_EQ(ld(0x22000 + 160 + 3 * 16, 8), 0x0807060504030201ull);
	CHECK_EQ(ld(0x22000 + 160 + 15 * 16 + 8, 8), 0x201f1e1d1c1b1a19ull);
	CHECK_EQ(ld(0x22000 + 416, 8), 0xccccccccccccccccull); /* reserved */
	CHECK_EQ(ld(0x22000 + 504, 8), 0xccccccccccccccccull);
	CHECK_EQ(vm.cpu.xmm[3].q[0], 0x0807060504030201ull);
	CHECK_EQ(vm.cpu.xmm[15].q[1], 0x201f1e1d1c1b1a19ull);
	CHECK_EQ(vm.cpu.mxcsr, 0x9fc0);
	CHECK_EQ(ld(0x21028, 4), 0x9fc0);
	/* The accessor gives what FXSAVE64 stored. */
	x86_get_fxsave(&vm.cpu, img);
	CHECK(memcmp(img, vm.mem + 0x22000, 416) == 0);
	CHECK(memcmp(img + 32, vm.mem + 0x23000 + 32, 416 - 32) == 0);

	/* Reserved MXCSR bits: #GP(0), nothing loaded. */
	memcpy(img2, img, 512);
	img2[160] ^= 0xff;
	memcpy(img2 + 24, &(uint32_t){0x21f80}, 4);
	setup(g_fxrstor, g_fxrstor_end);
	set_cr(0, 0, OSFXSR, 0);
	memcpy(vm.mem + 0x24000, img2, 512);
	vm.cpu.gpr[X86_RAX] = 0x24000;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_GP);
	CHECK_EQ(vm.cpu.xmm[0].b[0], 0);
	CHECK_EQ(vm.cpu.mxcsr, X86_MXCSR_DEFAULT);
	CHECK_EQ(x86_set_fxsave(&vm.cpu, img2), -EINVAL);
	CHECK_EQ(vm.cpu.xmm[0].b[0], 0);
	CHECK_EQ(x86_set_fxsave(&vm.cpu, img), 0);
	CHECK_EQ(vm.cpu.xmm[3].q[0], 0x0807060504030201ull);
	CHECK_EQ(vm.cpu.mxcsr, 0x9fc0);

	/* A misaligned image: #GP(0), for either instruction. */
	CHECK_EQ(sse_at(g_fxsave, g_fxsave_end, 0x24008), X86_GP);
	CHECK_EQ(sse_at(g_fxrstor, g_fxrstor_end, 0x24008), X86_GP);
	/* Without CR4.OSFXSR: x87 state only, XMM and MXCSR not written. */
	setup(g_fxsave, g_fxsave_end);
	memset(vm.mem + 0x24000, 0xcc, 512);
	vm.cpu.gpr[X86_RAX] = 0x24000;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), -1);
	CHECK_EQ(ld(0x24000, 2), X86_FCW_DEFAULT);
	CHECK_EQ(ld(0x24018, 8), 0xccccccccccccccccull);
	CHECK_EQ(ld(0x240a0, 8), 0xccccccccccccccccull);
	/* TS: #NM, as for any x87/SSE state access. */
	setup(g_fxsave, g_fxsave_end);
	set_cr(X86_CR0_TS, 0, OSFXSR, 0);
	vm.cpu.gpr[X86_RAX] = 0x24000;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_NM);

	/* CPUID: FXSR SSE SSE2; SSE3 SSSE3 SSE4.1 SSE4.2 POPCNT. */
	x86_cpuid(&vm.cpu, 1, 0, o);
	CHECK_EQ(o[3] >> 24 & 7, 7);
	CHECK_EQ(o[2] & 0x00980201, 0x00980201);
	tap_result("FXSAVE/FXRSTOR round trip, reset state, accessors, "
		   "reserved MXCSR, alignment, OSFXSR=0, TS");
}

/* A seeded xorshift: the same images on every run. */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static uint64_t xstate_bv(const uint8_t *a)
{
	uint64_t v;

	memcpy(&v, a + 512, 8);
	return v;
}

/*
 * XSAVE images of x87 and SSE (KVM_GET/SET_XSAVE's legacy region and
 * header): XSTATE_BV from the state, initial values for clear bits, the
 * header and MXCSR checks with nothing loaded on failure, and random
 * images round-tripped.
 */
static void t_xsave(void)
{
	uint8_t a[X86_XSAVE_SIZE], b[X86_XSAVE_SIZE], fx[512];

	SETUP(g_fx);
	x86_get_xsave(&vm.cpu, a);
	CHECK_EQ(xstate_bv(a), 0); /* reset state: both initial */
	CHECK_EQ(a[0] | a[1] << 8, X86_FCW_DEFAULT);
	CHECK_EQ(a[24] | a[25] << 8, X86_MXCSR_DEFAULT);
	for (unsigned k = 416; k < X86_XSAVE_SIZE; k++)
		CHECK_EQ(a[k], 0);
	CHECK_EQ(vm.cpu.xcr0, X86_XFEATURE_FP);
	vm.cpu.xmm[7].b[3] = 1;
	x86_get_xsave(&vm.cpu, a);
	CHECK_EQ(xstate_bv(a), X86_XFEATURE_SSE);
	vm.cpu.xmm[7].b[3] = 0;
	vm.cpu.mxcsr = 0x1fc0;
	x86_get_xsave(&vm.cpu, a);
	CHECK_EQ(xstate_bv(a), X86_XFEATURE_SSE);
	vm.cpu.x87.fcw = 0x27f;
	x86_get_xsave(&vm.cpu, a);
	CHECK_EQ(xstate_bv(a), X86_XFEATURE_FP | X86_XFEATURE_SSE);

	/* Refused images leave the state as it was. */
	memcpy(b, a, sizeof(b));
	b[512] |= 8; /* MPX's BNDREGS: never supported */
	CHECK_EQ(x86_set_xsave(&vm.cpu, b), -EINVAL);
	if (!X86_AVX) {
		memcpy(b, a, sizeof(b));
		b[512] |= 4; /* YMM, not supported without AVX */
		CHECK_EQ(x86_set_xsave(&vm.cpu, b), -EINVAL);
	}
	memcpy(b, a, sizeof(b));
	b[527] = 0x80; /* XCOMP_BV: compacted */
	CHECK_EQ(x86_set_xsave(&vm.cpu, b), -EINVAL);
	memcpy(b, a, sizeof(b));
	b[575] = 1; /* reserved header byte */
	CHECK_EQ(x86_set_xsave(&vm.cpu, b), -EINVAL);
	memcpy(b, a, sizeof(b));
	b[26] = 1; /* MXCSR bit 16 */
	CHECK_EQ(x86_set_xsave(&vm.cpu, b), -EINVAL);
	b[512] = X86_XFEATURE_FP; /* checked for x87 alone too */
	CHECK_EQ(x86_set_xsave(&vm.cpu, b), -EINVAL);
	x86_get_xsave(&vm.cpu, b);
	CHECK(memcmp(a, b, sizeof(a)) == 0);

	/* Clear bits: initial state; MXCSR goes with SSE, unchecked. */
	memcpy(b, a, sizeof(b));
	b[26] = 1;
	b[512] = 0;
	CHECK_EQ(x86_set_xsave(&vm.cpu, b), 0);
	CHECK_EQ(vm.cpu.x87.fcw, X86_FCW_DEFAULT);
	CHECK_EQ(vm.cpu.mxcsr, X86_MXCSR_DEFAULT);
	b[26] = 0;
	b[512] = X86_XFEATURE_FP;
	b[160] = 9; /* XMM0, not loaded */
	CHECK_EQ(x86_set_xsave(&vm.cpu, b), 0);
	CHECK_EQ(vm.cpu.x87.fcw, 0x27f);
	CHECK_EQ(vm.cpu.mxcsr, X86_MXCSR_DEFAULT);
	CHECK_EQ(vm.cpu.xmm[0].b[0], 0);
	b[512] = X86_XFEATURE_SSE;
	CHECK_EQ(x86_set_xsave(&vm.cpu, b), 0);
	CHECK_EQ(vm.cpu.x87.fcw, X86_FCW_DEFAULT);
	CHECK_EQ(vm.cpu.mxcsr, 0x1fc0);
	CHECK_EQ(vm.cpu.xmm[0].b[0], 9);

	/* Random states: get, scramble, set, get again gives the same. */
	for (unsigned n = 0; n < 200; n++) {
		for (unsigned k = 0; k < 512; k += 8) {
			uint64_t v = rnd();

			memcpy(fx + k, &v, 8);
		}
		fx[26] = fx[27] = 0; /* a valid MXCSR */
		if (n & 1)	     /* and some initial components */
			memset(fx + 160, 0, 256);
		CHECK_EQ(x86_set_fxsave(&vm.cpu, fx), 0);
		x86_get_xsave(&vm.cpu, a);
		fx[0] ^= 0x55;
		memset(fx + 160, 0xa5, 16);
		CHECK_EQ(x86_set_fxsave(&vm.cpu, fx), 0);
		CHECK_EQ(x86_set_xsave(&vm.cpu, a), 0);
		x86_get_xsave(&vm.cpu, b);
		CHECK(memcmp(a, b, sizeof(a)) == 0);
	}
	/* CPUID leaf 0xD as the supported components make it. */
	{
		uint32_t out[4];

		x86_cpuid(&vm.cpu, 0xd, 0, out);
		CHECK_EQ(out[0], X86_XCR0_SUPPORTED);
		CHECK_EQ(out[2], X86_XSAVE_SUPPORTED_SIZE);
		x86_cpuid(&vm.cpu, 0xd, 2, out);
		CHECK_EQ(out[0], X86_AVX ? X86_XSAVE_YMM_SIZE : 0);
		CHECK_EQ(out[1], X86_AVX ? X86_XSAVE_YMM_OFF : 0);
		x86_cpuid(&vm.cpu, 1, 0, out);
		CHECK_EQ(!!(out[2] & (1u << 28)), X86_AVX);
		CHECK_EQ(x86_set_xcr(&vm.cpu, 0, 7), X86_AVX ? 0 : -EINVAL);
		CHECK_EQ(x86_set_xcr(&vm.cpu, 0, 5), -EINVAL); /* YMM, no SSE */
	}
	tap_result("XSAVE images: XSTATE_BV, initial state, checks, random "
		   "round trips; leaf 0xD");
}

/* ---- XSAVE, XGETBV, XSETBV ------------------------------------------ */

GUEST_CODE(g_xgetbv, "xgetbv\nhlt\n");
GUEST_CODE(g_xsetbv, "xsetbv\nhlt\n");
GUEST_CODE(g_cr4, "mov %rax, %cr4\nhlt\n");
GUEST_CODE(g_xsave, "xsave64 (%rdi)\nhlt\n");
GUEST_CODE(g_xsave32, "xsave (%rdi)\nhlt\n");
GUEST_CODE(g_xsaveopt, "xsaveopt64 (%rdi)\nhlt\n");
GUEST_CODE(g_xsavec, "xsavec64 (%rdi)\nhlt\n");
GUEST_CODE(g_xrstor, "xrstor64 (%rdi)\nhlt\n");

#define XS_AREA 0x20000ull

/*
 * Run @b..@e on the current state from H_CODE with EAX/ECX/EDX and RDI =
 * XS_AREA; the vector taken, or -1.
 */
static int xs_run(const uint8_t *b, const uint8_t *e, uint32_t eax,
		  uint32_t ecx, uint32_t edx)
{
	hvm_load(&vm, H_CODE, b, e);
	x86_cpu_invalidate_gpa(&vm.cpu, H_CODE, H_CODE + 4096);
	vm.cpu.rip = H_CODE;
	vm.cpu.gpr[X86_RSP] = H_STACK;
	vm.cpu.gpr[X86_RAX] = eax;
	vm.cpu.gpr[X86_RCX] = ecx;
	vm.cpu.gpr[X86_RDX] = edx;
	vm.cpu.gpr[X86_RDI] = XS_AREA;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	return hvm_vector(&vm);
}

static uint64_t xs_q(unsigned off)
{
	return ld(XS_AREA + off, 8);
}

static void xs_setq(unsigned off, uint64_t v)
{
	*hvm_q(&vm, XS_AREA + off) = v;
}

static void t_xsetbv(void)
{
	struct kvm_cpuid_entry2 t[X86_MAX_CPUID];
	const struct kvm_cpuid_entry2 *sup;
	uint32_t o[4];
	unsigned n;

	SETUP(g_xgetbv);
	set_cr(0, 0, OSFXSR, 0);
	/* Without CR4.OSXSAVE: #UD for all of them. */
	CHECK_EQ(xs_run(g_xgetbv, g_xgetbv_end, 0, 0, 0), X86_UD);
	CHECK_EQ(xs_run(g_xsetbv, g_xsetbv_end, 3, 0, 0), X86_UD);
	CHECK_EQ(xs_run(g_xsave, g_xsave_end, 3, 0, 0), X86_UD);
	CHECK_EQ(xs_run(g_xrstor, g_xrstor_end, 3, 0, 0), X86_UD);
	x86_cpuid(&vm.cpu, 1, 0, o);
	CHECK_EQ(o[2] >> 26 & 3, 1); /* XSAVE, not OSXSAVE */

	/* MOV CR4 sets it, CPUID follows; KVM_SET_SREGS clears it. */
	CHECK_EQ(xs_run(g_cr4, g_cr4_end, vm.cpu.cr4 | X86_CR4_OSXSAVE, 0, 0),
		 -1);
	x86_cpuid(&vm.cpu, 1, 0, o);
	CHECK_EQ(o[2] >> 26 & 3, 3);
	set_cr(0, 0, 0, X86_CR4_OSXSAVE);
	x86_cpuid(&vm.cpu, 1, 0, o);
	CHECK_EQ(o[2] >> 26 & 3, 1);
	set_cr(0, 0, X86_CR4_OSXSAVE, 0);

	/* XCR0 = x87 at reset; XGETBV(1): nothing in use yet. */
	CHECK_EQ(xs_run(g_xgetbv, g_xgetbv_end, 0, 0, 0), -1);
	CHECK_EQ(vm.cpu.gpr[X86_RAX], 1);
	CHECK_EQ(vm.cpu.gpr[X86_RDX], 0);
	CHECK_EQ(xs_run(g_xgetbv, g_xgetbv_end, 0, 1, 0), -1);
	CHECK_EQ(vm.cpu.gpr[X86_RAX], 0);
	CHECK_EQ(xs_run(g_xgetbv, g_xgetbv_end, 0, 2, 0), X86_GP);
	CHECK_EQ(frame(0), 0);

	/* __kvm_set_xcr(): x87 always, nothing unsupported, index 0. */
	CHECK_EQ(xs_run(g_xsetbv, g_xsetbv_end, 2, 0, 0), X86_GP);
	CHECK_EQ(xs_run(g_xsetbv, g_xsetbv_end, 0, 0, 0), X86_GP);
	CHECK_EQ(xs_run(g_xsetbv, g_xsetbv_end, 5, 0, 0), X86_GP);
	CHECK_EQ(xs_run(g_xsetbv, g_xsetbv_end, 0xf, 0, 0), X86_GP);
	CHECK_EQ(xs_run(g_xsetbv, g_xsetbv_end, 3, 0, 1), X86_GP);
	CHECK_EQ(xs_run(g_xsetbv, g_xsetbv_end, 3, 1, 0), X86_GP);
	CHECK_EQ(vm.cpu.xcr0, 1);
	CHECK_EQ(xs_run(g_xsetbv, g_xsetbv_end, 7, 0, 0),
		 X86_AVX ? -1 : X86_GP);
	CHECK_EQ(vm.cpu.xcr0, X86_AVX ? 7 : 1);
	x86_cpuid(&vm.cpu, 0xd, 0, o);
	CHECK_EQ(o[1], X86_AVX ? 832 : 576); /* EBX follows XCR0 */
	CHECK_EQ(xs_run(g_xsetbv, g_xsetbv_end, 3, 0, 0), -1);
	CHECK_EQ(vm.cpu.xcr0, 3);
	x86_cpuid(&vm.cpu, 0xd, 0, o);
	CHECK_EQ(o[1], 576);
	/* XGETBV at any CPL, XSETBV at CPL 0 only (HLT: #GP at CPL 3). */
	hvm_set_cpl(&vm, 3);
	CHECK_EQ(xs_run(g_xsetbv, g_xsetbv_end, 1, 0, 0), X86_GP);
	CHECK_EQ(frame(1), H_CODE);
	hvm_set_cpl(&vm, 3);
	CHECK_EQ(xs_run(g_xgetbv, g_xgetbv_end, 0, 0, 0), X86_GP);
	CHECK_EQ(frame(1), H_CODE + 3);
	CHECK_EQ(vm.cpu.gpr[X86_RAX], 3);
	/* XINUSE: the XMM registers, and MXCSR in XGETBV(1) alone. */
	hvm_set_cpl(&vm, 0);
	vm.cpu.mxcsr = 0x1fc0;
	CHECK_EQ(xs_run(g_xgetbv, g_xgetbv_end, 0, 1, 0), -1);
	CHECK_EQ(vm.cpu.gpr[X86_RAX], 2);
	CHECK_EQ(x86_xinuse(&vm.cpu), 0);
	vm.cpu.mxcsr = X86_MXCSR_DEFAULT;
	vm.cpu.xmm[15].b[15] = 1;
	vm.cpu.x87.fcw = 0x27f;
	CHECK_EQ(xs_run(g_xgetbv, g_xgetbv_end, 0, 1, 0), -1);
	CHECK_EQ(vm.cpu.gpr[X86_RAX], 3);

	/* A guest CPUID without XSAVE: no OSXSAVE, XCR0 x87 only. */
	sup = x86_supported_cpuid(&n);
	memcpy(t, sup, n * sizeof(t[0]));
	for (unsigned k = 0; k < n; k++) {
		if (t[k].function == 1)
			t[k].ecx &= ~(1u << 26);
		if (t[k].function == 0xd)
			t[k].eax = t[k].edx = 0;
	}
	REQUIRE(x86_set_cpuid(&vm.cpu, t, n) == 0);
	CHECK_EQ(xs_run(g_xsetbv, g_xsetbv_end, 3, 0, 0), X86_GP);
	CHECK_EQ(xs_run(g_xsetbv, g_xsetbv_end, 1, 0, 0), -1);
	set_cr(0, 0, 0, X86_CR4_OSXSAVE);
	CHECK_EQ(xs_run(g_cr4, g_cr4_end, vm.cpu.cr4 | X86_CR4_OSXSAVE, 0, 0),
		 X86_GP);
	CHECK_EQ(vm.cpu.cr4 & X86_CR4_OSXSAVE, 0);
	x86_cpuid(&vm.cpu, 1, 0, o);
	CHECK_EQ(o[2] >> 26 & 3, 0);
	/* Leaf 0xD of the supported table: x87|SSE(|YMM), 576 (832) bytes. */
	x86_set_cpuid(&vm.cpu, sup, n);
	x86_cpuid(&vm.cpu, 0xd, 0, o);
	CHECK_EQ(o[0], X86_AVX ? 7 : 3);
	CHECK_EQ(o[1], 576); /* XCR0 is x87 */
	CHECK_EQ(o[2], X86_AVX ? 832 : 576);
	CHECK_EQ(o[3], 0);
	x86_cpuid(&vm.cpu, 0xd, 1, o);
	CHECK_EQ(o[0], 7);
	CHECK_EQ(o[1], 576);
	x86_cpuid(&vm.cpu, 0xd, 2, o);
	if (X86_AVX)
		CHECK(o[0] == 256 && o[1] == 576 && !o[2] && !o[3]);
	else
		CHECK(!o[0] && !o[1] && !o[2] && !o[3]);
	tap_result("XGETBV/XSETBV: #UD without CR4.OSXSAVE, KVM's XCR0 rules, "
		   "XINUSE; CPUID's OSXSAVE follows CR4; leaf 0xD");
}

static void t_xsave_insn(void)
{
	SETUP(g_xsave);
	set_cr(0, 0, OSFXSR | X86_CR4_OSXSAVE, 0);
	REQUIRE(x86_set_xcr(&vm.cpu, 0, 3) == 0);
	memset(vm.mem + XS_AREA, 0xcc, 1024);
	vm.cpu.x87.fcw = 0x27f;
	vm.cpu.xmm[1].q[0] = 0x1122334455667788ull;

	/* #GP(0) unless 64-byte aligned; #NM for CR0.TS, not CR0.EM. */
	vm.cpu.gpr[X86_RDI] = XS_AREA + 16;
	hvm_load(&vm, H_CODE, g_xsave, g_xsave_end);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_GP);
	CHECK_EQ(xs_q(16), 0xccccccccccccccccull);
	set_cr(X86_CR0_TS, 0, 0, 0);
	CHECK_EQ(xs_run(g_xsave, g_xsave_end, 3, 0, 0), X86_NM);
	set_cr(X86_CR0_EM, X86_CR0_TS, 0, 0);
	CHECK_EQ(xs_run(g_xsave, g_xsave_end, 3, 0, 0), -1);
	set_cr(0, X86_CR0_EM, 0, 0);

	/* XSAVE: the requested components, XSTATE_BV's other bits kept. */
	memset(vm.mem + XS_AREA, 0xcc, 1024);
	CHECK_EQ(xs_run(g_xsave, g_xsave_end, 1, 0, 0), -1);
	CHECK_EQ(ld(XS_AREA, 2), 0x27f);
	CHECK_EQ(xs_q(24), 0xccccccccccccccccull); /* no MXCSR */
	CHECK_EQ(xs_q(176), 0xccccccccccccccccull);
	CHECK_EQ(xs_q(512), 0xcccccccccccccccdull);
	CHECK_EQ(xs_run(g_xsave, g_xsave_end, ~0u, 0, ~0u), -1);
	CHECK_EQ(ld(XS_AREA + 24, 4), X86_MXCSR_DEFAULT);
	CHECK_EQ(ld(XS_AREA + 28, 4), X86_MXCSR_MASK);
	CHECK_EQ(xs_q(176), 0x1122334455667788ull);
	CHECK_EQ(xs_q(512), 0xcccccccccccccccfull);
	CHECK_EQ(xs_q(416), 0xccccccccccccccccull); /* not XSAVE's */
	CHECK_EQ(xs_q(504), 0xccccccccccccccccull);
	CHECK_EQ(xs_q(520), 0xccccccccccccccccull); /* XCOMP_BV */
	CHECK_EQ(xs_q(528), 0xccccccccccccccccull);

	/* The init optimisation: XMM 0 is not stored, MXCSR is. */
	memset(&vm.cpu.xmm, 0, sizeof(vm.cpu.xmm));
	vm.cpu.mxcsr = 0x1fc0;
	memset(vm.mem + XS_AREA, 0xcc, 1024);
	CHECK_EQ(xs_run(g_xsaveopt, g_xsaveopt_end, 3, 0, 0), -1);
	CHECK_EQ(ld(XS_AREA + 24, 4), 0x1fc0);
	CHECK_EQ(xs_q(160), 0xccccccccccccccccull);
	CHECK_EQ(xs_q(512), 0xcccccccccccccccdull);
	/* XSAVE stores what is initial too; XSTATE_BV[1] = XINUSE[1]. */
	CHECK_EQ(xs_run(g_xsave, g_xsave_end, 3, 0, 0), -1);
	CHECK_EQ(xs_q(160), 0);
	CHECK_EQ(xs_q(512), 0xcccccccccccccccdull);

	/*
	 * XSAVEC: XCOMP_BV = RFBM | bit 63, XSTATE_BV not read; SSE stored
	 * (and in XSTATE_BV) while MXCSR is not 1F80H, else skipped.
	 */
	memset(vm.mem + XS_AREA, 0xcc, 1024);
	CHECK_EQ(xs_run(g_xsavec, g_xsavec_end, 3, 0, 0), -1);
	CHECK_EQ(xs_q(512), 3);
	CHECK_EQ(xs_q(520), 3 | 1ull << 63);
	CHECK_EQ(xs_q(160), 0);
	CHECK_EQ(xs_q(528), 0xccccccccccccccccull);
	vm.cpu.mxcsr = X86_MXCSR_DEFAULT;
	memset(vm.mem + XS_AREA, 0xcc, 1024);
	CHECK_EQ(xs_run(g_xsavec, g_xsavec_end, 2, 0, 0), -1);
	CHECK_EQ(xs_q(512), 0);
	CHECK_EQ(xs_q(520), 2 | 1ull << 63);
	CHECK_EQ(xs_q(24), 0xccccccccccccccccull);
	CHECK_EQ(ld(XS_AREA, 2), 0xcccc); /* x87 not requested */

	/* The 32-bit x87 format: FIP[31:0] and FCS. */
	vm.cpu.x87.fip = 0x123456789ull;
	vm.cpu.x87.fcs = 0x33;
	CHECK_EQ(xs_run(g_xsave32, g_xsave32_end, 1, 0, 0), -1);
	CHECK_EQ(ld(XS_AREA + 8, 4), 0x23456789);
	CHECK_EQ(ld(XS_AREA + 12, 4), 0x33);
	CHECK_EQ(xs_run(g_xsave, g_xsave_end, 1, 0, 0), -1);
	CHECK_EQ(xs_q(8), 0x123456789ull);
	tap_result("XSAVE, XSAVEOPT, XSAVEC: what each stores, #GP "
		   "alignment, #NM, both x87 formats");
}

static void t_xrstor_insn(void)
{
	SETUP(g_xrstor);
	set_cr(0, 0, OSFXSR | X86_CR4_OSXSAVE, 0);
	REQUIRE(x86_set_xcr(&vm.cpu, 0, 3) == 0);
	memset(vm.mem + XS_AREA, 0, 1024);
	*(uint16_t *)(vm.mem + XS_AREA) = 0x27f;
	*(uint32_t *)(vm.mem + XS_AREA + 24) = 0x1fc0;
	xs_setq(160, 0x55);
	xs_setq(512, 2); /* SSE only: x87 initialised */
	vm.cpu.x87.fcw = 0x7f;
	CHECK_EQ(xs_run(g_xrstor, g_xrstor_end, 3, 0, 0), -1);
	CHECK_EQ(vm.cpu.x87.fcw, X86_FCW_DEFAULT);
	CHECK_EQ(vm.cpu.xmm[0].q[0], 0x55);
	CHECK_EQ(vm.cpu.mxcsr, 0x1fc0);
	/* The standard form loads MXCSR with SSE not loaded... */
	xs_setq(512, 1);
	*(uint32_t *)(vm.mem + XS_AREA + 24) = 0x1f00;
	CHECK_EQ(xs_run(g_xrstor, g_xrstor_end, 3, 0, 0), -1);
	CHECK_EQ(vm.cpu.x87.fcw, 0x27f);
	CHECK_EQ(vm.cpu.xmm[0].q[0], 0);
	CHECK_EQ(vm.cpu.mxcsr, 0x1f00);
	/* ... the compacted form initialises it. */
	xs_setq(520, 3 | 1ull << 63);
	CHECK_EQ(xs_run(g_xrstor, g_xrstor_end, 3, 0, 0), -1);
	CHECK_EQ(vm.cpu.mxcsr, X86_MXCSR_DEFAULT);
	/* RFBM limits what is touched. */
	vm.cpu.x87.fcw = 0x7f;
	xs_setq(512, 3);
	CHECK_EQ(xs_run(g_xrstor, g_xrstor_end, 2, 0, 0), -1);
	CHECK_EQ(vm.cpu.x87.fcw, 0x7f);
	CHECK_EQ(vm.cpu.mxcsr, 0x1f00);
	CHECK_EQ(vm.cpu.xmm[0].q[0], 0x55);

	/* A load with XSTATE_BV set leaves the component in use. */
	memset(&vm.cpu.xmm, 0, sizeof(vm.cpu.xmm));
	xs_setq(160, 0);
	xs_setq(520, 0);
	xs_setq(512, 2);
	CHECK_EQ(xs_run(g_xrstor, g_xrstor_end, 2, 0, 0), -1);
	CHECK_EQ(x86_xinuse(&vm.cpu) & 2, 2);
	xs_setq(512, 0);
	CHECK_EQ(xs_run(g_xrstor, g_xrstor_end, 2, 0, 0), -1);
	CHECK_EQ(x86_xinuse(&vm.cpu) & 2, 0);

	/* #GP for each bad header or MXCSR, nothing loaded. */
	static const struct {
		unsigned off;
		uint64_t v;
		uint32_t rfbm;
	} bad[] = {
		{512, 4, 3},		  /* XSTATE_BV beyond XCR0 */
		{520, 1, 3},		  /* XCOMP_BV, standard form */
		{528, 1, 3},		  /* header bytes 16-23 */
		{520, 1ull << 63 | 4, 3}, /* XCOMP_BV beyond XCR0 */
		{520, 1ull << 63 | 1, 3}, /* XSTATE_BV[1] not in it */
		{24, 1u << 16, 2},	  /* reserved MXCSR bit */
	};
	for (unsigned k = 0; k < ARRAY_LEN(bad); k++) {
		memset(vm.mem + XS_AREA, 0, 1024);
		xs_setq(160, 0x77);
		xs_setq(512, 3);
		if (bad[k].off == 24)
			*(uint32_t *)(vm.mem + XS_AREA + 24) = bad[k].v;
		else
			xs_setq(bad[k].off,
				bad[k].v | ld(XS_AREA + bad[k].off, 8));
		CHECK_EQ(xs_run(g_xrstor, g_xrstor_end, bad[k].rfbm, 0, 0),
			 X86_GP);
		CHECK_EQ(vm.cpu.xmm[0].q[0], 0); /* not the image's 0x77 */
	}
	/* Bytes 24-63 of the header: reserved in the compacted form. */
	memset(vm.mem + XS_AREA, 0, 1024);
	xs_setq(520, 1ull << 63 | 3);
	xs_setq(560, 1);
	CHECK_EQ(xs_run(g_xrstor, g_xrstor_end, 3, 0, 0), X86_GP);
	/* A bad MXCSR matters only where it would be loaded. */
	memset(vm.mem + XS_AREA, 0, 1024);
	*(uint32_t *)(vm.mem + XS_AREA + 24) = 1u << 16;
	CHECK_EQ(xs_run(g_xrstor, g_xrstor_end, 1, 0, 0), -1);
	xs_setq(520, 1ull << 63 | 3);
	CHECK_EQ(xs_run(g_xrstor, g_xrstor_end, 3, 0, 0), -1);
	tap_result("XRSTOR: both forms, MXCSR's treatment by each, XINUSE, "
		   "#GP for bad headers and MXCSR");
}

GUEST_CODE(g_vadd, "vmovdqu (%rdi), %ymm1\n"
		   "vaddps %ymm1, %ymm1, %ymm2\n"
		   "vmovups %ymm2, 64(%rdi)\n"
		   "hlt\n");
GUEST_CODE(g_vx128, "vpaddd %xmm1, %xmm1, %xmm3\nhlt\n");
GUEST_CODE(g_sse_add, "paddd %xmm1, %xmm3\nhlt\n");
GUEST_CODE(g_vmovaps, "vmovaps 32(%rdi), %ymm4\nhlt\n");
GUEST_CODE(g_vmovaps16, "vmovaps 16(%rdi), %ymm4\nhlt\n");
GUEST_CODE(g_vmovups, "vmovups 8(%rdi), %ymm4\nvaddps 4(%rdi), %ymm4, %ymm5\n"
		      "hlt\n");
GUEST_CODE(g_vzu, "vzeroupper\nhlt\n");
GUEST_CODE(g_vdiv, "vdivps %ymm0, %ymm1, %ymm2\nhlt\n");
/* 32 bytes across the page boundary at XS_AREA + 4096, both ways */
GUEST_CODE(g_vcross, "vmovups 0xfec(%rdi), %ymm6\n"
		     "vmovups %ymm6, 0xff4(%rdi)\nhlt\n");
GUEST_CODE(g_vpaddb256, "vpaddb %ymm1, %ymm1, %ymm1\nhlt\n");
/* vbroadcastss %xmm1, %ymm2: the register form is AVX2 */
GUEST_CODE(g_vbcast_reg, ".byte 0xc4, 0xe2, 0x7d, 0x18, 0xd1\nhlt\n");
/* 66, F3, REX (0x40) and LOCK before vpaddd %xmm1, %xmm1, %xmm3 (c5 f1 fe d9)
 */
GUEST_CODE(g_vex66, ".byte 0x66, 0xc5, 0xf1, 0xfe, 0xd9\nhlt\n");
GUEST_CODE(g_vexf3, ".byte 0xf3, 0xc5, 0xf1, 0xfe, 0xd9\nhlt\n");
GUEST_CODE(g_vexrex, ".byte 0x40, 0xc5, 0xf1, 0xfe, 0xd9\nhlt\n");
GUEST_CODE(g_vexlock, ".byte 0xf0, 0xc5, 0xf1, 0xfe, 0xd9\nhlt\n");

/*
 * AVX's rules: #UD without CR4.OSXSAVE or XCR0.YMM, #NM for CR0.TS, CR0.EM
 * and CR4.OSFXSR irrelevant; VEX.128 clears bits 255:128, legacy SSE leaves
 * them; only the aligned moves check alignment; AVX2 forms and prefixes
 * before VEX are #UD; VZEROUPPER.
 */
static void t_avx(void)
{
	uint32_t o[4];

	SETUP(g_vadd);
	set_cr(0, 0, OSFXSR, 0);
	for (unsigned k = 0; k < 8; k += 2) {
		float f[2] = {1.5f * k, 1.5f * (k + 1)};

		memcpy(hvm_q(&vm, XS_AREA + 4 * k), f, 8);
	}
	CHECK_EQ(xs_run(g_vadd, g_vadd_end, 0, 0, 0), X86_UD); /* OSXSAVE */
	set_cr(0, 0, X86_CR4_OSXSAVE, 0);
	CHECK_EQ(xs_run(g_vadd, g_vadd_end, 0, 0, 0), X86_UD); /* XCR0 x87 */
	vm.cpu.gpr[X86_RCX] = 0;
	REQUIRE(x86_set_xcr(&vm.cpu, 0, 3) == 0);
	CHECK_EQ(xs_run(g_vadd, g_vadd_end, 0, 0, 0), X86_UD); /* no YMM */
	x86_cpuid(&vm.cpu, 1, 0, o);
	CHECK_EQ(!!(o[2] & (1u << 28)), X86_AVX);
	if (!X86_AVX) {
		tap_result("AVX unadvertised: VEX is #UD, XCR0.YMM refused");
		return;
	}
	REQUIRE(x86_set_xcr(&vm.cpu, 0, 7) == 0);
	x86_cpuid(&vm.cpu, 0xd, 0, o);
	CHECK_EQ(o[1], X86_XSAVE_SIZE);
	set_cr(X86_CR0_TS, 0, 0, 0);
	CHECK_EQ(xs_run(g_vadd, g_vadd_end, 0, 0, 0), X86_NM);
	set_cr(X86_CR0_EM, X86_CR0_TS, 0, OSFXSR);
	CHECK_EQ(xs_run(g_vadd, g_vadd_end, 0, 0, 0), -1);
	for (unsigned k = 0; k < 8; k++) {
		float f;

		memcpy(&f, (uint8_t *)hvm_q(&vm, XS_AREA + 64) + 4 * k, 4);
		CHECK(f == 3.0f * k);
	}
	{
		float f;

		memcpy(&f, &vm.cpu.ymmh[2].d[3], 4);
		CHECK(f == 21.0f);
	}
	set_cr(0, X86_CR0_EM, OSFXSR, 0);

	/* VEX.128 clears bits 255:128; legacy SSE keeps them. */
	vm.cpu.ymmh[3].q[0] = 0x1234;
	CHECK_EQ(xs_run(g_sse_add, g_sse_add_end, 0, 0, 0), -1);
	CHECK_EQ(vm.cpu.ymmh[3].q[0], 0x1234);
	CHECK_EQ(xs_run(g_vx128, g_vx128_end, 0, 0, 0), -1);
	CHECK_EQ(vm.cpu.ymmh[3].q[0], 0);
	CHECK_EQ(vm.cpu.xmm[3].d[1], 2 * vm.cpu.xmm[1].d[1]);

	/* Alignment: VMOVAPS to its size, others none. */
	CHECK_EQ(xs_run(g_vmovaps, g_vmovaps_end, 0, 0, 0), -1);
	CHECK_EQ(xs_run(g_vmovaps16, g_vmovaps16_end, 0, 0, 0), X86_GP);
	CHECK_EQ(xs_run(g_vmovups, g_vmovups_end, 0, 0, 0), -1);

	/* Not AVX, or prefixed: #UD. */
	CHECK_EQ(xs_run(g_vpaddb256, g_vpaddb256_end, 0, 0, 0), X86_UD);
	CHECK_EQ(xs_run(g_vbcast_reg, g_vbcast_reg_end, 0, 0, 0), X86_UD);
	CHECK_EQ(xs_run(g_vex66, g_vex66_end, 0, 0, 0), X86_UD);
	CHECK_EQ(xs_run(g_vexf3, g_vexf3_end, 0, 0, 0), X86_UD);
	CHECK_EQ(xs_run(g_vexrex, g_vexrex_end, 0, 0, 0), X86_UD);
	CHECK_EQ(xs_run(g_vexlock, g_vexlock_end, 0, 0, 0), X86_UD);

	/*
	 * An unmasked exception in either lane of a VEX.256 operation:
	 * #XM (#UD without OSXMMEXCPT), MXCSR's flag set, no result.
	 */
	for (unsigned k = 0; k < 4; k++) {
		vm.cpu.xmm[1].d[k] = vm.cpu.ymmh[1].d[k] = 0x3f800000; /* 1 */
		vm.cpu.xmm[0].d[k] = vm.cpu.ymmh[0].d[k] = 0x3f800000;
		vm.cpu.xmm[2].d[k] = vm.cpu.ymmh[2].d[k] = 0x55;
	}
	vm.cpu.ymmh[0].d[3] = 0; /* one zero divisor, in the upper lane */
	vm.cpu.mxcsr = X86_MXCSR_DEFAULT & ~0x200u; /* ZE unmasked */
	CHECK_EQ(xs_run(g_vdiv, g_vdiv_end, 0, 0, 0), X86_XM);
	CHECK_EQ(vm.cpu.mxcsr & 0x3f, 4);
	CHECK(vm.cpu.xmm[2].d[0] == 0x55 && vm.cpu.ymmh[2].d[3] == 0x55);
	set_cr(0, 0, 0, X86_CR4_OSXMMEXCPT);
	CHECK_EQ(xs_run(g_vdiv, g_vdiv_end, 0, 0, 0), X86_UD);
	set_cr(0, 0, X86_CR4_OSXMMEXCPT, 0);
	vm.cpu.mxcsr = X86_MXCSR_DEFAULT;
	CHECK_EQ(xs_run(g_vdiv, g_vdiv_end, 0, 0, 0), -1);
	CHECK_EQ(vm.cpu.mxcsr & 0x3f, 4);
	CHECK_EQ(vm.cpu.ymmh[2].d[3], 0x7f800000); /* +inf */
	CHECK_EQ(vm.cpu.xmm[2].d[0], 0x3f800000);
	vm.cpu.mxcsr = X86_MXCSR_DEFAULT;

	/* A 32-byte operand split across two pages, load and store. */
	for (unsigned k = 0; k < 64; k++)
		*((uint8_t *)hvm_q(&vm, XS_AREA + 0xfe0) + k) = k + 1;
	CHECK_EQ(xs_run(g_vcross, g_vcross_end, 0, 0, 0), -1);
	for (unsigned k = 0; k < 16; k++) {
		CHECK_EQ(vm.cpu.xmm[6].b[k], 0xc + k + 1);
		CHECK_EQ(vm.cpu.ymmh[6].b[k], 0x1c + k + 1);
	}
	for (unsigned k = 0; k < 32; k++)
		CHECK_EQ(ld(XS_AREA + 0xff4 + k, 1), 0xc + k + 1);

	/* VZEROUPPER: YMM's component becomes initial again. */
	CHECK(x86_xinuse(&vm.cpu) & X86_XFEATURE_YMM);
	CHECK_EQ(xs_run(g_vzu, g_vzu_end, 0, 0, 0), -1);
	for (unsigned k = 0; k < 16; k++)
		CHECK(!vm.cpu.ymmh[k].q[0] && !vm.cpu.ymmh[k].q[1]);
	CHECK_EQ(x86_xinuse(&vm.cpu) & X86_XFEATURE_YMM, 0);
	tap_result("AVX: #UD without OSXSAVE or XCR0.YMM, #NM, EM/OSFXSR "
		   "ignored, VEX.128 clears 255:128, alignment, AVX2 and "
		   "prefixed VEX #UD, #XM from the upper lane, VZEROUPPER");
}

/* ---- x87 ------------------------------------------------------------ */

/* 1.5 * 2 into memory at 0x21000 as a double, FSW into AX. */
GUEST_CODE(g_x87, "mov $0x21000, %eax\n"
		  "fninit\n"
		  "fld1\n"
		  "fldl 8(%rax)\n"
		  "faddp\n"
		  "fimuls 16(%rax)\n"
		  "fstpl (%rax)\n"
		  "fnstsw %ax\n"
		  "hlt\n");
GUEST_CODE(g_fwait, "fwait\nhlt\n");
/* An unmasked invalid operation (0/0), then FWAIT: #MF at the FWAIT. */
GUEST_CODE(g_x87_mf, "fninit\n"
		     "fldcw 0x21000\n"
		     "fldz\n"
		     "fldz\n"
		     "fdivp\n"
		     "fwait\n"
		     "hlt\n");
/* FNSTENV after FLDL: the pointers are the FLDL's. */
GUEST_CODE(g_x87_env, "mov $0x21000, %eax\n"
		      "fninit\n"
		      "fldl 8(%rax)\n"
		      "fnstenv 0x100(%rax)\n"
		      "hlt\n");
/* FSTPT across 0x31fff/0x32000; the store takes 10 bytes and pops. */
GUEST_CODE(g_x87_split, "fldpi\n"
			"fstpt 0x31ffb\n"
			"hlt\n");
GUEST_CODE(g_x87_mmio, "mov $0x1000000, %eax\n"
		       "fnstcw (%rax)\n"
		       "flds (%rax)\n"
		       "hlt\n");

static void t_x87(void)
{
	double d = 1.5;
	int16_t two = 2;
	uint16_t cw = 0x37e; /* IE unmasked */
	bool on = true;
	uint8_t *env;
	uint32_t v;

	SETUP(g_x87);
	memcpy(vm.mem + 0x21008, &d, 8);
	memcpy(vm.mem + 0x21010, &two, 2);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), -1);
	memcpy(&d, vm.mem + 0x21000, 8);
	CHECK(d == 5.0);
	CHECK_EQ(vm.cpu.gpr[X86_RAX] & 0x3800, 0); /* TOP back at 0 */
	CHECK_EQ(vm.cpu.x87.ftw, 0);

	/* CR0.EM and CR0.TS: #NM, nothing done. */
	SETUP(g_x87);
	set_cr(X86_CR0_EM, 0, 0, 0);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_NM);
	CHECK_EQ(frame(0), H_CODE + 5);
	SETUP(g_x87);
	set_cr(X86_CR0_TS, 0, 0, 0);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_NM);
	CHECK_EQ(frame(0), H_CODE + 5);

	/* FWAIT: #NM only with CR0.MP and CR0.TS. */
	SETUP(g_fwait);
	set_cr(X86_CR0_TS, X86_CR0_MP, 0, 0);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), -1);
	SETUP(g_fwait);
	set_cr(X86_CR0_TS | X86_CR0_MP, 0, 0, 0);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_NM);

	/* #MF at the next waiting instruction, IE and ES set, FIP kept. */
	SETUP(g_x87_mf);
	set_cr(X86_CR0_NE, X86_CR0_TS, 0, 0);
	memcpy(vm.mem + 0x21000, &cw, 2);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_MF);
	CHECK_EQ(frame(0), H_CODE + 2 + 7 + 2 + 2 + 2); /* at the FWAIT */
	CHECK_EQ(vm.cpu.x87.fsw & 0x80ff, 0x8081);
	CHECK_EQ(vm.cpu.x87.fip, H_CODE + 2 + 7 + 2 + 2);
	CHECK_EQ(vm.cpu.x87.fop, 0x6f1); /* DE F1: GAS's fdivp */
	/* Masked: the default NaN, no #MF. */
	SETUP(g_x87_mf);
	cw = X86_FCW_DEFAULT;
	memcpy(vm.mem + 0x21000, &cw, 2);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), -1);
	CHECK_EQ(vm.cpu.x87.fsw & 0x80ff, 0x0001);

	/* FNSTENV: 32-bit layout, FIP/FOP/FDP of the FLDL. */
	SETUP(g_x87_env);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	env = vm.mem + 0x21100;
	memcpy(&v, env + 0, 4);
	CHECK_EQ(v, 0xffff037f); /* FCW, every exception masked */
	memcpy(&v, env + 12, 4);
	CHECK_EQ(v, H_CODE + 7);
	memcpy(&v, env + 16, 4);
	CHECK_EQ(v >> 16, 0x540); /* DD, ModRM 0x40 */
	memcpy(&v, env + 20, 4);
	CHECK_EQ(v, 0x21008);

	/* A page-crossing m80 store; with the 2nd page absent, #PF first. */
	SETUP(g_x87_split);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), -1);
	CHECK_EQ(ld(0x31ffb, 8), 0xc90fdaa22168c235ull);
	CHECK_EQ(ld(0x32003, 2), 0x4000);
	CHECK_EQ(vm.cpu.x87.ftw, 0);
	SETUP(g_x87_split);
	*hvm_pte(&vm, 0x32000) &= ~1ull;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_PF_VEC);
	CHECK_EQ(vm.cpu.cr2, 0x32000);
	CHECK_EQ(ld(0x31ffb, 5), 0);
	CHECK_EQ(vm.cpu.x87.ftw, 0x80); /* FLDPI's push still there */

	/*
	 * MMIO: FNSTCW is done (KVM's emulator does it); FLDS is an emulation
	 * failure with the capability, #UD without.
	 */
	SETUP(g_x87_mmio);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_MMIO);
	CHECK_EQ(vm.stop.mmio.gpa, 0x1000000);
	CHECK_EQ(vm.stop.mmio.len, 2);
	CHECK_EQ(vm.stop.mmio.data[0] | vm.stop.mmio.data[1] << 8,
		 X86_FCW_DEFAULT);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_UD);
	SETUP(g_x87_mmio);
	vm.cpu.exit_on_emulation_failure = &on;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_MMIO);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_INTERNAL);
	CHECK_EQ(vm.cpu.rip, H_CODE + 5 + 2);
	CHECK_EQ(vm.stop.internal.insn_len, 2);
	CHECK_EQ(vm.stop.internal.insn[0], 0xd9);
	vm.cpu.exit_on_emulation_failure = NULL;
	tap_result("x87: arithmetic and stores, #NM with CR0.EM/TS, FWAIT, "
		   "#MF for a pending unmasked exception, FNSTENV's pointers, "
		   "a page-crossing m80 store and its #PF, MMIO operands");
}

/* Debug registers, TF and the VMM's debugger (debug.c). */
#define DBG_LBL(name) (H_CODE + (uint64_t)(name##_at - name))
#define DBG_CODE(name, before, after)                                          \
	GUEST_CODE(name, before ".globl " #name "_at\n" #name "_at:\n" after); \
	extern const uint8_t name##_at[]

DBG_CODE(g_movdr, "mov $0x12345, %rax\n",
	 "mov %rax, %dr0\n"
	 "mov %dr0, %rbx\n"
	 "mov %dr7, %rcx\n"
	 "mov %dr6, %rdx\n"
	 "mov %dr4, %rsi\n" /* DR6 without CR4.DE */
	 "hlt\n");
GUEST_CODE(g_movdr7_hi, "mov $0x100000400, %rax\n"
			"mov %rax, %dr7\n"
			"hlt\n");
DBG_CODE(g_gd,
	 "mov $0x2400, %eax\n"
	 "mov %rax, %dr7\n",
	 "mov %dr0, %rbx\n"
	 "hlt\n");
DBG_CODE(g_tf,
	 "pushfq\n"
	 "orq $0x100, (%rsp)\n"
	 "popfq\n"
	 "nop\n", /* TF is set at its start: #DB after it */
	 "nop\n"
	 "hlt\n");
DBG_CODE(g_codebp,
	 "lea g_codebp_at(%rip), %rax\n"
	 "mov %rax, %dr0\n"
	 "mov $1, %eax\n" /* L0, RW0 = execute */
	 "mov %rax, %dr7\n"
	 "nop\n",
	 "nop\n"
	 "hlt\n");
/* DR1 watches writes to the 8 bytes at 0x20000 (L1, RW1 01, LEN1 10). */
DBG_CODE(g_databp,
	 "mov 0x20000, %ecx\n" /* the page is in the TLB now */
	 "mov $0x20000, %eax\n"
	 "mov %rax, %dr1\n"
	 "mov $0x900004, %eax\n"
	 "mov %rax, %dr7\n"
	 "mov 0x20000, %ecx\n" /* a read: RW 01 ignores it */
	 "movl $1, 0x20008\n"  /* outside */
	 "movl $2, 0x20004\n", /* inside: a trap after it */
	 "hlt\n");
GUEST_CODE(g_steps, "nop\n"
		    "nop\n"
		    "mov $1, %eax\n"
		    "hlt\n");
GUEST_CODE(g_int3, "nop\n"
		   "int3\n"
		   "hlt\n");

static int dbg_set(uint32_t control, uint64_t db0, uint64_t dr7)
{
	uint64_t regs[8] = {db0, 0, 0, 0, 0, 0, 0, dr7};

	return x86_set_guest_debug(&vm.cpu, control, regs);
}

/* A KVM_EXIT_DEBUG-to-be: @exc at @pc, DR6 @dr6 for #DB. */
static bool vmm_stop_at(unsigned exc, uint64_t pc, uint64_t dr6)
{
	return hvm_run(&vm, 100) == X86_STOP_DEBUG &&
	       vm.stop.debug.exception == exc && vm.stop.debug.pc == pc &&
	       (exc != 1 || vm.stop.debug.dr6 == dr6);
}

/* @name runs into the guest's #DB handler from @rip, DR6 then @dr6. */
static bool guest_db_at(const uint8_t *b, const uint8_t *e, uint64_t rip,
			uint64_t dr6)
{
	setup(b, e);
	return hvm_run(&vm, 100) == X86_STOP_HLT && hvm_vector(&vm) == X86_DB &&
	       frame(0) == rip && vm.cpu.dr6 == dr6;
}

#define GUEST_DB_AT(name, dr6) guest_db_at(name, name##_end, DBG_LBL(name), dr6)

static void t_debug_guest(void)
{
	SETUP(g_movdr);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(vm.cpu.gpr[X86_RBX], 0x12345);
	CHECK_EQ(vm.cpu.gpr[X86_RCX], 0x400);
	CHECK_EQ(vm.cpu.gpr[X86_RDX], 0xffff0ff0);
	CHECK_EQ(vm.cpu.gpr[X86_RSI], 0xffff0ff0);
	CHECK_EQ(vm.cpu.db[0], 0x12345);
	/* CR4.DE: DR4 is #UD; CPL 3: #GP(0) before anything else. */
	SETUP(g_movdr);
	set_cr(0, 0, X86_CR4_DE, 0);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_UD);
	CHECK_EQ(frame(0), H_CODE + (g_movdr_end - g_movdr) - 4);
	CHECK_EQ(GP_AT(g_movdr, 3), 0);
	CHECK_EQ(frame(1), DBG_LBL(g_movdr));
	CHECK_EQ(GP_AT(g_movdr7_hi, 0), 0);
	CHECK_EQ(vm.cpu.dr7, 0x400);

	/* DR7.GD: MOV DRn faults with DR6.BD; delivery clears GD. */
	CHECK(GUEST_DB_AT(g_gd, 0xffff2ff0));
	CHECK_EQ(vm.cpu.dr7, 0x400);

	/* POPF sets TF: the trap comes after the next instruction. */
	CHECK(GUEST_DB_AT(g_tf, 0xffff4ff0));
	CHECK_EQ(frame(2) & X86_TF, X86_TF);
	CHECK_EQ(vm.cpu.rflags & X86_TF, 0);

	/* An instruction breakpoint faults before it, RF clear. */
	CHECK(GUEST_DB_AT(g_codebp, 0xffff0ff1));
	CHECK_EQ(frame(2) & X86_RF, 0);

	/* A data breakpoint traps after the write that hits it. */
	CHECK(GUEST_DB_AT(g_databp, 0xffff0ff2));
	CHECK_EQ(ld(0x20004, 4), 2);
	tap_result("guest debug registers: MOV DRn (#UD, #GP, DR7.GD's #DB), "
		   "TF single step, instruction and data breakpoints, DR6");
}

static void t_debug_vmm(void)
{
	/* KVM_GUESTDBG_SINGLESTEP: a stop after every instruction. */
	SETUP(g_steps);
	CHECK_EQ(dbg_set(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP, 0, 0),
		 0);
	CHECK(vmm_stop_at(1, H_CODE + 1, 0xffff4ff0));
	CHECK(vmm_stop_at(1, H_CODE + 2, 0xffff4ff0));
	CHECK(vmm_stop_at(1, H_CODE + 7, 0xffff4ff0));
	CHECK_EQ(vm.cpu.gpr[X86_RAX], 1);
	CHECK_EQ(vm.cpu.dr6, 0xffff0ff0);
	CHECK_EQ(dbg_set(0, 0, 0), 0);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(vm.cpu.rip, H_CODE + 8);

	/* USE_SW_BP: INT3 stops at itself; INJECT_BP hands it back. */
	SETUP(g_int3);
	CHECK_EQ(dbg_set(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP, 0, 0),
		 0);
	CHECK(vmm_stop_at(3, H_CODE + 1, 0));
	CHECK_EQ(vm.cpu.rip, H_CODE + 1);
	CHECK_EQ(dbg_set(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP |
				 KVM_GUESTDBG_INJECT_BP,
			 0, 0),
		 0);
	/* One exception queued already: EBUSY, nothing changed. */
	CHECK_EQ(dbg_set(KVM_GUESTDBG_INJECT_DB, 0, 0), -EBUSY);
	CHECK_EQ(vm.cpu.gdbg & KVM_GUESTDBG_USE_SW_BP, KVM_GUESTDBG_USE_SW_BP);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_BP);
	CHECK_EQ(frame(0), H_CODE + 2);

	/* USE_HW_BP: the VMM's breakpoints, the guest's DR6/DR7 untouched. */
	SETUP(g_steps);
	CHECK_EQ(dbg_set(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP,
			 H_CODE + 2, 0x401),
		 0);
	CHECK(vmm_stop_at(1, H_CODE + 2, 0xffff0ff1));
	CHECK_EQ(vm.stop.debug.dr7, 0x401);
	CHECK_EQ(vm.cpu.rip, H_CODE + 2);
	CHECK_EQ(vm.cpu.dr6, 0xffff0ff0);
	CHECK_EQ(vm.cpu.dr7, 0x400);
	/* Debugging off: it runs on; INJECT_DB alone is the guest's #DB. */
	CHECK_EQ(dbg_set(KVM_GUESTDBG_INJECT_DB, 0, 0), 0);
	CHECK_EQ(vm.cpu.gdbg, 0);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_DB);
	CHECK_EQ(frame(0), H_CODE + 2);

	/* The VMM's DR7.GD: MOV DRn stops for it, DR6.BD. */
	SETUP(g_gd);
	CHECK_EQ(dbg_set(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP, 0,
			 0x2400),
		 0);
	CHECK(vmm_stop_at(1, H_CODE + 5, 0xffff2ff0)); /* at MOV DR7 */
	CHECK_EQ(dbg_set(0, 0, 0), 0);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_DB);
	CHECK_EQ(frame(0), DBG_LBL(g_gd));
	tap_result("KVM_SET_GUEST_DEBUG: single step, INT3 with USE_SW_BP and "
		   "INJECT_BP, USE_HW_BP instruction breakpoints and GD, "
		   "INJECT_DB, EBUSY with an exception queued");
}

/* The kick word in guest memory: the guest kicks itself, then faults. */
GUEST_CODE(g_kick_ud, "movl $1, 0x20000\n"
		      "ud2\n");

/*
 * An exception the guest raises is queued first: a kick that came before
 * it was delivered ends the run with it pending, delivered at the next.
 * With TR unusable (VMX's invalid guest state, on an Intel host) it ends
 * in an emulation failure instead, at once and at every run after.
 */
static void t_exc_queued(void)
{
	struct kvm_sregs s;

	SETUP(g_kick_ud);
	vm.cpu.kick = (volatile int *)(vm.mem + H_DATA);
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_KICK);
	CHECK(vm.cpu.pend.valid && vm.cpu.pend.queued);
	CHECK_EQ(vm.cpu.pend.vector, X86_UD);
	CHECK_EQ(vm.cpu.rip, H_CODE + 11);
	*(volatile int *)(vm.mem + H_DATA) = 0;
	CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
	CHECK_EQ(hvm_vector(&vm), X86_UD);
	CHECK_EQ(frame(0), H_CODE + 11);
	vm.cpu.kick = NULL;

	SETUP(g_ud);
	x86_get_sregs(&vm.cpu, &s);
	s.tr.unusable = 1;
	x86_set_sregs(&vm.cpu, &s);
	if (x86_host_amd()) {
		CHECK(!x86_vmx_invalid_state(&vm.cpu));
		CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
		CHECK_EQ(hvm_vector(&vm), X86_UD);
	} else {
		CHECK(x86_vmx_invalid_state(&vm.cpu));
		CHECK_EQ(hvm_run(&vm, 100), X86_STOP_INTERNAL);
		CHECK(vm.cpu.pend.valid && vm.cpu.pend.vector == X86_UD);
		CHECK_EQ(hvm_run(&vm, 100), X86_STOP_INTERNAL);
		CHECK_EQ(vm.cpu.rip, H_CODE + 1); /* at the ud2 */
		/* A usable busy TSS again: the #UD is delivered. */
		s.tr.unusable = 0;
		x86_set_sregs(&vm.cpu, &s);
		CHECK_EQ(hvm_run(&vm, 100), X86_STOP_HLT);
		CHECK_EQ(hvm_vector(&vm), X86_UD);
	}
	tap_result("a raised exception stays pending at a kick; with TR "
		   "unusable (VMX's invalid state, Intel hosts) it is an "
		   "emulation failure");
}

int main(void)
{
	tap_plan(54, 60);
	REQUIRE(hvm_init(&vm, 16 << 20) == 0);
	t_arith();
	t_flow();
	t_string();
	t_pf_notpresent();
	t_pf_ro();
	t_pf_user();
	t_pf_nx();
	t_pf_rsvd();
	t_smaller_maxphyaddr();
	t_pf_rsvd_smaller();
	t_xo();
	t_exceptions();
	t_double_triple();
	t_mmio();
	t_io();
	t_outs();
	t_ins();
	t_ins_fault();
	t_kick();
	t_s2_exit();
	t_smc();
	t_syscall();
	t_ucode_rev();
	t_platform_info();
	t_int_iret();
	t_split();
	t_fetch_split();
	t_ad();
	t_huge();
	t_smep();
	t_system();
	t_gp();
	t_xo_smc();
	t_inject();
	t_irq_window();
	t_rep_long();
	t_sreg();
	t_forms();
	t_bits();
	t_sse_avail();
	t_sse_xm();
	t_sse_align();
	t_sse_split();
	t_sse_mmio();
	t_fxsave();
	t_xsave();
	t_xsetbv();
	t_avx();
	t_x87();
	t_xsave_insn();
	t_xrstor_insn();
	t_debug_guest();
	t_debug_vmm();
	t_exc_queued();
	hvm_destroy(&vm);
	return tap_done();
}
