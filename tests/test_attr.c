// SPDX-License-Identifier: MIT
/*
 * Memory attributes (DESIGN §3.1): validation of KVM_SET_MEMORY_ATTRIBUTES
 * in both API layers, independence from memslots, the exec-only
 * capability, and the snapshot query gmem_vm_get_memory_attributes()
 * (clipping, ordering, merging, truncation, sequence numbers).
 */
#include "gmem_test.h"

/* A few distinct ranges, so that "a failed call changes nothing" means it. */
static void seed_map(struct tvm *t)
{
	REQUIRE(tvm_set_attr(t, 0x10000, 0x3000, NW) == 0);
	REQUIRE(tvm_set_attr(t, 0x20000, 0x1000, NX) == 0);
	REQUIRE(tvm_set_attr(t, 0x21000, 0x1000, NR | NW | NX) == 0);
	if (t->type == KVM_X86_SW_PROTECTED_VM)
		REQUIRE(tvm_set_attr(t, 0x40000, 0x2000, PRIV) == 0);
}

/*
 * Set attributes and expect @err (0: success).  On the typed side a
 * failure must leave the map and its sequence number as they were.
 */
static void expect_set(struct tvm *t, uint64_t address, uint64_t size,
		       uint64_t attributes, uint64_t flags, int err, int line)
{
	static struct snap before, after;
	long r;

	if (!t->ioctl)
		REQUIRE(snap_all(t->vm, &before) >= 0);
	r = tvm_set_attr_flags(t, address, size, attributes, flags);
	if (r != -err) {
		tap_case_failed = 1;
		tap_diag("line %d: set [%#" PRIx64 ", +%#" PRIx64
			 ") = %#" PRIx64 " flags %#" PRIx64
			 " on %s VM (%s): got %ld, "
			 "expected %d",
			 line, address, size, attributes, flags,
			 t->type ? "SW_PROTECTED" : "DEFAULT", tvm_layer(t), r,
			 -err);
	}
	if (!err || t->ioctl)
		return;
	snap_all(t->vm, &after);
	if (!snap_equal(&before, &after)) {
		tap_case_failed = 1;
		tap_diag("line %d: the failed call changed the map", line);
		snap_print("before", &before);
		snap_print("after", &after);
	}
}

#define EXPECT_SET(t, a, s, v, err) expect_set(t, a, s, v, 0, err, __LINE__)
#define EXPECT_SET_FLAGS(t, a, s, v, f, err) \
	expect_set(t, a, s, v, f, err, __LINE__)

/* ---- cases run in both layers ----------------------------------------- */

static void case_flags(struct tvm *t)
{
	for (int bit = 0; bit < 64; bit++)
		EXPECT_SET_FLAGS(t, 0, PAGE, NW, 1ULL << bit, EINVAL);
	EXPECT_SET_FLAGS(t, 0, PAGE, 0, ~0ULL, EINVAL);
}

static void case_unsupported_bits(struct tvm *t)
{
	/* Bits above PRIVATE are never supported, whatever the rest says. */
	for (int bit = 4; bit < 64; bit++) {
		EXPECT_SET(t, 0, PAGE, 1ULL << bit, EINVAL);
		EXPECT_SET(t, 0, PAGE, (1ULL << bit) | NW, EINVAL);
	}
	if (t->type == KVM_X86_DEFAULT_VM)
		EXPECT_SET(t, 0, PAGE, PRIV, EINVAL);
}

static void case_size_overflow(struct tvm *t)
{
	EXPECT_SET(t, 0, 0, NW, EINVAL);
	EXPECT_SET(t, 0x10000, 0, 0, EINVAL);
	/* address + size wrapping past 0, and wrapping to exactly 0 */
	EXPECT_SET(t, -PAGE, 2 * PAGE, NW, EINVAL);
	EXPECT_SET(t, -PAGE, PAGE, NW, EINVAL);
	EXPECT_SET(t, PAGE, -PAGE, NW, EINVAL);
	EXPECT_SET(t, 1ULL << 63, 1ULL << 63, NW, EINVAL);
	/* the page just below the top is fine */
	EXPECT_SET(t, -2 * PAGE, PAGE, NW, 0);
	EXPECT_SET(t, -2 * PAGE, PAGE, 0, 0);
}

static void case_alignment(struct tvm *t)
{
	static const uint64_t bad[] = {1,    8,	       2048,
				       4095, PAGE + 1, 2 * PAGE - 1};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_SET(t, bad[i], PAGE, NW, EINVAL);
		EXPECT_SET(t, 0, bad[i], NW, EINVAL);
		EXPECT_SET(t, 0x100000 + bad[i], 0x10000, 0, EINVAL);
	}
}

