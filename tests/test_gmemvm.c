// SPDX-License-Identifier: MIT
/*
 * gmemvm as a user runs it: the demo, the scenario guests, the exit
 * status and the one-line messages for every way a run can end, and bad
 * input (missing or corrupt ELF, bad option values), which must give a
 * clear error and status 2, never a crash.  gmemvm and the guest images
 * are found relative to this program (build/MODE/tests/ -> build/MODE/).
 */
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"

extern char **environ;

static char build_dir[PATH_MAX];

struct result {
	int status;		       /* exit status, or 128 + signal */
	char out[65536], err[1 << 20]; /* --trace is verbose */
};

static void slurp(int fd, char *buf, size_t len)
{
	ssize_t n;
	size_t got = 0;

	lseek(fd, 0, SEEK_SET);
	while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
}

/* Run gmemvm with @args (NULL-terminated), capturing both streams. */
static void gmemvm(struct result *res, const char *const *args)
{
	char path[PATH_MAX + 16], outp[] = "/tmp/gmemvm-out-XXXXXX",
				  errp[] = "/tmp/gmemvm-err-XXXXXX";
	const char *argv[16];
	posix_spawn_file_actions_t fa;
	int out = mkstemp(outp), err = mkstemp(errp), n = 1, st;
	pid_t pid;

	REQUIRE(out >= 0 && err >= 0);
	unlink(outp);
	unlink(errp);
	snprintf(path, sizeof(path), "%s/gmemvm", build_dir);
	argv[0] = path;
	for (; args[n - 1] && n < 15; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out, 1);
	posix_spawn_file_actions_adddup2(&fa, err, 2);
	REQUIRE(posix_spawn(&pid, path, &fa, NULL, (char *const *)argv,
			    environ) == 0);
	posix_spawn_file_actions_destroy(&fa);
	REQUIRE(waitpid(pid, &st, 0) == pid);
	res->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	slurp(out, res->out, sizeof(res->out));
	slurp(err, res->err, sizeof(res->err));
	close(out);
	close(err);
}

