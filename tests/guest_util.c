// SPDX-License-Identifier: MIT
/*
 * Host-side harness for guest tests.  See guest_util.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guest_util.h"

#define SZ_4K 4096ULL

int guest_vm_create(unsigned long type, uint64_t mem_size, unsigned int flags,
		    struct guest_vm **out)
{
	struct kvm_userspace_memory_region2 region = {0};
	struct kvm_enable_cap cap = {0};
	struct guest_vm *gvm;
	int ret;

	if (!mem_size || mem_size & (SZ_4K - 1) || (flags & ~GUEST_VM_PRIVATE))
		return -EINVAL;
	gvm = calloc(1, sizeof(*gvm));
	if (!gvm)
		return -ENOMEM;
	gvm->type = type;
	gvm->flags = flags;
	gvm->mem_size = mem_size;
	gvm->gmem_fd = -1;

	ret = gmem_vm_create(type, &gvm->vm);
	if (ret)
		goto fail;

	/* As in KVM, MAP_GPA_RANGE reaches the VMM only when asked for. */
	cap.cap = KVM_CAP_EXIT_HYPERCALL;
	cap.args[0] = 1ULL << KVM_HC_MAP_GPA_RANGE;
	ret = gmem_vm_enable_cap(gvm->vm, &cap);
	if (ret)
		goto fail;

	/* The guest tests check which access an attribute denied. */
	cap = (struct kvm_enable_cap){.cap = GMEM_CAP_FAULT_ACCESS_FLAGS};
	ret = gmem_vm_enable_cap(gvm->vm, &cap);
	if (ret)
		goto fail;

	/*
	 * Shared backing exists even for a private VM: pages converted to
	 * shared by the guest come from here.
	 */
	gvm->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (gvm->mem == MAP_FAILED) {
		gvm->mem = NULL;
		ret = -errno;
		goto fail;
	}

	region.slot = 0;
	region.guest_phys_addr = 0;
	region.memory_size = mem_size;
	region.userspace_addr = (uint64_t)(uintptr_t)gvm->mem;
	if (flags & GUEST_VM_PRIVATE) {
		struct kvm_create_guest_memfd cg = {.size = mem_size};
		struct kvm_memory_attributes attrs = {
			.address = 0,
			.size = mem_size,
			.attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE,
		};

		ret = gmem_create_guest_memfd(gvm->vm, &cg);
		if (ret < 0)
			goto fail;
		gvm->gmem_fd = ret;
		region.flags = KVM_MEM_GUEST_MEMFD;
		region.guest_memfd = gvm->gmem_fd;
		region.guest_memfd_offset = 0;
		ret = gmem_vm_set_memory_region2(gvm->vm, &region);
		if (ret)
			goto fail;
		ret = gmem_vm_set_memory_attributes(gvm->vm, &attrs);
		if (ret)
			goto fail;
	} else {
		ret = gmem_vm_set_memory_region2(gvm->vm, &region);
		if (ret)
			goto fail;
	}
	*out = gvm;
	return 0;
fail:
	guest_vm_destroy(gvm);
	return ret;
}

void guest_vm_destroy(struct guest_vm *gvm)
{
	if (!gvm)
		return;
	for (unsigned i = 0; i < gvm->nr_vcpus; i++) {
		struct guest_vcpu *v = gvm->vcpus[i];

		gmem_vcpu_destroy(v->vcpu);
		free(v->console);
		free(v);
	}
	if (gvm->gmem_fd >= 0)
		gmem_handle_close(gvm->gmem_fd);
	if (gvm->vm)
		gmem_vm_put(gvm->vm);
	if (gvm->mem)
		munmap(gvm->mem, gvm->mem_size);
	free(gvm);
}

int guest_vcpu_add(struct guest_vm *gvm, struct guest_vcpu **out)
{
	struct guest_vcpu *v;
	int ret;

	if (gvm->nr_vcpus == GUEST_MAX_VCPUS)
		return -E2BIG;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	ret = gmem_vcpu_create(gvm->vm, gvm->nr_vcpus, &v->vcpu);
	if (ret) {
		free(v);
		return ret;
	}
	v->gvm = gvm;
	v->id = gvm->nr_vcpus;
	v->run = gmem_vcpu_kvm_run(v->vcpu);
	v->echo = 1;
	v->convert = !!(gvm->flags & GUEST_VM_PRIVATE);
	gvm->vcpus[gvm->nr_vcpus++] = v;
	if (out)
		*out = v;
	return 0;
}