static void case_combinations(struct tvm *t)
{
	bool priv = t->type == KVM_X86_SW_PROTECTED_VM;

	/* Exactly these are valid without exec-only. */
	for (uint64_t v = 0; v < 16; v++) {
		bool valid = v == 0 || v == NW || v == NX || v == (NW | NX) ||
			     v == (NR | NW | NX) || (v == PRIV && priv);

		EXPECT_SET(t, 0x200000, 4 * PAGE, v, valid ? 0 : EINVAL);
	}
}

static void case_exec_only(struct tvm *t)
{
	EXPECT_SET(t, 0x300000, PAGE, NR | NW, EINVAL);
	CHECK_EQ(tvm_enable_cap(t, GMEM_CAP_EXEC_ONLY, 0, 0), 0);
	EXPECT_SET(t, 0x300000, PAGE, NR | NW, 0);
	/* it adds exactly one value */
	EXPECT_SET(t, 0x301000, PAGE, NR, EINVAL);
	EXPECT_SET(t, 0x301000, PAGE, NR | NX, EINVAL);
	EXPECT_SET(t, 0x301000, PAGE, PRIV | NR | NW, EINVAL);
	EXPECT_SET(t, 0x301000, PAGE, NW | NX, 0);
	EXPECT_SET(t, 0x301000, PAGE, PRIV,
		   t->type == KVM_X86_SW_PROTECTED_VM ? 0 : EINVAL);
	if (!t->ioctl) {
		struct gmem_attr_range want = {0x300000, PAGE, NR | NW};

		CHECK(snap_is(t->vm, 0x300000, PAGE, &want, 1));
	}
}

static void case_no_slot(struct tvm *t)
{
	struct kvm_userspace_memory_region2 r;
	void *mem = test_mem(0x10000);

	r = region2(0, 0, 0x800000, 0x10000, (uintptr_t)mem);
	REQUIRE(tvm_region2(t, &r) == 0);
	/* inside, straddling and far away from the only slot */
	EXPECT_SET(t, 0x800000, 0x1000, NW, 0);
	EXPECT_SET(t, 0x80f000, 0x2000, NX, 0);
	EXPECT_SET(t, 0x40000000, 0x1000, NR | NW | NX, 0);
	if (!t->ioctl) {
		struct gmem_attr_range want[] = {
			{0x800000, 0x1000, NW},
			{0x80f000, 0x2000, NX},
			{0x40000000, 0x1000, NR | NW | NX},
		};

		CHECK(snap_is(t->vm, 0x800000, 0x40000000, want, 3));
	}
	munmap(mem, 0x10000);
}

static void case_huge(struct tvm *t)
{
	uint64_t top = -2 * TIB;

	EXPECT_SET(t, TIB, TIB, NW, 0);
	EXPECT_SET(t, top, TIB, NX, 0);
	EXPECT_SET(t, 0, 1ULL << 63, NW | NX, 0);
	if (!t->ioctl) {
		struct gmem_attr_range want[] = {
			{0, 1ULL << 63, NW | NX},
			{top, TIB, NX},
		};

		CHECK(snap_is(t->vm, 0, -PAGE, want, 2));
	}
	/* two halves of the address space with one value are one range */
	EXPECT_SET(t, 1ULL << 63, (1ULL << 63) - PAGE, NW | NX, 0);
	if (!t->ioctl) {
		struct gmem_attr_range want = {0, -PAGE, NW | NX};

		CHECK(snap_is(t->vm, 0, -PAGE, &want, 1));
	}
	EXPECT_SET(t, 0, -PAGE, 0, 0);
	if (!t->ioctl)
		CHECK(snap_is(t->vm, 0, -PAGE, NULL, 0));
}

struct layer_case {
	const char *name;
	void (*fn)(struct tvm *t);
	bool seed;
};

static const struct layer_case layer_cases[] = {
	{"flags != 0 -> EINVAL", case_flags, true},
	{"unsupported bits -> EINVAL", case_unsupported_bits, true},
	{"size 0 or address + size overflow -> EINVAL", case_size_overflow,
	 true},
	{"unaligned address or size -> EINVAL", case_alignment, true},
	{"only 0, NW, NX, NW|NX, NR|NW|NX (and PRIVATE) are valid",
	 case_combinations, true},
	{"GMEM_CAP_EXEC_ONLY makes NR|NW valid", case_exec_only, true},
	{"attributes need no memslot", case_no_slot, false},
	{"1 TiB ranges, up to the top of the address space", case_huge, false},
};

