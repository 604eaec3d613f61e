// SPDX-License-Identifier: MIT
/*
 * Page-table helpers over the loader's identity map.  Tables are reached
 * by their physical address, which is also their virtual address.  New
 * tables (for a split or a missing level) come from a static pool in the
 * image's bss: the guest owns no allocator, and a test rarely needs more
 * than a few.
 */
#include "guest.h"

#define PT_POOL_PAGES 32

static uint64_t pt_pool[PT_POOL_PAGES][512] __aligned(4096);
static unsigned pt_pool_used;

static uint64_t *alloc_table(void)
{
	uint64_t *t;

	if (pt_pool_used == PT_POOL_PAGES)
		return 0;
	t = pt_pool[pt_pool_used++];
	memset(t, 0, PAGE_SIZE);
	return t;
}

/* Non-leaf entries allow everything; the leaf decides (AND of levels). */
#define TABLE_FLAGS (PTE_P | PTE_W | PTE_U)

/*
 * Replace the large leaf @e at @level (2: 1 GiB, 1: 2 MiB) by a table of
 * 512 leaves one level down with the same permissions, and flush the TLB:
 * the old translation may be cached for any address in the range.
 */
static uint64_t *split(uint64_t *entry, int level)
{
	uint64_t e = *entry, step = 1ULL << (12 + 9 * (level - 1));
	uint64_t base = e & PTE_ADDR_MASK & ~((1ULL << (12 + 9 * level)) - 1);
	uint64_t flags = (e & (0xfffULL | PTE_NX)) & ~PTE_PS;
	uint64_t *t = alloc_table();

	if (!t)
		return 0;
	if (level > 1)
		flags |= PTE_PS;
	for (unsigned i = 0; i < 512; i++)
		t[i] = (base + i * step) | flags;
	*entry = (uint64_t)t | TABLE_FLAGS;
	write_cr3(read_cr3());
	return t;
}

uint64_t *guest_pte(uint64_t va)
{
	uint64_t *table = (uint64_t *)(read_cr3() & PTE_ADDR_MASK);

	/* Level 3 is the PML4, 1 the page directory. */
	for (int level = 3; level >= 1; level--) {
		uint64_t *entry = &table[(va >> (12 + 9 * level)) & 511];

		if (!(*entry & PTE_P)) {
			uint64_t *t = alloc_table();

			if (!t)
				return 0;
			*entry = (uint64_t)t | TABLE_FLAGS;
			table = t;
		} else if (*entry & PTE_PS) {
			table = split(entry, level);
			if (!table)
				return 0;
		} else {
			table = (uint64_t *)(*entry & PTE_ADDR_MASK);
		}
	}
	return &table[(va >> 12) & 511];
}

void guest_map_page(uint64_t va, uint64_t pa, uint64_t flags)
{
	uint64_t *pte = guest_pte(va);

	GUEST_ASSERT(pte);
	*pte = (pa & PTE_ADDR_MASK) | flags | PTE_P;
	invlpg((void *)va);
}

void guest_unmap_page(uint64_t va)
{
	uint64_t *pte = guest_pte(va);

	GUEST_ASSERT(pte);
	*pte = 0;
	invlpg((void *)va);
}

void guest_protect_page(uint64_t va, uint64_t set, uint64_t clear)
{
	uint64_t *pte = guest_pte(va);

	GUEST_ASSERT(pte);
	*pte = (*pte | set) & ~clear;
	invlpg((void *)va);
}