const char *guest_elf_path(const char *name, char *buf, size_t len)
{
	const char *dir = getenv("GMEM_GUEST_DIR");
	char exe[PATH_MAX];
	ssize_t n;

	if (dir) {
		snprintf(buf, len, "%s/%s.elf", dir, name);
		return buf;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		snprintf(buf, len, "%s.elf", name);
		return buf;
	}
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(buf, len, "%s/../guests/%s.elf", exe, name);
	return buf;
}

int guest_vm_load(struct guest_vm *gvm, const char *name,
		  const struct gmem_load_opts *opts)
{
	struct gmem_load_opts o = {0};
	char path[PATH_MAX];
	int ret;

	if (!gvm->nr_vcpus)
		return -EINVAL;
	if (opts)
		o = *opts;
	if (!o.mem_size)
		o.mem_size = gvm->mem_size;
	if (!o.nr_cpus)
		o.nr_cpus = gvm->nr_vcpus;
	if (!strchr(name, '/'))
		name = guest_elf_path(name, path, sizeof(path));
	ret = gmem_load_elf_file(gvm->vcpus[0]->vcpu, name, &o, &gvm->load);
	if (ret) {
		printf("# loading %s: %s\n", name, strerror(-ret));
		return ret;
	}
	for (unsigned i = 1; i < gvm->nr_vcpus; i++) {
		ret = gmem_load_vcpu(gvm->vcpus[i]->vcpu, &gvm->load, i);
		if (ret)
			return ret;
	}
	gvm->loaded = 1;
	return 0;
}

/* ---- guest memory ------------------------------------------------------ */

static int access_pages(struct guest_vcpu *v, uint64_t gpa, void *buf,
			size_t len, unsigned int access)
{
	uint8_t *p = buf;

	while (len) {
		size_t n = SZ_4K - (gpa & (SZ_4K - 1));
		int ret;

		if (n > len)
			n = len;
		ret = gmem_vcpu_access(v->vcpu, gpa, p, n, access);
		if (ret > 0)
			return -EFAULT; /* MMIO or XO: not guest RAM */
		if (ret < 0)
			return ret;
		gpa += n;
		p += n;
		len -= n;
	}
	return 0;
}

int guest_read(struct guest_vcpu *v, uint64_t gpa, void *buf, size_t len)
{
	return access_pages(v, gpa, buf, len, GMEM_ACCESS_READ);
}

int guest_write(struct guest_vcpu *v, uint64_t gpa, const void *buf, size_t len)
{
	return access_pages(v, gpa, (void *)buf, len, GMEM_ACCESS_WRITE);
}

/* ---- conversions ------------------------------------------------------- */

int guest_vm_set_attributes(struct guest_vm *gvm, uint64_t gpa, uint64_t size,
			    uint64_t attributes)
{
	struct kvm_memory_attributes a = {
		.address = gpa,
		.size = size,
		.attributes = attributes,
	};

	return gmem_vm_set_memory_attributes(gvm->vm, &a);
}

