// SPDX-License-Identifier: MIT
/*
 * gmemvm: the VMM a user runs.  It loads a guest ELF built against the
 * guest runtime (guests/), runs one host thread per vCPU, and handles the
 * exits: console and ucalls on I/O ports, conversions between private and
 * shared (KVM_HC_MAP_GPA_RANGE), the guest's own lock requests
 * (GMEM_HC_PROTECT) and memory faults, per the policies given on the
 * command line.  The memory policy itself is gmemvm_mem.c.
 *
 * Exit status: the guest's GUEST_DONE status; 1 with a one-line message
 * when the guest fails (assertion, unexpected exception, triple fault,
 * refused memory fault, unexpected exit); 2 for bad usage or a VMM error;
 * 130 when interrupted.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gmem/gmem.h>
#include <gmem/hypercall.h>
#include <gmem/loader.h>

#include "gmemvm_mem.h"
#include "ucall.h"

#define EXIT_GUEST_FAILED 1
#define EXIT_VMM_ERROR 2
#define EXIT_INTERRUPTED 130

#define DEFAULT_MEM (64ULL << 20)
#define XO_MAXPHYADDR 47 /* M of GMEM_CAP_XO_ALIAS: the alias bit is 47 */

enum stats_mode { STATS_NONE, STATS_TABLE, STATS_JSON };

struct options {
	uint64_t mem_size;
	uint64_t gmem_size; /* RAM bound to the guest_memfd: [0, gmem_size) */
	unsigned int nr_cpus;
	unsigned long type;
	bool private;
	bool xo;
	enum gmemvm_policy policy;
	bool trace;
	bool inject; /* --on-violation=inject */
	enum stats_mode stats;
	const char *elf;
	uint64_t args[2];
};

struct vcpu {
	struct gmemvm *vmm;
	unsigned int id;
	struct gmem_vcpu *vcpu;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	bool done;
	uint64_t status; /* GUEST_DONE's */
	char line[256];	 /* console line being assembled */
	size_t line_len;
};

struct gmemvm {
	struct options opt;
	struct gmem_vm *vm;
	struct gmemvm_mem mem;
	void *shared;
	int gmem_fd;
	struct vcpu *vcpus;

	/* The first failure stops every vCPU; later ones are not reported. */
	pthread_mutex_t fail_lock;
	bool failed;
	int fail_status;
	char fail_msg[640];

	pthread_mutex_t out_lock; /* one line at a time on stdout/stderr */
	struct timespec start;
};

static volatile sig_atomic_t interrupted;
static struct gmemvm *the_vmm; /* for the signal handler */

static const char *prog = "gmemvm";

static void __attribute__((format(printf, 1, 2), noreturn))
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_VMM_ERROR);
}

/* ---- options ----------------------------------------------------------- */

/* The text is laid out as it prints. */
/* clang-format off */
static void usage(FILE *f)
{
	fprintf(f,
"usage: %s [options] GUEST.elf [ARG0 [ARG1]]\n"
"\n"
"Run a guest program (an x86-64 ELF built with gmem's guest runtime) on\n"
"gmem's emulated vCPUs.  ARG0 and ARG1 (numbers, 0x for hex) reach the\n"
"guest's entry in RDI and RSI.  The exit status is the guest's GUEST_DONE\n"
"status (vCPU 0's, at most 255); 1 with a one-line message on stderr if\n"
"the guest fails (assertion, unexpected exception, triple fault, a memory\n"
"fault the VMM refuses, an exit gmemvm does not handle); 2 for bad usage\n"
"or a VMM error; 130 when interrupted.\n"
"\n"
"options:\n"
"  -m, --memory SIZE    guest RAM at GPA 0, SIZE bytes with an optional\n"
"                       K, M or G suffix, a multiple of 4K (default 64M)\n"
"  -c, --cpus N         vCPUs, one host thread each, 1-%d (default 1); each\n"
"                       runs the guest's entry with its own index (vCPU 0\n"
"                       runs guest_main, the others guest_ap_main)\n"
"      --type TYPE      VM type: 'sw-protected' (default; RAM is also bound\n"
"                       to a guest_memfd, so the guest can convert pages\n"
"                       between private and shared) or 'default' (no private\n"
"                       memory; conversion hypercalls get -KVM_ENOSYS)\n"
"      --private        RAM starts PRIVATE (in the guest_memfd); without it\n"
"                       RAM starts shared.  Needs --type sw-protected\n"
"      --gmem-size SIZE bind only the first SIZE bytes of RAM to the\n"
"                       guest_memfd (default: all of it); the rest is a\n"
"                       second memslot without one, where a page the guest\n"
"                       makes private has no backing (see --policy)\n"
"      --xo             enable the execute-only alias (GMEM_CAP_XO_ALIAS,\n"
"                       MAXPHYADDR %d: PTE bit %d selects execute-only)\n"
"      --policy POLICY  implicit conversions, i.e. memory faults on a private\n"
"                       page whose slot has no guest_memfd: 'refuse'\n"
"                       (default) stops the guest with a message, 'convert'\n"
"                       converts the page to shared and resumes\n"
"      --on-violation ACTION\n"
"                       an access denied by a no-read/no-write/no-exec\n"
"                       attribute (a guest lock, GMEM_HC_PROTECT): 'stop'\n"
"                       (default) reports GPA and access and stops the\n"
"                       guest; 'inject' reports it and delivers #PF to the\n"
"                       guest (CR2 = the address it accessed, error code\n"
"                       P|W/R|U/S|I/D), whose handler decides\n"
"      --trace          one line per exit on stderr: vCPU, reason, fields\n"
"      --stats[=FORMAT] print VM, VMM and per-vCPU statistics at exit on\n"
"                       stdout: 'table' (default) or 'json' (one line)\n"
"  -h, --help           this text\n"
"\n"
"Guest hypercalls (VMCALL, RAX = number, RBX/RCX/RDX = arguments):\n"
"  KVM_HC_MAP_GPA_RANGE (12)  gpa, npages, attrs: convert to private\n"
"                       (attrs bit 4) or shared (0); returns 0 or -errno\n"
"  GMEM_HC_PROTECT (0x10001)  gpa, npages, NR|NW|NX: lock a range against\n"
"                       reads, writes or execution, for good; see\n"
"                       <gmem/hypercall.h>\n",
		prog, GMEM_LOAD_MAX_CPUS, XO_MAXPHYADDR, XO_MAXPHYADDR);
}
/* clang-format on */

