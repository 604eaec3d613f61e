// SPDX-License-Identifier: MIT
/*
 * MMIO from a real guest: loads and stores of 1, 2, 4 and 8 bytes where
 * no memslot is (KVM_EXIT_MMIO, the host supplies or checks the data, the
 * instruction completes on the next run), and a READONLY memslot that
 * reads as memory while writes become MMIO exits (DESIGN 3.4, rules 2
 * and 6).
 */
#include <stdint.h>

#define MMIO_GPA 0x10000000ULL /* 256 MiB: no slot */
#define ROM_GPA 0x20000000ULL  /* 512 MiB: a READONLY slot */
#define ROM_SIZE 0x2000ULL

static const char *const case_names[] = {
	"MMIO reads of 1, 2, 4, 8 bytes get the host's data",
	"MMIO writes of 1, 2, 4, 8 bytes reach the host",
	"READONLY slot: reads are memory, a write is an MMIO exit",
};

#define NR_CASES (sizeof(case_names) / sizeof(case_names[0]))

/* What the host answers for a read of @len bytes at @gpa. */
static uint64_t mmio_value(uint64_t gpa, unsigned len)
{
	uint64_t v = 0x0123456789abcdefULL ^ (gpa * 0x9e3779b97f4a7c15ULL);

	return len == 8 ? v : v & ((1ULL << (8 * len)) - 1);
}

#ifdef GUEST

#include "guest.h"

static void case_reads(void)
{
	volatile uint8_t *p = (volatile uint8_t *)MMIO_GPA;

	guest_map_page(MMIO_GPA, MMIO_GPA, PTE_W);
	GUEST_ASSERT_EQ(p[0x10], mmio_value(MMIO_GPA + 0x10, 1));
	GUEST_ASSERT_EQ(*(volatile uint16_t *)(p + 0x20),
			mmio_value(MMIO_GPA + 0x20, 2));
	GUEST_ASSERT_EQ(*(volatile uint32_t *)(p + 0x40),
			mmio_value(MMIO_GPA + 0x40, 4));
	GUEST_ASSERT_EQ(*(volatile uint64_t *)(p + 0x80),
			mmio_value(MMIO_GPA + 0x80, 8));
}

static void case_writes(void)
{
	volatile uint8_t *p = (volatile uint8_t *)MMIO_GPA;

	p[0x11] = 0xa1;
	*(volatile uint16_t *)(p + 0x22) = 0xb2b2;
	*(volatile uint32_t *)(p + 0x44) = 0xc3c3c3c3;
	*(volatile uint64_t *)(p + 0x88) = 0xd4d4d4d4d4d4d4d4ULL;
}

static void case_rom(void)
{
	volatile uint64_t *rom = (volatile uint64_t *)ROM_GPA;

	guest_map_page(ROM_GPA, ROM_GPA, PTE_W);
	guest_map_page(ROM_GPA + 4096, ROM_GPA + 4096, PTE_W);
	GUEST_ASSERT_EQ(rom[0], 0x524f4d524f4d524fULL);
	GUEST_ASSERT_EQ(rom[1000], 1000);
	rom[1] = 0xe5e5; /* an MMIO write; the slot is not changed */
	GUEST_ASSERT_EQ(rom[1], 1);
}

static void (*const cases[])(void) = {
	case_reads,
	case_writes,
	case_rom,
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

#include <sys/mman.h>

#include "tap.h"
#include "guest_util.h"

#define MEM (16ULL << 20)

static uint64_t *rom;
static int reads, writes, rom_writes;

/* Serve MMIO exits: answer reads, check writes against what case 2 does. */
static int run(struct guest_vcpu *v, struct guest_ucall *uc)
{
	struct kvm_run *r = v->run;

	for (;;) {
		int ret = guest_vcpu_run(v, uc);
		uint64_t data = 0;

		if (ret != GUEST_EXIT || r->exit_reason != KVM_EXIT_MMIO)
			return ret;
		if (!r->mmio.is_write) {
			data = mmio_value(r->mmio.phys_addr, r->mmio.len);
			memcpy(r->mmio.data, &data, r->mmio.len);
			reads++;
			continue;
		}
		memcpy(&data, r->mmio.data, r->mmio.len);
		if (r->mmio.phys_addr == ROM_GPA + 8) {
			CHECK_EQ(r->mmio.len, 8);
			CHECK_EQ(data, 0xe5e5);
			rom_writes++;
			continue;
		}
		switch (r->mmio.phys_addr - MMIO_GPA) {
		case 0x11:
			CHECK_EQ(r->mmio.len, 1);
			CHECK_EQ(data, 0xa1);
			break;
		case 0x22:
			CHECK_EQ(r->mmio.len, 2);
			CHECK_EQ(data, 0xb2b2);
			break;
		case 0x44:
			CHECK_EQ(r->mmio.len, 4);
			CHECK_EQ(data, 0xc3c3c3c3);
			break;
		case 0x88:
			CHECK_EQ(r->mmio.len, 8);
			CHECK_EQ(data, 0xd4d4d4d4d4d4d4d4ULL);
			break;
		default:
			printf("# unexpected MMIO write at %#llx\n",
			       (unsigned long long)r->mmio.phys_addr);
			tap_case_failed = 1;
		}
		writes++;
	}
}

int main(void)
{
	struct kvm_userspace_memory_region2 slot = {
		.slot = 1,
		.flags = KVM_MEM_READONLY,
		.guest_phys_addr = ROM_GPA,
		.memory_size = ROM_SIZE,
	};
	struct guest_vm *gvm;
	struct guest_vcpu *v;

	tap_plan(NR_CASES + 2, 60);
	REQUIRE(guest_vm_create(KVM_X86_DEFAULT_VM, MEM, 0, &gvm) == 0);
	rom = mmap(NULL, ROM_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(rom != MAP_FAILED);
	for (unsigned i = 0; i < ROM_SIZE / 8; i++)
		rom[i] = i;
	rom[0] = 0x524f4d524f4d524fULL; /* "ROMROMRO" */
	slot.userspace_addr = (uint64_t)(uintptr_t)rom;
	REQUIRE(gmem_vm_set_memory_region2(gvm->vm, &slot) == 0);
	REQUIRE(guest_vcpu_add(gvm, &v) == 0);
	REQUIRE(guest_vm_load(gvm, "mmio", NULL) == 0);

	guest_run_steps(v, case_names, NR_CASES, run);
	CHECK_EQ(reads, 4);
	CHECK_EQ(writes, 4);
	CHECK_EQ(rom_writes, 1);
	CHECK_EQ(rom[1], 1);
	tap_result("four reads, four writes and one ROM write seen");
	guest_vm_destroy(gvm);
	munmap(rom, ROM_SIZE);
	return tap_done();
}

#endif
