/* SPDX-License-Identifier: MIT */
/*
 * The reference model of attributes, slots, files and guest-physical
 * accesses (DESIGN §7), shared by test_model (a seeded random sequence)
 * and tests/fuzz/fuzz_model (the same operations chosen by libFuzzer's
 * input).
 *
 * The model is deliberately naive: one attribute byte per page (512 pages
 * at GPA 0 and four 1 TiB units near the top of the address space, where
 * every operation covers whole units), an array of slots indexed by id,
 * and per-file page bitmaps and first words.  Operations on two VMs (one
 * DEFAULT, one SW_PROTECTED) — attribute sets with valid and invalid
 * values and ranges, slot create/modify/delete, guest_memfd
 * create/close/bind/fallocate/poison, enabling exec-only, reads, writes
 * and fetches through a vCPU, and now and then replacing a VM — run
 * against both, through the typed API or the façade (each VM is created
 * by one of the two); after every step the return code must be the
 * model's prediction, the VM's attribute snapshot must equal the model's
 * pages, the sequence number must move exactly when the map changed, the
 * slot touched must read back as the model says, and an access must see
 * the exit (or the data) that DESIGN §3.4's fault order gives.
 *
 * The includer defines rnd() and calls model_init(), model_step() and
 * model_fini().  A disagreement calls model_mismatch_hook() after the
 * report (the fuzzer aborts there).
 */
#ifndef GMEM_TEST_MODEL_H
#define GMEM_TEST_MODEL_H

#include <fcntl.h>
#include <linux/falloc.h>
#include <time.h>

#include <gmem/kvm.h>

#include "gmem_test.h"

#define NVM 2
#define NNEAR 512 /* pages at GPA 0 */
#define NFAR 4	  /* 1 TiB units at FAR_BASE */
#define NUNIT (NNEAR + NFAR)
#define FAR_BASE (-5 * TIB) /* the last unit ends 1 TiB below the top */
#define NSLOT 8
#define NFILE 4
#define MAX_FILE_PAGES 64
#define AREA (4 * MIB) /* userspace memory behind the slots */
#define MAX_ID 32764
#define BOGUS_FD 100000

#define SLOT_FLAGS                                                          \
	(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY | KVM_MEM_GUEST_MEMFD | \
	 KVM_MEM_EXECONLY)
/* What a live slot keeps (KVM's READONLY and GUEST_MEMFD, and EXECONLY). */
#define FIXED (KVM_MEM_READONLY | KVM_MEM_GUEST_MEMFD | KVM_MEM_EXECONLY)

struct mfile {
	bool open;
	int fd;
	uint32_t uid; /* never reused, unlike fd numbers */
	uint64_t pages;
	uint64_t alloc;	 /* bit per page; not observable, kept for punch */
	uint64_t poison; /* bit per page: gmem_file_poison, until punched */
	uint64_t data[MAX_FILE_PAGES]; /* first word of each page */
};

struct mslot {
	bool present;
	struct kvm_userspace_memory_region2 r;
	uint32_t file_uid; /* the bound file, 0 if none */
};

struct mvm {
	struct gmem_vm *vm;
	struct gmem_vcpu *vcpu; /* for accesses */
	int fd;			/* the façade's VM handle, or -1 */
	unsigned long type;
	uint32_t gen;	   /* files of older generations belong to another VM */
	bool exec_only;	   /* GMEM_CAP_EXEC_ONLY: NR|NW and EXECONLY slots */
	bool access_flags; /* GMEM_CAP_FAULT_ACCESS_FLAGS */
	uint8_t attr[NUNIT];
	uint64_t seq;
	struct mslot slot[NSLOT];
	struct mfile file[NFILE];
	uint32_t file_gen[NFILE];
};

static struct mvm vms[NVM];
static uint8_t *area;
static uint32_t next_uid = 1, next_gen = 1;
static long step;

/* The last operations, printed when something goes wrong. */
#define HIST 16
static char hist[HIST][200];

static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(hist[step % HIST], sizeof(hist[0]), fmt, ap);
	va_end(ap);
}

static void dump_history(void)
{
	for (long s = step - HIST + 1; s <= step; s++)
		if (s >= 0)
			tap_diag("step %ld: %s", s, hist[s % HIST]);
}

/*
 * The source of every choice, defined by the program that includes this
 * file: a seeded generator (test_model) or the fuzzer's input
 * (fuzz_model).
 */
static uint64_t rnd(void);

/* Uniform in [0, n). */
static uint64_t below(uint64_t n)
{
	return rnd() % n;
}

/* True with probability 1/n. */
static bool one_in(uint64_t n)
{
	return below(n) == 0;
}

static bool failed;

/*
 * For the allocation-failure sweep (test_enomem_sweep): while quiet, a
 * disagreement only sets failed, because the sweep expects the call to
 * fail and checks the state itself; last_got is what the step's call
 * returned; injecting is cleared by a step that must not be failed
 * halfway (it makes more than one call that allocates).
 */
static bool model_quiet, model_injecting;
static long model_last_got;

static void model_mismatch_hook(void);

static void mismatch(const char *fmt, ...)
{
	va_list ap;

	if (failed)
		return;
	failed = true;
	if (model_quiet)
		return;
	printf("# step %ld: ", step);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	dump_history();
	model_mismatch_hook();
}

