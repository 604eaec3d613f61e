// SPDX-License-Identifier: MIT
/*
 * Execute-only user pages through the XO alias bit (see xo.h).
 */
#include "guest.h"
#include "xo.h"

#define EINVAL 22
#define ENOMEM 12

#define GMEM_SIGNATURE 0x6d656d67 /* "gmem" in each of EBX, ECX, EDX */
#define XO_LEAF 0x40000001
#define XO_LEAF_EAX_XO (1U << 0)

unsigned int guest_maxphyaddr(void)
{
	uint32_t a, b, c, d;

	cpuid(0x80000000, 0, &a, &b, &c, &d);
	if (a < 0x80000008)
		return 36; /* what the SDM says to assume */
	cpuid(0x80000008, 0, &a, &b, &c, &d);
	return a & 0xff;
}

uint64_t guest_xo_bit(void)
{
	uint32_t a, b, c, d;
	unsigned int m;

	/*
	 * Only trust leaf 0x40000001 under our own signature: another
	 * hypervisor's leaf of that number means something else.
	 */
	cpuid(0x40000000, 0, &a, &b, &c, &d);
	if (b != GMEM_SIGNATURE || c != GMEM_SIGNATURE || d != GMEM_SIGNATURE ||
	    a < XO_LEAF)
		return 0;
	cpuid(XO_LEAF, 0, &a, &b, &c, &d);
	if (!(a & XO_LEAF_EAX_XO))
		return 0;
	m = guest_maxphyaddr();
	if (m < 32 || m > 51)
		return 0;
	return 1ULL << m;
}

static uint64_t prot_pte(uint64_t pte, int prot, uint64_t xo)
{
	uint64_t clear = PTE_P | PTE_W | PTE_NX | xo;
	uint64_t set = PTE_U;

	if (prot == PROT_NONE)
		return (pte & ~clear) | set;
	set |= PTE_P;
	if (prot & PROT_WRITE)
		set |= PTE_W;
	if (!(prot & PROT_EXEC) && (rdmsr(MSR_EFER) & EFER_NXE))
		set |= PTE_NX;
	/*
	 * Execute-only: the same frame through the alias.  Without it
	 * PROT_EXEC has to imply PROT_READ, as on any x86 without XO.
	 */
	if (prot == PROT_EXEC && xo)
		set |= xo;
	return (pte & ~clear) | set;
}

int guest_mprotect(void *addr, size_t len, int prot)
{
	uint64_t start = (uint64_t)addr, end, xo = guest_xo_bit();

	if ((start & (PAGE_SIZE - 1)) ||
	    (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)))
		return -EINVAL;
	end = (start + len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	if (end < start)
		return -EINVAL;

	/*
	 * Check the whole range before changing anything.  guest_pte()
	 * may split a large page on the way, which changes no translation.
	 */
	for (uint64_t va = start; va < end; va += PAGE_SIZE) {
		uint64_t *pte = guest_pte(va);

		if (!pte || !*pte)
			return -ENOMEM;
	}
	for (uint64_t va = start; va < end; va += PAGE_SIZE) {
		uint64_t *pte = guest_pte(va);

		*pte = prot_pte(*pte, prot, xo);
		invlpg((void *)va);
	}
	return 0;
}