static const char *guest(const char *name)
{
	static char buf[4][PATH_MAX + 32];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/guests/%s.elf", build_dir, name);
	return buf[i];
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Status 2 and exactly one line on stderr that contains @what. */
static void expect_usage_error(const char *const *args, const char *what)
{
	static struct result r;

	gmemvm(&r, args);
	CHECK_EQ(r.status, 2);
	CHECK_EQ(count_lines(r.err), 1);
	CHECK(strstr(r.err, what));
	if (r.status != 2 || !strstr(r.err, what))
		printf("# args '%s ...': status %d, stderr: %s", args[0],
		       r.status, r.err);
}

static struct result r;

static void test_help(void)
{
	static const char *const opts[] = {
		"--memory",
		"--cpus",
		"--type",
		"--private",
		"--xo",
		"--policy",
		"--on-violation",
		"--trace",
		"--stats",
		"--help",
		"--gmem-size",
		"GMEM_HC_PROTECT",
		"KVM_HC_MAP_GPA_RANGE",
	};

	gmemvm(&r, (const char *const[]){"--help", NULL});
	CHECK_EQ(r.status, 0);
	for (size_t i = 0; i < ARRAY_LEN(opts); i++)
		if (!strstr(r.out, opts[i])) {
			printf("# --help does not mention %s\n", opts[i]);
			CHECK(0);
		}
	tap_result("--help explains every option");
}

static void test_demo(void)
{
	gmemvm(&r, (const char *const[]){"-c", "2", "--xo", "--stats",
					 guest("demo"), NULL});
	CHECK_EQ(r.status, 1);
	CHECK(strstr(r.out, "Leibniz's series: 3.14158265; sqrt(2) by "
			    "Newton's method: 1.41421356"));
	CHECK(strstr(r.out, "e by 25 terms of its series: 2.71828183; (1 + "
			    "2^-60) - 1 is 2^-60: yes (in double: no)"));
	CHECK(strstr(r.out, "reads zeros: yes (the old private pages"));
	CHECK(strstr(r.out, "private half intact: yes"));
	CHECK(strstr(r.out, "data checked: ok"));
	CHECK(strstr(r.out, "call into the XO page: returns 0x600d"));
	CHECK(strstr(r.out, "vector 14 (#PF), error code 0x1, CR2"));
	CHECK(strstr(r.out, "code still runs: yes"));
	CHECK(!strstr(r.out, "the lock did not hold"));
	CHECK(strstr(r.out, "--- statistics: 2 vCPUs"));
	CHECK(strstr(r.out, "exits_hypercall"));
	CHECK_EQ(count_lines(r.err), 1);
	CHECK(strstr(r.err, "gmemvm: vcpu0: violation: write to the page at "
			    "GPA 0x200000 denied: it is no-write (locked by "
			    "the guest)"));
	if (r.status != 1)
		printf("# stdout:\n%s# stderr: %s", r.out, r.err);
	tap_result("demo: conversions checked, XO read is #PF in the guest, "
		   "locked write refused and reported, statistics");

	gmemvm(&r,
	       (const char *const[]){"--stats=json", guest("demo"), "1", NULL});
	CHECK_EQ(r.status, 0);
	CHECK(strstr(r.out, "{\"status\":0,"));
	CHECK(strstr(r.out, "\"vmm\":{\"to_private\":"));
	CHECK(strstr(r.out, "\"vcpus\":[{\"id\":0,\"exits_io\":"));
	CHECK(strstr(r.out, "-- done"));
	CHECK(strstr(r.out, "execute-only memory: not offered"));
	CHECK_EQ(r.err[0], '\0');
	tap_result("demo without the lock step: DONE(0), --stats=json");
}

static void test_trace(void)
{
	gmemvm(&r, (const char *const[]){"--trace", guest("demo"), "1", NULL});
	CHECK_EQ(r.status, 0);
	CHECK(strstr(r.err, "vcpu0 HYPERCALL MAP_GPA_RANGE gpa 0x400000 "
			    "npages 512 to private -> 0"));
	CHECK(strstr(r.err, "vcpu0 IO out port 0xe9 console 'g'"));
	CHECK(strstr(r.err, "vcpu0 IO ucall DONE 0"));
	tap_result("--trace: one line per exit with its fields");
}

static void test_scenarios(void)
{
	gmemvm(&r, (const char *const[]){"-c", "4", "--private",
					 guest("convert_smp"), NULL});
	CHECK_EQ(r.status, 0);
	if (r.status)
		printf("# stderr: %s", r.err);
	tap_result("conversion guest on 4 vCPUs with private RAM: DONE(0)");

	gmemvm(&r, (const char *const[]){guest("faults"), "1", NULL});
	CHECK_EQ(r.status, 1);
	CHECK(strstr(r.err, "violation: write to the page at GPA"));
	CHECK_EQ(count_lines(r.err), 1);
	tap_result("lock-and-violate guest: status 1, violation reported");

	gmemvm(&r, (const char *const[]){"-m", "32M", "--gmem-size", "16M",
					 guest("faults"), "6", NULL});
	CHECK_EQ(r.status, 1);
	CHECK(strstr(r.err, "that has no guest_memfd: implicit conversion to "
			    "shared refused (--policy=refuse)"));
	CHECK_EQ(count_lines(r.err), 1);
	gmemvm(&r, (const char *const[]){"-m", "32M", "--gmem-size", "16M",
					 "--policy=convert", "--stats=json",
					 guest("faults"), "6", NULL});
	CHECK_EQ(r.status, 0);
	CHECK(strstr(r.out, "\"implicit\":1"));
	if (r.status)
		printf("# stderr: %s", r.err);
	tap_result("private page without guest_memfd: --policy refuse stops, "
		   "convert resumes");

	gmemvm(&r, (const char *const[]){"--on-violation=inject",
					 guest("faults"), "7", NULL});
	CHECK_EQ(r.status, 0);
	CHECK(strstr(r.err, "#PF injected (CR2 0x"));
	CHECK(strstr(r.err, "error code 0x3)"));
	if (r.status)
		printf("# stderr: %s", r.err);
	gmemvm(&r, (const char *const[]){guest("faults"), "7", NULL});
	CHECK_EQ(r.status, 1);
	CHECK(strstr(r.err, "violation: write to the page at GPA"));
	tap_result("--on-violation=inject: the guest catches #PF with CR2 and "
		   "error code; stop (default) ends it");

	gmemvm(&r, (const char *const[]){guest("faults"), "5", NULL});
	CHECK_EQ(r.status, 1);
	CHECK(strstr(r.err, "shutdown (triple fault)"));
	tap_result("triple fault: status 1, shutdown reported");

	/* hello expects its host to answer SYNC with 42; gmemvm says 0. */
	gmemvm(&r,
	       (const char *const[]){guest("hello"), "0x1234", "0x5678", NULL});
	CHECK_EQ(r.status, 1);
	CHECK(strstr(r.err, "guest assertion failed: "));
	CHECK(strstr(r.err, "answer == 42"));
	CHECK(strstr(r.out, "hello from the guest, cpu 0"));
	tap_result("guest assertion: status 1, file:line and expression");

	gmemvm(&r, (const char *const[]){"--type", "default", guest("demo"),
					 "1", NULL});
	CHECK_EQ(r.status, 1);
	CHECK(strstr(r.err, "guest assertion failed"));
	CHECK(strstr(r.out, "to private: -1000"));
	tap_result("default VM: conversions get -KVM_ENOSYS");
}

/*
 * Write the demo guest to @path with its second PT_LOAD moved to @paddr
 * (vaddr too, as the loader's identity map wants): onto the first segment
 * it overlaps, far above RAM it lies outside guest memory.
 */
static void write_moved_segment(char *path, uint64_t paddr)
{
	static uint8_t img[1 << 20];
	Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
	int fd, src = open(guest("demo"), O_RDONLY), nload = 0;
	ssize_t n;

	REQUIRE(src >= 0);
	n = read(src, img, sizeof(img));
	close(src);
	REQUIRE(n > (ssize_t)sizeof(*eh));
	for (unsigned int i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr *ph =
			(Elf64_Phdr *)(img + eh->e_phoff + i * eh->e_phentsize);

		if (ph->p_type == PT_LOAD && nload++ == 1) {
			ph->p_paddr = paddr;
			ph->p_vaddr = paddr;
		}
	}
	fd = mkstemp(path);
	REQUIRE(fd >= 0 && write(fd, img, n) == n);
	close(fd);
}

static void test_bad_input(void)
{
	char corrupt[] = "/tmp/gmemvm-bad-XXXXXX",
	     trunc[] = "/tmp/gmemvm-trunc-XXXXXX",
	     overlap[] = "/tmp/gmemvm-overlap-XXXXXX",
	     outside[] = "/tmp/gmemvm-outside-XXXXXX";
	char buf[200];
	int fd, src;

	fd = mkstemp(corrupt);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, "this is not an ELF file\n", 24) == 24);
	close(fd);
	fd = mkstemp(trunc);
	src = open(guest("demo"), O_RDONLY);
	REQUIRE(fd >= 0 && src >= 0);
	REQUIRE(read(src, buf, sizeof(buf)) == sizeof(buf));
	REQUIRE(write(fd, buf, sizeof(buf)) == sizeof(buf));
	close(src);
	close(fd);

	expect_usage_error((const char *const[]){"/nonexistent.elf", NULL},
			   "No such file");
	expect_usage_error((const char *const[]){corrupt, NULL},
			   "not a static x86-64 ELF");
	expect_usage_error((const char *const[]){trunc, NULL}, "malformed");
	write_moved_segment(overlap, 0x200000); /* onto the text */
	expect_usage_error((const char *const[]){overlap, NULL}, "malformed");
	write_moved_segment(outside, 1ULL << 40);
	expect_usage_error((const char *const[]){outside, NULL},
			   "does not fit");
	/* A dynamic host program is not a guest. */
	expect_usage_error((const char *const[]){"/bin/sh", NULL},
			   "not a static x86-64 ELF");
	expect_usage_error((const char *const[]){"/tmp", NULL},
			   "not a regular file");
	expect_usage_error((const char *const[]){NULL}, "no guest given");
	expect_usage_error((const char *const[]){"-m", "12X", "x.elf", NULL},
			   "bad --memory");
	expect_usage_error((const char *const[]){"-m", "1000", "x.elf", NULL},
			   "bad --memory");
	expect_usage_error((const char *const[]){"-m", "1T", "x.elf", NULL},
			   "bad --memory");
	expect_usage_error(
		(const char *const[]){"-m", "64K", guest("demo"), NULL},
		"does not fit");
	expect_usage_error((const char *const[]){"-c", "0", "x.elf", NULL},
			   "bad --cpus");
	expect_usage_error((const char *const[]){"-c", "999", "x.elf", NULL},
			   "bad --cpus");
	expect_usage_error(
		(const char *const[]){"--type", "tdx", "x.elf", NULL},
		"bad --type");
	expect_usage_error((const char *const[]){"--private", "--type",
						 "default", "x.elf", NULL},
			   "--private needs --type sw-protected");
	expect_usage_error(
		(const char *const[]){"--gmem-size", "3K", "x.elf", NULL},
		"bad --gmem-size");
	expect_usage_error((const char *const[]){"-m", "16M", "--gmem-size",
						 "32M", "x.elf", NULL},
			   "larger than --memory");
	expect_usage_error((const char *const[]){"--type", "default",
						 "--gmem-size", "4M", "x.elf",
						 NULL},
			   "--gmem-size needs --type sw-protected");
	expect_usage_error(
		(const char *const[]){"--policy=maybe", "x.elf", NULL},
		"bad --policy");
	expect_usage_error(
		(const char *const[]){"--on-violation=ignore", "x.elf", NULL},
		"bad --on-violation");
	expect_usage_error((const char *const[]){"--stats=xml", "x.elf", NULL},
			   "bad --stats");
	expect_usage_error((const char *const[]){"--bogus", "x.elf", NULL},
			   "unknown");
	expect_usage_error((const char *const[]){"-m", NULL}, "needs a value");
	expect_usage_error(
		(const char *const[]){guest("demo"), "1", "2", "3", NULL},
		"at most two guest arguments");
	expect_usage_error((const char *const[]){guest("demo"), "nine", NULL},
			   "bad guest argument");
	unlink(corrupt);
	unlink(trunc);
	unlink(overlap);
	unlink(outside);
	tap_result("bad input: one clear line, status 2, no crash");
}

int main(void)
{
	ssize_t n =
		readlink("/proc/self/exe", build_dir, sizeof(build_dir) - 1);

	REQUIRE(n > 0);
	build_dir[n] = '\0';
	*strrchr(build_dir, '/') = '\0'; /* .../tests */
	*strrchr(build_dir, '/') = '\0'; /* the build directory */

	tap_plan(12, 120);
	test_help();
	test_demo();
	test_trace();
	test_scenarios();
	test_bad_input();
	return tap_done();
}