/* How often each kind of call met each expected result, for the log. */
enum kind { K_ATTR, K_SLOT, K_FILE, K_CAP, K_ACCESS, NR_KINDS };
static const char *const kind_name[NR_KINDS] = {"attr", "slot", "file", "cap",
						"access"};
static const int result_errno[] = {0,	       EINVAL, EEXIST, EBADF,
				   EOPNOTSUPP, EFBIG,  EFAULT, EHWPOISON};
#define NR_RESULTS (int)(sizeof(result_errno) / sizeof(result_errno[0]))
static long stats[NR_KINDS][NR_RESULTS];
static enum kind cur_kind;
static long nr_binds;

static void count_result(long want)
{
	for (int i = 0; i < NR_RESULTS; i++)
		if (-want == result_errno[i])
			stats[cur_kind][i]++;
}

static inline void print_stats(void)
{
	for (int k = 0; k < NR_KINDS; k++) {
		char line[200];
		int n = 0;

		for (int i = 0; i < NR_RESULTS; i++)
			n += snprintf(line + n, sizeof(line) - n, " %s=%ld",
				      i ? strerror(result_errno[i]) : "ok",
				      stats[k][i]);
		tap_diag("%s:%s", kind_name[k], line);
	}
	tap_diag("guest_memfd bindings made: %ld", nr_binds);
}

static void expect_ret(long got, long want)
{
	model_last_got = got;
	count_result(want);
	if (got != want)
		mismatch("returned %ld, the model says %ld", got, want);
}

/*
 * A VM made through the façade is driven through it half of the time, so
 * that both layers meet the same predictions.
 */
static bool via_facade(const struct mvm *m)
{
	return m->fd >= 0 && one_in(2);
}

static long m_set_attr(struct mvm *m, const struct kvm_memory_attributes *a)
{
	if (via_facade(m))
		return fac_ret(gmem_ioctl(m->fd, KVM_SET_MEMORY_ATTRIBUTES, a));
	return gmem_vm_set_memory_attributes(m->vm, a);
}

static long m_create_file(struct mvm *m, const struct kvm_create_guest_memfd *g)
{
	if (via_facade(m))
		return fac_ret(gmem_ioctl(m->fd, KVM_CREATE_GUEST_MEMFD, g));
	return gmem_create_guest_memfd(m->vm, g);
}

static long m_region(struct mvm *m, const struct kvm_userspace_memory_region *r)
{
	if (via_facade(m))
		return fac_ret(
			gmem_ioctl(m->fd, KVM_SET_USER_MEMORY_REGION, r));
	return gmem_vm_set_memory_region(m->vm, r);
}

static long m_region2(struct mvm *m,
		      const struct kvm_userspace_memory_region2 *r)
{
	if (via_facade(m))
		return fac_ret(
			gmem_ioctl(m->fd, KVM_SET_USER_MEMORY_REGION2, r));
	return gmem_vm_set_memory_region2(m->vm, r);
}

static long m_enable_cap(struct mvm *m, const struct kvm_enable_cap *c)
{
	if (via_facade(m))
		return fac_ret(gmem_ioctl(m->fd, KVM_ENABLE_CAP, c));
	return gmem_vm_enable_cap(m->vm, c);
}

/* ---- attributes ---------------------------------------------------------- */

static uint64_t unit_gpa(int u)
{
	return u < NNEAR ? (uint64_t)u * PAGE : FAR_BASE + (u - NNEAR) * TIB;
}

static uint64_t unit_size(int u)
{
	return u < NNEAR ? PAGE : TIB;
}

static bool attr_valid(const struct mvm *m, uint64_t v)
{
	bool priv = m->type == KVM_X86_SW_PROTECTED_VM;

	switch (v) {
	case 0:
	case NW:
	case NX:
	case NW | NX:
	case NR | NW | NX:
		return true;
	case PRIV:
		return priv;
	case NR | NW:
		return m->exec_only;
	default:
		return false;
	}
}

/* Build the model's view of [lo, hi) as maximal non-zero ranges. */
static int model_ranges(const struct mvm *m, uint64_t lo, uint64_t hi,
			struct gmem_attr_range *out, int max)
{
	int n = 0;

	for (int u = 0; u < NUNIT; u++) {
		uint64_t a = unit_gpa(u), e = a + unit_size(u);

		if (!m->attr[u] || e <= lo || a >= hi)
			continue;
		a = a < lo ? lo : a;
		e = e > hi ? hi : e;
		if (n && out[n - 1].attributes == m->attr[u] &&
		    out[n - 1].address + out[n - 1].size == a) {
			out[n - 1].size += e - a;
			continue;
		}
		if (n == max)
			return -1;
		out[n++] = (struct gmem_attr_range){a, e - a, m->attr[u]};
	}
	return n;
}

static struct gmem_attr_range want_r[NUNIT], got_r[NUNIT + 1];

/* What the sequence number must do over a step. */
enum seq_rule { SEQ_ANY, SEQ_MOVES, SEQ_STAYS };

static void compare_attrs(struct mvm *m, uint64_t lo, uint64_t hi,
			  enum seq_rule rule)
{
	int nw = model_ranges(m, lo, hi, want_r, NUNIT);
	uint64_t seq = 0;
	int ng = gmem_vm_get_memory_attributes(m->vm, lo, hi - lo, got_r,
					       NUNIT + 1, &seq);