/* SIZE[K|M|G]; 0 on a malformed value. */
static uint64_t parse_size(const char *s)
{
	unsigned int shift = 0;
	unsigned long long v;
	char *end;

	if (!*s || *s == '-')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return 0;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	}
	if (*end && strcmp(end, "iB") && strcmp(end, "B"))
		return 0;
	if (v > (UINT64_MAX >> shift))
		return 0;
	return (uint64_t)v << shift;
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!*s)
		return false;
	errno = 0;
	if (*s == '-')
		*v = (uint64_t)strtoll(s, &end, 0);
	else
		*v = strtoull(s, &end, 0);
	return !errno && !*end;
}

static void parse_options(int argc, char **argv, struct options *o)
{
	enum {
		OPT_TYPE = 256,
		OPT_GMEM_SIZE,
		OPT_PRIVATE,
		OPT_XO,
		OPT_POLICY,
		OPT_VIOLATION,
		OPT_TRACE,
		OPT_STATS
	};
	static const struct option longopts[] = {
		{"memory", required_argument, NULL, 'm'},
		{"cpus", required_argument, NULL, 'c'},
		{"type", required_argument, NULL, OPT_TYPE},
		{"gmem-size", required_argument, NULL, OPT_GMEM_SIZE},
		{"private", no_argument, NULL, OPT_PRIVATE},
		{"xo", no_argument, NULL, OPT_XO},
		{"policy", required_argument, NULL, OPT_POLICY},
		{"on-violation", required_argument, NULL, OPT_VIOLATION},
		{"trace", no_argument, NULL, OPT_TRACE},
		{"stats", optional_argument, NULL, OPT_STATS},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t n;
	int c;

	*o = (struct options){
		.mem_size = DEFAULT_MEM,
		.nr_cpus = 1,
		.type = KVM_X86_SW_PROTECTED_VM,
		.policy = GMEMVM_POLICY_REFUSE,
	};
	opterr = 0;
	/* '+': the guest's arguments after the ELF are not ours. */
	while ((c = getopt_long(argc, argv, "+:m:c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			o->mem_size = parse_size(optarg);
			if (!o->mem_size || o->mem_size % GMEM_PAGE_SIZE ||
			    o->mem_size > GMEM_LOAD_MAX_MEM)
				die("bad --memory '%s': a multiple of 4K up to "
				    "512G, e.g. 64M",
				    optarg);
			break;
		case 'c':
			if (!parse_u64(optarg, &n) || n < 1 ||
			    n > GMEM_LOAD_MAX_CPUS)
				die("bad --cpus '%s': 1 to %d", optarg,
				    GMEM_LOAD_MAX_CPUS);
			o->nr_cpus = (unsigned int)n;
			break;
		case OPT_TYPE:
			if (!strcmp(optarg, "default"))
				o->type = KVM_X86_DEFAULT_VM;
			else if (!strcmp(optarg, "sw-protected"))
				o->type = KVM_X86_SW_PROTECTED_VM;
			else
				die("bad --type '%s': 'default' or "
				    "'sw-protected'",
				    optarg);
			break;
		case OPT_GMEM_SIZE:
			o->gmem_size = parse_size(optarg);
			if (!o->gmem_size || o->gmem_size % GMEM_PAGE_SIZE)
				die("bad --gmem-size '%s': a multiple of 4K, "
				    "e.g. 16M",
				    optarg);
			break;
		case OPT_PRIVATE:
			o->private = true;
			break;
		case OPT_XO:
			o->xo = true;
			break;
		case OPT_POLICY:
			if (!strcmp(optarg, "convert"))
				o->policy = GMEMVM_POLICY_CONVERT;
			else if (!strcmp(optarg, "refuse"))
				o->policy = GMEMVM_POLICY_REFUSE;
			else
				die("bad --policy '%s': 'convert' or 'refuse'",
				    optarg);
			break;
		case OPT_VIOLATION:
			if (!strcmp(optarg, "inject"))
				o->inject = true;
			else if (!strcmp(optarg, "stop"))
				o->inject = false;
			else
				die("bad --on-violation '%s': 'stop' or "
				    "'inject'",
				    optarg);
			break;
		case OPT_TRACE:
			o->trace = true;
			break;
		case OPT_STATS:
			if (!optarg || !strcmp(optarg, "table"))
				o->stats = STATS_TABLE;
			else if (!strcmp(optarg, "json"))
				o->stats = STATS_JSON;
			else
				die("bad --stats '%s': 'table' or 'json'",
				    optarg);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			die("option '%s' needs a value (see --help)",
			    argv[optind - 1]);
		default:
			if (optopt && optopt < 256)
				die("unknown option '-%c' (see --help)",
				    optopt);
			die("unknown or incomplete option '%s' (see --help)",
			    argv[optind - 1]);
		}
	}
	if (optind >= argc)
		die("no guest given (usage: %s [options] GUEST.elf [ARG0 "
		    "[ARG1]]; see --help)",
		    prog);
	o->elf = argv[optind++];
	if (argc - optind > 2)
		die("at most two guest arguments (RDI, RSI), got %d",
		    argc - optind);
	for (int i = 0; optind < argc; i++, optind++)
		if (!parse_u64(argv[optind], &o->args[i]))
			die("bad guest argument '%s': a number", argv[optind]);
	if (o->gmem_size && o->type != KVM_X86_SW_PROTECTED_VM)
		die("--gmem-size needs --type sw-protected (a default VM has "
		    "no guest_memfd)");
	if (o->gmem_size > o->mem_size)
		die("--gmem-size is larger than --memory");
	if (!o->gmem_size)
		o->gmem_size = o->mem_size;
	if (o->private && o->type != KVM_X86_SW_PROTECTED_VM)
		die("--private needs --type sw-protected (a default VM has no "
		    "private memory)");
}

/* ---- failure and output ------------------------------------------------ */

static void stop_all(struct gmemvm *vmm)
{
	for (unsigned int i = 0; i < vmm->opt.nr_cpus; i++)
		if (vmm->vcpus[i].vcpu)
			gmem_vcpu_kick(vmm->vcpus[i].vcpu);
}

static bool stopping(struct gmemvm *vmm)
{
	return __atomic_load_n(&vmm->failed, __ATOMIC_ACQUIRE) || interrupted;
}

/* Record the first failure and stop every vCPU. */
static void __attribute__((format(printf, 3, 4)))
fail(struct gmemvm *vmm, int status, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&vmm->fail_lock);
	if (!vmm->failed) {
		va_start(ap, fmt);
		vsnprintf(vmm->fail_msg, sizeof(vmm->fail_msg), fmt, ap);
		va_end(ap);
		vmm->fail_status = status;
		__atomic_store_n(&vmm->failed, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&vmm->fail_lock);
	stop_all(vmm);
}

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
	/* gmem_vcpu_kick() is one atomic OR: safe in a handler. */
	if (the_vmm)
		stop_all(the_vmm);
}

static void __attribute__((format(printf, 2, 3)))
trace(struct vcpu *v, const char *fmt, ...)
{
	struct gmemvm *vmm = v->vmm;
	struct timespec now;
	char buf[512];
	va_list ap;
	double t;

	if (!vmm->opt.trace)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	t = (double)(now.tv_sec - vmm->start.tv_sec) +
	    (double)(now.tv_nsec - vmm->start.tv_nsec) / 1e9;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&vmm->out_lock);
	fprintf(stderr, "[%9.6f] vcpu%u %s\n", t, v->id, buf);
	pthread_mutex_unlock(&vmm->out_lock);
}

