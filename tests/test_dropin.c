// SPDX-License-Identifier: MIT
/*
 * The drop-in, from the point of view of a KVM program: this file uses no
 * gmem function, only open("/dev/kvm") and the system calls on the fds it
 * leads to, and runs itself under gmem-run (../gmem-run beside its build
 * directory).  It checks that gmem's fds are real fds that never collide
 * with the program's own, that the fd calls follow KVM's rules, that
 * signals kick KVM_RUN as in KVM, and what a forked child gets.
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <gmem/uapi.h>

#include "long_mode.h"
#include "tap.h"

#define MEM_SIZE (2UL << 20)
#define CODE_GPA 0x10000
#define FLAG_GPA 0x20000
#define PORT 0x10

struct vm {
	int kvm, vm, vcpu;
	uint8_t *mem;
	struct kvm_run *run;
};

static int kvm_open(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	REQUIRE(fd >= 0);
	return fd;
}

/* Identity-mapped 2 MiB, flat 64-bit segments, RIP at CODE_GPA. */
static void setup_long_mode(struct vm *v)
{
	uint64_t *pml4 = (uint64_t *)(v->mem + 0x1000);
	uint64_t *pdpt = (uint64_t *)(v->mem + 0x2000);
	uint64_t *pd = (uint64_t *)(v->mem + 0x3000);
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	pml4[0] = 0x2000 | 3;
	pdpt[0] = 0x3000 | 3;
	pd[0] = 0x0 | 0x83;	 /* 2 MiB, present, writable */
	pd[1] = 0x200000 | 0x83; /* no memslot behind: MMIO */
	REQUIRE(ioctl(v->vcpu, KVM_GET_SREGS, &sregs) == 0);
	long_mode_sregs(&sregs, 0x80000011, 0x1000);
	REQUIRE(ioctl(v->vcpu, KVM_SET_SREGS, &sregs) == 0);
	memset(&regs, 0, sizeof(regs));
	regs.rip = CODE_GPA;
	regs.rflags = 2;
	regs.rsp = 0x1f0000;
	REQUIRE(ioctl(v->vcpu, KVM_SET_REGS, &regs) == 0);
}

static void vm_create(struct vm *v, const uint8_t *code, size_t len)
{
	struct kvm_userspace_memory_region region;
	int size;

	v->kvm = kvm_open();
	v->vm = ioctl(v->kvm, KVM_CREATE_VM, 0);
	REQUIRE(v->vm >= 0);
	v->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(v->mem != MAP_FAILED);
	region = (struct kvm_userspace_memory_region){
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = MEM_SIZE,
		.userspace_addr = (uintptr_t)v->mem};
	REQUIRE(ioctl(v->vm, KVM_SET_USER_MEMORY_REGION, &region) == 0);
	memcpy(v->mem + CODE_GPA, code, len);
	v->vcpu = ioctl(v->vm, KVM_CREATE_VCPU, 0);
	REQUIRE(v->vcpu >= 0);
	size = ioctl(v->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	REQUIRE(size > 0);
	v->run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      v->vcpu, 0);
	REQUIRE(v->run != MAP_FAILED);
	setup_long_mode(v);
}

static void vm_destroy(struct vm *v)
{
	munmap(v->run, (size_t)ioctl(v->kvm, KVM_GET_VCPU_MMAP_SIZE, 0));
	CHECK_EQ(close(v->vcpu), 0);
	CHECK_EQ(close(v->vm), 0);
	CHECK_EQ(close(v->kvm), 0);
	munmap(v->mem, MEM_SIZE);
}

/* mov al, 0x42; out PORT, al; hlt */
static const uint8_t code_out[] = {0xb0, 0x42, 0xe6, PORT, 0xf4};
/* mov byte [FLAG_GPA], 1; jmp $ */
static const uint8_t code_spin[] = {0xc6, 0x04, 0x25, 0x00, 0x00,
				    0x02, 0x00, 0x01, 0xeb, 0xfe};

/* mov rax, [FLAG_GPA]; mov [FLAG_GPA + 8], rax; out PORT, al; hlt */
static const uint8_t code_copy[] = {0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x02,
				    0x00, 0x48, 0x89, 0x04, 0x25, 0x08, 0x00,
				    0x02, 0x00, 0xe6, PORT, 0xf4};

static bool readlink_has(int fd, const char *what)
{
	char path[64], buf[256];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return false;
	buf[n] = 0;
	return strstr(buf, what) != NULL;
}

static void test_real_fds(void)
{
	int kvm = kvm_open(), plain = open("/dev/kvm", O_RDWR);
	struct stat st;

	CHECK(kvm >= 0 && plain >= 0 && kvm != plain);
	CHECK_EQ(ioctl(kvm, KVM_GET_API_VERSION, 0), KVM_API_VERSION);
	CHECK_EQ(fcntl(kvm, F_GETFD), FD_CLOEXEC);
	CHECK_EQ(fcntl(plain, F_GETFD), 0);
	CHECK(readlink_has(kvm, "gmem:/dev/kvm"));
	CHECK_EQ(fstat(kvm, &st), 0);
	CHECK(S_ISCHR(st.st_mode));
	CHECK_EQ(major(st.st_rdev), 10);
	CHECK_EQ(minor(st.st_rdev), 232);
	CHECK_EQ(access("/dev/kvm", R_OK | W_OK), 0);
	CHECK_EQ(close(plain), 0);
	CHECK_EQ(close(kvm), 0);
	CHECK_ERRNO(ioctl(kvm, KVM_GET_API_VERSION, 0), EBADF);
	tap_result("/dev/kvm opens as a real fd, closes like one");
}

