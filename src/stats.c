// SPDX-License-Identifier: MIT
/*
 * Binary statistics (see stats.h).  The file's layout, all offsets
 * multiples of 8 as api.rst requires:
 *
 *   0                      struct kvm_stats_header
 *   24                     id string, KVM_STATS_NAME_SIZE bytes
 *   72                     num_desc x (struct kvm_stats_desc + name)
 *   72 + num_desc * 64     num_desc x u64, read fresh on every read
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <gmem/gmem.h>

#include "handle.h"
#include "stats.h"
#include "util.h"
#include "vcpu.h"

struct gmem_stats_file {
	/*
	 * The hold keeps the VM or vCPU alive as long as the stats fd, as the
	 * file's reference does in KVM.
	 */
	struct gmem_handle_ref src; /* the VM or vCPU, held */
	char id[KVM_STATS_NAME_SIZE];
	pthread_mutex_t lock; /* pos, as the f_pos lock */
	off_t pos;
};

struct stat_def {
	const char *name;
	uint32_t flags;
};

/* Every counter here is a plain count (no unit, base 10, size 1). */
#define CUMULATIVE (KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_NONE)
#define INSTANT (KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_NONE)

/* In the order vm_values() fills. */
static const struct stat_def vm_defs[] = {
	{"remote_tlb_flush_requests", CUMULATIVE},
	{"pages_4k", INSTANT},
	{"pages_2m", INSTANT},
	{"pages_1g", INSTANT},
	{"gmem_faults", CUMULATIVE},
	{"gmem_fault_retries", CUMULATIVE},
	{"gmem_invalidations", CUMULATIVE},
};

static void vm_values(struct gmem_vm *vm, uint64_t *v)
{
	struct gmem_vm_stats st;

	gmem_vm_get_stats(vm, &st);
	*v++ = st.tlb_flush_requests;
	/* Instant values: pages mapped now, not mappings ever made. */
	*v++ = st.map_4k - st.zapped_4k;
	*v++ = st.map_2m - st.zapped_2m;
	*v++ = st.map_1g - st.zapped_1g;
	*v++ = st.faults;
	*v++ = st.fault_retries;
	*v++ = st.invalidations;
}

/* In the order vcpu_values() fills. */
static const struct stat_def vcpu_defs[] = {
	{"exits", CUMULATIVE},
	{"io_exits", CUMULATIVE},
	{"mmio_exits", CUMULATIVE},
	{"signal_exits", CUMULATIVE},
	{"halt_exits", CUMULATIVE},
	{"pf_taken", CUMULATIVE},
	{"tlb_flush", CUMULATIVE},
	{"gmem_accesses", CUMULATIVE},
	{"gmem_tlb_hits", CUMULATIVE},
	{"gmem_memory_fault_exits", CUMULATIVE},
	{"gmem_xo_faults", CUMULATIVE},
	{"gmem_halts", CUMULATIVE},
	{"gmem_host_faults", CUMULATIVE},
};

static void vcpu_values(struct gmem_vcpu *vcpu, uint64_t *v)
{
	struct gmem_vcpu_stats st;
	uint64_t exits = 0;

	gmem_vcpu_get_stats(vcpu, &st);
	/*
	 * The total over every exit reason, as KVM's "exits" counts them all.
	 */
	for (size_t i = 0; i < ARRAY_SIZE(st.exits); i++)
		exits += st.exits[i];
	*v++ = exits;
	*v++ = st.exits[KVM_EXIT_IO];
	*v++ = st.exits[KVM_EXIT_MMIO];
	/* KVM_EXIT_INTR is the exit for a pending signal. */
	*v++ = st.exits[KVM_EXIT_INTR];
	/* KVM counts every HLT, whether it exits or blocks in the kernel. */
	*v++ = st.exits[KVM_EXIT_HLT] + st.halts;
	*v++ = st.faults;
	*v++ = st.tlb_flushes;
	*v++ = st.accesses;
	*v++ = st.tlb_hits;
	*v++ = st.exits_memory_fault;
	*v++ = st.xo_faults;
	*v++ = st.halts;
	*v++ = st.host_faults;
}

#define MAX_DEFS 16
#define DESC_SIZE (sizeof(struct kvm_stats_desc) + KVM_STATS_NAME_SIZE)
#define ID_OFFSET sizeof(struct kvm_stats_header)
#define DESC_OFFSET (ID_OFFSET + KVM_STATS_NAME_SIZE)

_Static_assert(ARRAY_SIZE(vm_defs) <= MAX_DEFS, "vm stats");
_Static_assert(ARRAY_SIZE(vcpu_defs) <= MAX_DEFS, "vcpu stats");
_Static_assert(DESC_OFFSET % 8 == 0 && DESC_SIZE % 8 == 0, "alignment");