/* Guest text: console lines and GUEST_PRINTF, prefixed with the vCPU
 * when there is more than one. */
static void guest_line(struct vcpu *v, const char *s, size_t n)
{
	struct gmemvm *vmm = v->vmm;

	pthread_mutex_lock(&vmm->out_lock);
	if (vmm->opt.nr_cpus > 1)
		printf("[vcpu%u] ", v->id);
	fwrite(s, 1, n, stdout);
	putchar('\n');
	fflush(stdout);
	pthread_mutex_unlock(&vmm->out_lock);
}

static void console_put(struct vcpu *v, char c)
{
	if (c == '\n' || v->line_len == sizeof(v->line)) {
		guest_line(v, v->line, v->line_len);
		v->line_len = 0;
		if (c == '\n')
			return;
	}
	v->line[v->line_len++] = c;
}

static void console_flush(struct vcpu *v)
{
	if (v->line_len)
		guest_line(v, v->line, v->line_len);
	v->line_len = 0;
}

/* ---- exits ------------------------------------------------------------- */

static const char *vector_name(uint64_t v)
{
	static const char *const names[32] = {
		"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
		"#DF", NULL,  "#TS", "#NP", "#SS", "#GP", "#PF", NULL,
		"#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
	};

	return v < 32 && names[v] ? names[v] : "exception";
}

static uint64_t rip_of(struct vcpu *v)
{
	struct kvm_regs regs = {0};

	gmem_vcpu_get_regs(v->vcpu, &regs);
	return regs.rip;
}