#define NR_LAYER_CASES (int)(sizeof(layer_cases) / sizeof(layer_cases[0]))

static void run_layer_cases(void)
{
	static const unsigned long types[] = {KVM_X86_DEFAULT_VM,
					      KVM_X86_SW_PROTECTED_VM};
	char name[160];

	for (int i = 0; i < NR_LAYER_CASES; i++)
		for (int ty = 0; ty < 2; ty++)
			for (int io = 0; io < 2; io++) {
				struct tvm t;

				tvm_open(&t, io, types[ty]);
				if (layer_cases[i].seed)
					seed_map(&t);
				layer_cases[i].fn(&t);
				tvm_close(&t);
				snprintf(name, sizeof(name), "%s (%s VM, %s)",
					 layer_cases[i].name,
					 ty ? "SW_PROTECTED" : "DEFAULT",
					 io ? "ioctl" : "typed");
				tap_result(name);
			}
}

/* ---- the snapshot query (typed only) ----------------------------------- */

static void test_snapshot_shape(void)
{
	struct tvm t;

	tvm_open(&t, false, KVM_X86_SW_PROTECTED_VM);
	/* set out of order; adjacent equal values must merge */
	REQUIRE(tvm_set_attr(&t, 0x5000, 0x1000, NW) == 0);
	REQUIRE(tvm_set_attr(&t, 0x1000, 0x2000, NX) == 0);
	REQUIRE(tvm_set_attr(&t, 0x3000, 0x2000, NX) == 0);
	REQUIRE(tvm_set_attr(&t, 0x6000, 0x1000, NW) == 0);
	REQUIRE(tvm_set_attr(&t, 0x9000, 0x3000, PRIV) == 0);
	{
		struct gmem_attr_range want[] = {
			{0x1000, 0x4000, NX},
			{0x5000, 0x2000, NW},
			{0x9000, 0x3000, PRIV},
		};

		CHECK(snap_is(t.vm, 0, 0x100000, want, 3));
	}
	/* clipped to the query on both sides */
	{
		struct gmem_attr_range want[] = {
			{0x3000, 0x2000, NX},
			{0x5000, 0x2000, NW},
			{0x9000, 0x1000, PRIV},
		};

		CHECK(snap_is(t.vm, 0x3000, 0x7000, want, 3));
	}
	{
		struct gmem_attr_range want = {0xa000, 0x1000, PRIV};

		CHECK(snap_is(t.vm, 0xa000, 0x1000, &want, 1));
	}
	/* a query over zero pages only lists nothing */
	CHECK(snap_is(t.vm, 0x7000, 0x2000, NULL, 0));
	CHECK(snap_is(t.vm, 0x100000, TIB, NULL, 0));
	/* setting a middle piece to 0 splits, and the zero part vanishes */
	REQUIRE(tvm_set_attr(&t, 0x2000, 0x1000, 0) == 0);
	{
		struct gmem_attr_range want[] = {
			{0x1000, 0x1000, NX},
			{0x3000, 0x2000, NX},
		};

		CHECK(snap_is(t.vm, 0, 0x5000, want, 2));
	}
	/* set replaces the value, it does not or into it */
	REQUIRE(tvm_set_attr(&t, 0x1000, 0x1000, NW) == 0);
	{
		struct gmem_attr_range want[] = {
			{0x1000, 0x1000, NW},
			{0x3000, 0x2000, NX},
		};

		CHECK(snap_is(t.vm, 0, 0x5000, want, 2));
	}
	/* filling the hole with the neighbours' value merges all three */
	REQUIRE(tvm_set_attr(&t, 0x1000, 0x2000, NX) == 0);
	{
		struct gmem_attr_range want = {0x1000, 0x4000, NX};

		CHECK(snap_is(t.vm, 0, 0x5000, &want, 1));
	}
	tvm_close(&t);
	tap_result("snapshot: clipped, sorted, maximal, no zero ranges");
}