	if (ng != nw) {
		mismatch("snapshot [%#" PRIx64 ", %#" PRIx64 ") has %d ranges, "
			 "the model %d",
			 lo, hi, ng, nw);
		return;
	}
	for (int i = 0; i < nw; i++)
		if (got_r[i].address != want_r[i].address ||
		    got_r[i].size != want_r[i].size ||
		    got_r[i].attributes != want_r[i].attributes) {
			mismatch("snapshot range %d is [%#" PRIx64
				 ", +%#" PRIx64 ") = %#" PRIx64
				 ", the model [%#" PRIx64 ", +%#" PRIx64
				 ") = %#" PRIx64,
				 i, got_r[i].address, got_r[i].size,
				 got_r[i].attributes, want_r[i].address,
				 want_r[i].size, want_r[i].attributes);
			return;
		}
	if (rule == SEQ_MOVES && seq == m->seq)
		mismatch("the map changed but seq stayed %" PRIu64, seq);
	if (rule == SEQ_STAYS && seq != m->seq)
		mismatch("the map did not change but seq moved %" PRIu64
			 " -> %" PRIu64,
			 m->seq, seq);
	m->seq = seq;
}

/*
 * The whole space: everything but the last page.  Only attribute calls
 * promise anything about the sequence number; other calls may move it.
 */
static void compare_all(struct mvm *m, enum seq_rule rule)
{
	compare_attrs(m, 0, -PAGE, rule);
}

static void op_attr(struct mvm *m)
{
	struct kvm_memory_attributes a = {0};
	int u0, u1; /* the units covered, when the range is valid */
	bool bad_range = false;
	bool changed = false;
	long want, got;

	if (one_in(4)) {
		u0 = NNEAR + (int)below(NFAR);
		u1 = u0 + 1 + (int)below(NNEAR + NFAR - u0);
	} else {
		u0 = (int)below(NNEAR);
		u1 = u0 + 1 +
		     (int)below(one_in(8)
					? NNEAR - u0
					: (NNEAR - u0 < 32 ? NNEAR - u0 : 32));
	}
	a.address = unit_gpa(u0);
	a.size = unit_gpa(u1 - 1) + unit_size(u1 - 1) - a.address;

	/* values: mostly the interesting ones, sometimes anything */
	if (one_in(16))
		a.attributes = rnd() & (one_in(2) ? 0xf : ~0ULL);
	else
		a.attributes = (uint64_t[]){
			0,    0,       NW, NX,	   NW | NX, NR | NW | NX,
			PRIV, NR | NW, NR, NR | NX}[below(10)];
	if (one_in(64))
		a.flags = 1ULL << below(64);
	if (one_in(32)) {
		bad_range = true;
		switch (below(5)) {
		case 0:
			a.size = 0;
			break;
		case 1:
			a.address += 1 + below(PAGE - 1);
			break;
		case 2:
			a.size += 1 + below(PAGE - 1);
			break;
		case 3: {
			/* wraps past 0, or to exactly 0 */
			uint64_t k = 1 + below(4);

			a.address = -PAGE * k;
			a.size = PAGE * (k + below(4));
			break;
		}
		default:
			/* ends up to 3 pages past the top: wraps */
			if (a.address < 4 * PAGE)
				a.address = 4 * PAGE;
			a.size = -a.address + PAGE * below(4);
			break;
		}
	}

	want = a.flags || bad_range || !attr_valid(m, a.attributes) ? -EINVAL
								    : 0;
	note("vm%d set_attr [%#" PRIx64 ", +%#" PRIx64 ") = %#" PRIx64
	     " flags %#" PRIx64 " -> want %ld",
	     (int)(m - vms), a.address, a.size, a.attributes, a.flags, want);
	got = m_set_attr(m, &a);
	expect_ret(got, want);
	if (want == 0) {
		for (int u = u0; u < u1; u++) {
			changed |= m->attr[u] != a.attributes;
			m->attr[u] = (uint8_t)a.attributes;
		}
	}
	compare_all(m, changed ? SEQ_MOVES : SEQ_STAYS);
	/* now and then a clipped query of part of the near pages */
	if (one_in(8)) {
		uint64_t lo = below(NNEAR) * PAGE;
		uint64_t hi = lo + (1 + below(NNEAR)) * PAGE;

		compare_attrs(m, lo, hi, SEQ_ANY);
	}
}

/* ---- files -----------------------------------------------------------------
 */

/* The open file, in any VM, whose handle is @fd. */
static struct mfile *file_by_fd(int fd, struct mvm **owner, int *idx)
{
	for (int v = 0; v < NVM; v++)
		for (int i = 0; i < NFILE; i++)
			if (vms[v].file[i].open && vms[v].file[i].fd == fd) {
				if (owner)
					*owner = &vms[v];
				if (idx)
					*idx = i;
				return &vms[v].file[i];
			}
	return NULL;
}

