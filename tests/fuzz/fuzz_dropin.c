// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the drop-in's surface, as an unmodified program sees
 * it.  The harness is linked with libgmem-kvm.so's objects, so its own
 * open(), ioctl(), close(), dup2(), mmap(), read() ... are the drop-in's,
 * and libFuzzer's file I/O passes through the same wrappers untouched.
 *
 * Input: a sequence of operations on a small table of fds, in the spirit
 * of syzkaller's dev_kvm descriptions: open /dev/kvm, any KVM ioctl (or a
 * random one) with argument bytes from the input, close, dup, dup2 onto
 * another slot, mmap/munmap, fallocate, read/write/pread, fstat, lseek,
 * KVM_RUN with immediate_exit set (and sync regs with fuzzed bits and
 * state), signals to the thread itself, and
 * ioctl arguments the program cannot read or write (a PROT_NONE page, a
 * read-only one, a struct whose entries run into either, low and
 * non-canonical addresses), which must fail with EFAULT or the request's
 * own errno, never crash; and a guest that spins in KVM_RUN on a thread
 * of its own while this one signals it (or changes its memory's
 * protection), which must end the run with EINTR (or EFAULT).
 * Every fd is closed at the end of the input, so leaks show.
 *
 * What must hold: no crash, no sanitizer report, no leak; a gmem fd
 * closed or replaced never answers as gmem's again (checked with
 * F_GETFD against what the harness knows is open).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmem/uapi.h>

#include "../long_mode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SLOTS 8
#define ARG_SIZE 16384

static const unsigned long requests[] = {
	KVM_GET_API_VERSION,
	KVM_CREATE_VM,
	KVM_CHECK_EXTENSION,
	KVM_GET_VCPU_MMAP_SIZE,
	KVM_GET_SUPPORTED_CPUID,
	KVM_CREATE_VCPU,
	KVM_SET_USER_MEMORY_REGION,
	KVM_SET_USER_MEMORY_REGION2,
	KVM_SET_MEMORY_ATTRIBUTES,
	KVM_CREATE_GUEST_MEMFD,
	KVM_ENABLE_CAP,
	KVM_CREATE_IRQCHIP,
	KVM_GET_STATS_FD,
	KVM_GET_REGS,
	KVM_SET_REGS,
	KVM_GET_SREGS,
	KVM_SET_SREGS,
	KVM_GET_MSRS,
	KVM_SET_MSRS,
	KVM_SET_CPUID2,
	KVM_SET_SIGNAL_MASK,
	KVM_GET_FPU,
	KVM_SET_FPU,
	KVM_GET_XSAVE,
	KVM_GET_XSAVE2,
	KVM_SET_XSAVE,
	KVM_GET_XCRS,
	KVM_SET_XCRS,
	KVM_GET_MSR_INDEX_LIST,
	KVM_GET_MSR_FEATURE_INDEX_LIST,
	KVM_GET_VCPU_EVENTS,
	KVM_SET_VCPU_EVENTS,
	KVM_GET_DEBUGREGS,
	KVM_SET_DEBUGREGS,
	KVM_GET_DIRTY_LOG,
	KVM_CLEAR_DIRTY_LOG,
	KVM_RESET_DIRTY_RINGS,
	KVM_X86_SET_MSR_FILTER,
	KVM_NMI,
	KVM_INTERRUPT,
	KVM_GET_MP_STATE,
	KVM_SET_MP_STATE,
	KVM_KVMCLOCK_CTRL,
	KVM_IRQ_LINE,
	KVM_IRQ_LINE_STATUS,
	KVM_SET_GSI_ROUTING,
	KVM_IRQFD,
	KVM_IOEVENTFD,
	KVM_SIGNAL_MSI,
};

struct input {
	const uint8_t *p;
	size_t left;
};

static uint64_t take(struct input *in, size_t n)
{
	uint64_t v = 0;

	n = n < in->left ? n : in->left;
	memcpy(&v, in->p, n);
	in->p += n;
	in->left -= n;
	return v;
}

static int fds[SLOTS];
static _Alignas(64) uint8_t arg[ARG_SIZE];
static volatile sig_atomic_t signals;

static void on_signal(int sig)
{
	signals++;
}

static void put_slot(int s, int fd)
{
	if (fds[s] >= 0)
		close(fds[s]);
	fds[s] = fd;
}

/* Whether the value is a known-small integer argument or a pointer. */
static bool int_arg(unsigned long req)
{
	return req == KVM_GET_API_VERSION || req == KVM_CREATE_VM ||
	       req == KVM_CHECK_EXTENSION || req == KVM_GET_VCPU_MMAP_SIZE ||
	       req == KVM_CREATE_VCPU || req == KVM_CREATE_IRQCHIP ||
	       req == KVM_GET_STATS_FD || req == KVM_RESET_DIRTY_RINGS;
}

/* Three pages: read-write, read-only, PROT_NONE. */
static uint8_t *guard;

