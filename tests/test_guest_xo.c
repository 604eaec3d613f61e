// SPDX-License-Identifier: MIT
/*
 * Execute-only memory through the XO alias (DESIGN 3.5), from inside the
 * guest: the VMM enables GMEM_CAP_XO_ALIAS with width M; the guest finds
 * M and the feature in CPUID, maps code with PTE bit M set, and checks
 * that fetches work while reads and writes are #PF with the exact error
 * code and CR2, at CPL 0 and 3, and that code written through a normal
 * mapping is what the alias then executes.
 */
#include <stdint.h>

#define XO_M 40

static const char *const case_names[] = {
	"CPUID: gmem hypervisor leaves, XO enabled, MAXPHYADDR = M",
	"fetch through the alias works",
	"read through the alias: #PF error 0x1, CR2",
	"write through the alias: #PF error 0x3, nothing written",
	"CPL 3: fetch works, read is #PF error 0x5, write 0x7",
	"code written through an RW mapping runs through an XO alias",
};

#define NR_CASES (sizeof(case_names) / sizeof(case_names[0]))

#ifdef GUEST

#include "guest.h"

#define XO_BIT (1ULL << XO_M)
#define ALIAS_VA 0x40000000ULL /* outside the identity map of RAM */

static uint8_t code[4096] __aligned(4096);
static uint8_t user_stack[8192] __aligned(16);

/* mov $imm32, %eax; ret */
static void put_code(uint8_t *p, uint32_t imm)
{
	p[0] = 0xb8;
	memcpy(p + 1, &imm, 4);
	p[5] = 0xc3;
}

static void map_xo(void)
{
	guest_map_page((uint64_t)code, (uint64_t)code | XO_BIT, PTE_U);
}

static void map_rw(void)
{
	guest_map_page((uint64_t)code, (uint64_t)code, PTE_W | PTE_U);
}

static void case_cpuid(void)
{
	uint32_t a, b, c, d;

	cpuid(0x40000000, 0, &a, &b, &c, &d);
	GUEST_ASSERT(a >= 0x40000001);
	GUEST_ASSERT(!memcmp(&b, "gmem", 4) && !memcmp(&c, "gmem", 4) &&
		     !memcmp(&d, "gmem", 4));
	cpuid(0x40000001, 0, &a, &b, &c, &d);
	GUEST_ASSERT_EQ(a & 1, 1);
	cpuid(0x80000008, 0, &a, &b, &c, &d);
	GUEST_ASSERT_EQ(a & 0xff, XO_M);
}

static void case_fetch(void)
{
	put_code(code, 0x42);
	map_xo();
	GUEST_ASSERT_EQ(guest_probe_exec(code), -1);
	GUEST_ASSERT_EQ(((uint32_t(*)(void))(uint64_t)code)(), 0x42);
}

static void case_read(void)
{
	GUEST_ASSERT_EQ(guest_probe_read(code + 0x10), VEC_PF);
	GUEST_ASSERT_EQ(guest_last_fault.error_code, PF_P);
	GUEST_ASSERT_EQ(guest_last_fault.cr2, (uint64_t)code + 0x10);
}

static void case_write(void)
{
	GUEST_ASSERT_EQ(guest_probe_write(code + 8, 0x1111), VEC_PF);
	GUEST_ASSERT_EQ(guest_last_fault.error_code, PF_P | PF_W);
	GUEST_ASSERT_EQ(guest_last_fault.cr2, (uint64_t)code + 8);
	map_rw();
	GUEST_ASSERT_EQ(*(volatile uint64_t *)(code + 8), 0);
	map_xo();
}

static volatile uint64_t user_err[3];

static uint64_t user_probe(uint64_t unused)
{
	(void)unused;
	if (guest_probe_exec(code) != -1)
		return 1;
	if (guest_probe_read(code) != VEC_PF)
		return 2;
	user_err[0] = guest_last_fault.error_code;
	user_err[1] = guest_last_fault.cr2;
	if (guest_probe_write(code + 0x20, 1) != VEC_PF)
		return 3;
	user_err[2] = guest_last_fault.error_code;
	return 0;
}

static void case_user(void)
{
	GUEST_ASSERT_EQ(
		guest_run_user(user_probe, 0, user_stack + sizeof(user_stack)),
		0);
	GUEST_ASSERT_EQ(user_err[0], PF_P | PF_U);
	GUEST_ASSERT_EQ(user_err[1], (uint64_t)code);
	GUEST_ASSERT_EQ(user_err[2], PF_P | PF_W | PF_U);
}

/*
 * Two mappings of one page: RW at its identity address, XO at ALIAS_VA.
 * A write through the first must reach what the second executes, though
 * the two use different guest-physical addresses (g and g | xo_bit).
 */
static void case_alias(void)
{
	uint32_t (*fn)(void) = (uint32_t(*)(void))ALIAS_VA;

	map_rw();
	guest_map_page(ALIAS_VA, (uint64_t)code | XO_BIT, 0);
	GUEST_ASSERT_EQ(fn(), 0x42);
	put_code(code, 0x43);
	GUEST_ASSERT_EQ(fn(), 0x43);
	put_code(code, 0x44);
	GUEST_ASSERT_EQ(fn(), 0x44);
	GUEST_ASSERT_EQ(guest_probe_read((void *)ALIAS_VA), VEC_PF);
	GUEST_ASSERT_EQ(guest_last_fault.cr2, ALIAS_VA);
}

static void (*const cases[])(void) = {
	case_cpuid, case_fetch, case_read, case_write, case_user, case_alias,
};

_Static_assert(sizeof(cases) / sizeof(cases[0]) == NR_CASES, "case table");

void guest_main(uint64_t arg0, uint64_t arg1)
{
	for (unsigned i = 0; i < NR_CASES; i++) {
		GUEST_SYNC(i);
		cases[i]();
	}
	GUEST_SYNC(NR_CASES);
	GUEST_DONE(0);
}

#else

#include "tap.h"
#include "guest_util.h"

#define MEM (16ULL << 20)

int main(void)
{
	struct kvm_enable_cap cap = {
		.cap = GMEM_CAP_XO_ALIAS,
		.args = {XO_M},
	};
	struct guest_vm *gvm;
	struct guest_vcpu *v;
	unsigned int i;

	tap_plan(NR_CASES + 1, 60);
	REQUIRE(guest_vm_create(KVM_X86_DEFAULT_VM, MEM, 0, &gvm) == 0);
	if (gmem_check_extension(gvm->vm, GMEM_CAP_XO_ALIAS) <= 0) {
		for (i = 0; i < NR_CASES; i++)
			tap_skip(case_names[i], "no GMEM_CAP_XO_ALIAS");
		tap_skip("GUEST_DONE", "no GMEM_CAP_XO_ALIAS");
		guest_vm_destroy(gvm);
		return tap_done();
	}
	REQUIRE(gmem_vm_enable_cap(gvm->vm, &cap) == 0);
	REQUIRE(guest_vcpu_add(gvm, &v) == 0);
	REQUIRE(guest_vm_load(gvm, "xo", NULL) == 0);

	guest_run_steps(v, case_names, NR_CASES, NULL);
	guest_vm_destroy(gvm);
	return tap_done();
}

#endif
