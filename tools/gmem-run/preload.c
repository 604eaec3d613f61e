// SPDX-License-Identifier: MIT
/*
 * libgmem-kvm.so: a /dev/kvm served by gmem, for unmodified programs.
 *
 * Loaded with LD_PRELOAD (gmem-run does that), it answers the program's
 * open() of /dev/kvm with a gmem system handle and forwards the file calls
 * on every gmem object to the façade; every other path and fd goes to the
 * real libc untouched.
 *
 * fds.  Each gmem handle is numbered by a real kernel fd, a placeholder
 * memfd this library creates (the handle table's numbering ops), so handle
 * numbers are the program's own fd numbers: fds inside ioctl arguments
 * (a memslot's guest_memfd) need no translation, the kernel never hands
 * the number to anyone else, and close-on-exec, poll, F_GETFD and
 * /proc/self/fd work on the placeholder itself.  dup, dup2, dup3,
 * F_DUPFD* and close_range keep the table in step with the kernel's.
 *
 * Signals.  KVM_RUN returns EINTR with KVM_EXIT_INTR when a signal that
 * the thread (under its KVM_SET_SIGNAL_MASK) does not block arrives while
 * it runs.  The program's handlers are installed behind a trampoline that
 * kicks the vCPU its thread is running, if any.  The handler itself runs
 * when KVM_RUN has returned, as the kernel delivers a signal on the way
 * out of the system call (it may call vCPU ioctls, KVM_RUN even): the
 * trampoline keeps the signal and run_vcpu() sends it to the thread
 * again, siginfo and all.  Elsewhere the trampoline calls it at once.
 * Signals left at SIG_DFL or SIG_IGN never reach the run, as in KVM,
 * where they either kill the process or are discarded.
 *
 * Thread cancellation.  A vCPU thread that is cancelled (asynchronously,
 * as the selftests' vCPU threads are) must not die inside the library, in
 * guest mode or holding its locks: KVM_RUN runs with cancellation
 * deferred, and pthread_cancel() of a thread inside KVM_RUN kicks its
 * vCPU first, so the run returns and the cancellation acts as KVM_RUN
 * restores the thread's cancel type, outside the library.
 *
 * fork.  A child sees EIO from the VMs, vCPUs and guest_memfds it
 * inherited (KVM refuses a VM to another mm the same way); it may open
 * /dev/kvm and create VMs of its own.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cpuid.h>

#include <gmem/gmem.h>
#include <gmem/kvm.h>

#include "handle.h"
#include "uaccess.h"
#include "vcpu.h"

#define EXPORT __attribute__((visibility("default")))

/* ---- the real calls ------------------------------------------------------ */

static void *real_sym(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (!p) {
		fprintf(stderr, "libgmem-kvm: no %s in libc\n", name);
		abort();
	}
	return p;
}

/* The next definition of @fn (libc's), looked up once. */
#define REAL(fn)                                                             \
	({                                                                   \
		static __typeof__(fn) *_p;                                   \
		__typeof__(fn) *_q = __atomic_load_n(&_p, __ATOMIC_RELAXED); \
		if (!_q) {                                                   \
			_q = real_sym(#fn);                                  \
			__atomic_store_n(&_p, _q, __ATOMIC_RELAXED);         \
		}                                                            \
		_q;                                                          \
	})

static bool trace;
/* The constructor has run: gmem's own code may be called. */
static bool ready;

#define IOCTL_NAME(x) \
	{             \
		x, #x \
	}
static const struct {
	unsigned long req;
	const char *name;
} ioctl_names[] = {
	IOCTL_NAME(KVM_GET_API_VERSION),
	IOCTL_NAME(KVM_CREATE_VM),
	IOCTL_NAME(KVM_CHECK_EXTENSION),
	IOCTL_NAME(KVM_GET_VCPU_MMAP_SIZE),
	IOCTL_NAME(KVM_GET_SUPPORTED_CPUID),
	IOCTL_NAME(KVM_CREATE_VCPU),
	IOCTL_NAME(KVM_CREATE_IRQCHIP),
	IOCTL_NAME(KVM_SET_USER_MEMORY_REGION),
	IOCTL_NAME(KVM_SET_USER_MEMORY_REGION2),
	IOCTL_NAME(KVM_SET_MEMORY_ATTRIBUTES),
	IOCTL_NAME(KVM_CREATE_GUEST_MEMFD),
	IOCTL_NAME(KVM_ENABLE_CAP),
	IOCTL_NAME(KVM_GET_STATS_FD),
	IOCTL_NAME(KVM_GET_TSC_KHZ),
	IOCTL_NAME(KVM_SET_TSC_KHZ),
	IOCTL_NAME(KVM_RUN),
	IOCTL_NAME(KVM_GET_REGS),
	IOCTL_NAME(KVM_SET_REGS),
	IOCTL_NAME(KVM_GET_SREGS),
	IOCTL_NAME(KVM_SET_SREGS),
	IOCTL_NAME(KVM_GET_MSRS),
	IOCTL_NAME(KVM_SET_MSRS),
	IOCTL_NAME(KVM_SET_CPUID2),
	IOCTL_NAME(KVM_GET_CPUID2),
	IOCTL_NAME(KVM_GET_MP_STATE),
	IOCTL_NAME(KVM_SET_MP_STATE),
	IOCTL_NAME(KVM_GET_FPU),
	IOCTL_NAME(KVM_SET_FPU),
	IOCTL_NAME(KVM_GET_XSAVE),
	IOCTL_NAME(KVM_GET_XSAVE2),
	IOCTL_NAME(KVM_SET_XSAVE),
	IOCTL_NAME(KVM_GET_XCRS),
	IOCTL_NAME(KVM_SET_XCRS),
	IOCTL_NAME(KVM_SET_SIGNAL_MASK),
};

static void trace_ioctl(int fd, unsigned long req, unsigned long arg, long r)
{
	const char *name = NULL;
	char num[32];

	if (!trace)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(ioctl_names) && !name; i++)
		if (ioctl_names[i].req == req)
			name = ioctl_names[i].name;
	if (!name) {
		snprintf(num, sizeof(num), "%#lx", req);
		name = num;
	}
	fprintf(stderr, "gmem-run: ioctl(%d, %s, %#lx) = %ld%s%s\n", fd, name,
		arg, r, r < 0 ? " " : "", r < 0 ? strerror(errno) : "");
}