static void op_create_file(struct mvm *m, int i)
{
	struct kvm_create_guest_memfd g = {0};
	struct mfile *f = &m->file[i];
	long want = 0, got;

	g.size = (1 + below(MAX_FILE_PAGES)) * PAGE;
	if (one_in(16)) {
		switch (below(4)) {
		case 0:
			g.flags = 1ULL << below(64);
			break;
		case 1:
			g.size = 0;
			break;
		case 2:
			g.size += 1 + below(PAGE - 1);
			break;
		default:
			g.size = (1ULL << 63) + PAGE * below(4);
			break;
		}
		want = -EINVAL;
	}
	note("vm%d create file %d size %#" PRIx64 " flags %#" PRIx64
	     " -> want %ld",
	     (int)(m - vms), i, g.size, g.flags, want);
	got = m_create_file(m, &g);
	model_last_got = got;
	if (want) {
		expect_ret(got, want);
		if (got >= 0)
			gmem_handle_close((int)got);
		return;
	}
	if (got < 3 || file_by_fd((int)got, NULL, NULL)) {
		mismatch("create file returned %ld (in use or < 3)", got);
		return;
	}
	f->open = true;
	f->fd = (int)got;
	f->uid = next_uid++;
	f->pages = g.size / PAGE;
	f->alloc = 0;
	f->poison = 0;
	memset(f->data, 0, sizeof(f->data));
	m->file_gen[i] = m->gen;
}

static void op_close_file(struct mvm *m, int i)
{
	struct mfile *f = &m->file[i];
	bool ioctl = one_in(2);

	note("vm%d close file %d (fd %d) via %s", (int)(m - vms), i, f->fd,
	     ioctl ? "gmem_close" : "gmem_handle_close");
	expect_ret(file_close(ioctl, f->fd), 0);
	f->open = false;
	/* the number is dead unless something reuses it; check now */
	expect_ret(file_close(!ioctl, f->fd), -EBADF);
}

static void op_fallocate(struct mvm *m, int i)
{
	struct mfile *f = &m->file[i];
	bool ioctl = one_in(2);
	bool punch = one_in(2);
	int mode = punch ? FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE
			 : FALLOC_FL_KEEP_SIZE;
	int64_t off = (int64_t)(below(f->pages + 4) * PAGE);
	int64_t len = (int64_t)((1 + below(f->pages + 2)) * PAGE);
	long want;

	switch (below(24)) {
	case 0:
		mode &= ~FALLOC_FL_KEEP_SIZE;
		break;
	case 1:
		mode |= 1 << (2 + below(6));
		break;
	case 2:
		off += 1 + (int64_t)below(PAGE - 1);
		break;
	case 3:
		len = -len * (int64_t)below(2);
		break;
	case 4:
		off = INT64_MAX - (int64_t)below(4 * PAGE);
		break;
	default:
		break;
	}
	if (off < 0 || len <= 0)
		want = -EINVAL;
	else if (!(mode & FALLOC_FL_KEEP_SIZE) ||
		 (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)))
		want = -EOPNOTSUPP;
	else if (off > INT64_MAX - len)
		want = -EFBIG;
	else if (off % PAGE || len % PAGE)
		want = -EINVAL;
	else if (!punch && (uint64_t)(off + len) > f->pages * PAGE)
		want = -EINVAL;
	else
		want = 0;
	note("vm%d fallocate file %d (fd %d, %" PRIu64 " pages) mode %#x "
	     "off %#" PRIx64 " len %#" PRIx64 " via %s -> want %ld",
	     (int)(m - vms), i, f->fd, f->pages, mode, (uint64_t)off,
	     (uint64_t)len, ioctl ? "ioctl" : "typed", want);
	expect_ret(file_fallocate(ioctl, f->fd, mode, off, len), want);
	if (want)
		return;
	for (uint64_t p = off / PAGE;
	     p < (uint64_t)(off + len) / PAGE && p < f->pages; p++) {
		if (punch) {
			/* a punched page is a fresh zeroed one, unpoisoned */
			f->alloc &= ~(1ULL << p);
			f->poison &= ~(1ULL << p);
			f->data[p] = 0;
		} else
			f->alloc |= 1ULL << p;
	}
}

static void op_poison_or_stat(struct mvm *m, int i)
{
	struct mfile *f = &m->file[i];
	int64_t off = (int64_t)(below(f->pages + 2) * PAGE);
	struct stat st;
	long want;

	if (one_in(2)) {
		note("vm%d fstat file %d (fd %d)", (int)(m - vms), i, f->fd);
		memset(&st, 0, sizeof(st));
		expect_ret(file_stat(one_in(2), f->fd, &st), 0);
		if ((uint64_t)st.st_size != f->pages * PAGE ||
		    st.st_blksize != 4096)
			mismatch("fstat: size %lld blksize %ld, model %" PRIu64,
				 (long long)st.st_size, (long)st.st_blksize,
				 f->pages * PAGE);
		return;
	}
	if (one_in(8))
		off += 1 + (int64_t)below(PAGE - 1);
	want = (off % PAGE || (uint64_t)off >= f->pages * PAGE) ? -EINVAL : 0;
	note("vm%d poison file %d (fd %d) at %#" PRIx64 " -> want %ld",
	     (int)(m - vms), i, f->fd, (uint64_t)off, want);
	expect_ret(gmem_file_poison(f->fd, off), want);
	if (!want)
		f->poison |= 1ULL << (off / PAGE);
}

static void op_file(struct mvm *m)
{
	int i = (int)below(NFILE);
	struct mfile *f = &m->file[i];

	if (!f->open) {
		op_create_file(m, i);
		return;
	}
	switch (below(8)) {
	case 0:
		op_close_file(m, i);
		break;
	case 1:
	case 2:
		op_poison_or_stat(m, i);
		break;
	default:
		op_fallocate(m, i);
		break;
	}
}