static void test_no_collision(void)
{
	int kvm = kvm_open(), p[2];
	char c = 0;

	CHECK_EQ(close(kvm), 0);
	/* The kernel hands the number out again: it is the program's now. */
	REQUIRE(pipe(p) == 0);
	CHECK(p[0] == kvm || p[1] == kvm);
	CHECK_ERRNO(ioctl(p[0], KVM_GET_API_VERSION, 0), ENOTTY);
	CHECK_EQ(write(p[1], "x", 1), 1);
	CHECK_EQ(read(p[0], &c, 1), 1);
	CHECK_EQ(c, 'x');
	CHECK_EQ(close(p[0]), 0);
	CHECK_EQ(close(p[1]), 0);
	CHECK_ERRNO(ioctl(-1, KVM_GET_API_VERSION, 0), EBADF);
	tap_result("a closed gmem fd's number goes back to the program");
}

static void test_dup(void)
{
	int kvm = kvm_open(), d, d2, d3, p[2];

	REQUIRE(pipe(p) == 0);
	d = dup(kvm);
	CHECK(d >= 0);
	CHECK_EQ(close(kvm), 0);
	CHECK_EQ(ioctl(d, KVM_GET_API_VERSION, 0), KVM_API_VERSION);
	/* dup2 over the program's pipe end: now a /dev/kvm fd. */
	CHECK_EQ(dup2(d, p[0]), p[0]);
	CHECK_EQ(ioctl(p[0], KVM_GET_API_VERSION, 0), KVM_API_VERSION);
	/* And back: dup2 of a pipe over a gmem fd makes it a pipe. */
	CHECK_EQ(dup2(p[1], p[0]), p[0]);
	CHECK_ERRNO(ioctl(p[0], KVM_GET_API_VERSION, 0), ENOTTY);
	d2 = fcntl(d, F_DUPFD_CLOEXEC, 100);
	CHECK(d2 >= 100);
	CHECK_EQ(fcntl(d2, F_GETFD), FD_CLOEXEC);
	CHECK_EQ(ioctl(d2, KVM_GET_API_VERSION, 0), KVM_API_VERSION);
	d3 = dup3(d, 200, O_CLOEXEC);
	CHECK_EQ(d3, 200);
	CHECK_EQ(ioctl(d3, KVM_GET_API_VERSION, 0), KVM_API_VERSION);
	CHECK_EQ(close_range((unsigned)d2, (unsigned)d3, 0), 0);
	CHECK_ERRNO(ioctl(d2, KVM_GET_API_VERSION, 0), EBADF);
	CHECK_ERRNO(ioctl(d3, KVM_GET_API_VERSION, 0), EBADF);
	CHECK_EQ(ioctl(d, KVM_GET_API_VERSION, 0), KVM_API_VERSION);
	CHECK_EQ(close(d), 0);
	CHECK_EQ(close(p[0]), 0);
	CHECK_EQ(close(p[1]), 0);
	tap_result("dup, dup2, dup3, F_DUPFD_CLOEXEC and close_range follow");
}

static void test_guest_memfd(void)
{
	int kvm = kvm_open(), vm, gfd;
	struct kvm_create_guest_memfd g = {.size = 4 << 20};
	struct kvm_userspace_memory_region2 r2;
	struct statx stx;
	struct stat st;
	char buf[8];
	void *mem;

	vm = ioctl(kvm, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
	REQUIRE(vm >= 0);
	gfd = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &g);
	REQUIRE(gfd >= 0);
	CHECK_EQ(fcntl(gfd, F_GETFD), 0); /* KVM: no close-on-exec */
	CHECK_EQ(fstat(gfd, &st), 0);
	CHECK(S_ISREG(st.st_mode));
	CHECK_EQ(st.st_size, 4 << 20);
	CHECK_EQ(statx(gfd, "", AT_EMPTY_PATH, STATX_SIZE, &stx), 0);
	CHECK_EQ(stx.stx_size, 4 << 20);
	CHECK_ERRNO(read(gfd, buf, sizeof(buf)), EINVAL);
	CHECK_ERRNO(write(gfd, buf, sizeof(buf)), EINVAL);
	CHECK_ERRNO(pread(gfd, buf, sizeof(buf), 0), EINVAL);
	CHECK_ERRNO(ftruncate(gfd, 8 << 20), EINVAL);
	CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, gfd, 0) == MAP_FAILED);
	CHECK_EQ(errno, ENODEV);
	CHECK_EQ(fallocate(gfd, FALLOC_FL_KEEP_SIZE, 0, 1 << 20), 0);
	CHECK_EQ(fallocate(gfd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0,
			   1 << 20),
		 0);
	CHECK_ERRNO(fallocate(gfd, 0, 0, 4096), EOPNOTSUPP);
	/* The fd number inside the ioctl argument is the real one. */
	mem = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(mem != MAP_FAILED);
	r2 = (struct kvm_userspace_memory_region2){
		.slot = 1,
		.flags = KVM_MEM_GUEST_MEMFD,
		.guest_phys_addr = 1ULL << 32,
		.memory_size = 4 << 20,
		.userspace_addr = (uintptr_t)mem,
		.guest_memfd = (uint32_t)gfd};
	CHECK_EQ(ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &r2), 0);
	r2.slot = 2;
	r2.guest_phys_addr = 2ULL << 32;
	r2.guest_memfd = (uint32_t)kvm;
	CHECK_ERRNO(ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &r2), EINVAL);
	/* An fd of the program's that is no guest_memfd, then no fd at all. */
	r2.guest_memfd = (uint32_t)memfd_create("not-gmem", MFD_CLOEXEC);
	CHECK_ERRNO(ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &r2), EINVAL);
	close((int)r2.guest_memfd);
	CHECK_ERRNO(ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &r2), EBADF);
	CHECK_EQ(close(gfd), 0);
	CHECK_EQ(close(vm), 0);
	CHECK_EQ(close(kvm), 0);
	munmap(mem, 4 << 20);
	tap_result("guest_memfd: fstat, statx, fallocate, no read/write/mmap");
}