static void trace_call(const char *what, int fd, long r)
{
	if (trace)
		fprintf(stderr, "gmem-run: %s(%d) = %ld%s%s\n", what, fd, r,
			r < 0 ? " " : "", r < 0 ? strerror(errno) : "");
}

/* ---- numbering: a placeholder fd per handle -------------------------------
 */

/* The O_CLOEXEC of the open() that is creating a system handle. */
static __thread int opening_flags;

static int reserve(enum gmem_handle_kind kind)
{
	static const char *const names[] = {
		[GMEM_H_SYSTEM] = "gmem:/dev/kvm",
		[GMEM_H_VM] = "gmem:kvm-vm",
		[GMEM_H_VCPU] = "gmem:kvm-vcpu",
		[GMEM_H_FILE] = "gmem:kvm-gmem",
		[GMEM_H_STATS] = "gmem:kvm-stats",
	};
	unsigned int flags = MFD_CLOEXEC;
	int fd;

	/* As KVM: guest_memfd without close-on-exec, /dev/kvm as opened. */
	if (kind == GMEM_H_FILE ||
	    (kind == GMEM_H_SYSTEM && !(opening_flags & O_CLOEXEC)))
		flags = 0;
	fd = memfd_create(names[kind], flags);
	return fd < 0 ? -errno : fd;
}

static void release(int number)
{
	REAL(close)(number);
}

static bool in_use(int number)
{
	return REAL(fcntl)(number, F_GETFD) >= 0;
}

static const struct gmem_handle_numbering placeholders = {reserve, release,
							  in_use};

/* ---- the files under /sys/module/kvm*: gmem's configuration ------------- */

struct param {
	const char *path, *value;
};

/*
 * What the KVM selftests and VMMs read.  Stage 2 is always there (tdp_mmu,
 * ept/npt); gmem models no PMU, nested virtualisation, APIC
 * virtualisation, huge-page splitting or halt polling, and runs long mode
 * only (no unrestricted guest).  The vendor module is the host's, as
 * programs pick it from the host's CPUID.
 */
static const struct param kvm_params[] = {
	{"kvm/parameters/tdp_mmu", "Y\n"},
	{"kvm/parameters/eager_page_split", "N\n"},
	{"kvm/parameters/enable_pmu", "N\n"},
	{"kvm/parameters/nx_huge_pages", "N\n"},
	{"kvm/parameters/force_emulation_prefix", "0\n"},
	{"kvm/parameters/ignore_msrs", "N\n"},
	{"kvm/parameters/halt_poll_ns", "0\n"},
	{"kvm/parameters/enable_vmware_backdoor", "N\n"},
};

static const struct param intel_params[] = {
	{"kvm_intel/parameters/ept", "Y\n"},
	{"kvm_intel/parameters/unrestricted_guest", "N\n"},
	{"kvm_intel/parameters/nested", "N\n"},
	{"kvm_intel/parameters/enable_apicv", "N\n"},
	{"kvm_intel/parameters/pml", "N\n"},
	{"kvm_intel/parameters/vpid", "N\n"},
};