/*
 * A ucall: the guest's OUT to GUEST_PORT_UCALL carries the GPA of its
 * struct guest_ucall, read through the vCPU so private memory works.
 * Returns false when the vCPU is finished (DONE or a failure).
 */
static bool handle_ucall(struct vcpu *v, uint64_t gpa)
{
	struct gmemvm *vmm = v->vmm;
	struct guest_ucall uc;
	int r = gmem_vcpu_access(v->vcpu, gpa, &uc, sizeof(uc),
				 GMEM_ACCESS_READ);

	if (r) {
		fail(vmm, EXIT_GUEST_FAILED,
		     "vcpu%u: ucall at GPA %#" PRIx64 " is not readable RAM",
		     v->id, gpa);
		return false;
	}
	uc.buf[sizeof(uc.buf) - 1] = '\0';
	switch (uc.cmd) {
	case UCALL_PRINTF: {
		size_t n = strlen(uc.buf);

		trace(v, "IO ucall PRINTF (%zu bytes)", n);
		if (n && uc.buf[n - 1] == '\n')
			n--;
		guest_line(v, uc.buf, n);
		return true;
	}
	case UCALL_SYNC:
		/* Nothing to synchronise with: GUEST_SYNC() returns 0. */
		trace(v, "IO ucall SYNC %#" PRIx64, uc.args[0]);
		return true;
	case UCALL_DONE:
		trace(v, "IO ucall DONE %" PRIu64, uc.args[0]);
		v->done = true;
		v->status = uc.args[0];
		return false;
	case UCALL_ASSERT:
		trace(v, "IO ucall ASSERT");
		fail(vmm, EXIT_GUEST_FAILED,
		     "vcpu%u: guest assertion failed: %s", v->id, uc.buf);
		return false;
	case UCALL_UNHANDLED:
		trace(v, "IO ucall UNHANDLED vector %" PRIu64,
		      uc.args[UCALL_UNHANDLED_VECTOR]);
		fail(vmm, EXIT_GUEST_FAILED,
		     "vcpu%u: unhandled %s (vector %" PRIu64
		     ") error code %#" PRIx64 " at rip %#" PRIx64
		     " cr2 %#" PRIx64,
		     v->id, vector_name(uc.args[UCALL_UNHANDLED_VECTOR]),
		     uc.args[UCALL_UNHANDLED_VECTOR],
		     uc.args[UCALL_UNHANDLED_ERROR],
		     uc.args[UCALL_UNHANDLED_RIP],
		     uc.args[UCALL_UNHANDLED_CR2]);
		return false;
	default:
		fail(vmm, EXIT_GUEST_FAILED, "vcpu%u: unknown ucall %" PRIu64,
		     v->id, uc.cmd);
		return false;
	}
}

/* The OUT carries 32 bits of the ucall's GPA; RDI has all (ucall.h). */
static uint64_t ucall_gpa(struct vcpu *v, uint32_t low)
{
	struct kvm_regs regs;

	if (!gmem_vcpu_get_regs(v->vcpu, &regs) && (uint32_t)regs.rdi == low)
		return regs.rdi;
	return low;
}

static bool handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	uint32_t val = 0;

	if (run->io.direction == KVM_EXIT_IO_OUT && run->io.count == 1)
		memcpy(&val, data, run->io.size);
	if (run->io.direction == KVM_EXIT_IO_OUT &&
	    run->io.port == GUEST_PORT_CONSOLE && run->io.size == 1) {
		for (uint32_t i = 0; i < run->io.count; i++)
			console_put(v, (char)data[i]);
		if (v->vmm->opt.trace)
			trace(v, "IO out port %#x console '%s'", run->io.port,
			      val == '\n' ? "\\n" : (char[2]){(char)val, 0});
		return true;
	}
	if (run->io.direction == KVM_EXIT_IO_OUT &&
	    run->io.port == GUEST_PORT_UCALL && run->io.size == 4 &&
	    run->io.count == 1)
		return handle_ucall(v, ucall_gpa(v, val));
	trace(v, "IO %s port %#x size %u", run->io.direction ? "out" : "in",
	      run->io.port, run->io.size);
	fail(v->vmm, EXIT_GUEST_FAILED,
	     "vcpu%u: I/O %s port %#x size %u at rip %#" PRIx64
	     ": no device there",
	     v->id, run->io.direction ? "out" : "in", run->io.port,
	     run->io.size, rip_of(v));
	return false;
}

static bool handle_hypercall(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint64_t *a = run->hypercall.args;
	int64_t ret;

	switch (run->hypercall.nr) {
	case KVM_HC_MAP_GPA_RANGE:
		ret = gmemvm_map_gpa_range(&v->vmm->mem, a[0], a[1], a[2]);
		trace(v,
		      "HYPERCALL MAP_GPA_RANGE gpa %#" PRIx64 " npages %" PRIu64
		      " to %s -> %" PRId64,
		      a[0], a[1],
		      a[2] & KVM_MAP_GPA_RANGE_ENCRYPTED ? "private" : "shared",
		      ret);
		break;
	case GMEM_HC_PROTECT:
		ret = gmemvm_protect(&v->vmm->mem, a[0], a[1], a[2]);
		trace(v,
		      "HYPERCALL GMEM_PROTECT gpa %#" PRIx64 " npages %" PRIu64
		      " prot %s%s%s -> %" PRId64,
		      a[0], a[1], a[2] & GMEM_PROTECT_NR ? "NR " : "",
		      a[2] & GMEM_PROTECT_NW ? "NW " : "",
		      a[2] & GMEM_PROTECT_NX ? "NX " : "", ret);
		break;
	default:
		/* Only the numbers enabled above exit; be safe anyway. */
		ret = -KVM_ENOSYS;
		trace(v, "HYPERCALL nr %#" PRIx64 " -> -KVM_ENOSYS",
		      (uint64_t)run->hypercall.nr);
	}
	run->hypercall.ret = (uint64_t)ret;
	return true;
}