static void test_run_io(void)
{
	struct vm v;

	vm_create(&v, code_out, sizeof(code_out));
	CHECK(readlink_has(v.vcpu, "gmem:kvm-vcpu"));
	/* kvm_run, the PIO page and the coalesced-MMIO page, as on x86. */
	CHECK_EQ(ioctl(v.kvm, KVM_GET_VCPU_MMAP_SIZE, 0), 3 * 4096);
	CHECK_EQ(ioctl(v.vcpu, KVM_RUN, 0), 0);
	CHECK_EQ(v.run->exit_reason, KVM_EXIT_IO);
	CHECK_EQ(v.run->io.port, PORT);
	CHECK_EQ(v.run->io.direction, KVM_EXIT_IO_OUT);
	CHECK_EQ(*((uint8_t *)v.run + v.run->io.data_offset), 0x42);
	CHECK_EQ(ioctl(v.vcpu, KVM_RUN, 0), 0);
	CHECK_EQ(v.run->exit_reason, KVM_EXIT_HLT);
	vm_destroy(&v);
	tap_result("KVM_RUN through the mmap'd kvm_run of a vCPU fd");
}

static volatile sig_atomic_t handled;
/* What on_signal() sees of the vCPU when it has one to look at. */
static struct vm *sig_vm;
static volatile sig_atomic_t sig_exit_reason = -1, sig_regs_r = -1;

static void on_signal(int sig)
{
	struct kvm_regs regs;

	handled++;
	if (sig_vm) {
		sig_exit_reason = sig_vm->run->exit_reason;
		sig_regs_r = ioctl(sig_vm->vcpu, KVM_GET_REGS, &regs);
	}
}

struct runner {
	struct vm *v;
	int r, err;
};

static void *run_thread(void *arg)
{
	struct runner *t = arg;

	t->r = ioctl(t->v->vcpu, KVM_RUN, 0);
	t->err = errno;
	return NULL;
}

static void test_signal_kick(void)
{
	struct sigaction sa = {.sa_handler = on_signal}, old;
	struct runner t;
	pthread_t th;
	struct vm v;

	sigemptyset(&sa.sa_mask);
	REQUIRE(sigaction(SIGUSR1, &sa, NULL) == 0);
	/* What the program installed reads back, not the trampoline. */
	CHECK_EQ(sigaction(SIGUSR1, &sa, &old), 0);
	CHECK(old.sa_handler == on_signal);
	vm_create(&v, code_spin, sizeof(code_spin));
	handled = 0;
	sig_vm = &v;
	t.v = &v;
	REQUIRE(pthread_create(&th, NULL, run_thread, &t) == 0);
	/* The guest stores the flag from inside KVM_RUN, then spins. */
	while (!__atomic_load_n(&v.mem[FLAG_GPA], __ATOMIC_ACQUIRE))
		sched_yield();
	REQUIRE(pthread_kill(th, SIGUSR1) == 0);
	pthread_join(th, NULL);
	CHECK_EQ(t.r, -1);
	CHECK_EQ(t.err, EINTR);
	CHECK_EQ(v.run->exit_reason, KVM_EXIT_INTR);
	CHECK_EQ(handled, 1);
	/* As in KVM, the handler ran once KVM_RUN had returned. */
	CHECK_EQ(sig_exit_reason, KVM_EXIT_INTR);
	CHECK_EQ(sig_regs_r, 0);
	sig_vm = NULL;
	vm_destroy(&v);
	signal(SIGUSR1, SIG_DFL);
	tap_result("a signal to a thread in KVM_RUN: EINTR, KVM_EXIT_INTR, "
		   "the handler runs after KVM_RUN returns, vCPU ioctls work");
}

static void test_signal_mask(void)
{
	struct sigaction sa = {.sa_handler = on_signal};
	/* As the selftests build it: len, then the kernel's 8-byte set. */
	union {
		struct kvm_signal_mask m;
		uint8_t bytes[sizeof(struct kvm_signal_mask) + 8];
	} km = {.m.len = 8};
	uint64_t set = 0;
	sigset_t block, old, pending;
	struct vm v;
	int sig = 0;

	sigemptyset(&sa.sa_mask);
	REQUIRE(sigaction(SIGUSR2, &sa, NULL) == 0);
	vm_create(&v, code_out, sizeof(code_out));
	km.m.len = 7;
	CHECK_ERRNO(ioctl(v.vcpu, KVM_SET_SIGNAL_MASK, &km), EINVAL);
	km.m.len = 8;
	CHECK_EQ(ioctl(v.vcpu, KVM_SET_SIGNAL_MASK, &km), 0);
	/*
	 * Pending and blocked outside KVM_RUN, let through inside it: the
	 * run ends before the guest runs, and, as in KVM, the signal is
	 * still pending and blocked when KVM_RUN returns (dirty_log_test
	 * takes it with sigwait()).  Until it is taken, every run so ends.
	 */
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	handled = 0;
	raise(SIGUSR2);
	CHECK_EQ(handled, 0);
	CHECK_ERRNO(ioctl(v.vcpu, KVM_RUN, 0), EINTR);
	CHECK_EQ(v.run->exit_reason, KVM_EXIT_INTR);
	CHECK_EQ(handled, 0);
	CHECK(sigpending(&pending) == 0 && sigismember(&pending, SIGUSR2));
	CHECK_ERRNO(ioctl(v.vcpu, KVM_RUN, 0), EINTR);
	CHECK(sigwait(&block, &sig) == 0 && sig == SIGUSR2);
	CHECK_EQ(handled, 0);
	/* The guest did not run: its first instruction exits with I/O. */
	CHECK_EQ(ioctl(v.vcpu, KVM_RUN, 0), 0);
	CHECK_EQ(v.run->exit_reason, KVM_EXIT_IO);
	/* A mask that blocks it keeps it pending across the run. */
	set = 1ULL << (SIGUSR2 - 1);
	memcpy(km.m.sigset, &set, sizeof(set));
	CHECK_EQ(ioctl(v.vcpu, KVM_SET_SIGNAL_MASK, &km), 0);
	raise(SIGUSR2);
	CHECK_EQ(ioctl(v.vcpu, KVM_RUN, 0), 0);
	CHECK_EQ(v.run->exit_reason, KVM_EXIT_HLT);
	CHECK_EQ(handled, 0);
	CHECK_EQ(ioctl(v.vcpu, KVM_SET_SIGNAL_MASK, NULL), 0);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	CHECK_EQ(handled, 1);
	vm_destroy(&v);
	signal(SIGUSR2, SIG_DFL);
	tap_result("KVM_SET_SIGNAL_MASK: a pending signal it lets through "
		   "ends KVM_RUN and stays pending; one it blocks waits");
}