static void do_ioctl(struct input *in, int s)
{
	unsigned int pick = (unsigned int)take(in, 1);
	unsigned long req;
	size_t n;
	int r;

	if (pick < 224)
		req = requests[pick % (sizeof(requests) / sizeof(requests[0]))];
	else
		req = (unsigned long)take(in, 4);
	if (int_arg(req)) {
		r = ioctl(fds[s], req, (unsigned long)take(in, 1) % 8);
	} else if (req == KVM_SET_SIGNAL_MASK && (take(in, 1) & 1)) {
		r = ioctl(fds[s], req, NULL);
	} else {
		memset(arg, 0, sizeof(arg));
		n = (size_t)take(in, 1) * 8;
		n = n < in->left ? n : in->left;
		memcpy(arg, in->p, n);
		in->p += n;
		in->left -= n;
		/*
		 * A dirty bitmap is written or read where the argument
		 * points: one of the guard pages (from the writable one a
		 * long copy runs into the read-only one), never a fuzzed
		 * address, which could be the fuzzer's own memory.
		 */
		if (req == KVM_GET_DIRTY_LOG || req == KVM_CLEAR_DIRTY_LOG) {
			void *bm = guard + (arg[0] % 3) * 4096;

			memcpy(arg + (req == KVM_GET_DIRTY_LOG ? 8 : 16), &bm,
			       sizeof(bm));
		}
		/* Memslots point at memory the guest never runs on. */
		r = ioctl(fds[s], req, arg);
	}
	/* New fds land in a slot; the old occupant is closed. */
	if (r >= 0 &&
	    (req == KVM_CREATE_VM || req == KVM_CREATE_VCPU ||
	     req == KVM_CREATE_GUEST_MEMFD || req == KVM_GET_STATS_FD))
		put_slot((s + 1) % SLOTS, r);
}

static void do_bad_arg(struct input *in, int s)
{
	unsigned long req = requests[take(in, 1) %
				     (sizeof(requests) / sizeof(requests[0]))];
	unsigned int kind = (unsigned int)take(in, 1);
	size_t n = (size_t)take(in, 1) % 64;
	void *p;
	int r;

	if (int_arg(req))
		return;
	switch (kind % 5) {
	case 0:
		p = guard + 2 * 4096;
		break;
	case 1:
		p = guard + 4096;
		break;
	case 2:
		/* n bytes from the input, then the read-only page. */
		p = guard + 4096 - n;
		memset(guard, 0, 4096);
		memcpy(p, in->p, n < in->left ? n : in->left);
		break;
	case 3:
		p = (void *)(uintptr_t)(take(in, 2) & ~7ull);
		break;
	default:
		p = (void *)(uintptr_t)0xffff800000000000ull;
		break;
	}
	r = ioctl(fds[s], req, p);
	if (r >= 0 &&
	    (req == KVM_CREATE_VM || req == KVM_CREATE_VCPU ||
	     req == KVM_CREATE_GUEST_MEMFD || req == KVM_GET_STATS_FD))
		put_slot((s + 1) % SLOTS, r);
}

/* A vCPU in 64-bit mode on 2 MiB at GPA 0, spinning at 0x10000. */
struct spinner {
	int kvm, vm, vcpu;
	uint8_t *mem;
	struct kvm_run *run;
	int r, err;
	int done;
};

static bool spin_setup(struct spinner *t, bool store)
{
	/* mov byte [0x20000], 1; jmp back to it (or only jmp $) */
	static const uint8_t code[] = {0xc6, 0x04, 0x25, 0x00, 0x00,
				       0x02, 0x00, 0x01, 0xeb, 0xf6};
	struct kvm_userspace_memory_region region = {
		.memory_size = 2 << 20,
	};
	struct kvm_sregs sregs;
	struct kvm_regs regs = {.rflags = 2, .rip = 0x10000};
	uint64_t *pt;

	t->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	t->vm = ioctl(t->kvm, KVM_CREATE_VM, 0);
	t->mem = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t->kvm < 0 || t->vm < 0 || t->mem == MAP_FAILED)
		return false;
	region.userspace_addr = (uintptr_t)t->mem;
	if (ioctl(t->vm, KVM_SET_USER_MEMORY_REGION, &region))
		return false;
	t->vcpu = ioctl(t->vm, KVM_CREATE_VCPU, 0);
	if (t->vcpu < 0)
		return false;
	t->run = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
		      t->vcpu, 0);
	if (t->run == MAP_FAILED)
		return false;
	pt = (uint64_t *)(t->mem + 0x1000);
	pt[0] = 0x2000 | 3;
	pt[512] = 0x3000 | 3;
	pt[1024] = 0x83;
	if (store)
		memcpy(t->mem + 0x10000, code, sizeof(code));
	else
		memcpy(t->mem + 0x10000, code + 8, 2);
	if (ioctl(t->vcpu, KVM_GET_SREGS, &sregs))
		return false;
	long_mode_sregs(&sregs, 0x80000011, 0x1000);
	return !ioctl(t->vcpu, KVM_SET_SREGS, &sregs) &&
	       !ioctl(t->vcpu, KVM_SET_REGS, &regs);
}