static bool handle_memory_fault(struct vcpu *v, int err)
{
	struct kvm_run *run = v->run;
	uint64_t flags = run->memory_fault.flags;
	uint64_t gpa = run->memory_fault.gpa;
	bool violation;
	char why[384];
	int r;

	r = gmemvm_memory_fault(&v->vmm->mem, err, flags, gpa,
				v->vmm->opt.policy, why, sizeof(why),
				&violation);
	trace(v,
	      "MEMORY_FAULT %s gpa %#" PRIx64 " size %#" PRIx64
	      " flags %#" PRIx64 "%s (%s) -> %s",
	      gmemvm_access_name(flags), gpa, (uint64_t)run->memory_fault.size,
	      flags, flags & KVM_MEMORY_EXIT_FLAG_PRIVATE ? " PRIVATE" : "",
	      err == -EHWPOISON ? "EHWPOISON" : "EFAULT",
	      r ? "stop" : "converted to shared, resume");
	if (!r)
		return true;
	if (violation && v->vmm->opt.inject) {
		uint64_t lin;
		uint32_t pfec;

		/* Reflect the denied access into the guest as #PF. */
		if (!gmem_vcpu_get_fault_linear(v->vcpu, &lin, &pfec) &&
		    !gmem_vcpu_inject_exception(v->vcpu, 14, true, pfec, lin)) {
			fprintf(stderr,
				"gmemvm: vcpu%u: violation: %s at rip %#" PRIx64
				"; #PF injected (CR2 %#" PRIx64
				", error code %#x)\n",
				v->id, why, rip_of(v), lin, pfec);
			return true;
		}
	}
	fail(v->vmm, EXIT_GUEST_FAILED, "vcpu%u: %s%s at rip %#" PRIx64, v->id,
	     violation ? "violation: " : "", why, rip_of(v));
	return false;
}

/* One exit; false when this vCPU is finished. */
static bool handle_exit(struct vcpu *v, int r)
{
	struct kvm_run *run = v->run;

	if (r == -EFAULT || r == -EHWPOISON) {
		if (run->exit_reason == KVM_EXIT_MEMORY_FAULT)
			return handle_memory_fault(v, r);
	}
	if (r == -EINTR) {
		trace(v, "INTR");
		return !stopping(v->vmm);
	}
	if (r < 0) {
		fail(v->vmm, EXIT_VMM_ERROR, "vcpu%u: KVM_RUN failed: %s",
		     v->id, strerror(-r));
		return false;
	}
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		return handle_io(v);
	case KVM_EXIT_HYPERCALL:
		return handle_hypercall(v);
	case KVM_EXIT_SHUTDOWN:
		trace(v, "SHUTDOWN");
		fail(v->vmm, EXIT_GUEST_FAILED,
		     "vcpu%u: shutdown (triple fault) at rip %#" PRIx64, v->id,
		     rip_of(v));
		return false;
	case KVM_EXIT_HLT:
		trace(v, "HLT");
		fail(v->vmm, EXIT_GUEST_FAILED,
		     "vcpu%u: HLT at rip %#" PRIx64
		     " with nothing to wake it (no interrupts)",
		     v->id, rip_of(v));
		return false;
	case KVM_EXIT_MMIO:
		trace(v, "MMIO %s gpa %#" PRIx64 " len %u",
		      run->mmio.is_write ? "write" : "read",
		      (uint64_t)run->mmio.phys_addr, run->mmio.len);
		fail(v->vmm, EXIT_GUEST_FAILED,
		     "vcpu%u: MMIO %s of %u bytes at GPA %#" PRIx64
		     " (outside RAM, no device) at rip %#" PRIx64,
		     v->id, run->mmio.is_write ? "write" : "read",
		     run->mmio.len, (uint64_t)run->mmio.phys_addr, rip_of(v));
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		trace(v, "INTERNAL_ERROR suberror %u", run->internal.suberror);
		fail(v->vmm, EXIT_GUEST_FAILED,
		     "vcpu%u: internal error %u (emulation) at rip %#" PRIx64,
		     v->id, run->internal.suberror, rip_of(v));
		return false;
	default:
		trace(v, "exit %u", run->exit_reason);
		fail(v->vmm, EXIT_GUEST_FAILED,
		     "vcpu%u: unexpected exit %s (%u) at rip %#" PRIx64, v->id,
		     gmem_exit_name(run->exit_reason)
			     ? gmem_exit_name(run->exit_reason)
			     : "?",
		     run->exit_reason, rip_of(v));
		return false;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;

	while (!stopping(v->vmm)) {
		int r = gmem_vcpu_run(v->vcpu);

		if (!handle_exit(v, r))
			break;
	}
	console_flush(v);
	return NULL;
}