static void test_fork(void)
{
	int kvm = kvm_open(), vm, st;
	pid_t pid;

	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	REQUIRE(vm >= 0);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		int ok = 1, vm2;

		ok &= ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) ==
			      -1 &&
		      errno == EIO;
		ok &= ioctl(kvm, KVM_GET_API_VERSION, 0) == KVM_API_VERSION;
		vm2 = ioctl(kvm, KVM_CREATE_VM, 0);
		ok &= vm2 >= 0 &&
		      ioctl(vm2, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) == 1;
		ok &= close(vm) == 0 && close(vm2) == 0;
		_exit(ok ? 0 : 1);
	}
	REQUIRE(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_EQ(ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY), 1);
	CHECK_EQ(close(vm), 0);
	CHECK_EQ(close(kvm), 0);
	tap_result("a forked child: EIO from the parent's VM, its own works");
}

static void test_params(void)
{
	char buf[16] = {0};
	int fd;

	fd = open("/sys/module/kvm/parameters/tdp_mmu", O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(read(fd, buf, sizeof(buf)), 2);
	CHECK(!strcmp(buf, "Y\n"));
	CHECK_EQ(close(fd), 0);
	CHECK_ERRNO(open("/sys/module/kvm/parameters/tdp_mmu", O_RDWR), EACCES);
	CHECK_ERRNO(open("/sys/module/kvm/parameters/no_such", O_RDONLY),
		    ENOENT);
	tap_result("/sys/module/kvm/parameters answer gmem's configuration");
}

/* The value of stat @name in stats file @fd, or -1. */
static long long stat_value(int fd, const char *name)
{
	struct kvm_stats_header h;
	char buf[16 + KVM_STATS_NAME_SIZE];
	struct kvm_stats_desc *d = (struct kvm_stats_desc *)buf;
	uint64_t v;

	if (pread(fd, &h, sizeof(h), 0) != sizeof(h) ||
	    h.name_size != KVM_STATS_NAME_SIZE)
		return -1;
	for (uint32_t i = 0; i < h.num_desc; i++) {
		off_t at = h.desc_offset + i * (off_t)sizeof(buf);

		if (pread(fd, buf, sizeof(buf), at) != sizeof(buf))
			return -1;
		if (strcmp(d->name, name))
			continue;
		if (pread(fd, &v, 8, h.data_offset + d->offset) != 8)
			return -1;
		return (long long)v;
	}
	return -1;
}

static void test_stats(void)
{
	struct kvm_stats_header h, h2;
	char id[KVM_STATS_NAME_SIZE], want[64];
	int vmfd, vcpufd, d;
	struct vm v;

	vm_create(&v, code_out, sizeof(code_out));
	CHECK_EQ(ioctl(v.kvm, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD), 1);
	vmfd = ioctl(v.vm, KVM_GET_STATS_FD, 0);
	vcpufd = ioctl(v.vcpu, KVM_GET_STATS_FD, 0);
	REQUIRE(vmfd >= 0 && vcpufd >= 0);
	CHECK_EQ(fcntl(vcpufd, F_GETFD), FD_CLOEXEC);
	/* read() walks the file; a dup shares the position. */
	CHECK_EQ(read(vmfd, &h, sizeof(h)), sizeof(h));
	d = dup(vmfd);
	CHECK_EQ(read(d, id, sizeof(id)), sizeof(id));
	snprintf(want, sizeof(want), "kvm-%d", (int)getpid());
	CHECK(!strcmp(id, want));
	CHECK_EQ(lseek(d, 0, SEEK_SET), 0);
	CHECK_EQ(read(vmfd, &h2, sizeof(h2)), sizeof(h2));
	CHECK(!memcmp(&h, &h2, sizeof(h)));
	CHECK_EQ(h.id_offset % 8, 0);
	CHECK_EQ(h.desc_offset % 8, 0);
	CHECK_EQ(h.data_offset % 8, 0);
	/* readv and preadv fill one buffer after another, as read does. */
	struct kvm_stats_header h3;
	char id3[KVM_STATS_NAME_SIZE];
	struct iovec iov[2] = {{&h3, sizeof(h3)}, {id3, sizeof(id3)}};
	CHECK_EQ(lseek(d, 0, SEEK_SET), 0);
	CHECK_EQ(readv(d, iov, 2), sizeof(h3) + sizeof(id3));
	CHECK(!memcmp(&h3, &h, sizeof(h)) && !strcmp(id3, want));
	memset(id3, 0, sizeof(id3));
	CHECK_EQ(preadv(vmfd, &iov[1], 1, sizeof(h)), sizeof(id3));
	CHECK(!strcmp(id3, want));
	CHECK_ERRNO(readv(v.vm, iov, 2), EINVAL);
	CHECK_ERRNO(write(vmfd, &h, sizeof(h)), EINVAL);
	CHECK_ERRNO(pread(vmfd, &h, sizeof(h), -1), EINVAL);
	CHECK_EQ(pread(vcpufd, id, sizeof(id), sizeof(h)), sizeof(id));
	snprintf(want, sizeof(want), "kvm-%d/vcpu-0", (int)getpid());
	CHECK(!strcmp(id, want));
	CHECK_EQ(stat_value(vcpufd, "io_exits"), 0);
	CHECK_EQ(ioctl(v.vcpu, KVM_RUN, 0), 0);
	CHECK_EQ(stat_value(vcpufd, "io_exits"), 1);
	CHECK_EQ(stat_value(vcpufd, "exits"), 1);
	CHECK_EQ(ioctl(v.vcpu, KVM_RUN, 0), 0);
	CHECK_EQ(stat_value(vcpufd, "halt_exits"), 1);
	CHECK(stat_value(vmfd, "pages_4k") + stat_value(vmfd, "pages_2m") > 0);
	/* The vCPU's stats outlive its fd, as a KVM vCPU outlives it. */
	vm_destroy(&v);
	CHECK_EQ(stat_value(vcpufd, "exits"), 2);
	CHECK_EQ(close(d), 0);
	CHECK_EQ(close(vmfd), 0);
	CHECK_EQ(close(vcpufd), 0);
	tap_result("KVM_GET_STATS_FD: KVM's format, names and counts");
}

static void test_pre_fault(void)
{
	struct kvm_pre_fault_memory r = {.gpa = 0x100000, .size = 0x100000};
	struct vm v;

	vm_create(&v, code_out, sizeof(code_out));
	CHECK_EQ(ioctl(v.kvm, KVM_CHECK_EXTENSION, KVM_CAP_PRE_FAULT_MEMORY),
		 1);
	/* The upper 1 MiB of the slot: done, the range updated to empty. */
	CHECK_EQ(ioctl(v.vcpu, KVM_PRE_FAULT_MEMORY, &r), 0);
	CHECK_EQ(r.gpa, MEM_SIZE);
	CHECK_EQ(r.size, 0);
	/* Running into the end of the slot: what was mapped counts. */
	r = (struct kvm_pre_fault_memory){.gpa = MEM_SIZE - 4096, .size = 8192};
	CHECK_EQ(ioctl(v.vcpu, KVM_PRE_FAULT_MEMORY, &r), 0);
	CHECK_EQ(r.gpa, MEM_SIZE);
	CHECK_EQ(r.size, 4096);
	/* Nothing mapped at all: no memslot there. */
	CHECK_ERRNO(ioctl(v.vcpu, KVM_PRE_FAULT_MEMORY, &r), ENOENT);
	CHECK_EQ(r.size, 4096);
	r.flags = 1;
	CHECK_ERRNO(ioctl(v.vcpu, KVM_PRE_FAULT_MEMORY, &r), EINVAL);
	r = (struct kvm_pre_fault_memory){.gpa = 4096, .size = 100};
	CHECK_ERRNO(ioctl(v.vcpu, KVM_PRE_FAULT_MEMORY, &r), EINVAL);
	r = (struct kvm_pre_fault_memory){.gpa = -4096ULL, .size = 8192};
	CHECK_ERRNO(ioctl(v.vcpu, KVM_PRE_FAULT_MEMORY, &r), EINVAL);
	CHECK_ERRNO(ioctl(v.vcpu, KVM_PRE_FAULT_MEMORY, NULL), EFAULT);
	vm_destroy(&v);
	tap_result(
		"KVM_PRE_FAULT_MEMORY: ranges, ENOENT past the slot, EINVAL");
}

static void test_coalesced(void)
{
	/* out 0x10, al (al = 0x42); mov dword [0x300000], 0x11223344; hlt */
	static const uint8_t code[] = {0xb0, 0x42, 0xe6, PORT, 0xc7, 0x04,
				       0x25, 0x00, 0x00, 0x30, 0x00, 0x44,
				       0x33, 0x22, 0x11, 0xf4};
	struct kvm_coalesced_mmio_zone mmio = {.addr = 0x300000, .size = 8};
	struct kvm_coalesced_mmio_zone pio = {
		.addr = PORT, .size = 1, .pio = 1};
	struct kvm_coalesced_mmio_ring *ring;
	struct vm v;

	vm_create(&v, code, sizeof(code));
	CHECK_EQ(ioctl(v.kvm, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_MMIO), 2);
	CHECK_EQ(ioctl(v.kvm, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_PIO), 1);
	CHECK_EQ(ioctl(v.vm, KVM_REGISTER_COALESCED_MMIO, &mmio), 0);
	CHECK_EQ(ioctl(v.vm, KVM_REGISTER_COALESCED_MMIO, &pio), 0);
	pio.pio = 2;
	CHECK_ERRNO(ioctl(v.vm, KVM_REGISTER_COALESCED_MMIO, &pio), EINVAL);
	pio.pio = 1;
	ring = (void *)((uint8_t *)v.run + 2 * 4096);
	/* Both writes land in the ring; the HLT is the first exit. */
	CHECK_EQ(ioctl(v.vcpu, KVM_RUN, 0), 0);
	CHECK_EQ(v.run->exit_reason, KVM_EXIT_HLT);
	CHECK_EQ(ring->first, 0);
	CHECK_EQ(ring->last, 2);
	CHECK_EQ(ring->coalesced_mmio[0].phys_addr, PORT);
	CHECK_EQ(ring->coalesced_mmio[0].len, 1);
	CHECK_EQ(ring->coalesced_mmio[0].pio, 1);
	CHECK_EQ(ring->coalesced_mmio[0].data[0], 0x42);
	CHECK_EQ(ring->coalesced_mmio[1].phys_addr, 0x300000);
	CHECK_EQ(ring->coalesced_mmio[1].len, 4);
	CHECK_EQ(ring->coalesced_mmio[1].pio, 0);
	CHECK_EQ(*(uint32_t *)ring->coalesced_mmio[1].data, 0x11223344);
	/* Unregistered: the same code exits for each write again. */
	CHECK_EQ(ioctl(v.vm, KVM_UNREGISTER_COALESCED_MMIO, &mmio), 0);
	CHECK_EQ(ioctl(v.vm, KVM_UNREGISTER_COALESCED_MMIO, &pio), 0);
	setup_long_mode(&v);
	CHECK_EQ(ioctl(v.vcpu, KVM_RUN, 0), 0);
	CHECK_EQ(v.run->exit_reason, KVM_EXIT_IO);
	CHECK_EQ(ioctl(v.vcpu, KVM_RUN, 0), 0);
	CHECK_EQ(v.run->exit_reason, KVM_EXIT_MMIO);
	CHECK_EQ(v.run->mmio.phys_addr, 0x300000);
	CHECK_EQ(ring->last, 2);
	vm_destroy(&v);
	tap_result("coalesced MMIO and PIO: writes in a zone go to the ring");
}

static void test_sregs(void)
{
	struct kvm_sregs s, bad, back;
	struct kvm_regs regs;
	int kvm = kvm_open(), vm, vcpu;

	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	REQUIRE(vm >= 0 && vcpu >= 0);
	/* KVM's reset state: real mode at F000:FFF0, the APIC on, BSP. */
	CHECK_EQ(ioctl(vcpu, KVM_GET_SREGS, &s), 0);
	CHECK_EQ(s.cr0, 0x60000010);
	CHECK_EQ(s.efer, 0);
	CHECK_EQ(s.cs.selector, 0xf000);
	CHECK_EQ(s.cs.base, 0xffff0000);
	CHECK_EQ(s.apic_base, 0xfee00900);
	CHECK_EQ(ioctl(vcpu, KVM_GET_REGS, &regs), 0);
	CHECK_EQ(regs.rip, 0xfff0);
	CHECK_EQ(regs.rflags, 2);
	/* kvm_is_valid_sregs(): each refused, nothing changed. */
	const struct {
		uint64_t cr0, cr4, efer, apic_base;
	} refused[] = {
		{.cr4 = 1 << 11},		     /* UMIP: not in CPUID */
		{.cr4 = 1 << 13},		     /* VMXE: no VMX in CPUID */
		{.cr0 = 1ULL << 32},		     /* reserved CR0 bit */
		{.cr0 = 1ULL << 29},		     /* NW without CD */
		{.cr0 = 1ULL << 31},		     /* PG without PE */
		{.efer = 1 << 10},		     /* LMA without paging */
		{.apic_base = 0xfee00000 | 1 << 10}, /* x2APIC, xAPIC off */
		{.apic_base = 0xfee00001},	     /* reserved bit */
	};
	for (size_t i = 0; i < ARRAY_LEN(refused); i++) {
		bad = s;
		bad.cr0 = refused[i].cr0 ? refused[i].cr0 : s.cr0;
		bad.cr4 = refused[i].cr4;
		bad.efer = refused[i].efer;
		bad.apic_base = refused[i].apic_base ? refused[i].apic_base
						     : s.apic_base;
		CHECK_ERRNO(ioctl(vcpu, KVM_SET_SREGS, &bad), EINVAL);
		CHECK_EQ(ioctl(vcpu, KVM_GET_SREGS, &back), 0);
		CHECK(!memcmp(&back, &s, sizeof(s)));
	}
	/* Every CR4 bit the supported CPUID allows is accepted. */
	bad = s;
	bad.cr0 = 0;
	bad.cr4 = 0x7ff | 1 << 18 | 1 << 20 | 1 << 21; /* OSXSAVE SMEP SMAP */
	CHECK_EQ(ioctl(vcpu, KVM_SET_SREGS, &bad), 0);
	CHECK_EQ(close(vcpu), 0);
	CHECK_EQ(close(vm), 0);
	CHECK_EQ(close(kvm), 0);
	tap_result("KVM_SET_SREGS: KVM's reset state, and what it refuses");
}

/* struct kvm_msrs with room for one entry. */
union msrs1 {
	struct kvm_msrs h;
	uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
};

static int msr_ioctl(int vcpu, unsigned long req, uint32_t index, uint64_t *v)
{
	union msrs1 m = {.h.nmsrs = 1};
	int r;

	m.h.entries[0].index = index;
	m.h.entries[0].data = *v;
	r = ioctl(vcpu, req, &m);
	*v = m.h.entries[0].data;
	return r;
}

static uint64_t get_msr(int vcpu, uint32_t index)
{
	uint64_t v = 0;

	REQUIRE(msr_ioctl(vcpu, KVM_GET_MSRS, index, &v) == 1);
	return v;
}

static void set_msr(int vcpu, uint32_t index, uint64_t v)
{
	REQUIRE(msr_ioctl(vcpu, KVM_SET_MSRS, index, &v) == 1);
}

static void test_tsc(void)
{
	const uint64_t far = 1ULL << 50;
	int kvm = kvm_open(), vm, v0, v1;

	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	v0 = ioctl(vm, KVM_CREATE_VCPU, 0);
	REQUIRE(vm >= 0 && v0 >= 0);
	/* A new VM's TSC counts from 0, not from the host's clock. */
	CHECK(get_msr(v0, 0x10) < far);
	/* The VMM's write is the VM's: a vCPU created next matches it. */
	set_msr(v0, 0x10, far);
	v1 = ioctl(vm, KVM_CREATE_VCPU, 1);
	REQUIRE(v1 >= 0);
	CHECK(get_msr(v1, 0x10) >= far);
	CHECK(get_msr(v1, 0x10) < 2 * far);
	/* The host sets IA32_TSC_ADJUST alone; the TSC does not move. */
	set_msr(v1, 0x3b, far);
	CHECK_EQ(get_msr(v1, 0x3b), far);
	CHECK(get_msr(v1, 0x10) < 2 * far);
	/* MSR_K7_HWCR: two bits kept, three dropped, the rest refused. */
	uint64_t bit0 = 1;
	CHECK_EQ(msr_ioctl(v1, KVM_SET_MSRS, 0xc0010015, &bit0), 0);
	set_msr(v1, 0xc0010015, 1 << 18 | 1 << 3);
	CHECK_EQ(get_msr(v1, 0xc0010015), 1 << 18);
	CHECK_EQ(close(v1), 0);
	CHECK_EQ(close(v0), 0);
	CHECK_EQ(close(vm), 0);
	CHECK_EQ(close(kvm), 0);
	tap_result(
		"the TSC: 0 at creation, the VMM's write shared, TSC_ADJUST");
}

/* Run under gmem-run, which sits beside this program's directory. */
static void reexec(char **argv)
{
	char self[PATH_MAX], run[PATH_MAX + 16];
	ssize_t n;

	if (getenv("GMEM_RUN"))
		return;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	REQUIRE(n > 0);
	self[n] = 0;
	*strrchr(self, '/') = 0;
	snprintf(run, sizeof(run), "%s/../gmem-run", self);
	execv(run, (char *[]){run, argv[0], NULL});
	printf("Bail out! exec %s: %s\n", run, strerror(errno));
	exit(1);
}

static volatile int own_faults;
static uint8_t *volatile own_page;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	if (si->si_addr == own_page)
		own_faults++;
	mprotect(own_page, 4096, PROT_READ | PROT_WRITE);
}