/* The whole file, fresh; returns its size.  @img holds the largest. */
static size_t render(struct gmem_stats_file *f, uint8_t *img)
{
	bool vm = f->src.kind == GMEM_H_VM;
	const struct stat_def *defs = vm ? vm_defs : vcpu_defs;
	uint32_t n = vm ? ARRAY_SIZE(vm_defs) : ARRAY_SIZE(vcpu_defs);
	uint32_t data = (uint32_t)(DESC_OFFSET + n * DESC_SIZE);
	struct kvm_stats_header h = {
		.name_size = KVM_STATS_NAME_SIZE,
		.num_desc = n,
		.id_offset = ID_OFFSET,
		.desc_offset = DESC_OFFSET,
		.data_offset = data,
	};

	/* Zeroed first: the name fields are padded, and any gap reads as 0. */
	memset(img, 0, data + n * sizeof(uint64_t));
	memcpy(img, &h, sizeof(h));
	memcpy(img + ID_OFFSET, f->id, sizeof(f->id));
	for (uint32_t i = 0; i < n; i++) {
		struct kvm_stats_desc d = {.flags = defs[i].flags,
					   .size = 1,
					   .offset = i * sizeof(uint64_t)};
		uint8_t *p = img + DESC_OFFSET + i * DESC_SIZE;

		memcpy(p, &d, sizeof(d));
		/*
		 * The name is NUL-terminated within its KVM_STATS_NAME_SIZE
		 * field.
		 */
		strncpy((char *)p + sizeof(d), defs[i].name,
			KVM_STATS_NAME_SIZE - 1);
	}
	if (vm)
		vm_values(f->src.obj, (uint64_t *)(img + data));
	else
		vcpu_values(f->src.obj, (uint64_t *)(img + data));
	return data + n * sizeof(uint64_t);
}

#define MAX_SIZE (DESC_OFFSET + MAX_DEFS * (DESC_SIZE + sizeof(uint64_t)))

ssize_t gmem_stats_read(struct gmem_stats_file *f, void *buf, size_t n,
			off_t off)
{
	_Alignas(8) uint8_t img[MAX_SIZE];
	size_t size = render(f, img), len = 0;
	/*
	 * A negative @off is read(2), which uses and moves the file position;
	 * pread(2) passes its own offset and leaves the position alone.
	 */
	bool advance = off < 0;

	if (advance) {
		pthread_mutex_lock(&f->lock);
		off = f->pos;
	}
	/* Past the end reads 0 bytes, as any file does. */
	if ((uint64_t)off < size) {
		len = MIN(n, size - (size_t)off);
		memcpy(buf, img + off, len);
	}
	if (advance) {
		f->pos = off + (off_t)len;
		pthread_mutex_unlock(&f->lock);
	}
	return (ssize_t)len;
}

off_t gmem_stats_seek(struct gmem_stats_file *f, off_t off, int whence)
{
	_Alignas(8) uint8_t img[MAX_SIZE];
	off_t base, r;

	pthread_mutex_lock(&f->lock);
	switch (whence) {
	case SEEK_SET:
		base = 0;
		break;
	case SEEK_CUR:
		base = f->pos;
		break;
	case SEEK_END:
		/* The size only the rendering knows. */
		base = (off_t)render(f, img);
		break;
	default:
		base = -1;
		break;
	}
	/*
	 * As lseek(2): a position beyond the end is fine, a negative one not.
	 */
	if (base < 0 || (off < 0 && -off > base)) {
		r = -EINVAL;
	} else {
		f->pos = base + off;
		r = f->pos;
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

static void stats_release(void *obj)
{
	struct gmem_stats_file *f = obj;

	gmem_handle_put(&f->src);
	pthread_mutex_destroy(&f->lock);
	gmem_free(f);
}

int gmem_stats_open(int fd)
{
	struct gmem_stats_file *f = gmem_zalloc(sizeof(*f));
	int r;

	if (!f)
		return -ENOMEM;
	r = gmem_handle_get(fd, &f->src);
	/* KVM_GET_STATS_FD exists on VM and vCPU fds only. */
	if (!r && f->src.kind != GMEM_H_VM && f->src.kind != GMEM_H_VCPU)
		r = -ENOTTY;
	if (r)
		goto fail;
	/* The id string KVM uses, "kvm-<pid>" and "kvm-<pid>/vcpu-<id>". */
	if (f->src.kind == GMEM_H_VM)
		snprintf(f->id, sizeof(f->id), "kvm-%d", (int)getpid());
	else
		snprintf(f->id, sizeof(f->id), "kvm-%d/vcpu-%lu", (int)getpid(),
			 ((struct gmem_vcpu *)f->src.obj)->vmv.id);
	pthread_mutex_init(&f->lock, NULL);
	r = gmem_handle_alloc(GMEM_H_STATS, f, stats_release);
	if (r >= 0)
		return r;
	pthread_mutex_destroy(&f->lock);
fail:
	gmem_handle_put(&f->src);
	gmem_free(f);
	return r;
}