/* ---- set-up ------------------------------------------------------------ */

/* The guest image, with gmemvm's words for what can go wrong. */
static void *read_file(const char *path, size_t *size)
{
	void *image;
	int r = gmem_load_read_file(path, &image, size);

	switch (r) {
	case 0:
		return image;
	case -ENOEXEC:
		die("%s: not a regular file", path);
	case -E2BIG:
		die("%s: too large for a guest image", path);
	case -EIO:
		die("%s: short read", path);
	case -ENOMEM:
		die("%s: out of memory", path);
	default:
		die("%s: %s", path, strerror(-r));
	}
}

static const char *load_error(int r)
{
	switch (r) {
	case -ENOEXEC:
		return "not a static x86-64 ELF executable";
	case -EINVAL:
		return "malformed ELF image (bad headers or segments)";
	case -E2BIG:
		return "does not fit in guest RAM (try a larger --memory)";
	default:
		return strerror(-r);
	}
}

static void vm_setup(struct gmemvm *vmm, const void *image, size_t size)
{
	struct options *o = &vmm->opt;
	struct kvm_userspace_memory_region2 region = {
		.slot = 0,
		.memory_size = o->mem_size,
	};
	struct gmem_load_opts lo = {
		.mem_size = o->mem_size,
		.nr_cpus = o->nr_cpus,
		.flags = GMEM_LOAD_NX,
		.rdi = o->args[0],
		.rsi = o->args[1],
	};
	struct gmem_load_info info;
	struct kvm_enable_cap cap;
	int r;

	/* Validate the image before anything is allocated for it. */
	r = gmem_load_check(image, size, &lo, &info);
	if (r)
		die("%s: %s", o->elf, load_error(r));

	r = gmem_vm_create(o->type, &vmm->vm);
	if (r)
		die("cannot create the VM: %s", strerror(-r));
	/*
	 * The shared backing exists for private RAM too: it is where pages
	 * the guest converts to shared live.  Untouched pages cost nothing.
	 */
	vmm->shared = mmap(NULL, o->mem_size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vmm->shared == MAP_FAILED)
		die("cannot map %" PRIu64 " bytes of guest RAM: %s",
		    o->mem_size, strerror(errno));
	region.userspace_addr = (uint64_t)(uintptr_t)vmm->shared;
	vmm->gmem_fd = -1;
	if (o->type == KVM_X86_SW_PROTECTED_VM) {
		struct kvm_create_guest_memfd cg = {.size = o->gmem_size};

		r = gmem_create_guest_memfd(vmm->vm, &cg);
		if (r < 0)
			die("cannot create the guest_memfd: %s", strerror(-r));
		vmm->gmem_fd = r;
		region.flags = KVM_MEM_GUEST_MEMFD;
		region.guest_memfd = (uint32_t)vmm->gmem_fd;
		region.memory_size = o->gmem_size;
	}
	r = gmem_vm_set_memory_region2(vmm->vm, &region);
	if (r)
		die("cannot add the RAM memslot: %s", strerror(-r));
	if (o->gmem_size < o->mem_size) {
		/* The rest of RAM, shared memory only. */
		struct kvm_userspace_memory_region2 rest = {
			.slot = 1,
			.guest_phys_addr = o->gmem_size,
			.memory_size = o->mem_size - o->gmem_size,
			.userspace_addr = region.userspace_addr + o->gmem_size,
		};

		r = gmem_vm_set_memory_region2(vmm->vm, &rest);
		if (r)
			die("cannot add the second RAM memslot: %s",
			    strerror(-r));
	}
	if (o->private) {
		struct kvm_memory_attributes a = {
			.size = o->gmem_size,
			.attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE,
		};

		r = gmem_vm_set_memory_attributes(vmm->vm, &a);
		if (r)
			die("cannot make RAM private: %s", strerror(-r));
	}
	gmemvm_mem_init(&vmm->mem, vmm->vm, o->mem_size, vmm->shared,
			vmm->gmem_fd);

	/* Conversions exit to us only where there is private memory. */
	if (o->type == KVM_X86_SW_PROTECTED_VM) {
		cap = (struct kvm_enable_cap){
			.cap = KVM_CAP_EXIT_HYPERCALL,
			.args[0] = 1ULL << KVM_HC_MAP_GPA_RANGE,
		};
		r = gmem_vm_enable_cap(vmm->vm, &cap);
		if (r)
			die("KVM_CAP_EXIT_HYPERCALL: %s", strerror(-r));
	}
	cap = (struct kvm_enable_cap){
		.cap = GMEM_CAP_EXIT_HYPERCALL,
		.args[0] = 1ULL << (GMEM_HC_PROTECT - GMEM_HC_BASE),
	};
	r = gmem_vm_enable_cap(vmm->vm, &cap);
	if (r)
		die("GMEM_CAP_EXIT_HYPERCALL: %s", strerror(-r));
	/* Which access an NR/NW/NX lock denied: the violation report. */
	cap = (struct kvm_enable_cap){.cap = GMEM_CAP_FAULT_ACCESS_FLAGS};
	r = gmem_vm_enable_cap(vmm->vm, &cap);
	if (r)
		die("GMEM_CAP_FAULT_ACCESS_FLAGS: %s", strerror(-r));
	if (o->xo) {
		/* Before the first vCPU: they read M when created. */
		cap = (struct kvm_enable_cap){
			.cap = GMEM_CAP_XO_ALIAS,
			.args[0] = XO_MAXPHYADDR,
		};
		r = gmem_vm_enable_cap(vmm->vm, &cap);
		if (r)
			die("GMEM_CAP_XO_ALIAS: %s", strerror(-r));
	}

	vmm->vcpus = calloc(o->nr_cpus, sizeof(*vmm->vcpus));
	if (!vmm->vcpus)
		die("out of memory");
	for (unsigned int i = 0; i < o->nr_cpus; i++) {
		struct vcpu *v = &vmm->vcpus[i];

		v->vmm = vmm;
		v->id = i;
		r = gmem_vcpu_create(vmm->vm, i, &v->vcpu);
		if (r)
			die("cannot create vCPU %u: %s", i, strerror(-r));
		v->run = gmem_vcpu_kvm_run(v->vcpu);
	}
	r = gmem_load_elf(vmm->vcpus[0].vcpu, image, size, &lo, &info);
	if (r)
		die("%s: %s", o->elf, load_error(r));
	for (unsigned int i = 1; i < o->nr_cpus; i++) {
		r = gmem_load_vcpu(vmm->vcpus[i].vcpu, &info, i);
		if (r)
			die("cannot set up vCPU %u: %s", i, strerror(-r));
	}
}