static void *spin_run(void *p)
{
	struct spinner *t = p;

	t->r = ioctl(t->vcpu, KVM_RUN, 0);
	t->err = errno;
	__atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Signal the thread in KVM_RUN until its run ends (a signal that comes
 * before it is inside is handled and kicks nothing), or take its memory
 * away: EINTR, or EFAULT for the memory.
 */
static void do_spin(struct input *in)
{
	unsigned int how = (unsigned int)take(in, 1) % 3;
	struct spinner t = {.kvm = -1, .vm = -1, .vcpu = -1};
	pthread_t th;

	if (!spin_setup(&t, how != 0) ||
	    pthread_create(&th, NULL, spin_run, &t))
		goto out;
	if (how == 0) {
		while (!__atomic_load_n(&t.done, __ATOMIC_ACQUIRE)) {
			pthread_kill(th, SIGUSR1);
			sched_yield();
		}
	} else {
		/* The guest's first store says it runs; then the page goes. */
		while (!__atomic_load_n(&t.mem[0x20000], __ATOMIC_ACQUIRE))
			sched_yield();
		if (how == 1)
			mprotect(t.mem + 0x20000, 4096, PROT_READ);
		else
			mprotect(t.mem + 0x20000, 4096, PROT_NONE);
	}
	pthread_join(th, NULL);
	if (t.r != -1 || t.err != (how == 0 ? EINTR : EFAULT)) {
		fprintf(stderr, "spinner: KVM_RUN %d errno %d (how %u)\n", t.r,
			t.err, how);
		abort();
	}
out:
	if (t.run && t.run != MAP_FAILED)
		munmap(t.run, 3 * 4096);
	if (t.mem && t.mem != MAP_FAILED)
		munmap(t.mem, 2 << 20);
	if (t.vcpu >= 0)
		close(t.vcpu);
	if (t.vm >= 0)
		close(t.vm);
	if (t.kvm >= 0)
		close(t.kvm);
}

static void do_run(struct input *in, int s)
{
	const size_t size = 3 * 4096; /* KVM_GET_VCPU_MMAP_SIZE on x86 */
	struct kvm_run *run;

	/* Only vCPU fds map; immediate_exit keeps random guests out. */
	run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[s], 0);
	if (run == MAP_FAILED)
		return;
	run->immediate_exit = 1;
	/* Sync regs: any bits, the state they load from the input. */
	run->kvm_valid_regs = take(in, 1) & 0xf;
	run->kvm_dirty_regs = take(in, 1) & 0xf;
	if (run->kvm_dirty_regs) {
		size_t n = in->left < sizeof(run->s.regs) ? in->left
							  : sizeof(run->s.regs);

		memcpy(&run->s.regs, in->p, n);
		in->p += n;
		in->left -= n;
	}
	if (take(in, 1) & 1)
		raise(SIGUSR1);
	ioctl(fds[s], KVM_RUN, 0);
	munmap(run, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	static bool init;
	struct stat st;
	char buf[256];
	int ops = 0, spun = 0;

	if (!init) {
		signal(SIGUSR1, on_signal);
		guard = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (guard == MAP_FAILED ||
		    mprotect(guard + 4096, 4096, PROT_READ) ||
		    mprotect(guard + 2 * 4096, 4096, PROT_NONE))
			return 0;
		init = true;
	}
	for (int i = 0; i < SLOTS; i++)
		fds[i] = -1;
	while (in.left && ops++ < 64) {
		unsigned int op = (unsigned int)take(&in, 1);
		int s = (int)(take(&in, 1) % SLOTS), t = (s + 1) % SLOTS;

		switch (op % 14) {
		case 0:
			put_slot(s, open("/dev/kvm", O_RDWR | O_CLOEXEC));
			break;
		case 1:
		case 2:
		case 3:
			do_ioctl(&in, s);
			break;
		case 4:
			put_slot(s, -1);
			break;
		case 5:
			put_slot(t, dup(fds[s]));
			break;
		case 6:
			/* dup2 onto another slot's fd: the kernel closes it. */
			if (fds[s] >= 0 && fds[t] >= 0 && fds[s] != fds[t] &&
			    dup2(fds[s], fds[t]) < 0)
				put_slot(t, -1);
			break;
		case 7:
			do_run(&in, s);
			break;
		case 8:
			fallocate(fds[s], (int)take(&in, 1) & 3,
				  (off_t)(take(&in, 2) << 12),
				  (off_t)(take(&in, 2) << 12));
			break;
		case 9:
			if (read(fds[s], buf, sizeof(buf)) < 0)
				(void)!write(fds[s], buf, take(&in, 1));
			(void)!pread(fds[s], buf, sizeof(buf),
				     (off_t)take(&in, 2) - 8);
			break;
		case 10:
			fstat(fds[s], &st);
			lseek(fds[s], (off_t)take(&in, 1),
			      (int)take(&in, 1) % 4);
			break;
		case 11:
			fcntl(fds[s], F_GETFD);
			break;
		case 12:
			do_bad_arg(&in, s);
			break;
		case 13:
			/* Costly (a VM, a thread): once per input. */
			if (!spun++)
				do_spin(&in);
			break;
		}
	}
	for (int i = 0; i < SLOTS; i++)
		put_slot(i, -1);
	return 0;
}
