// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: gmemvm's command line and the reading of its guest
 * file, in process so that coverage guides the fuzzer.
 *
 * The input is up to 12 NUL-separated arguments; if it holds an empty
 * argument ("\0\0"), what follows is a guest file, written to a temporary
 * file whose path becomes the last argument.  gmemvm's own parse_options()
 * and read_file() run on them.  They end by returning or by exit() with a
 * usage error (status 2) or after --help (status 0); exit() is redirected
 * to a longjmp back here, since in a libFuzzer process exit() is a finding.
 * Anything else — a crash, a sanitizer report, an exit status other than
 * 0 or 2 — is a finding.  (The image itself is the loader's business:
 * fuzz_loader.)
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static jmp_buf fuzz_exit_jmp;

static __attribute__((noreturn)) void fuzz_exit(int status)
{
	if (status != 0 && status != 2) {
		fprintf(stderr, "fuzz_gmemvm: exit(%d)\n", status);
		abort();
	}
	longjmp(fuzz_exit_jmp, 1);
}

/* gmemvm's messages would flood the fuzzer's log: they go nowhere. */
static FILE *fuzz_devnull;

#define exit fuzz_exit
#define main gmemvm_main
#undef stderr
#undef stdout
#define stderr fuzz_devnull
#define stdout fuzz_devnull
#include "../../tools/gmemvm/gmemvm.c"
#undef stdout
#undef stderr
#define stdout stdout /* as <stdio.h> has them */
#define stderr stderr
#undef main
#undef exit

#define MAX_ARGS 12

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_devnull = fopen("/dev/null", "w");
	return fuzz_devnull ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[MAX_ARGS + 3], path[] = "/tmp/fuzz_gmemvm.XXXXXX";
	static char *buf;
	static void *image;
	static struct options opt;
	int argc = 0, fd = -1;
	size_t i = 0, len;

	/* Static: a longjmp must not skip their release. */
	free(buf);
	free(image);
	image = NULL;
	buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = 0;
	argv[argc++] = "gmemvm";
	while (i < size && argc <= MAX_ARGS) {
		len = strnlen(buf + i, size - i);
		if (!len) { /* "\0\0": the rest is the guest file */
			fd = mkstemp(path);
			if (fd < 0)
				break;
			if (write(fd, data + i + 1, size - i - 1) < 0) {
				close(fd);
				unlink(path);
				fd = -1;
				break;
			}
			close(fd);
			argv[argc++] = path;
			break;
		}
		argv[argc++] = buf + i;
		i += len + 1;
	}
	argv[argc] = NULL;

	if (!setjmp(fuzz_exit_jmp)) {
		opt = (struct options){0};
		optind = 0; /* reinitialise getopt */
		parse_options(argc, argv, &opt);
		image = read_file(opt.elf, &len);
	}
	if (fd >= 0)
		unlink(path);
	return 0;
}