static const struct param amd_params[] = {
	{"kvm_amd/parameters/npt", "Y\n"}, /* a bool in 6.12 */
	{"kvm_amd/parameters/nested", "0\n"},
	{"kvm_amd/parameters/avic", "N\n"},
	{"kvm_amd/parameters/sev", "N\n"},
	{"kvm_amd/parameters/sev_es", "N\n"},
	{"kvm_amd/parameters/sev_snp", "N\n"},
};

/*
 * Outside /sys/module: the host's clocksource.  gmem's host TSC is
 * CLOCK_MONOTONIC (the kvmclock of gmem's VMs is computed from it, and
 * KVM_GET_CLOCK reports KVM_CLOCK_HOST_TSC), so the clocksource of the
 * host that gmem presents is the TSC, whatever the real kernel uses.
 */
static const struct param sys_params[] = {
	{"/sys/devices/system/clocksource/clocksource0/current_clocksource",
	 "tsc\n"},
};

/*
 * The inodes of the memfds that answer those files: fstat() says what
 * sysfs says of an attribute (a 4096-byte regular file, 0444), as
 * programs size their read buffer from it.
 */
#define SYSFS_FILES_MAX 64
static unsigned long sysfs_inodes[SYSFS_FILES_MAX];
static unsigned sysfs_ninodes;

static void sysfs_remember(int fd)
{
	struct stat st;
	unsigned n;

	if (REAL(fstat)(fd, &st))
		return;
	n = __atomic_fetch_add(&sysfs_ninodes, 1, __ATOMIC_RELAXED);
	if (n < SYSFS_FILES_MAX)
		__atomic_store_n(&sysfs_inodes[n], (unsigned long)st.st_ino,
				 __ATOMIC_RELEASE);
}

static void sysfs_stat(int fd, int r, ino_t ino, off_t *size, mode_t *mode)
{
	unsigned n = __atomic_load_n(&sysfs_ninodes, __ATOMIC_RELAXED);

	if (r || !n)
		return;
	for (unsigned i = 0; i < n && i < SYSFS_FILES_MAX; i++)
		if (__atomic_load_n(&sysfs_inodes[i], __ATOMIC_ACQUIRE) ==
		    (unsigned long)ino) {
			char link[64], path[64];
			ssize_t k;

			/* Our memfd, not another file with its number. */
			snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
			k = readlink(link, path, sizeof(path) - 1);
			if (k < 0)
				return;
			path[k] = 0;
			if (strncmp(path, "/memfd:gmem:sysfs", 17))
				return;
			*size = 4096;
			*mode = S_IFREG | 0444;
			return;
		}
}

static bool host_is_intel(void)
{
	unsigned int a, b, c, d;

	__cpuid(0, a, b, c, d);
	return b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e;
}

static const struct param *find_param(const char *p, const struct param *t,
				      size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(p, t[i].path))
			return &t[i];
	return NULL;
}

/* 1 and *fd for a path we answer, 0 for the real file system. */
static int open_param(const char *path, int flags, int *fd)
{
	static const char prefix[] = "/sys/module/";
	const struct param *prm;
	const char *p;
	size_t len;

	prm = find_param(path, sys_params, ARRAY_SIZE(sys_params));
	if (prm)
		goto answer;
	if (strncmp(path, prefix, sizeof(prefix) - 1))
		return 0;
	p = path + sizeof(prefix) - 1;
	if (strncmp(p, "kvm/", 4) && strncmp(p, "kvm_intel/", 10) &&
	    strncmp(p, "kvm_amd/", 8))
		return 0;
	prm = find_param(p, kvm_params, ARRAY_SIZE(kvm_params));
	if (!prm && host_is_intel())
		prm = find_param(p, intel_params, ARRAY_SIZE(intel_params));
	if (!prm && !host_is_intel())
		prm = find_param(p, amd_params, ARRAY_SIZE(amd_params));
	if (!prm) {
		errno = ENOENT;
		*fd = -1;
		return 1;
	}
answer:
	if ((flags & O_ACCMODE) != O_RDONLY) {
		errno = EACCES;
		*fd = -1;
		return 1;
	}
	*fd = memfd_create("gmem:sysfs",
			   MFD_ALLOW_SEALING |
				   (flags & O_CLOEXEC ? MFD_CLOEXEC : 0));
	if (*fd < 0)
		return 1;
	len = strlen(prm->value);
	if (pwrite(*fd, prm->value, len, 0) != (ssize_t)len ||
	    fcntl(*fd, F_ADD_SEALS,
		  F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)) {
		int e = errno;

		REAL(close)(*fd);
		errno = e;
		*fd = -1;
	} else {
		sysfs_remember(*fd);
	}
	return 1;
}

/* ---- open ------------------------------------------------------------------
 */

static bool is_kvm_dev(int dirfd, const char *path)
{
	return path && !strcmp(path, "/dev/kvm");
}