static void vm_teardown(struct gmemvm *vmm)
{
	for (unsigned int i = 0; i < vmm->opt.nr_cpus; i++)
		gmem_vcpu_destroy(vmm->vcpus[i].vcpu);
	free(vmm->vcpus);
	gmemvm_mem_destroy(&vmm->mem);
	if (vmm->gmem_fd >= 0)
		gmem_handle_close(vmm->gmem_fd);
	gmem_vm_put(vmm->vm);
	munmap(vmm->shared, vmm->opt.mem_size);
}

/* ---- statistics -------------------------------------------------------- */

/* The per-vCPU rows: a name and where the value is. */
struct vcpu_row {
	const char *name;
	int exit;   /* KVM_EXIT_* for exits[], or -1 */
	size_t off; /* else offset in struct gmem_vcpu_stats */
};

#define VSTAT(f)                                            \
	{                                                   \
#f, -1, offsetof(struct gmem_vcpu_stats, f) \
	}
static const struct vcpu_row vcpu_rows[] = {
	{"exits_io", KVM_EXIT_IO, 0},
	{"exits_hypercall", KVM_EXIT_HYPERCALL, 0},
	{"exits_memory_fault", KVM_EXIT_MEMORY_FAULT, 0},
	{"exits_mmio", KVM_EXIT_MMIO, 0},
	{"exits_intr", KVM_EXIT_INTR, 0},
	{"exits_other", -2, 0},
	VSTAT(accesses),
	VSTAT(tlb_hits),
	VSTAT(tlb_flushes),
	VSTAT(faults),
	VSTAT(xo_faults),
};

static uint64_t vcpu_value(const struct gmem_vcpu_stats *s,
			   const struct vcpu_row *row)
{
	uint64_t v = 0;

	if (row->exit >= 0)
		return s->exits[row->exit];
	if (row->exit == -2) {
		for (size_t i = 0; i < 64; i++)
			v += s->exits[i];
		for (size_t i = 0; i < sizeof(vcpu_rows) / sizeof(*vcpu_rows);
		     i++)
			if (vcpu_rows[i].exit >= 0)
				v -= s->exits[vcpu_rows[i].exit];
		return v;
	}
	memcpy(&v, (const uint8_t *)s + row->off, sizeof(v));
	return v;
}

/* clang-format off */
#define VM_STATS(X)							\
	X(faults) X(fault_retries) X(map_4k) X(map_2m) X(map_1g)	\
	X(invalidations) X(zapped_4k) X(zapped_2m) X(zapped_1g)		\
	X(tlb_flush_requests)
#define VMM_STATS(X)							\
	X(to_private) X(pages_to_private) X(to_shared) X(pages_to_shared) \
	X(map_errors) X(protects) X(pages_protected) X(protect_errors)	\
	X(implicit)
/* clang-format on */