/* ---- slots -----------------------------------------------------------------
 */

static bool gpa_overlap(uint64_t a, uint64_t as, uint64_t b, uint64_t bs)
{
	return a < b + bs && b < a + as;
}

static int model_sys = -1; /* the façade's system handle */

/* A stale file number may have been reused by a façade VM or the system. */
static bool is_vm_handle(int fd)
{
	for (int v = 0; v < NVM; v++)
		if (vms[v].fd == fd)
			return true;
	return fd == model_sys;
}

/* What the model says a set_memory_region2 call returns; @bind_uid out. */
static long predict_slot(struct mvm *m,
			 const struct kvm_userspace_memory_region2 *r,
			 uint32_t *bind_uid)
{
	bool gm = r->flags & KVM_MEM_GUEST_MEMFD;
	uint32_t id = r->slot & 0xffff;
	struct mslot *old;
	struct mfile *f;
	struct mvm *owner;
	int fi;

	*bind_uid = 0;
	if (r->flags & ~SLOT_FLAGS)
		return -EINVAL;
	if ((r->flags & KVM_MEM_EXECONLY) && !m->exec_only)
		return -EINVAL;
	if (gm && m->type != KVM_X86_SW_PROTECTED_VM)
		return -EINVAL;
	if (gm && (r->flags & ~KVM_MEM_GUEST_MEMFD))
		return -EINVAL;
	if (r->memory_size % PAGE || r->guest_phys_addr % PAGE)
		return -EINVAL;
	if (r->userspace_addr % PAGE ||
	    r->userspace_addr + r->memory_size < r->userspace_addr ||
	    r->userspace_addr + r->memory_size > USER_TOP)
		return -EINVAL;
	if (gm &&
	    (r->guest_memfd_offset % PAGE ||
	     r->guest_memfd_offset + r->memory_size < r->guest_memfd_offset))
		return -EINVAL;
	if (r->slot >> 16 || id >= MAX_ID)
		return -EINVAL;
	if (r->guest_phys_addr + r->memory_size < r->guest_phys_addr)
		return -EINVAL;
	if (r->memory_size / PAGE > (1ULL << 31) - 1)
		return -EINVAL;
	old = id < NSLOT && m->slot[id].present ? &m->slot[id] : NULL;
	REQUIRE(id < NSLOT || !r->memory_size || !old);
	if (!r->memory_size)
		return old ? 0 : -EINVAL;
	if (old) {
		/* KVM_MR_MOVE or KVM_MR_FLAGS_ONLY (LOG_DIRTY_PAGES) */
		if (gm)
			return -EINVAL;
		if (r->userspace_addr != old->r.userspace_addr ||
		    r->memory_size != old->r.memory_size ||
		    ((r->flags ^ old->r.flags) & FIXED))
			return -EINVAL;
		if (r->guest_phys_addr == old->r.guest_phys_addr)
			return 0;
		for (int s = 0; s < NSLOT; s++)
			if (&m->slot[s] != old && m->slot[s].present &&
			    gpa_overlap(r->guest_phys_addr, r->memory_size,
					m->slot[s].r.guest_phys_addr,
					m->slot[s].r.memory_size))
				return -EEXIST;
		return 0;
	}
	for (int s = 0; s < NSLOT; s++)
		if (m->slot[s].present &&
		    gpa_overlap(r->guest_phys_addr, r->memory_size,
				m->slot[s].r.guest_phys_addr,
				m->slot[s].r.memory_size))
			return -EEXIST;
	if (!gm)
		return 0;
	f = file_by_fd((int)r->guest_memfd, &owner, &fi);
	if (!f)
		return is_vm_handle((int)r->guest_memfd) ? -EINVAL : -EBADF;
	if (owner != m || owner->file_gen[fi] != m->gen)
		return -EINVAL;
	if (r->guest_memfd_offset + r->memory_size > f->pages * PAGE)
		return -EINVAL;
	for (int s = 0; s < NSLOT; s++)
		if (m->slot[s].present && m->slot[s].file_uid == f->uid &&
		    gpa_overlap(r->guest_memfd_offset, r->memory_size,
				m->slot[s].r.guest_memfd_offset,
				m->slot[s].r.memory_size))
			return -EINVAL;
	*bind_uid = f->uid;
	return 0;
}

/* A handle for guest_memfd: ours, another VM's, closed, or bogus. */
static int pick_fd(struct mvm *m)
{
	struct mvm *o = one_in(6) ? &vms[below(NVM)] : m;
	int i = (int)below(NFILE);

	if (one_in(16))
		return BOGUS_FD;
	return o->file[i].open || o->file[i].fd ? o->file[i].fd : BOGUS_FD;
}

static void random_region(struct mvm *m, struct kvm_userspace_memory_region2 *r)
{
	static const uint32_t flag_choice[] = {
		0,
		KVM_MEM_LOG_DIRTY_PAGES,
		KVM_MEM_READONLY,
		KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY,
		KVM_MEM_EXECONLY,
		KVM_MEM_GUEST_MEMFD,
		KVM_MEM_GUEST_MEMFD,
		KVM_MEM_GUEST_MEMFD,
	};
	uint64_t gpa = below(NNEAR) * PAGE;
	uint64_t size = (1 + below(32)) * PAGE;

	*r = region2((uint32_t)below(NSLOT), flag_choice[below(8)], gpa, size,
		     (uintptr_t)area + gpa);
	if (r->flags & KVM_MEM_GUEST_MEMFD) {
		r->guest_memfd = (uint32_t)pick_fd(m);
		r->guest_memfd_offset =
			below(one_in(4) ? MAX_FILE_PAGES : 8) * PAGE;
		r->memory_size = (1 + below(16)) * PAGE;
	}
}