int guest_vcpu_handle_map_gpa_range(struct guest_vcpu *v)
{
	struct guest_vm *gvm = v->gvm;
	struct kvm_run *run = v->run;
	uint64_t gpa, npages, attrs, size;
	int to_private, ret;

	if (run->exit_reason != KVM_EXIT_HYPERCALL ||
	    run->hypercall.nr != KVM_HC_MAP_GPA_RANGE)
		return -EINVAL;
	gpa = run->hypercall.args[0];
	npages = run->hypercall.args[1];
	attrs = run->hypercall.args[2];
	to_private = !!(attrs & KVM_MAP_GPA_RANGE_ENCRYPTED);
	v->conversions++;

	/* Only 4 KiB units, inside RAM, on a VM that has private memory. */
	if (gvm->gmem_fd < 0 ||
	    (attrs & ~(uint64_t)KVM_MAP_GPA_RANGE_ENCRYPTED) ||
	    (gpa & (SZ_4K - 1)) || !npages || npages > gvm->mem_size / SZ_4K ||
	    gpa > gvm->mem_size - npages * SZ_4K) {
		run->hypercall.ret = (uint64_t)-EINVAL;
		return 0;
	}
	size = npages * SZ_4K;
	ret = guest_vm_set_attributes(
		gvm, gpa, size, to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0);
	if (ret) {
		run->hypercall.ret = (uint64_t)(int64_t)ret;
		return 0;
	}
	/*
	 * Punch the private pages the guest gave up, so converting back
	 * starts from zeroed memory, as with KVM.  Shared pages are left as
	 * they are unless asked (discarding costs a host TLB flush).
	 */
	if (!to_private)
		gmem_file_fallocate(gvm->gmem_fd,
				    FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
				    gpa, size);
	else if (v->discard_shared)
		madvise((uint8_t *)gvm->mem + gpa, size, MADV_DONTNEED);
	run->hypercall.ret = 0;
	return 0;
}

/* ---- running ----------------------------------------------------------- */

static void console_put(struct guest_vcpu *v, char c)
{
	if (v->console_len + 1 >= v->console_cap) {
		size_t cap = v->console_cap ? v->console_cap * 2 : 4096;
		char *p = realloc(v->console, cap);

		if (p) {
			v->console = p;
			v->console_cap = cap;
		}
	}
	if (v->console_len + 1 < v->console_cap) {
		v->console[v->console_len++] = c;
		v->console[v->console_len] = '\0';
	}

	if (c == '\n' || v->line_len == sizeof(v->line) - 1) {
		v->line[v->line_len] = '\0';
		if (v->echo)
			printf("# [vcpu%u console] %s\n", v->id, v->line);
		v->line_len = 0;
		if (c == '\n')
			return;
	}
	v->line[v->line_len++] = c;
}

/*
 * The bytes of an OUT: in the kvm_run area at data_offset, as KVM puts
 * them; a CPU model that gives no offset still has them in RAX.
 */
static uint64_t out_value(struct guest_vcpu *v, unsigned int i)
{
	struct kvm_run *run = v->run;
	uint64_t val = 0;

	if (run->io.data_offset) {
		memcpy(&val,
		       (uint8_t *)run + run->io.data_offset +
			       (size_t)i * run->io.size,
		       run->io.size);
	} else {
		struct kvm_regs regs;

		if (!gmem_vcpu_get_regs(v->vcpu, &regs))
			val = regs.rax;
	}
	return val;
}

int guest_vcpu_run(struct guest_vcpu *v, struct guest_ucall *out)
{
	struct kvm_run *run = v->run;
	struct guest_ucall uc;
	struct kvm_regs regs;
	int ret;

	for (;;) {
		ret = gmem_vcpu_run(v->vcpu);
		if (ret < 0)
			return ret;
		if (v->convert && run->exit_reason == KVM_EXIT_HYPERCALL &&
		    run->hypercall.nr == KVM_HC_MAP_GPA_RANGE) {
			guest_vcpu_handle_map_gpa_range(v);
			continue;
		}
		if (run->exit_reason != KVM_EXIT_IO ||
		    run->io.direction != KVM_EXIT_IO_OUT)
			return GUEST_EXIT;

		if (run->io.port == GUEST_PORT_CONSOLE && run->io.size == 1) {
			for (unsigned i = 0; i < run->io.count; i++)
				console_put(v, (char)out_value(v, i));
			continue;
		}
		if (run->io.port != GUEST_PORT_UCALL || run->io.size != 4 ||
		    run->io.count != 1)
			return GUEST_EXIT;

		v->ucall_gpa = (uint32_t)out_value(v, 0);
		/*
		 * The OUT carries 32 bits; RDI has all 64 (guest.h), which
		 * matters when the guest's stack lies above 4 GiB.
		 */
		if (!gmem_vcpu_get_regs(v->vcpu, &regs) &&
		    (uint32_t)regs.rdi == v->ucall_gpa)
			v->ucall_gpa = regs.rdi;
		ret = guest_read(v, v->ucall_gpa, &uc, sizeof(uc));
		if (ret) {
			printf("# vcpu%u: ucall struct at %#" PRIx64
			       " unreadable: %s\n",
			       v->id, v->ucall_gpa, strerror(-ret));
			return GUEST_EXIT;
		}
		uc.buf[sizeof(uc.buf) - 1] = '\0';
		if (uc.cmd == UCALL_PRINTF) {
			printf("# [vcpu%u] %s%s", v->id, uc.buf,
			       uc.buf[0] && uc.buf[strlen(uc.buf) - 1] == '\n'
				       ? ""
				       : "\n");
			continue;
		}
		if (out)
			*out = uc;
		switch (uc.cmd) {
		case UCALL_SYNC:
		case UCALL_ASSERT:
		case UCALL_DONE:
		case UCALL_UNHANDLED:
			return (int)uc.cmd;
		default:
			printf("# vcpu%u: unknown ucall %" PRIu64 "\n", v->id,
			       uc.cmd);
			return GUEST_EXIT;
		}
	}
}