/* KVM_RUN on memory the program took away: EFAULT, never a SIGSEGV. */
static void test_bad_hva(void)
{
	struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO},
			 old;
	uint8_t *flag;
	struct vm v;

	sigemptyset(&sa.sa_mask);
	REQUIRE(sigaction(SIGSEGV, &sa, NULL) == 0);
	CHECK_EQ(sigaction(SIGSEGV, NULL, &old), 0);
	CHECK(old.sa_sigaction == on_segv);
	vm_create(&v, code_copy, sizeof(code_copy));
	flag = v.mem + FLAG_GPA;
	flag[0] = 0x5a;
	REQUIRE(mprotect(flag, 4096, PROT_NONE) == 0);
	CHECK_EQ(ioctl(v.vcpu, KVM_RUN, 0), -1);
	CHECK_EQ(errno, EFAULT);
	CHECK_EQ(v.run->exit_reason, KVM_EXIT_MEMORY_FAULT);
	CHECK_EQ(v.run->memory_fault.gpa, FLAG_GPA);
	CHECK_EQ(v.run->memory_fault.size, 4096);
	CHECK_EQ(v.run->memory_fault.flags, 0);
	/* Readable now, but the store faults: the load is done again. */
	REQUIRE(mprotect(flag, 4096, PROT_READ) == 0);
	CHECK_EQ(ioctl(v.vcpu, KVM_RUN, 0), -1);
	CHECK_EQ(errno, EFAULT);
	CHECK_EQ(v.run->memory_fault.gpa, FLAG_GPA);
	REQUIRE(mprotect(flag, 4096, PROT_READ | PROT_WRITE) == 0);
	CHECK_EQ(ioctl(v.vcpu, KVM_RUN, 0), 0);
	CHECK_EQ(v.run->exit_reason, KVM_EXIT_IO);
	CHECK_EQ(*((uint8_t *)v.run + v.run->io.data_offset), 0x5a);
	CHECK_EQ(flag[8], 0x5a);
	/* Never mapped (a hole in the slot), then mapped again. */
	{
		struct kvm_regs regs;

		REQUIRE(ioctl(v.vcpu, KVM_GET_REGS, &regs) == 0);
		regs.rip = CODE_GPA;
		REQUIRE(ioctl(v.vcpu, KVM_SET_REGS, &regs) == 0);
		REQUIRE(munmap(flag, 4096) == 0);
		CHECK_EQ(ioctl(v.vcpu, KVM_RUN, 0), -1);
		CHECK_EQ(errno, EFAULT);
		CHECK_EQ(v.run->memory_fault.gpa, FLAG_GPA);
		REQUIRE(mmap(flag, 4096, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
			     0) == flag);
		flag[0] = 0x6b;
		CHECK_EQ(ioctl(v.vcpu, KVM_RUN, 0), 0);
		CHECK_EQ(v.run->exit_reason, KVM_EXIT_IO);
		CHECK_EQ(*((uint8_t *)v.run + v.run->io.data_offset), 0x6b);
	}
	CHECK_EQ(own_faults, 0);
	tap_result("KVM_RUN on PROT_NONE, read-only and unmapped slot memory: "
		   "EFAULT with the page; repaired, the guest goes on");

	/* The program's own faults still reach its handler. */
	own_page =
		mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(own_page != MAP_FAILED);
	*(volatile uint8_t *)own_page = 1;
	CHECK_EQ(own_faults, 1);
	CHECK_EQ(own_page[0], 1);
	munmap(own_page, 4096);
	vm_destroy(&v);
	signal(SIGSEGV, SIG_DFL);
	tap_result("the program's SIGSEGV handler gets its own faults");
}

