/* SPDX-License-Identifier: MIT */
/*
 * Host side of the guest tests (what kvm_util is to the KVM selftests):
 * create a VM with RAM in one memslot (optionally guest_memfd-backed and
 * private), add vCPUs, load a guest ELF built from the test's -DGUEST half,
 * and run a vCPU until the guest says something: console output is
 * collected and echoed as TAP diagnostics, GUEST_PRINTF is printed, and
 * SYNC/ASSERT/DONE/UNHANDLED ucalls come back to the test with their data.
 *
 * The guest ABI (ports, struct guest_ucall) is guests/include/ucall.h.
 */
#ifndef GMEM_GUEST_UTIL_H
#define GMEM_GUEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <gmem/gmem.h>
#include <gmem/loader.h>

#include "ucall.h"

#define GUEST_MAX_VCPUS 8

/* RAM in a guest_memfd, all of it PRIVATE (needs KVM_X86_SW_PROTECTED_VM). */
#define GUEST_VM_PRIVATE (1U << 0)

/* guest_vcpu_run(): an exit that is not a ucall; kvm_run describes it. */
#define GUEST_EXIT 0x100

struct guest_vcpu;

struct guest_vm {
	struct gmem_vm *vm;
	unsigned long type;
	unsigned int flags;
	uint64_t mem_size;
	void *mem;   /* the slot's userspace memory (shared pages) */
	int gmem_fd; /* guest_memfd handle, -1 without GUEST_VM_PRIVATE */
	unsigned int nr_vcpus;
	struct guest_vcpu *vcpus[GUEST_MAX_VCPUS];
	struct gmem_load_info load;
	int loaded;
};

struct guest_vcpu {
	struct guest_vm *gvm;
	struct gmem_vcpu *vcpu;
	struct kvm_run *run;
	unsigned int id;
	uint64_t ucall_gpa;   /* of the last ucall, for guest_vcpu_reply() */
	int echo;	      /* print console lines as "# " diagnostics */
	int convert;	      /* handle KVM_HC_MAP_GPA_RANGE in run */
	int discard_shared;   /* ... and discard pages that go private */
	uint64_t conversions; /* MAP_GPA_RANGE calls handled */
	char line[512];	      /* console line being assembled */
	size_t line_len;
	char *console; /* everything the guest wrote to the console */
	size_t console_len, console_cap;
};

/* Create a VM of @type with @mem_size bytes of RAM at GPA 0 (slot 0). */
int guest_vm_create(unsigned long type, uint64_t mem_size, unsigned int flags,
		    struct guest_vm **out);
void guest_vm_destroy(struct guest_vm *gvm);

/* Add the next vCPU (ids 0, 1, ...).  Add them all before loading. */
int guest_vcpu_add(struct guest_vm *gvm, struct guest_vcpu **out);

/*
 * Load the guest ELF @name (a path if it contains '/', else the image
 * NAME.elf built for a test, see guest_elf_path) for every vCPU added so
 * far.  @opts may be NULL; a zero mem_size or nr_cpus in it means the VM's.
 */
int guest_vm_load(struct guest_vm *gvm, const char *name,
		  const struct gmem_load_opts *opts);

/*
 * Where the image of guest program @name is: $GMEM_GUEST_DIR/NAME.elf if
 * that is set, else ../guests/NAME.elf relative to this executable (the
 * build tree's layout).
 */
const char *guest_elf_path(const char *name, char *buf, size_t len);

/*
 * Run until the guest makes a ucall other than PRINTF, or exits for
 * another reason.  Returns the ucall's command (UCALL_SYNC, UCALL_ASSERT,
 * UCALL_DONE, UCALL_UNHANDLED) with *@uc filled (if not NULL),
 * GUEST_EXIT for another exit (vcpu->run says which), or the negative
 * errno of gmem_vcpu_run (-EFAULT and -EHWPOISON with a memory-fault exit
 * in vcpu->run, -EINTR, ...).
 */
int guest_vcpu_run(struct guest_vcpu *v, struct guest_ucall *uc);