/*
 * 1 and *fd if gmem answers @path, 0 if the real open should.  /dev/kvm
 * opens for reading or writing alike, as the device node (0666) does.
 */
static int gmem_open_path(int dirfd, const char *path, int flags, int *fd)
{
	if (!is_kvm_dev(dirfd, path))
		return path ? open_param(path, flags, fd) : 0;
	opening_flags = flags;
	*fd = gmem_open();
	opening_flags = 0;
	if (trace)
		fprintf(stderr, "gmem-run: open(\"/dev/kvm\", %#x) = %d\n",
			flags, *fd);
	return 1;
}

static mode_t open_mode(int flags, va_list ap)
{
	return (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
}

#define DEFINE_OPEN(name)                                       \
	EXPORT int name(const char *path, int flags, ...)       \
	{                                                       \
		va_list ap;                                     \
		mode_t mode;                                    \
		int fd;                                         \
                                                                \
		va_start(ap, flags);                            \
		mode = open_mode(flags, ap);                    \
		va_end(ap);                                     \
		if (gmem_open_path(AT_FDCWD, path, flags, &fd)) \
			return fd;                              \
		return REAL(name)(path, flags, mode);           \
	}

#define DEFINE_OPENAT(name)                                          \
	EXPORT int name(int dirfd, const char *path, int flags, ...) \
	{                                                            \
		va_list ap;                                          \
		mode_t mode;                                         \
		int fd;                                              \
                                                                     \
		va_start(ap, flags);                                 \
		mode = open_mode(flags, ap);                         \
		va_end(ap);                                          \
		if (gmem_open_path(dirfd, path, flags, &fd))         \
			return fd;                                   \
		return REAL(name)(dirfd, path, flags, mode);         \
	}

DEFINE_OPEN(open)
DEFINE_OPEN(open64)
DEFINE_OPENAT(openat)
DEFINE_OPENAT(openat64)

/*
 * fopen() opens inside libc, past the wrappers above: the files gmem
 * answers are fdopen()ed memfds (read-only modes; others as open()).
 */
static FILE *gmem_fopen(const char *path, const char *mode, bool *done)
{
	FILE *f;
	int fd;

	*done = false;
	if (!path || !mode || mode[0] != 'r' || strchr(mode, '+') ||
	    is_kvm_dev(AT_FDCWD, path))
		return NULL;
	if (!open_param(path, O_RDONLY | (strchr(mode, 'e') ? O_CLOEXEC : 0),
			&fd))
		return NULL;
	*done = true;
	if (fd < 0)
		return NULL;
	f = fdopen(fd, mode);
	if (!f) {
		int e = errno;

		REAL(close)(fd);
		errno = e;
	}
	return f;
}

EXPORT FILE *fopen(const char *path, const char *mode)
{
	bool done;
	FILE *f = gmem_fopen(path, mode, &done);

	return done ? f : REAL(fopen)(path, mode);
}

EXPORT FILE *fopen64(const char *path, const char *mode)
{
	bool done;
	FILE *f = gmem_fopen(path, mode, &done);

	return done ? f : REAL(fopen64)(path, mode);
}

/* The _FORTIFY_SOURCE entries: no mode argument. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

#define DEFINE_OPEN_2(name)                                     \
	EXPORT int name(const char *path, int flags)            \
	{                                                       \
		int fd;                                         \
                                                                \
		if (gmem_open_path(AT_FDCWD, path, flags, &fd)) \
			return fd;                              \
		return REAL(name)(path, flags);                 \
	}

#define DEFINE_OPENAT_2(name)                                   \
	EXPORT int name(int dirfd, const char *path, int flags) \
	{                                                       \
		int fd;                                         \
                                                                \
		if (gmem_open_path(dirfd, path, flags, &fd))    \
			return fd;                              \
		return REAL(name)(dirfd, path, flags);          \
	}

DEFINE_OPEN_2(__open_2)
DEFINE_OPEN_2(__open64_2)
DEFINE_OPENAT_2(__openat_2)
DEFINE_OPENAT_2(__openat64_2)

/* access("/dev/kvm", R_OK | W_OK), as VMMs probe before opening. */
EXPORT int access(const char *path, int mode)
{
	if (is_kvm_dev(AT_FDCWD, path))
		return 0;
	return REAL(access)(path, mode);
}

/* ---- the signal trampoline ------------------------------------------------
 */

/* The vCPU this thread is running (inside KVM_RUN), or NULL. */
static __thread struct gmem_vcpu *running
	__attribute__((tls_model("initial-exec")));

/*
 * The program's own action per signal, when the trampoline stands for it
 * (under sig_lock), and the handler and its SA_SIGINFO flag, which the
 * trampoline reads atomically: it may run in any thread at any time.
 */
static struct sigaction user_act[NSIG];
static bool wrapped[NSIG];
static void *user_fn[NSIG];
static bool user_siginfo[NSIG];
static bool user_oneshot[NSIG]; /* SA_RESETHAND */

/*
 * The signals that came inside KVM_RUN (bit sig - 1), for run_vcpu() to
 * send again; written by the trampoline, in this same thread.
 */
static __thread uint64_t deferred __attribute__((tls_model("initial-exec")));
static __thread siginfo_t deferred_info[NSIG]
	__attribute__((tls_model("initial-exec")));
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;

static void trampoline(int sig, siginfo_t *info, void *uc)
{
	struct gmem_vcpu *v = __atomic_load_n(&running, __ATOMIC_RELAXED);
	void *fn = __atomic_load_n(&user_fn[sig], __ATOMIC_ACQUIRE);

	/* Async-signal-safe: one atomic or, and errno is untouched. */
	if (v)
		gmem_vcpu_kick(v);
	/*
	 * Inside KVM_RUN the handler waits for redeliver(), but for an
	 * SA_RESETHAND action, gone from the kernel already: it runs now.
	 */
	if (v && sig <= 64 &&
	    !__atomic_load_n(&user_oneshot[sig], __ATOMIC_RELAXED)) {
		deferred_info[sig] = *info;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		deferred |= 1ull << (sig - 1);
		return;
	}
	if (__atomic_load_n(&user_siginfo[sig], __ATOMIC_RELAXED))
		((void (*)(int, siginfo_t *, void *))fn)(sig, info, uc);
	else if (fn != (void *)SIG_DFL && fn != (void *)SIG_IGN)
		((void (*)(int))fn)(sig);
}

static void set_user(int sig, const struct sigaction *act)
{
	bool si = act->sa_flags & SA_SIGINFO;

	user_act[sig] = *act;
	__atomic_store_n(&user_siginfo[sig], si, __ATOMIC_RELAXED);
	__atomic_store_n(&user_oneshot[sig], act->sa_flags & SA_RESETHAND,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&user_fn[sig],
			 si ? (void *)act->sa_sigaction
			    : (void *)act->sa_handler,
			 __ATOMIC_RELEASE);
}

static bool is_handler(const struct sigaction *act)
{
	return (act->sa_flags & SA_SIGINFO) ||
	       (act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN);
}

EXPORT int sigaction(int sig, const struct sigaction *act,
		     struct sigaction *oact)
{
	struct sigaction kact, kold, prev;
	bool was;
	int r;

	if (sig < 1 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP)
		return REAL(sigaction)(sig, act, oact);
	/*
	 * gmem's fault handler stays in front of the program's, which it
	 * calls for every fault that is not a guest access to VMM memory.
	 */
	if (sig == SIGSEGV || sig == SIGBUS) {
		/*
		 * A sanitizer's runtime installs its handlers before our
		 * constructor, and before it can run instrumented code:
		 * those go in as they are, and become gmem's chain later.
		 */
		if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE))
			return REAL(sigaction)(sig, act, oact);
		return gmem_sigaction(sig, act, oact);
	}
	pthread_mutex_lock(&sig_lock);
	prev = user_act[sig];
	was = wrapped[sig];
	if (act && is_handler(act)) {
		/* Stored first: the trampoline may run as soon as it is in. */
		set_user(sig, act);
		wrapped[sig] = true;
		kact = *act;
		kact.sa_sigaction = trampoline;
		kact.sa_flags |= SA_SIGINFO;
		r = REAL(sigaction)(sig, &kact, &kold);
		if (r) {
			set_user(sig, &prev);
			wrapped[sig] = was;
		}
	} else {
		r = REAL(sigaction)(sig, act, &kold);
		if (!r && act)
			wrapped[sig] = false;
	}
	pthread_mutex_unlock(&sig_lock);
	if (!r && oact) {
		/* SA_RESETHAND may have put SIG_DFL back behind our record. */
		if (was && (kold.sa_flags & SA_SIGINFO) &&
		    kold.sa_sigaction == trampoline)
			*oact = prev;
		else
			*oact = kold;
	}
	return r;
}

