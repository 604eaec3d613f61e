// SPDX-License-Identifier: MIT
/*
 * All-or-nothing under memory exhaustion (gmem.h: "a failing call changes
 * nothing"; DESIGN §3.1, STYLE 5-6).  For each call that allocates: count
 * its allocations with gmem_test_fail_alloc(0) before and after, then, on a
 * freshly built identical state, fail the 1st, 2nd, ... of them in turn.
 * Each time the call must return -ENOMEM and leave the attribute map (and
 * its sequence number), the memslot, the next handle number and the file's
 * bindability exactly as they were; then the same call must succeed.
 */
#include <fcntl.h>
#include <linux/falloc.h>

#include "gmem_test.h"

#define SLOT 7
#define FILE_SIZE (64 * PAGE)
#define AREA (16 * MIB)

struct ctx {
	struct tvm t;
	int file;		  /* a guest_memfd of t, or -1 */
	uint8_t *mem;		  /* userspace memory for slots */
	long made;		  /* a handle the call created, or -1 */
	struct gmem_vm *newvm;	  /* a VM the call created */
	struct gmem_vm *vm_typed; /* a typed VM beside a façade one */
};

struct state {
	struct snap attrs;
	int slot_ret;
	struct kvm_userspace_memory_region2 slot;
	int next_handle;
};

static bool handles_reused;

/* The number the next handle gets; costs nothing lasting. */
static int next_handle(void)
{
	int h = gmem_open();

	REQUIRE(h >= 0);
	REQUIRE(gmem_close(h) == 0);
	return h;
}

static void capture(struct ctx *c, struct state *s)
{
	memset(&s->slot, 0, sizeof(s->slot));
	s->attrs.n = 0;
	s->attrs.seq = 0;
	s->slot_ret = 0;
	if (!c->t.ioctl) {
		REQUIRE(snap_all(c->t.vm, &s->attrs) >= 0);
		s->slot_ret =
			gmem_vm_get_memory_region2(c->t.vm, SLOT, &s->slot);
	}
	s->next_handle = handles_reused ? next_handle() : 0;
}

static bool same_state(const struct state *a, const struct state *b)
{
	bool ok = true;

	if (!snap_equal(&a->attrs, &b->attrs)) {
		tap_diag("the attribute map or its seq changed");
		snap_print("before", &a->attrs);
		snap_print("after", &b->attrs);
		ok = false;
	}
	if (a->slot_ret != b->slot_ret ||
	    (a->slot_ret == 0 && !region2_equal(&a->slot, &b->slot))) {
		tap_diag("slot %d changed: read-back %d, was %d", SLOT,
			 b->slot_ret, a->slot_ret);
		ok = false;
	}
	if (a->next_handle != b->next_handle) {
		tap_diag("next handle %d, was %d", b->next_handle,
			 a->next_handle);
		ok = false;
	}
	return ok;
}

/* ---- the states ---------------------------------------------------------- */

static void ctx_open(struct ctx *c, bool ioctl, unsigned long type)
{
	memset(c, 0, sizeof(*c));
	tvm_open(&c->t, ioctl, type);
	c->file = -1;
	c->made = -1;
	c->mem = test_mem(AREA);
}

/*
 * A map of many ranges: 64 alternating NX / NW pairs of pages with holes
 * between them, one longer NW range, and a PRIVATE one far away.
 */
static void seed_attrs(struct ctx *c)
{
	for (int i = 0; i < 64; i++)
		REQUIRE(tvm_set_attr(&c->t, (uint64_t)i * 4 * PAGE, 2 * PAGE,
				     i & 1 ? NW : NX) == 0);
	REQUIRE(tvm_set_attr(&c->t, 1000 * PAGE, 10 * PAGE, NW) == 0);
	if (c->t.type == KVM_X86_SW_PROTECTED_VM)
		REQUIRE(tvm_set_attr(&c->t, TIB, TIB, PRIV) == 0);
}

static void seed_slots(struct ctx *c)
{
	struct kvm_userspace_memory_region2 r =
		region2(1, 0, 0x400000, 0x100000, (uintptr_t)c->mem);

	REQUIRE(tvm_region2(&c->t, &r) == 0);
	r = region2(2, KVM_MEM_READONLY, 0x600000, 0x100000,
		    (uintptr_t)c->mem + 0x100000);
	REQUIRE(tvm_region2(&c->t, &r) == 0);
}