static void print_stats(struct gmemvm *vmm, double secs, int status)
{
	unsigned int n = vmm->opt.nr_cpus;
	struct gmem_vcpu_stats *vs = calloc(n, sizeof(*vs));
	const struct gmemvm_mem_stats *ms = &vmm->mem.stats;
	struct gmem_vm_stats st;
	const size_t nrows = sizeof(vcpu_rows) / sizeof(*vcpu_rows);

	if (!vs)
		return;
	gmem_vm_get_stats(vmm->vm, &st);
	for (unsigned int i = 0; i < n; i++)
		gmem_vcpu_get_stats(vmm->vcpus[i].vcpu, &vs[i]);

	if (vmm->opt.stats == STATS_JSON) {
		const char *sep = "";

		printf("{\"status\":%d,\"seconds\":%.6f,\"vm\":{", status,
		       secs);
#define J(f) printf("%s\"%s\":%" PRIu64, sep, #f, (uint64_t)st.f), sep = ",";
		VM_STATS(J)
#undef J
		sep = "";
		printf("},\"vmm\":{");
#define J(f) printf("%s\"%s\":%" PRIu64, sep, #f, (uint64_t)ms->f), sep = ",";
		VMM_STATS(J)
#undef J
		printf("},\"vcpus\":[");
		for (unsigned int i = 0; i < n; i++) {
			printf("%s{\"id\":%u", i ? "," : "", i);
			for (size_t k = 0; k < nrows; k++)
				printf(",\"%s\":%" PRIu64, vcpu_rows[k].name,
				       vcpu_value(&vs[i], &vcpu_rows[k]));
			printf("}");
		}
		printf("]}\n");
		free(vs);
		return;
	}

	printf("\n--- statistics: %u vCPU%s, %.3f s, exit status %d ---\n", n,
	       n == 1 ? "" : "s", secs, status);
	printf("VM (stage 2)              VMM (conversions and locks)\n");
	{
		const char *vmn[] = {
#define N(f) #f,
			VM_STATS(N)
#undef N
		};
		uint64_t vmv[] = {
#define V(f) st.f,
			VM_STATS(V)
#undef V
		};
		const char *mmn[] = {
#define N(f) #f,
			VMM_STATS(N)
#undef N
		};
		uint64_t mmv[] = {
#define V(f) ms->f,
			VMM_STATS(V)
#undef V
		};
		size_t a = sizeof(vmn) / sizeof(*vmn);
		size_t b = sizeof(mmn) / sizeof(*mmn);

		for (size_t i = 0; i < a || i < b; i++) {
			if (i < a)
				printf("  %-18s %10" PRIu64, vmn[i], vmv[i]);
			else
				printf("  %-18s %10s", "", "");
			if (i < b)
				printf("   %-18s %10" PRIu64, mmn[i], mmv[i]);
			printf("\n");
		}
	}
	printf("vCPU                ");
	for (unsigned int i = 0; i < n; i++)
		printf(" %10u", i);
	printf("\n");
	for (size_t k = 0; k < nrows; k++) {
		printf("  %-18s", vcpu_rows[k].name);
		for (unsigned int i = 0; i < n; i++)
			printf(" %10" PRIu64,
			       vcpu_value(&vs[i], &vcpu_rows[k]));
		printf("\n");
	}
	free(vs);
}

/* ---- main -------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct gmemvm vmm = {0};
	struct sigaction sa = {.sa_handler = on_signal};
	struct timespec end;
	size_t size;
	void *image;
	int status = 0;
	double secs;

	if (argc > 0 && argv[0] && strrchr(argv[0], '/'))
		prog = strrchr(argv[0], '/') + 1;
	else if (argc > 0 && argv[0] && *argv[0])
		prog = argv[0];
	parse_options(argc, argv, &vmm.opt);
	setvbuf(stdout, NULL, _IOLBF, 0);
	pthread_mutex_init(&vmm.fail_lock, NULL);
	pthread_mutex_init(&vmm.out_lock, NULL);

	image = read_file(vmm.opt.elf, &size);
	vm_setup(&vmm, image, size);
	free(image);

	the_vmm = &vmm;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	clock_gettime(CLOCK_MONOTONIC, &vmm.start);
	for (unsigned int i = 0; i < vmm.opt.nr_cpus; i++) {
		struct vcpu *v = &vmm.vcpus[i];
		int r = pthread_create(&v->thread, NULL, vcpu_thread, v);

		if (r) {
			fail(&vmm, EXIT_VMM_ERROR,
			     "cannot start the thread of vCPU %u: %s", i,
			     strerror(r));
			break;
		}
		v->started = true;
	}
	for (unsigned int i = 0; i < vmm.opt.nr_cpus; i++)
		if (vmm.vcpus[i].started)
			pthread_join(vmm.vcpus[i].thread, NULL);
	clock_gettime(CLOCK_MONOTONIC, &end);
	the_vmm = NULL;
	secs = (double)(end.tv_sec - vmm.start.tv_sec) +
	       (double)(end.tv_nsec - vmm.start.tv_nsec) / 1e9;

	if (vmm.failed) {
		status = vmm.fail_status;
	} else if (interrupted) {
		snprintf(vmm.fail_msg, sizeof(vmm.fail_msg), "interrupted");
		status = EXIT_INTERRUPTED;
	} else {
		/*
		 * vCPU 0's: it runs guest_main, whose return is the program's
		 * result.  Other vCPUs end with their own DONE (some guests
		 * report their index), and fail through an assertion.
		 */
		uint64_t st = vmm.vcpus[0].status;

		status = st > 255 ? 255 : (int)st;
	}
	/* The verdict first: the table after it is the epilogue. */
	if (vmm.failed || interrupted) {
		fflush(stdout);
		fprintf(stderr, "%s: %s\n", prog, vmm.fail_msg);
	}
	if (vmm.opt.stats != STATS_NONE)
		print_stats(&vmm, secs, status);
	vm_teardown(&vmm);
	return status;
}