static sighandler_t install(int sig, sighandler_t h, int flags)
{
	struct sigaction act, old;

	memset(&act, 0, sizeof(act));
	act.sa_handler = h;
	act.sa_flags = flags;
	sigemptyset(&act.sa_mask);
	if (!(flags & SA_NODEFER))
		sigaddset(&act.sa_mask, sig);
	if (sigaction(sig, &act, &old))
		return SIG_ERR;
	return old.sa_handler;
}

/* glibc's signal() is BSD's: restarting, the signal blocked in its handler. */
EXPORT sighandler_t signal(int sig, sighandler_t h)
{
	return install(sig, h, SA_RESTART);
}

EXPORT sighandler_t bsd_signal(int sig, sighandler_t h)
{
	return install(sig, h, SA_RESTART);
}

EXPORT sighandler_t sysv_signal(int sig, sighandler_t h)
{
	return install(sig, h, SA_RESETHAND | SA_NODEFER);
}

/* ---- ioctl and KVM_RUN -------------------------------------------------- */

/*
 * The threads that have run a vCPU, for pthread_cancel(): each one's
 * record (its thread-local running pointer) is on this list from its
 * first KVM_RUN until it exits.
 */
struct run_thread {
	pthread_t self;
	struct gmem_vcpu *const *running;
	struct run_thread *next;
};