/* Break one rule of the static checks. */
static void spoil_region(struct kvm_userspace_memory_region2 *r)
{
	switch (below(10)) {
	case 0:
		r->flags |= 1U << (4 + below(28));
		break;
	case 1:
		r->flags |= 1U << below(4);
		break;
	case 2:
		r->memory_size += 1 + below(PAGE - 1);
		break;
	case 3:
		r->guest_phys_addr += 1 + below(PAGE - 1);
		break;
	case 4:
		r->userspace_addr = USER_TOP - PAGE * below(4);
		break;
	case 5:
		r->guest_memfd_offset = -PAGE * (1 + below(4));
		break;
	case 6:
		r->slot = one_in(2) ? (1U << (16 + below(16))) | r->slot
				    : (uint32_t)(MAX_ID + below(4));
		break;
	case 7:
		r->guest_phys_addr = -PAGE * (1 + below(4));
		break;
	case 8:
		r->memory_size = (1ULL << 31) * PAGE;
		break;
	default:
		r->userspace_addr += 1 + below(PAGE - 1);
		break;
	}
}

static void check_slot(struct mvm *m, uint32_t slot)
{
	struct kvm_userspace_memory_region2 got;
	uint32_t id = slot & 0xffff;
	bool present = !(slot >> 16) && id < NSLOT && m->slot[id].present;
	int r = gmem_vm_get_memory_region2(m->vm, slot, &got);

	if (!present) {
		if (r != -ENOENT && !(slot >> 16 || id >= MAX_ID))
			mismatch("slot %#x: read-back %d, model: none", slot,
				 r);
		return;
	}
	if (r != 0 || !region2_equal(&got, &m->slot[id].r)) {
		mismatch("slot %#x does not read back as the model says", slot);
		if (model_quiet)
			return;
		region2_print("model", &m->slot[id].r);
		if (r == 0)
			region2_print("got  ", &got);
	}
}

static void op_slot(struct mvm *m)
{
	struct kvm_userspace_memory_region2 r;
	uint32_t id = (uint32_t)below(NSLOT);
	uint32_t uid;
	long want, got;
	bool v1 = false;

	if (m->slot[id].present && one_in(2)) {
		/* modify or delete the existing slot */
		r = m->slot[id].r;
		switch (below(8)) {
		case 0:
		case 1:
			r.memory_size = 0;
			break;
		case 2:
			r.flags ^= KVM_MEM_LOG_DIRTY_PAGES;
			break;
		case 3:
			r.flags ^= KVM_MEM_READONLY;
			break;
		case 4:
			r.flags ^= KVM_MEM_EXECONLY;
			break;
		case 5:
			/* a move; with a new address too it is refused */
			r.guest_phys_addr = below(NNEAR) * PAGE;
			if (one_in(4))
				r.userspace_addr += PAGE;
			break;
		case 6:
			r.memory_size += PAGE;
			break;
		default:
			break; /* identical */
		}
	} else {
		random_region(m, &r);
		r.slot = id;
		if (one_in(16))
			r.memory_size = 0;
		v1 = !(r.flags & KVM_MEM_GUEST_MEMFD) && one_in(4);
	}
	if (one_in(12))
		spoil_region(&r);

	if (v1 && (r.flags & ~(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY |
			       KVM_MEM_EXECONLY))) {
		want = -EINVAL;
		uid = 0;
	} else {
		want = predict_slot(m, &r, &uid);
	}
	note("vm%d %s slot %#x flags %#x gpa %#" PRIx64 " size %#" PRIx64
	     " ua +%#" PRIx64 " fd %d off %#" PRIx64 " -> want %ld",
	     (int)(m - vms), v1 ? "v1" : "v2", r.slot, r.flags,
	     r.guest_phys_addr, r.memory_size,
	     r.userspace_addr - (uintptr_t)area, (int)r.guest_memfd,
	     r.guest_memfd_offset, want);
	if (v1) {
		struct kvm_userspace_memory_region r1 = {
			.slot = r.slot,
			.flags = r.flags,
			.guest_phys_addr = r.guest_phys_addr,
			.memory_size = r.memory_size,
			.userspace_addr = r.userspace_addr,
		};

		got = m_region(m, &r1);
		r.guest_memfd = 0;
		r.guest_memfd_offset = 0;
	} else {
		got = m_region2(m, &r);
	}
	expect_ret(got, want);
	if (want == 0) {
		struct mslot *s = &m->slot[r.slot & 0xffff];

		if (!r.memory_size) {
			s->present = false;
		} else {
			s->present = true;
			s->r = r;
			s->file_uid = uid;
			nr_binds += uid != 0;
		}
	}
	check_slot(m, r.slot);
	compare_all(m, SEQ_ANY);
}

/* ---- VMs -------------------------------------------------------------------
 */