static void setup_typed(struct ctx *c)
{
	ctx_open(c, false, KVM_X86_SW_PROTECTED_VM);
	seed_attrs(c);
	seed_slots(c);
	c->file = tvm_file(&c->t, FILE_SIZE);
	/* a binding of part of the file already exists */
	{
		struct kvm_userspace_memory_region2 r =
			gregion2(3, 0x800000, 16 * PAGE,
				 (uintptr_t)c->mem + 0x200000, c->file, 0);

		REQUIRE(tvm_region2(&c->t, &r) == 0);
	}
}

static void setup_ioctl(struct ctx *c)
{
	ctx_open(c, true, KVM_X86_SW_PROTECTED_VM);
	seed_attrs(c);
	seed_slots(c);
	c->file = tvm_file(&c->t, FILE_SIZE);
}

static void teardown(struct ctx *c)
{
	if (c->made >= 0)
		REQUIRE(gmem_close((int)c->made) == 0);
	if (c->newvm)
		gmem_vm_put(c->newvm);
	if (c->file >= 0)
		REQUIRE(file_close(c->t.ioctl, c->file) == 0);
	tvm_close(&c->t);
	munmap(c->mem, AREA);
}

/*
 * The part of the file no call binds can still be bound (and unbound):
 * a failed call left no stray binding or reference behind.
 */
static bool bindable(struct ctx *c)
{
	struct kvm_userspace_memory_region2 r =
		gregion2(9, 0xc00000, 16 * PAGE, (uintptr_t)c->mem + 0x400000,
			 c->file, 48 * PAGE);
	long b, d;

	if (c->file < 0)
		return true;
	b = tvm_region2(&c->t, &r);
	r.memory_size = 0;
	d = b ? 0 : tvm_region2(&c->t, &r);
	if (b || d)
		tap_diag("binding the file's last 16 pages: %ld, deleting: %ld",
			 b, d);
	return !b && !d;
}

/* ---- the calls ---------------------------------------------------------- */

/* Splits a range at both ends and replaces many in between. */
static long call_attr_span(struct ctx *c)
{
	return tvm_set_attr(&c->t, 5 * PAGE, 100 * PAGE, PRIV);
}

/* Splits one range into three. */
static long call_attr_middle(struct ctx *c)
{
	return tvm_set_attr(&c->t, 1003 * PAGE, 2 * PAGE, NX);
}

/* Punches a hole into one range. */
static long call_attr_clear(struct ctx *c)
{
	return tvm_set_attr(&c->t, 1004 * PAGE, PAGE, 0);
}

/* A new range far from the others. */
static long call_attr_far(struct ctx *c)
{
	return tvm_set_attr(&c->t, 1ULL << 50, 1ULL << 45, NW | NX);
}

static long call_bind(struct ctx *c)
{
	struct kvm_userspace_memory_region2 r =
		gregion2(SLOT, 0xa00000, 32 * PAGE,
			 (uintptr_t)c->mem + 0x300000, c->file, 16 * PAGE);

	return tvm_region2(&c->t, &r);
}

static long call_slot(struct ctx *c)
{
	struct kvm_userspace_memory_region2 r =
		region2(SLOT, KVM_MEM_LOG_DIRTY_PAGES, 0xa00000, 0x100000,
			(uintptr_t)c->mem + 0x300000);

	return tvm_region2(&c->t, &r);
}

static long call_create_file(struct ctx *c)
{
	long r = tvm_create_file(&c->t, 2 * MIB);

	if (r >= 0)
		c->made = r;
	return r;
}

static long call_create_vm(struct ctx *c)
{
	struct gmem_vm *vm = NULL;
	long r = gmem_vm_create(KVM_X86_SW_PROTECTED_VM, &vm);

	if (r == 0)
		c->newvm = vm;
	else if (vm)
		r = TVM_BAD_RET; /* *vmp set on failure */
	return r;
}

static long call_create_vm_ioctl(struct ctx *c)
{
	long r = fac_ret(
		gmem_ioctl(c->t.sys, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM));

	if (r >= 0)
		c->made = r;
	return r;
}

static long call_open(struct ctx *c)
{
	long r = fac_ret(gmem_open());

	if (r >= 0)
		c->made = r;
	return r;
}