static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static struct run_thread *threads;
static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;
static __thread struct run_thread self_rec;

static void thread_gone(void *arg)
{
	struct run_thread *t = arg, **pp;

	pthread_mutex_lock(&threads_lock);
	for (pp = &threads; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	pthread_mutex_unlock(&threads_lock);
}

static void make_thread_key(void)
{
	if (pthread_key_create(&thread_key, thread_gone))
		abort();
}

static void register_thread(void)
{
	if (self_rec.running)
		return;
	pthread_once(&thread_key_once, make_thread_key);
	self_rec.self = pthread_self();
	self_rec.running = &running;
	pthread_mutex_lock(&threads_lock);
	self_rec.next = threads;
	threads = &self_rec;
	pthread_mutex_unlock(&threads_lock);
	pthread_setspecific(thread_key, &self_rec);
}

/*
 * Cancel first, then kick: a thread that leaves KVM_RUN in between sees
 * the cancellation as it restores its cancel type, and one entering it
 * meets it at run_vcpu()'s pthread_testcancel() (the fences pair).
 */
EXPORT int pthread_cancel(pthread_t th)
{
	int r = REAL(pthread_cancel)(th);

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	pthread_mutex_lock(&threads_lock);
	for (struct run_thread *t = threads; t; t = t->next)
		if (pthread_equal(t->self, th)) {
			struct gmem_vcpu *v =
				__atomic_load_n(t->running, __ATOMIC_ACQUIRE);

			if (v)
				gmem_vcpu_kick(v);
			break;
		}
	pthread_mutex_unlock(&threads_lock);
	return r;
}

/*
 * The signals that came during the run, to this thread again: with
 * running NULL the trampoline calls each handler (before the system call
 * returns, the signal being unblocked) where the program expects it.
 */
static void redeliver(void)
{
	while (deferred) {
		int sig = __builtin_ctzll(deferred) + 1;
		siginfo_t info = deferred_info[sig];

		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		deferred &= ~(1ull << (sig - 1));
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		syscall(SYS_rt_tgsigqueueinfo, getpid(),
			(pid_t)syscall(SYS_gettid), sig, &info);
	}
}

static int run_vcpu(struct gmem_vcpu *vcpu, int fd)
{
	int r, e, type;

	register_thread();
	pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &type);
	__atomic_store_n(&running, vcpu, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	pthread_testcancel();
	r = gmem_ioctl(fd, KVM_RUN, 0);
	e = errno;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&running, NULL, __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	/*
	 * A signal that came after the run's last look at its kicks was
	 * handled like one arriving after KVM_RUN returned: it must not stop
	 * the next run.
	 */
	gmem_vcpu_cancel_kick(vcpu);
	/* A cancellation that came during the run acts here. */
	pthread_setcanceltype(type, NULL);
	redeliver();
	errno = e;
	return r;
}

EXPORT int ioctl(int fd, unsigned long request, ...)
{
	struct gmem_handle_ref ref;
	unsigned long arg;
	va_list ap;
	int r;

	va_start(ap, request);
	arg = va_arg(ap, unsigned long);
	va_end(ap);
	r = gmem_handle_get(fd, &ref);
	if (r == -EBADF)
		return REAL(ioctl)(fd, request, arg);
	if (r) {
		errno = -r;
		trace_ioctl(fd, request, arg, -1);
		return -1;
	}
	if (ref.kind == GMEM_H_VCPU && request == KVM_RUN && !arg)
		r = run_vcpu(ref.obj, fd);
	else
		r = gmem_ioctl(fd, request, arg);
	if (request != KVM_RUN || r < 0)
		trace_ioctl(fd, request, arg, r);
	gmem_handle_put(&ref);
	return r;
}

/* ---- the other file calls ---------------------------------------------------
 */

static bool is_gmem(int fd)
{
	return fd >= 0 && gmem_handle_is_mapped(fd);
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd,
		  off_t off)
{
	if (!(flags & MAP_ANONYMOUS) && is_gmem(fd))
		return gmem_mmap(addr, len, prot, flags, fd, off);
	return REAL(mmap)(addr, len, prot, flags, fd, off);
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd,
		    off64_t off)
{
	if (!(flags & MAP_ANONYMOUS) && is_gmem(fd))
		return gmem_mmap(addr, len, prot, flags, fd, off);
	return REAL(mmap64)(addr, len, prot, flags, fd, off);
}

EXPORT int fallocate(int fd, int mode, off_t off, off_t len)
{
	if (is_gmem(fd))
		return gmem_fallocate(fd, mode, off, len);
	return REAL(fallocate)(fd, mode, off, len);
}

EXPORT int fallocate64(int fd, int mode, off64_t off, off64_t len)
{
	if (is_gmem(fd))
		return gmem_fallocate(fd, mode, off, len);
	return REAL(fallocate64)(fd, mode, off, len);
}

EXPORT int ftruncate(int fd, off_t len)
{
	if (is_gmem(fd))
		return gmem_ftruncate(fd, len);
	return REAL(ftruncate)(fd, len);
}

EXPORT int ftruncate64(int fd, off64_t len)
{
	if (is_gmem(fd))
		return gmem_ftruncate(fd, len);
	return REAL(ftruncate64)(fd, len);
}

EXPORT int fstat(int fd, struct stat *st)
{
	int r;

	if (is_gmem(fd))
		return gmem_fstat(fd, st);
	r = REAL(fstat)(fd, st);
	sysfs_stat(fd, r, st->st_ino, &st->st_size, &st->st_mode);
	return r;
}

EXPORT int fstat64(int fd, struct stat64 *st)
{
	int r;

	if (is_gmem(fd))
		return gmem_fstat(fd, (struct stat *)st);
	r = REAL(fstat64)(fd, st);
	sysfs_stat(fd, r, st->st_ino, &st->st_size, &st->st_mode);
	return r;
}

static bool at_gmem(int dirfd, const char *path, int flags)
{
	return (flags & AT_EMPTY_PATH) && path && !path[0] && is_gmem(dirfd);
}

EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	if (at_gmem(dirfd, path, flags))
		return gmem_fstat(dirfd, st);
	return REAL(fstatat)(dirfd, path, st, flags);
}

EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
	if (at_gmem(dirfd, path, flags))
		return gmem_fstat(dirfd, (struct stat *)st);
	return REAL(fstatat64)(dirfd, path, st, flags);
}

/* The stat versioned entries of programs built against glibc < 2.33. */
int __fxstat(int ver, int fd, struct stat *st);
int __fxstat64(int ver, int fd, struct stat64 *st);

EXPORT int __fxstat(int ver, int fd, struct stat *st)
{
	if (is_gmem(fd))
		return gmem_fstat(fd, st);
	return REAL(__fxstat)(ver, fd, st);
}

EXPORT int __fxstat64(int ver, int fd, struct stat64 *st)
{
	if (is_gmem(fd))
		return gmem_fstat(fd, (struct stat *)st);
	return REAL(__fxstat64)(ver, fd, st);
}

EXPORT int statx(int dirfd, const char *path, int flags, unsigned int mask,
		 struct statx *stx)
{
	struct stat st;

	if (!at_gmem(dirfd, path, flags))
		return REAL(statx)(dirfd, path, flags, mask, stx);
	if (gmem_fstat(dirfd, &st))
		return -1;
	memset(stx, 0, sizeof(*stx));
	stx->stx_mask = STATX_BASIC_STATS;
	stx->stx_blksize = (uint32_t)st.st_blksize;
	stx->stx_nlink = (uint32_t)st.st_nlink;
	stx->stx_mode = (uint16_t)st.st_mode;
	stx->stx_ino = st.st_ino;
	stx->stx_size = (uint64_t)st.st_size;
	stx->stx_blocks = (uint64_t)st.st_blocks;
	stx->stx_rdev_major = major(st.st_rdev);
	stx->stx_rdev_minor = minor(st.st_rdev);
	return 0;
}

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	if (is_gmem(fd))
		return gmem_read(fd, buf, n);
	return REAL(read)(fd, buf, n);
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	if (is_gmem(fd))
		return gmem_write(fd, buf, n);
	return REAL(write)(fd, buf, n);
}

EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	if (is_gmem(fd))
		return gmem_pread(fd, buf, n, off);
	return REAL(pread)(fd, buf, n, off);
}

EXPORT ssize_t pread64(int fd, void *buf, size_t n, off64_t off)
{
	if (is_gmem(fd))
		return gmem_pread(fd, buf, n, off);
	return REAL(pread64)(fd, buf, n, off);
}

EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (is_gmem(fd))
		return gmem_pwrite(fd, buf, n, off);
	return REAL(pwrite)(fd, buf, n, off);
}

EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	if (is_gmem(fd))
		return gmem_pwrite(fd, buf, n, off);
	return REAL(pwrite64)(fd, buf, n, off);
}