/* Half of the VMs are made through the façade (and reached both ways). */
static void vm_new(struct mvm *m, unsigned long type)
{
	struct kvm_enable_cap eo = {.cap = GMEM_CAP_EXEC_ONLY};
	struct kvm_enable_cap acc_flags = {.cap = GMEM_CAP_FAULT_ACCESS_FLAGS};

	memset(m, 0, sizeof(*m));
	m->type = type;
	m->gen = next_gen++;
	m->fd = -1;
	if (one_in(2)) {
		m->fd = gmem_ioctl(model_sys, KVM_CREATE_VM, type);
		REQUIRE(m->fd >= 0);
		REQUIRE(gmem_vm_from_handle(m->fd, &m->vm) == 0);
	} else {
		m->vm = test_vm(type);
	}
	REQUIRE(gmem_vcpu_create(m->vm, 0, &m->vcpu) == 0);
	REQUIRE(gmem_vm_get_memory_attributes(m->vm, 0, PAGE, NULL, 0,
					      &m->seq) == 0);
	/* Often with gmem's extensions, so that they are exercised. */
	if (one_in(2)) {
		REQUIRE(gmem_vm_enable_cap(m->vm, &eo) == 0);
		m->exec_only = true;
	}
	if (one_in(2)) {
		REQUIRE(gmem_vm_enable_cap(m->vm, &acc_flags) == 0);
		m->access_flags = true;
	}
}

/* Drop the model's hold on the VM: vCPU, façade handle, reference. */
static void vm_drop(struct mvm *m)
{
	gmem_vcpu_destroy(m->vcpu);
	if (m->fd >= 0)
		REQUIRE(gmem_close(m->fd) == 0);
	gmem_vm_put(m->vm);
	m->vcpu = NULL;
	m->vm = NULL;
	m->fd = -1;
}

static void op_enable_cap(struct mvm *m)
{
	bool flags = one_in(2);
	struct kvm_enable_cap c = {.cap = flags ? GMEM_CAP_FAULT_ACCESS_FLAGS
						: GMEM_CAP_EXEC_ONLY};
	long want = 0;

	if (one_in(2)) {
		if (one_in(2))
			c.flags = 1U << below(32);
		else
			c.args[below(4)] = 1 + below(100);
		want = -EINVAL;
	}
	note("vm%d enable %s flags %#x -> want %ld", (int)(m - vms),
	     flags ? "fault access flags" : "exec-only", c.flags, want);
	expect_ret(m_enable_cap(m, &c), want);
	if (!want && flags)
		m->access_flags = true;
	else if (!want)
		m->exec_only = true;
	compare_all(m, SEQ_ANY);
}

/*
 * Replace the VM.  Its open files stay open and keep the old VM alive;
 * they are now another VM's files for the new one.
 */
static void op_replace_vm(struct mvm *m)
{
	struct mfile files[NFILE];
	uint32_t gens[NFILE];

	note("vm%d replaced", (int)(m - vms));
	/* two calls that allocate: not an all-or-nothing unit */
	if (model_injecting) {
		gmem_test_fail_alloc(0);
		model_injecting = false;
	}
	memcpy(files, m->file, sizeof(files));
	memcpy(gens, m->file_gen, sizeof(gens));
	vm_drop(m);
	vm_new(m, m->type);
	memcpy(m->file, files, sizeof(files));
	memcpy(m->file_gen, gens, sizeof(gens));
	compare_all(m, SEQ_ANY);
}

/* ---- accesses ----------------------------------------------------------- */

static struct mfile *file_by_uid(uint32_t uid)
{
	for (int v = 0; v < NVM && uid; v++)
		for (int i = 0; i < NFILE; i++)
			if (vms[v].file[i].open && vms[v].file[i].uid == uid)
				return &vms[v].file[i];
	return NULL;
}

/*
 * One 8-byte read, write or fetch at the start of a near page, predicted
 * by DESIGN §3.4's order.  Shared data is the slot's userspace memory,
 * which the model reads directly; private data is the model's word per
 * file page, zero until written and after a punch.
 */