static long call_fallocate(struct ctx *c)
{
	return file_fallocate(c->t.ioctl, c->file, FALLOC_FL_KEEP_SIZE, 0,
			      FILE_SIZE);
}

static long call_enable_exec_only(struct ctx *c)
{
	return tvm_enable_cap(&c->t, GMEM_CAP_EXEC_ONLY, 0, 0);
}

struct enomem_op {
	const char *name;
	void (*setup)(struct ctx *c);
	long (*call)(struct ctx *c);
	bool must_alloc; /* it cannot be done without allocating */
};

static const struct enomem_op ops[] = {
	{"set attributes across many ranges", setup_typed, call_attr_span,
	 false},
	{"set attributes splitting one range in three", setup_typed,
	 call_attr_middle, false},
	{"clear attributes inside a range", setup_typed, call_attr_clear,
	 false},
	{"set attributes on a new far range", setup_typed, call_attr_far,
	 false},
	{"bind a guest_memfd (set_memory_region2)", setup_typed, call_bind,
	 false},
	{"create a slot", setup_typed, call_slot, false},
	{"create a guest_memfd", setup_typed, call_create_file, true},
	{"create a VM", setup_typed, call_create_vm, true},
	{"fallocate a guest_memfd", setup_typed, call_fallocate, false},
	{"enable GMEM_CAP_EXEC_ONLY", setup_typed, call_enable_exec_only,
	 false},
	{"KVM_SET_MEMORY_ATTRIBUTES", setup_ioctl, call_attr_span, false},
	{"KVM_SET_USER_MEMORY_REGION2 binding", setup_ioctl, call_bind, false},
	{"KVM_SET_USER_MEMORY_REGION2 slot", setup_ioctl, call_slot, false},
	{"KVM_CREATE_GUEST_MEMFD", setup_ioctl, call_create_file, true},
	{"KVM_CREATE_VM", setup_ioctl, call_create_vm_ioctl, true},
	{"gmem_open", setup_ioctl, call_open, false},
};

#define NR_OPS (int)(sizeof(ops) / sizeof(ops[0]))

static void run_op(const struct enomem_op *op)
{
	static struct state before, after;
	struct ctx c;
	long c0, count, r;
	char name[160];

	/* how many allocations does the call make? */
	op->setup(&c);
	c0 = gmem_test_fail_alloc(0);
	r = op->call(&c);
	count = gmem_test_fail_alloc(0) - c0;
	teardown(&c);
	if (r < 0) {
		tap_case_failed = 1;
		tap_diag("without injection the call returned %ld", r);
	}
	tap_diag("%s: %ld allocations", op->name, count);
	if (op->must_alloc && count <= 0) {
		tap_case_failed = 1;
		tap_diag("no allocation counted; is the hook wired?");
	}

	for (long n = 1; n <= count && r >= 0; n++) {
		op->setup(&c);
		capture(&c, &before);
		gmem_test_fail_alloc(n);
		r = op->call(&c);
		gmem_test_fail_alloc(0);
		if (r != -ENOMEM) {
			tap_case_failed = 1;
			tap_diag("failing allocation %ld of %ld: returned %ld, "
				 "expected -ENOMEM",
				 n, count, r);
			if (r >= 0) {
				teardown(&c);
				break;
			}
		}
		capture(&c, &after);
		if (!same_state(&before, &after)) {
			tap_case_failed = 1;
			tap_diag("failing allocation %ld of %ld changed state",
				 n, count);
		}
		if (!bindable(&c)) {
			tap_case_failed = 1;
			tap_diag("after failing allocation %ld of %ld the "
				 "file cannot be bound",
				 n, count);
		}
		/* and now it works, from the very same state */
		r = op->call(&c);
		if (r < 0) {
			tap_case_failed = 1;
			tap_diag("after failing allocation %ld, the retry "
				 "returned %ld",
				 n, r);
		}
		teardown(&c);
	}
	snprintf(name, sizeof(name), "ENOMEM at each allocation: %s", op->name);
	tap_result(name);
}