int guest_vcpu_reply(struct guest_vcpu *v, uint64_t value)
{
	return guest_write(v,
			   v->ucall_gpa + offsetof(struct guest_ucall, args[1]),
			   &value, sizeof(value));
}

static const char *vector_name(uint64_t v)
{
	static const char *const names[32] = {
		"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
		"#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "15",
		"#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
	};

	return v < 32 && names[v] ? names[v] : "vector";
}

const char *guest_describe(struct guest_vcpu *v, int ret,
			   const struct guest_ucall *uc, char *buf, size_t len)
{
	struct kvm_run *run = v->run;
	struct kvm_regs regs = {0};
	const char *why;

	gmem_vcpu_get_regs(v->vcpu, &regs);
	if (ret < 0 && ret != -EFAULT && ret != -EHWPOISON) {
		snprintf(buf, len, "vcpu%u: run failed: %s (rip %#llx)", v->id,
			 strerror(-ret), (unsigned long long)regs.rip);
		return buf;
	}
	if (ret > 0 && ret != GUEST_EXIT && uc) {
		switch (uc->cmd) {
		case UCALL_SYNC:
			snprintf(buf, len, "vcpu%u: GUEST_SYNC(%#" PRIx64 ")",
				 v->id, uc->args[0]);
			break;
		case UCALL_DONE:
			snprintf(buf, len, "vcpu%u: GUEST_DONE(%" PRIu64 ")",
				 v->id, uc->args[0]);
			break;
		case UCALL_ASSERT:
			snprintf(buf, len, "vcpu%u: guest assertion failed: %s",
				 v->id, uc->buf);
			break;
		case UCALL_UNHANDLED:
			snprintf(buf, len,
				 "vcpu%u: unexpected %s (vector %" PRIu64
				 ") error code %#" PRIx64 " at rip %#" PRIx64
				 " cs %#" PRIx64 " cr2 %#" PRIx64,
				 v->id,
				 vector_name(uc->args[UCALL_UNHANDLED_VECTOR]),
				 uc->args[UCALL_UNHANDLED_VECTOR],
				 uc->args[UCALL_UNHANDLED_ERROR],
				 uc->args[UCALL_UNHANDLED_RIP],
				 uc->args[UCALL_UNHANDLED_CS],
				 uc->args[UCALL_UNHANDLED_CR2]);
			break;
		default:
			snprintf(buf, len, "vcpu%u: ucall %" PRIu64, v->id,
				 uc->cmd);
		}
		return buf;
	}

	why = gmem_exit_name(run->exit_reason);
	if (!why)
		why = "?";
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		snprintf(buf, len,
			 "vcpu%u: exit IO %s port %#x size %u count %u at rip "
			 "%#llx",
			 v->id, run->io.direction ? "out" : "in", run->io.port,
			 run->io.size, run->io.count,
			 (unsigned long long)regs.rip);
		break;
	case KVM_EXIT_MMIO:
		snprintf(buf, len,
			 "vcpu%u: exit MMIO %s gpa %#" PRIx64
			 " len %u at rip %#llx",
			 v->id, run->mmio.is_write ? "write" : "read",
			 run->mmio.phys_addr, run->mmio.len,
			 (unsigned long long)regs.rip);
		break;
	case KVM_EXIT_MEMORY_FAULT:
		snprintf(buf, len,
			 "vcpu%u: exit MEMORY_FAULT (%s) flags %#" PRIx64
			 " gpa %#" PRIx64 " size %#" PRIx64 " at rip %#llx",
			 v->id, strerror(-ret), run->memory_fault.flags,
			 run->memory_fault.gpa, run->memory_fault.size,
			 (unsigned long long)regs.rip);
		break;
	case KVM_EXIT_HYPERCALL:
		snprintf(buf, len,
			 "vcpu%u: exit HYPERCALL nr %" PRIu64 " args %#" PRIx64
			 " %#" PRIx64 " %#" PRIx64 " at rip %#llx",
			 v->id, run->hypercall.nr, run->hypercall.args[0],
			 run->hypercall.args[1], run->hypercall.args[2],
			 (unsigned long long)regs.rip);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(buf, len,
			 "vcpu%u: exit INTERNAL_ERROR suberror %u ndata %u "
			 "data0 %#" PRIx64 " at rip %#llx",
			 v->id, run->internal.suberror, run->internal.ndata,
			 run->internal.ndata ? run->internal.data[0] : 0,
			 (unsigned long long)regs.rip);
		break;
	default:
		snprintf(buf, len, "vcpu%u: exit %s (%u) at rip %#llx", v->id,
			 why, run->exit_reason, (unsigned long long)regs.rip);
	}
	return buf;
}