static void op_access(struct mvm *m)
{
	static const unsigned int accs[] = {GMEM_ACCESS_READ, GMEM_ACCESS_WRITE,
					    GMEM_ACCESS_FETCH};
	static const char *const acc_name[] = {"?", "read", "write", "?",
					       "fetch"};
	unsigned int acc = accs[below(3)];
	int u = (int)below(NNEAR);
	uint64_t gpa = (uint64_t)u * PAGE, val = rnd(), buf = val;
	uint64_t *priv_word = NULL, flags = 0;
	volatile uint64_t *host = NULL;
	struct kvm_run *run = gmem_vcpu_kvm_run(m->vcpu);
	struct mslot *s = NULL;
	long want = 0, got;

	for (int i = 0; i < NSLOT; i++)
		if (m->slot[i].present && gpa - m->slot[i].r.guest_phys_addr <
						  m->slot[i].r.memory_size)
			s = &m->slot[i];
	if (!s && (m->attr[u] & PRIV)) {
		/* private memory is never MMIO */
		want = -EFAULT;
		flags = KVM_MEMORY_EXIT_FLAG_PRIVATE;
	} else if (!s) {
		want = GMEM_VCPU_ACCESS_EXIT;
	} else if ((s->r.flags & KVM_MEM_EXECONLY) &&
		   acc != GMEM_ACCESS_FETCH) {
		want = GMEM_VCPU_ACCESS_XO;
	} else {
		uint64_t a = m->attr[u], off = gpa - s->r.guest_phys_addr;
		unsigned int perm = 7;
		bool priv = a & PRIV;

		if (a & NR)
			perm &= ~GMEM_ACCESS_READ;
		if (a & NW)
			perm &= ~GMEM_ACCESS_WRITE;
		if (a & NX)
			perm &= ~GMEM_ACCESS_FETCH;
		/* PRIVATE alone, or the denied access where asked for */
		flags = priv		  ? KVM_MEMORY_EXIT_FLAG_PRIVATE
			: m->access_flags ? acc
					  : 0;
		if (!(perm & acc)) {
			want = -EFAULT;
		} else if (priv) {
			struct mfile *f = file_by_uid(s->file_uid);
			uint64_t pg = (s->r.guest_memfd_offset + off) / PAGE;

			if (!f)
				want = -EFAULT;
			else if (f->poison & (1ULL << pg))
				want = -EHWPOISON;
			else
				priv_word = &f->data[pg];
		} else {
			host = (volatile uint64_t
					*)(uintptr_t)(s->r.userspace_addr +
						      off);
			/*
			 * A slot may name userspace memory that is not
			 * mapped (KVM only checks access_ok()).  gmem
			 * reads the VMM's memory directly, so such an
			 * access would fault in the VMM's process: that
			 * is the VMM's bug, and not modelled.
			 */
			if ((uint8_t *)host < area ||
			    (uint8_t *)host >= area + AREA + 64 * PAGE)
				return;
		}
		if (!want && (s->r.flags & KVM_MEM_READONLY) &&
		    acc == GMEM_ACCESS_WRITE)
			want = GMEM_VCPU_ACCESS_EXIT;
	}
	note("vm%d %s gpa %#" PRIx64 " -> want %ld", (int)(m - vms),
	     acc_name[acc], gpa, want);
	memset(run, 0, sizeof(*run));
	got = gmem_vcpu_access(m->vcpu, gpa, &buf, sizeof(buf), acc);
	expect_ret(got, want);
	if (failed)
		return;
	if (want == GMEM_VCPU_ACCESS_EXIT &&
	    (run->exit_reason != KVM_EXIT_MMIO || run->mmio.phys_addr != gpa ||
	     run->mmio.len != 8 ||
	     run->mmio.is_write != (acc == GMEM_ACCESS_WRITE)))
		mismatch("MMIO exit: reason %u gpa %#llx len %u write %u",
			 run->exit_reason,
			 (unsigned long long)run->mmio.phys_addr, run->mmio.len,
			 run->mmio.is_write);
	if ((want == -EFAULT || want == -EHWPOISON) &&
	    (run->exit_reason != KVM_EXIT_MEMORY_FAULT ||
	     run->memory_fault.gpa != gpa || run->memory_fault.size != PAGE ||
	     run->memory_fault.flags != flags))
		mismatch("memory fault: reason %u gpa %#llx size %#llx "
			 "flags %#llx, the model flags %#" PRIx64,
			 run->exit_reason,
			 (unsigned long long)run->memory_fault.gpa,
			 (unsigned long long)run->memory_fault.size,
			 (unsigned long long)run->memory_fault.flags, flags);
	if (want)
		return;
	if (acc == GMEM_ACCESS_WRITE) {
		if (priv_word)
			*priv_word = val;
		else if (*host != val)
			mismatch("write of %#" PRIx64 " landed elsewhere "
				 "(userspace memory holds %#" PRIx64 ")",
				 val, *host);
		return;
	}
	if (buf != (priv_word ? *priv_word : *host))
		mismatch("%s %#" PRIx64 ", the model %#" PRIx64, acc_name[acc],
			 buf, priv_word ? *priv_word : *host);
}

static void one_step(void)
{
	struct mvm *m = &vms[below(NVM)];
	uint64_t k = below(1000);

	if (k < 400) {
		cur_kind = K_ATTR;
		op_attr(m);
	} else if (k < 550) {
		cur_kind = K_ACCESS;
		op_access(m);
	} else if (k < 750) {
		cur_kind = K_SLOT;
		op_slot(m);
	} else if (k < 997) {
		cur_kind = K_FILE;
		op_file(m);
		compare_all(m, SEQ_ANY);
	} else if (k < 999) {
		cur_kind = K_CAP;
		op_enable_cap(m);
	} else if (one_in(20)) {
		op_replace_vm(m);
	} else {
		cur_kind = K_ATTR;
		op_attr(m);
	}
}

static void model_init(void)
{
	if (model_sys < 0)
		model_sys = gmem_open();
	REQUIRE(model_sys >= 0);
	if (!area)
		area = test_mem(AREA + 64 * PAGE);
	failed = false;
	step = 0;
	vm_new(&vms[0], KVM_X86_DEFAULT_VM);
	vm_new(&vms[1], KVM_X86_SW_PROTECTED_VM);
}

/* Close every file and drop both VMs: nothing may be left behind. */
static void model_fini(void)
{
	for (int v = 0; v < NVM; v++) {
		for (int i = 0; i < NFILE; i++)
			if (vms[v].file[i].open)
				expect_ret(gmem_handle_close(vms[v].file[i].fd),
					   0);
		vm_drop(&vms[v]);
	}
	REQUIRE(gmem_close(model_sys) == 0);
	model_sys = -1;
}

#endif /* GMEM_TEST_MODEL_H */