/*
 * readv/preadv on a gmem fd: one buffer after another, as the VFS does
 * for a file that has only ->read (a stats fd); @off NULL reads at the
 * file position.  The other kinds refuse with the façade's errno.
 */
static ssize_t gmem_readv(int fd, const struct iovec *iov, int cnt,
			  const off_t *off)
{
	ssize_t total = 0, r = 0;

	if (cnt < 0) {
		errno = EINVAL;
		return -1;
	}
	if (!cnt)
		return off ? gmem_pread(fd, NULL, 0, *off)
			   : gmem_read(fd, NULL, 0);
	for (int i = 0; i < cnt; i++) {
		void *b = iov[i].iov_base;
		size_t n = iov[i].iov_len;

		r = off ? gmem_pread(fd, b, n, *off + total)
			: gmem_read(fd, b, n);
		if (r < 0)
			return total ? total : -1;
		total += r;
		if ((size_t)r < n)
			break;
	}
	return total;
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	if (is_gmem(fd))
		return gmem_readv(fd, iov, cnt, NULL);
	return REAL(readv)(fd, iov, cnt);
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	if (is_gmem(fd))
		return gmem_write(fd, NULL, 0);
	return REAL(writev)(fd, iov, cnt);
}

EXPORT ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
	if (is_gmem(fd))
		return gmem_readv(fd, iov, cnt, &off);
	return REAL(preadv)(fd, iov, cnt, off);
}

EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	if (is_gmem(fd))
		return gmem_write(fd, NULL, 0);
	return REAL(pwritev)(fd, iov, cnt, off);
}

EXPORT off_t lseek(int fd, off_t off, int whence)
{
	if (is_gmem(fd))
		return gmem_lseek(fd, off, whence);
	return REAL(lseek)(fd, off, whence);
}

EXPORT off64_t lseek64(int fd, off64_t off, int whence)
{
	if (is_gmem(fd))
		return gmem_lseek(fd, off, whence);
	return REAL(lseek64)(fd, off, whence);
}

/* ---- close and the dup family
 * ------------------------------------------------ */

EXPORT int close(int fd)
{
	int r;

	if (!is_gmem(fd))
		return REAL(close)(fd);
	/* The table lets go first, then the placeholder's number. */
	r = gmem_close(fd);
	trace_call("close", fd, r);
	return r;
}

/* After the kernel made @newfd a copy of @oldfd (or closed it): follow. */
static int follow_dup(int oldfd, int newfd)
{
	int r;

	if (newfd < 0)
		return newfd;
	if (!is_gmem(oldfd)) {
		/* A gmem number the kernel just reused: forget the old handle.
		 */
		gmem_handle_forget(newfd);
		return newfd;
	}
	r = gmem_handle_dup(oldfd, newfd);
	if (r) {
		REAL(close)(newfd);
		errno = -r;
		return -1;
	}
	return newfd;
}

EXPORT int dup(int oldfd)
{
	return follow_dup(oldfd, REAL(dup)(oldfd));
}

EXPORT int dup2(int oldfd, int newfd)
{
	if (oldfd == newfd)
		return REAL(dup2)(oldfd, newfd);
	return follow_dup(oldfd, REAL(dup2)(oldfd, newfd));
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
	return follow_dup(oldfd, REAL(dup3)(oldfd, newfd, flags));
}

static int do_fcntl(int (*fn)(int, int, ...), int fd, int cmd, void *arg)
{
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
		return follow_dup(fd, fn(fd, cmd, arg));
	return fn(fd, cmd, arg);
}

EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return do_fcntl(REAL(fcntl), fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...);

EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return do_fcntl(REAL(fcntl64), fd, cmd, arg);
}

EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	/* As close(): the table lets go before the kernel frees the numbers. */
	if (first <= last && first <= INT32_MAX &&
	    !(flags & CLOSE_RANGE_CLOEXEC))
		for (int fd = gmem_handle_next((int)first);
		     fd >= 0 && (unsigned int)fd <= last;
		     fd = gmem_handle_next(fd + 1))
			gmem_handle_forget(fd);
	return REAL(close_range)(first, last, flags);
}

/* ---- fork and start-up --------------------------------------------------- */

static void atfork_prepare(void)
{
	gmem_handle_lock_all();
}

static void atfork_parent(void)
{
	gmem_handle_unlock_all();
}

static void atfork_child(void)
{
	gmem_handle_unlock_all();
	gmem_handle_fork_child();
}

__attribute__((constructor)) static void dropin_init(void)
{
	const char *t = getenv("GMEM_RUN_TRACE");

	trace = t && *t && strcmp(t, "0");
	gmem_handle_set_numbering(&placeholders);
	gmem_uaccess_set_sigaction(REAL(sigaction));
	__atomic_store_n(&ready, true, __ATOMIC_RELEASE);
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}