static void test_hook(void)
{
	long a = gmem_test_fail_alloc(0);
	struct gmem_vm *vm = NULL;
	long b;

	CHECK(a >= 0);
	CHECK_EQ(gmem_test_fail_alloc(0), a);
	/* the next allocation fails: a VM cannot be made */
	gmem_test_fail_alloc(1);
	CHECK_RET(gmem_vm_create(KVM_X86_DEFAULT_VM, &vm), ENOMEM);
	b = gmem_test_fail_alloc(0);
	CHECK(b > a);
	/* it was one-shot and is off now */
	CHECK_RET(gmem_vm_create(KVM_X86_DEFAULT_VM, &vm), 0);
	CHECK(gmem_test_fail_alloc(0) > b);
	if (vm)
		gmem_vm_put(vm);
	tap_result("gmem_test_fail_alloc counts and fails allocations");
}

/*
 * Handle-making calls when the handle table is full.  Nothing tells how
 * big the table is, so fill it with system handles, arming a failure of
 * the next allocation before each gmem_open: the first open that needs
 * memory fails, and the table is then exactly full.
 */
#define MAX_FILL 8192

static int filled[MAX_FILL];
static int nr_filled;

static void fill_table(void)
{
	for (;;) {
		long r;

		REQUIRE(nr_filled < MAX_FILL);
		gmem_test_fail_alloc(1);
		r = fac_ret(gmem_open());
		gmem_test_fail_alloc(0);
		if (r < 0) {
			CHECK_EQ(r, -ENOMEM);
			return;
		}
		filled[nr_filled++] = (int)r;
	}
}

static void unfill_table(void)
{
	while (nr_filled)
		REQUIRE(gmem_close(filled[--nr_filled]) == 0);
}

static bool is_filled(long h)
{
	for (int i = 0; i < nr_filled; i++)
		if (filled[i] == h)
			return true;
	return false;
}

typedef long (*maker_fn)(struct ctx *c);

static long make_open(struct ctx *c)
{
	return fac_ret(gmem_open());
}

static long make_vm(struct ctx *c)
{
	return fac_ret(
		gmem_ioctl(c->t.sys, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM));
}

static long make_file_ioctl(struct ctx *c)
{
	struct kvm_create_guest_memfd g = {.size = 2 * MIB};

	return fac_ret(gmem_ioctl(c->t.fd, KVM_CREATE_GUEST_MEMFD, &g));
}

static long make_file_typed(struct ctx *c)
{
	struct kvm_create_guest_memfd g = {.size = 2 * MIB};

	return gmem_create_guest_memfd(c->vm_typed, &g);
}

static void test_table_full(void)
{
	static const maker_fn makers[] = {make_open, make_vm, make_file_ioctl,
					  make_file_typed};
	static const char *const names[] = {"gmem_open", "KVM_CREATE_VM",
					    "KVM_CREATE_GUEST_MEMFD",
					    "gmem_create_guest_memfd"};
	struct ctx c;

	ctx_open(&c, true, KVM_X86_SW_PROTECTED_VM);
	c.vm_typed = test_vm(KVM_X86_SW_PROTECTED_VM);
	for (size_t i = 0; i < sizeof(makers) / sizeof(makers[0]); i++) {
		long r = -ENOMEM;
		int n;

		fill_table();
		/* fail its 1st, 2nd, ... allocation until it gets through */
		for (n = 1; n < 1000 && r == -ENOMEM; n++) {
			gmem_test_fail_alloc(n);
			r = makers[i](&c);
			gmem_test_fail_alloc(0);
		}
		if (r < 0 || is_filled(r)) {
			tap_case_failed = 1;
			tap_diag("%s on a full table: %ld after %d tries",
				 names[i], r, n - 1);
		} else {
			tap_diag("%s on a full table: %d allocations failed "
				 "cleanly, then handle %ld",
				 names[i], n - 2, r);
			CHECK(n > 2);
			CHECK_EQ(gmem_close((int)r), 0);
		}
		unfill_table();
	}
	gmem_vm_put(c.vm_typed);
	c.vm_typed = NULL;
	teardown(&c);
	tap_result("handle-making calls on a full handle table: ENOMEM, "
		   "then success");
}

int main(void)
{
	int a, b;

	tap_plan(NR_OPS + 2, 120);
	a = next_handle();
	b = next_handle();
	handles_reused = a == b;
	if (!handles_reused)
		tap_diag("handle numbers are not reused (%d, %d); the next "
			 "handle is not compared",
			 a, b);
	test_hook();
	for (int i = 0; i < NR_OPS; i++)
		run_op(&ops[i]);
	test_table_full();
	return tap_done();
}
