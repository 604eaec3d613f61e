// SPDX-License-Identifier: MIT
/*
 * Soak: several VMs, each with several vCPU threads running a guest that
 * hammers a heap of pages, while a converter thread per VM flips those
 * pages between private, shared and shared no-exec (punching the private
 * copy away on the way to shared, as a VMM answering MAP_GPA_RANGE does),
 * allocates ranges, and creates and deletes a second memslot.  It runs
 * until every vCPU has reported $GMEM_SOAK_BEATS (default 32) beats and
 * every converter has done 32 times as many conversions, with at least
 * one punch and one slot change (and, for a long soak, for at least
 * $GMEM_SOAK_SECONDS), then stops every vCPU with gmem_vcpu_kick() and
 * checks:
 *   - no guest assertion, no unexpected exit, every vCPU made progress;
 *   - each VM's attribute map is exactly what its converter last set;
 *   - every heap word holds 0 or a value tagged with its own page (no
 *     access ever landed on another page), and each shared page reads the
 *     same through the vCPU as in the VMM's memory (no stale mapping);
 *   - everything is freed (LeakSanitizer, in the asan build).
 *
 * The guest: vCPU n owns word n of every heap page.  It picks pages at
 * random, checks that the word is 0 or carries the page's tag, writes
 * (page << 32 | count), and reports progress with a SYNC every 4096
 * writes.
 */
#define MEM (16ULL << 20)
#define HEAP (8ULL << 20) /* the converters' range, up to MEM */
#define HEAP_PAGES ((MEM - HEAP) >> 12)
#define SYNC_EVERY 4096

#ifdef GUEST

#include "guest.h"

static void hammer(uint64_t cpu)
{
	uint64_t x = cpu * 0x9e3779b97f4a7c15ULL + 1, n = 0;

	for (;;) {
		volatile uint64_t *w;
		uint64_t i, v;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		i = x % HEAP_PAGES;
		w = (volatile uint64_t *)(HEAP + i * PAGE_SIZE + cpu * 8);
		v = *w;
		if (v)
			GUEST_ASSERT_EQ(v >> 32, i);
		*w = i << 32 | (uint32_t)++n;
		if (!(n % SYNC_EVERY))
			GUEST_SYNC(n);
	}
}

void guest_main(uint64_t arg0, uint64_t arg1)
{
	hammer(0);
}

void guest_ap_main(uint64_t cpu)
{
	hammer(cpu);
}

#else

#include <linux/falloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <gmem/kvm.h>

#include "guest_util.h"
#include "tap.h"

#define NVM 3
#define NVCPU 2
#define SLOT1_GPA (1ULL << 30)
#define SLOT1_SIZE (2ULL << 20)

#define A_PRIV KVM_MEMORY_ATTRIBUTE_PRIVATE
#define A_NX KVM_MEMORY_ATTRIBUTE_NX

struct soak_vcpu {
	struct guest_vcpu *v;
	pthread_t thread;
	uint64_t beats;
	char failure[768]; /* what went wrong, empty if nothing */
};

struct soak_vm {
	struct guest_vm *gvm;
	struct soak_vcpu vcpu[NVCPU];
	pthread_t conv;
	uint8_t attr[HEAP_PAGES]; /* what the converter set last */
	uint64_t conversions, punches, slot_changes;
	uint8_t *slot1_mem;
	char failure[256];
};

static struct soak_vm vms[NVM];
static atomic_bool stop;

/*
 * The run's length is a count, not a time: each thread arrives once, when
 * it has done its share or when it ends early (a failure, reported after
 * the stop), and the main thread waits for all of them.
 */
static uint64_t need_beats, need_conversions;
static pthread_mutex_t arrive_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t arrive_cond = PTHREAD_COND_INITIALIZER;
static int arrived;

static void arrive(void)
{
	pthread_mutex_lock(&arrive_lock);
	arrived++;
	pthread_cond_broadcast(&arrive_cond);
	pthread_mutex_unlock(&arrive_lock);
}

