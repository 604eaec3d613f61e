/* SPDX-License-Identifier: MIT */
/*
 * The KVM-style façade: the system calls a /dev/kvm user makes, over gmem
 * handles.  Each returns -1 with errno set on failure, like the call it
 * mirrors.  Handles come from the library's table, numbered apart from
 * the process's own fds, which these calls never touch; under gmem-run
 * (libgmem-kvm.so) the same table numbers each handle with a real
 * placeholder fd instead, so a program's fds and gmem's never collide.
 */
#ifndef GMEM_KVM_H
#define GMEM_KVM_H

#include <sys/types.h>
#include <sys/stat.h>

#include <gmem/uapi.h>

#ifdef __cplusplus
extern "C" {
#endif

int gmem_open(void); /* like open("/dev/kvm") */
int gmem_ioctl(int fd, unsigned long request, ...);
int gmem_fallocate(int fd, int mode, off_t offset, off_t len);
int gmem_fstat(int fd, struct stat *st);
int gmem_ftruncate(int fd, off_t len);
ssize_t gmem_read(int fd, void *buf, size_t n);
ssize_t gmem_write(int fd, const void *buf, size_t n);
ssize_t gmem_pread(int fd, void *buf, size_t n, off_t off);
ssize_t gmem_pwrite(int fd, const void *buf, size_t n, off_t off);
void *gmem_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int gmem_munmap(void *addr, size_t len);
off_t gmem_lseek(int fd, off_t off, int whence); /* stats files seek */
int gmem_close(int fd);

#ifdef __cplusplus
}
#endif

#endif /* GMEM_KVM_H */