static void test_snapshot_truncated(void)
{
	struct gmem_attr_range r[8];
	struct tvm t;
	int n;

	tvm_open(&t, false, KVM_X86_DEFAULT_VM);
	/* 20 ranges alternating NW and NX, each one page, gaps between */
	for (int i = 0; i < 20; i++)
		REQUIRE(tvm_set_attr(&t, (uint64_t)(2 * i) * PAGE, PAGE,
				     i & 1 ? NX : NW) == 0);
	memset(r, 0xa5, sizeof(r));
	n = gmem_vm_get_memory_attributes(t.vm, 0, 64 * PAGE, r, 5, NULL);
	CHECK_EQ(n, 20);
	for (int i = 0; i < 5; i++) {
		CHECK_EQ(r[i].address, (uint64_t)(2 * i) * PAGE);
		CHECK_EQ(r[i].size, PAGE);
		CHECK_EQ(r[i].attributes, i & 1 ? NX : NW);
	}
	/* nothing beyond @nr is written */
	CHECK_EQ(r[5].address, 0xa5a5a5a5a5a5a5a5ULL);
	CHECK_EQ(r[7].attributes, 0xa5a5a5a5a5a5a5a5ULL);
	n = gmem_vm_get_memory_attributes(t.vm, 0, 64 * PAGE, r, 0, NULL);
	CHECK_EQ(n, 20);
	n = gmem_vm_get_memory_attributes(t.vm, 0, 64 * PAGE, NULL, 0, NULL);
	CHECK_EQ(n, 20);
	tvm_close(&t);
	tap_result("snapshot: returns the total, fills at most nr");
}

static void test_snapshot_checks(void)
{
	struct gmem_attr_range r[4];
	struct gmem_vm *vm = test_vm(KVM_X86_SW_PROTECTED_VM);
	uint64_t seq;

#define GET(a, s) gmem_vm_get_memory_attributes(vm, a, s, r, 4, &seq)
	CHECK_RET(GET(0, 0), EINVAL);
	CHECK_RET(GET(1, PAGE), EINVAL);
	CHECK_RET(GET(2048, PAGE), EINVAL);
	CHECK_RET(GET(0, 1), EINVAL);
	CHECK_RET(GET(0, PAGE + 8), EINVAL);
	CHECK_RET(GET(-PAGE, PAGE), EINVAL);
	CHECK_RET(GET(-PAGE, 2 * PAGE), EINVAL);
	CHECK_RET(GET(PAGE, -PAGE), EINVAL);
	CHECK_RET(GET(0, -PAGE), 0);
	CHECK_RET(GET(-2 * PAGE, PAGE), 0);
#undef GET
	gmem_vm_put(vm);
	tap_result("snapshot: the range checks of set -> EINVAL");
}

static uint64_t seq_now(struct gmem_vm *vm)
{
	uint64_t seq = 0xdeadbeef;

	REQUIRE(gmem_vm_get_memory_attributes(vm, 0, PAGE, NULL, 0, &seq) >= 0);
	return seq;
}

static void test_seq(void)
{
	struct gmem_vm *vm = test_vm(KVM_X86_SW_PROTECTED_VM);
	struct kvm_memory_attributes a = {
		.address = 0x10000, .size = 0x4000, .attributes = NW};
	uint64_t s0, s1, s2;

	s0 = seq_now(vm);
	CHECK_EQ(seq_now(vm), s0);
	/* clearing what is already clear is a no-op */
	a.attributes = 0;
	CHECK_RET(gmem_vm_set_memory_attributes(vm, &a), 0);
	CHECK_EQ(seq_now(vm), s0);
	a.attributes = NW;
	CHECK_RET(gmem_vm_set_memory_attributes(vm, &a), 0);
	s1 = seq_now(vm);
	CHECK(s1 != s0);
	/* the same value again: no-op, and so is a sub-range of it */
	CHECK_RET(gmem_vm_set_memory_attributes(vm, &a), 0);
	CHECK_EQ(seq_now(vm), s1);
	a.address = 0x11000;
	a.size = 0x1000;
	CHECK_RET(gmem_vm_set_memory_attributes(vm, &a), 0);
	CHECK_EQ(seq_now(vm), s1);
	/* a failed call is no change */
	a.attributes = NR;
	CHECK_RET(gmem_vm_set_memory_attributes(vm, &a), EINVAL);
	CHECK_EQ(seq_now(vm), s1);
	/* a real change of part of it */
	a.attributes = PRIV;
	CHECK_RET(gmem_vm_set_memory_attributes(vm, &a), 0);
	s2 = seq_now(vm);
	CHECK(s2 != s1);
	CHECK(s2 != s0);
	/* far away from the query's range, the sequence still changes */
	a.address = TIB;
	a.size = TIB;
	a.attributes = NX;
	CHECK_RET(gmem_vm_set_memory_attributes(vm, &a), 0);
	CHECK(seq_now(vm) != s2);
	gmem_vm_put(vm);
	tap_result("snapshot: seq changes with the map, not on a no-op");
}

int main(void)
{
	tap_plan(NR_LAYER_CASES * 4 + 4, 60);
	run_layer_cases();
	test_snapshot_shape();
	test_snapshot_truncated();
	test_snapshot_checks();
	test_seq();
	return tap_done();
}