static void *unmap_flag(void *arg)
{
	uint8_t *flag = arg;

	/* The guest stores 1 there from inside KVM_RUN, again and again. */
	while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE))
		sched_yield();
	REQUIRE(munmap(flag, 4096) == 0);
	return NULL;
}

/* Another thread unmaps slot memory the running guest writes. */
static void test_unmap_running(void)
{
	/* 1: mov byte [FLAG_GPA], 1; jmp 1b */
	static const uint8_t code_store[] = {0xc6, 0x04, 0x25, 0x00, 0x00,
					     0x02, 0x00, 0x01, 0xeb, 0xf6};
	uint8_t *flag;
	pthread_t th;
	struct vm v;

	vm_create(&v, code_store, sizeof(code_store));
	flag = v.mem + FLAG_GPA;
	REQUIRE(pthread_create(&th, NULL, unmap_flag, flag) == 0);
	CHECK_EQ(ioctl(v.vcpu, KVM_RUN, 0), -1);
	CHECK_EQ(errno, EFAULT);
	CHECK_EQ(v.run->exit_reason, KVM_EXIT_MEMORY_FAULT);
	CHECK_EQ(v.run->memory_fault.gpa, FLAG_GPA);
	pthread_join(th, NULL);
	/* Mapped again, the guest goes on storing until told to stop. */
	REQUIRE(mmap(flag, 4096, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == flag);
	v.run->immediate_exit = 1;
	CHECK_ERRNO(ioctl(v.vcpu, KVM_RUN, 0), EINTR);
	vm_destroy(&v);
	tap_result("another thread's munmap of slot memory during KVM_RUN: "
		   "EFAULT, and the vCPU runs on");
}

/* An ioctl argument the program cannot read or write: EFAULT. */
static void test_bad_arg(void)
{
	uint8_t *pg = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct kvm_msrs *msrs;
	struct vm v;

	REQUIRE(pg != MAP_FAILED);
	vm_create(&v, code_out, sizeof(code_out));
	CHECK_ERRNO(ioctl(v.vcpu, KVM_GET_REGS, (void *)8), EFAULT);
	REQUIRE(mprotect(pg, 4096, PROT_READ) == 0);
	CHECK_ERRNO(ioctl(v.vcpu, KVM_GET_REGS, pg), EFAULT);
	CHECK_ERRNO(ioctl(v.vcpu, KVM_GET_SREGS, pg), EFAULT);
	REQUIRE(mprotect(pg, 4096, PROT_NONE) == 0);
	CHECK_ERRNO(ioctl(v.vcpu, KVM_SET_REGS, pg), EFAULT);
	CHECK_ERRNO(ioctl(v.vm, KVM_SET_USER_MEMORY_REGION, pg), EFAULT);
	CHECK_ERRNO(ioctl(v.kvm, KVM_GET_SUPPORTED_CPUID, pg), EFAULT);
	/* The header is readable, the entries it counts run into a hole. */
	REQUIRE(mprotect(pg, 4096, PROT_READ | PROT_WRITE) == 0);
	REQUIRE(mprotect(pg + 4096, 4096, PROT_NONE) == 0);
	msrs = (struct kvm_msrs *)(pg + 4096 - 8 - 16);
	msrs->nmsrs = 2;
	msrs->entries[0].index = 0x10; /* IA32_TSC */
	CHECK_ERRNO(ioctl(v.vcpu, KVM_GET_MSRS, msrs), EFAULT);
	msrs->nmsrs = 1;
	CHECK_EQ(ioctl(v.vcpu, KVM_GET_MSRS, msrs), 1);
	/* Misaligned is fine: KVM copies the struct, and so does gmem. */
	{
		struct kvm_regs regs, got;

		REQUIRE(ioctl(v.vcpu, KVM_GET_REGS, &regs) == 0);
		CHECK_EQ(ioctl(v.vcpu, KVM_GET_REGS, pg + 1), 0);
		memcpy(&got, pg + 1, sizeof(got));
		CHECK(memcmp(&got, &regs, sizeof(regs)) == 0);
		CHECK_EQ(ioctl(v.vcpu, KVM_SET_REGS, pg + 1), 0);
	}
	/* Still a vCPU that runs. */
	CHECK_EQ(ioctl(v.vcpu, KVM_RUN, 0), 0);
	CHECK_EQ(v.run->exit_reason, KVM_EXIT_IO);
	vm_destroy(&v);
	munmap(pg, 2 * 4096);
	tap_result("ioctl arguments in memory the program cannot read or "
		   "write: EFAULT, nothing done");
}

int main(int argc, char **argv)
{
	reexec(argv);
	tap_plan(18, 60);
	test_real_fds();
	test_no_collision();
	test_dup();
	test_guest_memfd();
	test_run_io();
	test_signal_kick();
	test_signal_mask();
	test_fork();
	test_params();
	test_stats();
	test_pre_fault();
	test_coalesced();
	test_sregs();
	test_tsc();
	test_bad_hva();
	test_bad_arg();
	test_unmap_running();
	return tap_done();
}
