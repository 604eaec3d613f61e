/* SPDX-License-Identifier: MIT */
/*
 * Binary statistics (KVM_GET_STATS_FD): a VM's or a vCPU's counters in
 * KVM's self-describing format, under KVM's names where KVM has the same
 * counter and gmem_-prefixed names for gmem's own.
 *
 * A stats file holds the handle it was opened from (so a vCPU outlives
 * the close of its fd while its stats file is open, as a KVM vCPU
 * outlives its fd anyway) and a file position that read() advances and
 * dup'd numbers share, as a struct file's f_pos.
 */
#ifndef GMEM_STATS_H
#define GMEM_STATS_H

#include <sys/types.h>

struct gmem_stats_file;

/* KVM_GET_STATS_FD on VM or vCPU handle @fd: a new handle, or -errno. */
int gmem_stats_open(int fd);

/*
 * Read @n bytes at @off (pread), or at the file position if @off < 0
 * (read, which advances it).  Returns the bytes read, 0 past the end.
 */
ssize_t gmem_stats_read(struct gmem_stats_file *f, void *buf, size_t n,
			off_t off);

/* lseek(2) on the file position: SEEK_SET, SEEK_CUR, SEEK_END. */
off_t gmem_stats_seek(struct gmem_stats_file *f, off_t off, int whence);

#endif /* GMEM_STATS_H */