void guest_dump_regs(struct guest_vcpu *v)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (gmem_vcpu_get_regs(v->vcpu, &r) == 0)
		printf("# rip %#llx rsp %#llx rflags %#llx\n"
		       "# rax %#llx rbx %#llx rcx %#llx rdx %#llx\n"
		       "# rsi %#llx rdi %#llx rbp %#llx\n",
		       (unsigned long long)r.rip, (unsigned long long)r.rsp,
		       (unsigned long long)r.rflags, (unsigned long long)r.rax,
		       (unsigned long long)r.rbx, (unsigned long long)r.rcx,
		       (unsigned long long)r.rdx, (unsigned long long)r.rsi,
		       (unsigned long long)r.rdi, (unsigned long long)r.rbp);
	if (gmem_vcpu_get_sregs(v->vcpu, &s) == 0)
		printf("# cs %#x cr0 %#llx cr2 %#llx cr3 %#llx cr4 %#llx "
		       "efer %#llx\n",
		       s.cs.selector, (unsigned long long)s.cr0,
		       (unsigned long long)s.cr2, (unsigned long long)s.cr3,
		       (unsigned long long)s.cr4, (unsigned long long)s.efer);
}

int guest_vcpu_run_to_done(struct guest_vcpu *v, uint64_t *status)
{
	struct guest_ucall uc;
	char msg[768];
	int ret;

	ret = guest_vcpu_run(v, &uc);
	if (ret == UCALL_DONE) {
		if (status)
			*status = uc.args[0];
		return 0;
	}
	printf("# %s\n", guest_describe(v, ret, &uc, msg, sizeof(msg)));
	if (ret != UCALL_ASSERT)
		guest_dump_regs(v);
	return -1;
}

int guest_run_program(const char *name, unsigned long type, uint64_t mem_size,
		      unsigned int flags, const struct gmem_load_opts *opts)
{
	struct guest_vm *gvm;
	struct guest_vcpu *v;
	uint64_t status = 0;
	int ret;

	ret = guest_vm_create(type, mem_size, flags, &gvm);
	if (ret) {
		printf("# guest_vm_create: %s\n", strerror(-ret));
		return -1;
	}
	ret = guest_vcpu_add(gvm, &v);
	if (ret) {
		printf("# guest_vcpu_add: %s\n", strerror(-ret));
		goto out;
	}
	ret = guest_vm_load(gvm, name, opts);
	if (ret)
		goto out;
	ret = guest_vcpu_run_to_done(v, &status);
	if (!ret && status) {
		printf("# %s: GUEST_DONE(%" PRIu64 ")\n", name, status);
		ret = -1;
	}
out:
	guest_vm_destroy(gvm);
	return ret ? -1 : 0;
}