/*
 * Handle the KVM_EXIT_HYPERCALL for KVM_HC_MAP_GPA_RANGE in v->run as a
 * VMM does: set or clear PRIVATE on the range, punch the guest_memfd when
 * pages went shared (and, if v->discard_shared, discard the shared pages
 * when they went private), and put the result in
 * hypercall.ret: 0, or -EINVAL for a bad range (the guest sees it; not an
 * error of this call).  guest_vcpu_run() calls it itself when v->convert
 * is set (the default for a GUEST_VM_PRIVATE VM).  Returns 0, or -EINVAL
 * if the exit is not that hypercall.
 */
int guest_vcpu_handle_map_gpa_range(struct guest_vcpu *v);

/* Set the attributes of [gpa, gpa + size) (KVM_SET_MEMORY_ATTRIBUTES). */
int guest_vm_set_attributes(struct guest_vm *gvm, uint64_t gpa, uint64_t size,
			    uint64_t attributes);

/* Answer the last SYNC: the guest's GUEST_SYNC() returns @value. */
int guest_vcpu_reply(struct guest_vcpu *v, uint64_t value);

/* One line saying what a guest_vcpu_run() result was, for diagnostics. */
const char *guest_describe(struct guest_vcpu *v, int ret,
			   const struct guest_ucall *uc, char *buf, size_t len);

/*
 * Run to GUEST_DONE, answering nothing: every SYNC is an error.  Returns 0
 * and the status when DONE came, else -1 after printing what happened
 * (assertion with file:line, unexpected exception, or exit) as "# " lines.
 */
int guest_vcpu_run_to_done(struct guest_vcpu *v, uint64_t *status);

/*
 * The common case: a VM with one vCPU, @name loaded with @opts (NULL for
 * defaults), run to DONE.  0 when the guest reported DONE(0).
 */
int guest_run_program(const char *name, unsigned long type, uint64_t mem_size,
		      unsigned int flags, const struct gmem_load_opts *opts);

/* Read/write guest memory through a vCPU (shared or private alike). */
int guest_read(struct guest_vcpu *v, uint64_t gpa, void *buf, size_t len);
int guest_write(struct guest_vcpu *v, uint64_t gpa, const void *buf,
		size_t len);

/* The register file of a vCPU, for failure reports (RIP, RSP, ...). */
void guest_dump_regs(struct guest_vcpu *v);

#endif /* GMEM_GUEST_UTIL_H */

/*
 * The stepped-test pattern, for a test that includes "tap.h" first: the
 * guest does GUEST_SYNC(i) before case i and GUEST_SYNC(n) after the last,
 * then GUEST_DONE(0).  Case i passes when SYNC(i + 1) arrives; at the
 * first failure what happened is printed and the remaining cases are
 * skipped (the guest has stopped).  @run is guest_vcpu_run or a wrapper
 * that serves mid-case requests.  n + 1 TAP results, the last for DONE.
 */
#ifdef GMEM_TAP_H
static inline void
guest_run_steps(struct guest_vcpu *v, const char *const *names, unsigned int n,
		int (*run)(struct guest_vcpu *, struct guest_ucall *))
{
	struct guest_ucall uc;
	char msg[768];
	unsigned int i;
	int ret;

	if (!run)
		run = guest_vcpu_run;
	ret = run(v, &uc);
	if (ret != UCALL_SYNC || uc.args[0] != 0) {
		printf("# the guest did not start: %s\n",
		       guest_describe(v, ret, &uc, msg, sizeof(msg)));
		guest_dump_regs(v);
		tap_case_failed = 1;
		i = 0;
		goto fail;
	}
	for (i = 0; i < n; i++) {
		ret = run(v, &uc);
		if (ret != UCALL_SYNC || uc.args[0] != i + 1) {
			printf("# %s\n",
			       guest_describe(v, ret, &uc, msg, sizeof(msg)));
			if (ret != UCALL_ASSERT)
				guest_dump_regs(v);
			tap_case_failed = 1;
			goto fail;
		}
		tap_result(names[i]);
	}
	CHECK_EQ(guest_vcpu_run_to_done(v, NULL), 0);
	tap_result("GUEST_DONE");
	return;
fail:
	tap_result(i < n ? names[i] : "GUEST_DONE");
	for (i++; i < n; i++)
		tap_skip(names[i], "the guest stopped earlier");
	if (i == n)
		tap_skip("GUEST_DONE", "the guest stopped earlier");
}
#endif