static void *vcpu_thread(void *arg)
{
	struct soak_vcpu *s = arg;
	struct guest_ucall uc;

	while (!atomic_load(&stop)) {
		int r = guest_vcpu_run(s->v, &uc);

		if (r == UCALL_SYNC) {
			if (++s->beats == need_beats)
				arrive();
			if (guest_vcpu_reply(s->v, 0))
				break;
			continue;
		}
		if (r == -EINTR)
			continue;
		guest_describe(s->v, r, &uc, s->failure, sizeof(s->failure));
		break;
	}
	if (s->beats < need_beats)
		arrive();
	return NULL;
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* The VMM side: conversions, punches, allocations and slot churn. */
static void *converter(void *arg)
{
	struct soak_vm *s = arg;
	struct gmem_vm *vm = s->gvm->vm;
	uint64_t x = (uint64_t)(s - vms) * 7919 + 12345;
	bool slot1 = false, done = false;
	int r = 0;

	while (!atomic_load(&stop) && !r) {
		uint64_t p = xorshift(&x) % HEAP_PAGES;
		uint64_t n = 1 + xorshift(&x) % 32;
		uint64_t kind = xorshift(&x) % 8;
		uint64_t val = kind < 4 ? A_PRIV : kind < 7 ? 0 : A_NX;
		struct kvm_memory_attributes a = {0};

		if (p + n > HEAP_PAGES)
			n = HEAP_PAGES - p;
		a.address = HEAP + p * 4096;
		a.size = n * 4096;
		a.attributes = val;
		r = gmem_vm_set_memory_attributes(vm, &a);
		if (r) {
			snprintf(s->failure, sizeof(s->failure),
				 "set attributes: %s", strerror(-r));
			break;
		}
		memset(s->attr + p, (int)val, n);
		s->conversions++;
		if (val != A_PRIV) {
			/* the private copy is gone once shared */
			r = gmem_file_fallocate(
				s->gvm->gmem_fd,
				FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
				(int64_t)a.address, (int64_t)a.size);
			s->punches++;
		} else if (kind == 0) {
			r = gmem_file_fallocate(
				s->gvm->gmem_fd, FALLOC_FL_KEEP_SIZE,
				(int64_t)a.address, (int64_t)a.size);
		}
		if (r) {
			snprintf(s->failure, sizeof(s->failure),
				 "fallocate: %s", strerror(-r));
			break;
		}
		if (xorshift(&x) % 16 == 0) {
			struct kvm_userspace_memory_region2 m = {
				.slot = 1,
				.guest_phys_addr = SLOT1_GPA,
				.memory_size = slot1 ? 0 : SLOT1_SIZE,
				.userspace_addr = (uintptr_t)s->slot1_mem,
			};

			r = gmem_vm_set_memory_region2(vm, &m);
			if (r) {
				snprintf(s->failure, sizeof(s->failure),
					 "slot 1: %s", strerror(-r));
				break;
			}
			slot1 = !slot1;
			s->slot_changes++;
		}
		if (!done && s->conversions >= need_conversions && s->punches &&
		    s->slot_changes) {
			done = true;
			arrive();
		}
	}
	if (!done)
		arrive();
	return NULL;
}

/* The attribute map equals what the converter set, range by range. */
static bool attrs_agree(struct soak_vm *s)
{
	static struct gmem_attr_range got[HEAP_PAGES + 2];
	uint64_t want_page = 0;
	int n, k = 0;

	n = gmem_vm_get_memory_attributes(s->gvm->vm, 0, MEM, got,
					  ARRAY_LEN(got), NULL);
	if (n < 1 || got[0].address != 0 || got[0].size < HEAP ||
	    got[0].attributes != A_PRIV) {
		tap_diag("the private RAM below the heap changed");
		return false;
	}
	/* Walk the heap page by page against the ranges. */
	for (uint64_t p = 0; p < HEAP_PAGES; p++) {
		uint64_t gpa = HEAP + p * 4096, have = 0;

		while (k < n && got[k].address + got[k].size <= gpa)
			k++;
		if (k < n && got[k].address <= gpa)
			have = got[k].attributes;
		if (have != s->attr[p]) {
			tap_diag("page %#" PRIx64 ": attributes %#" PRIx64
				 ", converter set %#x",
				 gpa, have, s->attr[p]);
			return false;
		}
		want_page++;
	}
	return want_page == HEAP_PAGES;
}

/* Every word is 0 or tagged with its page; shared pages are coherent. */
static bool memory_agrees(struct soak_vm *s)
{
	struct guest_vcpu *v = s->gvm->vcpus[0];
	uint64_t w[NVCPU];

	for (uint64_t p = 0; p < HEAP_PAGES; p++) {
		uint64_t gpa = HEAP + p * 4096;

		if (guest_read(v, gpa, w, sizeof(w))) {
			tap_diag("page %#" PRIx64 " unreadable", gpa);
			return false;
		}
		for (int c = 0; c < NVCPU; c++)
			if (w[c] && w[c] >> 32 != p) {
				tap_diag("page %#" PRIx64
					 " word %d holds %#" PRIx64
					 ", another page's",
					 gpa, c, w[c]);
				return false;
			}
		if (s->attr[p] != A_PRIV &&
		    memcmp(w, (uint8_t *)s->gvm->mem + gpa, sizeof(w))) {
			tap_diag("shared page %#" PRIx64 " differs between the "
				 "vCPU and the VMM's memory",
				 gpa);
			return false;
		}
	}
	return true;
}

int main(void)
{
	const char *e = getenv("GMEM_SOAK_SECONDS");
	const char *b = getenv("GMEM_SOAK_BEATS");
	double seconds = e ? atof(e) : 0;
	struct gmem_vm_stats st, tot = {0};
	uint64_t beats = 0, conv = 0, punches = 0, slots = 0;
	struct timespec t0, t1;
	int ret;

	need_beats = b && atol(b) > 0 ? (uint64_t)atol(b) : 32;
	need_conversions = 32 * need_beats;
	/* A safety net, not the pass criterion (TSan is ~20 times slower). */
	tap_plan(5, (unsigned)seconds + 300);
	tap_diag("%d VMs x %d vCPUs + a converter each, until %" PRIu64
		 " beats and %" PRIu64 " conversions each%s",
		 NVM, NVCPU, need_beats, need_conversions,
		 seconds > 0 ? ", for a minimum time" : "");
	for (int i = 0; i < NVM; i++) {
		struct soak_vm *s = &vms[i];

		ret = guest_vm_create(KVM_X86_SW_PROTECTED_VM, MEM,
				      GUEST_VM_PRIVATE, &s->gvm);
		REQUIRE(ret == 0);
		for (int c = 0; c < NVCPU; c++) {
			REQUIRE(guest_vcpu_add(s->gvm, &s->vcpu[c].v) == 0);
			s->vcpu[c].v->echo = 1;
		}
		REQUIRE(guest_vm_load(s->gvm, "soak", NULL) == 0);
		REQUIRE(s->gvm->load.free_end <= MEM);
		memset(s->attr, A_PRIV, sizeof(s->attr));
		s->slot1_mem = mmap(NULL, SLOT1_SIZE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		REQUIRE(s->slot1_mem != MAP_FAILED);
	}
	/* The image and the loader's structures must lie below the heap. */
	REQUIRE(vms[0].gvm->load.free_start <= HEAP);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < NVM; i++) {
		for (int c = 0; c < NVCPU; c++)
			REQUIRE(pthread_create(&vms[i].vcpu[c].thread, NULL,
					       vcpu_thread,
					       &vms[i].vcpu[c]) == 0);
		REQUIRE(pthread_create(&vms[i].conv, NULL, converter,
				       &vms[i]) == 0);
	}
	pthread_mutex_lock(&arrive_lock);
	while (arrived < NVM * (NVCPU + 1))
		pthread_cond_wait(&arrive_cond, &arrive_lock);
	pthread_mutex_unlock(&arrive_lock);
	if (seconds > 0) {
		/* A long soak's minimum length, asked for by the user. */
		struct timespec end = t0;

		end.tv_sec += (time_t)seconds;
		end.tv_nsec +=
			(long)((seconds - (double)(time_t)seconds) * 1e9);
		if (end.tv_nsec >= 1000000000L) {
			end.tv_sec++;
			end.tv_nsec -= 1000000000L;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end,
				       NULL) == EINTR)
			;
	}
	atomic_store(&stop, true);
	for (int i = 0; i < NVM; i++) {
		pthread_join(vms[i].conv, NULL);
		for (int c = 0; c < NVCPU; c++) {
			struct soak_vcpu *s = &vms[i].vcpu[c];

			/*
			 * A kick latches until the next run takes it, so one
			 * is enough wherever the thread is: it sees stop.
			 */
			gmem_vcpu_kick(s->v->vcpu);
			pthread_join(s->thread, NULL);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);

	for (int i = 0; i < NVM; i++) {
		struct soak_vm *s = &vms[i];

		if (s->failure[0]) {
			tap_case_failed = 1;
			tap_diag("vm%d converter: %s", i, s->failure);
		}
		for (int c = 0; c < NVCPU; c++) {
			if (s->vcpu[c].failure[0]) {
				tap_case_failed = 1;
				tap_diag("vm%d vcpu%d: %s", i, c,
					 s->vcpu[c].failure);
			}
			CHECK(s->vcpu[c].beats >= need_beats);
			beats += s->vcpu[c].beats;
		}
		conv += s->conversions;
		punches += s->punches;
		slots += s->slot_changes;
		REQUIRE(gmem_vm_get_stats(s->gvm->vm, &st) == 0);
		tot.faults += st.faults;
		tot.fault_retries += st.fault_retries;
		tot.invalidations += st.invalidations;
		tot.tlb_flush_requests += st.tlb_flush_requests;
	}
	tap_diag("%.1f s: %" PRIu64 " guest writes, %" PRIu64
		 " conversions, %" PRIu64 " punches, %" PRIu64 " slot changes",
		 (double)(t1.tv_sec - t0.tv_sec) +
			 (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
		 beats * SYNC_EVERY, conv, punches, slots);
	tap_diag("faults %" PRIu64 " (retried %" PRIu64
		 "), invalidations %" PRIu64 ", TLB shootdowns %" PRIu64,
		 tot.faults, tot.fault_retries, tot.invalidations,
		 tot.tlb_flush_requests);
	tap_result("every vCPU ran, no guest assertion, no unexpected exit");

	for (int i = 0; i < NVM; i++)
		CHECK(vms[i].conversions >= need_conversions &&
		      vms[i].punches > 0 && vms[i].slot_changes > 0);
	tap_result("the converters worked throughout");

	for (int i = 0; i < NVM; i++)
		CHECK(attrs_agree(&vms[i]));
	tap_result("each attribute map is what its converter set last");

	for (int i = 0; i < NVM; i++)
		CHECK(memory_agrees(&vms[i]));
	tap_result("heap words are tagged with their own page; shared pages "
		   "are coherent");

	for (int i = 0; i < NVM; i++) {
		guest_vm_destroy(vms[i].gvm);
		munmap(vms[i].slot1_mem, SLOT1_SIZE);
	}
	/* every handle was returned */
	ret = gmem_open();
	CHECK_EQ(ret, 3);
	gmem_close(ret);
	tap_result("everything is torn down; no handle left");
	return tap_done();
}

#endif
