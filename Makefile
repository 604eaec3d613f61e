# gmem — plain GNU Make.  `make MODE=asan` / `make MODE=tsan` build the
# sanitizer variants into their own directories.

MODE ?= release
PREFIX ?= /usr/local
DESTDIR ?=
VERSION := 0.1.0
SOVERSION := 0

ifeq ($(MODE),release)
CC ?= gcc
OPT := -O2 -g
SAN :=
else ifeq ($(MODE),debug)
OPT := -O0 -g3
SAN :=
else ifeq ($(MODE),asan)
CC := clang
OPT := -O1 -g -fno-omit-frame-pointer
SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
else ifeq ($(MODE),tsan)
CC := clang
OPT := -O1 -g
SAN := -fsanitize=thread
else ifeq ($(MODE),fuzz)
# libFuzzer: the library is instrumented for coverage, ASan and UBSan;
# only the harnesses link libFuzzer's main (-fsanitize=fuzzer).
CC := clang
OPT := -O1 -g -fno-omit-frame-pointer
SAN := -fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=all
else ifeq ($(MODE),gtsan)
# gcc's ThreadSanitizer, whose runtime is a shared library: the drop-in's
# soak preloads it, then libgmem-kvm.so, into uninstrumented programs.
# gcc does not model fences (-Wtsan); clang's TSan runs the unit tests.
CC := gcc
OPT := -O1 -g
SAN := -fsanitize=thread
WARN_MODE := -Wno-tsan
else
$(error MODE must be release, debug, asan, tsan, gtsan or fuzz)
endif

B := build/$(MODE)
WARN := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter $(WARN_MODE)
CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) $(SAN) $(WARN) -pthread -fPIC \
	-Iinclude -Isrc -MMD -MP $(EXTRA_CFLAGS)
LDFLAGS := $(SAN) -pthread $(EXTRA_LDFLAGS)
LDLIBS :=

# The library, one subsystem per file pair.
LIB_SRCS := \
	src/util.c \
	src/uaccess.c \
	src/attr.c \
	src/memslot.c \
	src/guest_memfd.c \
	src/mmu.c \
	src/ioapic.c \
	src/ioeventfd.c \
	src/irq_route.c \
	src/irqfd.c \
	src/lapic.c \
	src/mce.c \
	src/vcpu.c \
	src/vm.c \
	src/kvmclock.c \
	src/handle.c \
	src/coalesced.c \
	src/dirty_log.c \
	src/msr_filter.c \
	src/stats.c \
	src/ioctl.c \
	src/loader.c

LIB_OBJS := $(LIB_SRCS:%.c=$(B)/%.o)

# The x86-64 CPU model.  Part of the library; its tests link the objects
# directly so that they build on their own (`make x86-test`).
X86_SRCS := \
	src/x86/avx.c \
	src/x86/cpuid.c \
	src/x86/debug.c \
	src/x86/decode.c \
	src/x86/event.c \
	src/x86/exec.c \
	src/x86/integer.c \
	src/x86/msr.c \
	src/x86/paging.c \
	src/x86/sse.c \
	src/x86/state.c \
	src/x86/system.c \
	src/x86/x87.c

X86_OBJS := $(X86_SRCS:%.c=$(B)/%.o)
LIB_OBJS += $(X86_OBJS)
LDLIBS += -lZydis

# Tests: each a standalone TAP program, run under prove.
TESTS := \
	tests/test_ranges \
	tests/test_handle \
	tests/test_mmu \
	tests/test_stress \
	tests/test_vcpu \
	tests/test_kvmclock \
	tests/test_uapi \
	tests/test_attr \
	tests/test_lapic \
	tests/test_mce \
	tests/test_guest_memfd \
	tests/test_memslot \
	tests/test_ioctl \
	tests/test_enomem \
	tests/test_enomem_sweep \
	tests/test_bad_input \
	tests/test_model \
	tests/test_threads \
	tests/test_loader \
	tests/test_xo \
	tests/test_conform

# ---- guest programs ------------------------------------------------------
# Guests run on the emulated vCPU, not on the host, so they are always built
# by gcc with freestanding flags, whatever MODE says (no sanitizers).
#
# The scheme: a guest test is ONE file, tests/test_guest_NAME.c, holding
# both halves (STYLE.md 10).  Compiled with -DGUEST by $(GUEST_CC) and
# linked with the runtime (GUEST_RT_SRCS) by guests/guest.ld, it is the
# guest image $(B)/guests/NAME.elf; compiled without GUEST by $(CC) and
# linked with tests/guest_util.c and the library, it is the host program
# $(B)/tests/test_guest_NAME, which loads ../guests/NAME.elf relative to
# its own path (or $$GMEM_GUEST_DIR/NAME.elf).  Add NAME to GUEST_TESTS.
# guests/README.md describes the runtime a guest half can use.
GUEST_CC := gcc
GUEST_CFLAGS := -std=gnu11 -O2 -g -ffreestanding -march=x86-64-v2 \
	-mno-red-zone -fno-pic -fno-pie -fno-stack-protector \
	-fno-asynchronous-unwind-tables -fcf-protection=none \
	-fno-tree-loop-distribute-patterns -mcmodel=small \
	$(WARN) -Iinclude -Iguests/include -DGUEST -MMD -MP
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,guests/guest.ld \
	-Wl,--build-id=none -Wl,-z,max-page-size=4096 -Wl,-z,noexecstack

GUEST_RT_SRCS := \
	guests/crt0.S \
	guests/entry.S \
	guests/runtime.c \
	guests/printf.c \
	guests/string.c \
	guests/paging.c \
	guests/xo.c

GUEST_RT_OBJS := $(GUEST_RT_SRCS:%=$(B)/%.o)

GUEST_TESTS := \
	hello \
	compute \
	exceptions \
	user \
	triple_fault \
	smp \
	convert \
	xo \
	soak \
	hostile \
	mmio \
	hostfault \
	dirty

# Guest tests whose host half also links gmemvm's memory policy.
GMEMVM_GUEST_TESTS := \
	convert_smp \
	faults
GUEST_TESTS += $(GMEMVM_GUEST_TESTS)

GUEST_ELFS := $(GUEST_TESTS:%=$(B)/guests/%.elf)
TESTS += $(GUEST_TESTS:%=tests/test_guest_%)

X86_TESTS := \
	tests/test_x86_unit \
	tests/test_x86_diff \
	tests/test_x86_fuzz \
	tests/test_x86_gcc \
	tests/test_x86_smp

TESTS += $(X86_TESTS)
TESTS += tests/test_gmemvm
TESTS += tests/test_dropin
TESTS += tests/test_symbols
TESTS += tests/test_layers

TEST_BINS := $(TESTS:%=$(B)/%)
X86_TEST_BINS := $(X86_TESTS:%=$(B)/%)

# The tests with threads, run again under ThreadSanitizer by test-tsan.
TSAN_TESTS := tests/test_stress tests/test_mmu tests/test_vcpu tests/test_threads \
	tests/test_xo tests/test_guest_convert_smp \
	tests/test_guest_soak tests/test_x86_smp tests/test_guest_smp \
	tests/test_dropin tests/test_handle tests/test_guest_hostfault \
	tests/test_guest_dirty

EXAMPLES := examples/convert
EXAMPLE_BINS := $(EXAMPLES:%=$(B)/%)

# gmemvm, the VMM.  gmemvm_mem.c (its memory policy) is also linked into
# the scenario tests that drive vCPUs themselves.
GMEMVM_SRCS := \
	tools/gmemvm/gmemvm.c \
	tools/gmemvm/gmemvm_mem.c
GMEMVM_OBJS := $(GMEMVM_SRCS:%.c=$(B)/%.o)
GMEMVM := $(B)/gmemvm
GMEMVM_MEM_OBJ := $(B)/tools/gmemvm/gmemvm_mem.o

# The drop-in: libgmem-kvm.so (the library's objects behind the libc
# calls it stands in for) and gmem-run, the launcher that preloads it.
DROPIN_LIB := $(B)/libgmem-kvm.so
GMEM_RUN_BIN := $(B)/gmem-run
DROPIN := $(DROPIN_LIB) $(GMEM_RUN_BIN)

# The demo guest of `make run`, built like the test guests.
DEMO_ELF := $(B)/guests/demo.elf

DEB_PKGS := gcc make clang libclang-rt-14-dev libfuzzer-14-dev libzydis-dev \
	perl pkg-config

# make bench: one program per family, each appending rows to
# bench/results.csv; bench/report.sh prints the table and the plot.
BENCHES := bench/bench_mem bench/bench_guest bench/bench_x86
BENCH_BINS := $(BENCHES:%=$(B)/%)
# Only for make bench: the qemu-x86_64 anchor and the plot.
BENCH_DEB_PKGS := qemu-user gnuplot-nox

# ---- fuzzing -------------------------------------------------------------
# libFuzzer harnesses (tests/fuzz/fuzz_NAME.c), built in MODE=fuzz, each
# with a seed corpus in tests/fuzz/corpus/NAME.  `make fuzz-ci` runs each
# for FUZZ_SECONDS; new inputs go to build/fuzz/corpus/NAME, never into
# the repository.  Longer runs: see README, "Reliability".
FUZZERS := model vcpu loader gmemvm dropin
FUZZ_SECONDS ?= 45
FUZZ_BINS := $(FUZZERS:%=build/fuzz/tests/fuzz/fuzz_%)
FUZZ_OPTS := -timeout=25 -rss_limit_mb=4096 -print_final_stats=1

# ---- the kernel's KVM selftests --------------------------------------------
# `make selftests`: Linux 6.12's KVM selftests, built unmodified from
# Debian's linux-source-6.12 and run under the drop-in launcher.  Only the
# files in tests/selftests/kernel-files are extracted, once, into
# $(KSRC); headers_install runs out of tree ($(KOBJ)) into $(KHDR); the
# selftests build out of tree into $(KSELFTESTS), only the binaries that
# tests/selftests/list names.  Nothing of the kernel enters the repository.
KSRC_TAR := /usr/src/linux-source-6.12.tar.xz
KSRC_TOP := linux-source-6.12
KSRC := build/linux-6.12
KOBJ := build/linux-6.12-obj
KHDR := build/linux-6.12-headers
KSELFTESTS := build/selftests
SELFTESTS_LIST := tests/selftests/list
SELFTESTS_FILES := tests/selftests/kernel-files
# The binaries, from the list (read only when a selftests target runs).
SELFTESTS_BINS = $(sort $(shell sed -e '/^[[:space:]]*\#/d' \
	-e 's/^[[:space:]]*[a-z]*[[:space:]]*\([^[:space:]]*\).*/\1/' \
	$(SELFTESTS_LIST)))
# The launcher each test runs under: GMEM_RUN PROGRAM ARGS (make dropin).
GMEM_RUN ?= $(GMEM_RUN_BIN)
SELFTESTS_TIMEOUT ?= 120
# headers_install needs rsync; xz-utils comes with linux-source-6.12.
SELFTESTS_DEB_PKGS := linux-source-6.12 rsync

.PHONY: all lib guests test test-tsan x86-test bench bench-deps run install clean deps check-format
.PHONY: fuzz-bins fuzz-ci
.PHONY: selftests selftests-deps selftests-bins dropin soak-dropin
all: lib guests $(EXAMPLE_BINS) $(GMEMVM) $(DEMO_ELF) $(B)/gmem.pc $(DROPIN)

dropin: $(DROPIN)

guests: $(GUEST_ELFS)

lib: $(B)/libgmem.a $(B)/libgmem.so

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The CPU model's handlers 32-byte aligned: without it the compute loop's
# speed moved by 3-10% with where unrelated edits left them.
$(X86_OBJS): CFLAGS += -falign-functions=32

$(B)/libgmem.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# Only the public API is exported (src/libgmem.map; test_symbols checks).
$(B)/libgmem.so: $(LIB_OBJS) src/libgmem.map
	$(CC) -shared -Wl,-soname,libgmem.so.$(SOVERSION) \
		-Wl,--version-script,src/libgmem.map $(LDFLAGS) -o $@ \
		$(LIB_OBJS) $(LDLIBS)

# Under TSan the shim stays uninstrumented: the runtime calls sigaction()
# (ours, first in the preload order) before it has initialised itself.
$(B)/tools/gmem-run/%.o: tools/gmem-run/%.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -fsanitize=thread,$(CFLAGS)) -c $< -o $@

$(DROPIN_LIB): $(B)/tools/gmem-run/preload.o $(LIB_OBJS) \
		tools/gmem-run/preload.map
	$(CC) -shared -Wl,-soname,libgmem-kvm.so \
		-Wl,--version-script,tools/gmem-run/preload.map $(LDFLAGS) \
		-o $@ $(B)/tools/gmem-run/preload.o $(LIB_OBJS) $(LDLIBS) -ldl

$(GMEM_RUN_BIN): tools/gmem-run/gmem-run.sh
	@mkdir -p $(dir $@)
	sed -e 's|@VERSION@|$(VERSION)|' -e 's|@LIBDIR@|$(PREFIX)/lib|' $< > $@
	chmod +x $@

$(B)/gmem.pc: gmem.pc.in
	@mkdir -p $(B)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

$(B)/tests/%: tests/%.c tests/tap.h $(B)/libgmem.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< -o $@ $(LDFLAGS) $(B)/libgmem.a $(LDLIBS)

$(B)/bench/%: bench/%.c bench/bench.h $(B)/libgmem.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) $(B)/libgmem.a $(LDLIBS)

# bench_mem also links the treap the attribute map replaced, to compare.
$(B)/bench/bench_mem: bench/bench_mem.c bench/bench.h bench/treap_ref.h \
		$(B)/bench/treap_ref.o $(B)/libgmem.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) $(B)/bench/treap_ref.o \
		$(B)/libgmem.a $(LDLIBS)

$(B)/tests/test_x86_%: tests/test_x86_%.c tests/tap.h tests/x86_harness.h \
		$(X86_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< -o $@ $(LDFLAGS) $(X86_OBJS) $(LDLIBS)

# Guest code for test_x86_gcc: built the way gmem guests are, with gcc,
# uninstrumented.
X86_GUEST_CC := gcc
X86_GUEST_CFLAGS := -O2 -ffreestanding -march=x86-64-v2 -mno-red-zone \
	-fno-tree-loop-distribute-patterns -fstack-protector-strong -fPIC \
	-Wall -Wextra -Werror -Itests

$(B)/tests/x86_gcc_guest.o: tests/x86_gcc_guest.c tests/x86_gcc_guest.h
	@mkdir -p $(dir $@)
	$(X86_GUEST_CC) $(X86_GUEST_CFLAGS) -c $< -o $@

# And guest code built as the KVM selftests build theirs: gcc uses SSE.
X86_SSE_GUEST_CFLAGS := -O2 -march=x86-64-v2 -ffreestanding -mno-red-zone \
	-fno-tree-loop-distribute-patterns -fstack-protector-strong -fPIC \
	-Wall -Wextra -Werror -Itests

$(B)/tests/x86_sse_guest.o: tests/x86_sse_guest.c tests/x86_sse_guest.h
	@mkdir -p $(dir $@)
	$(X86_GUEST_CC) $(X86_SSE_GUEST_CFLAGS) -c $< -o $@

$(B)/tests/test_x86_gcc: tests/test_x86_gcc.c tests/tap.h \
		tests/x86_harness.h tests/x86_gcc_guest.h tests/x86_sse_guest.h \
		$(B)/tests/x86_gcc_guest.o $(B)/tests/x86_sse_guest.o $(X86_OBJS)
	$(CC) $(CFLAGS) -Itests $< -o $@ $(LDFLAGS) \
		$(B)/tests/x86_gcc_guest.o $(B)/tests/x86_sse_guest.o \
		$(X86_OBJS) $(LDLIBS)

# The guest family: its guest image (with the compute loop, whose object
# is also linked into a static Linux program for qemu-x86_64) and the host.
$(B)/guests/bench_compute.o: bench/bench_compute.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c $< -o $@

$(B)/guests/bench_guest.guest.o: bench/bench_guest.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c $< -o $@

$(B)/guests/bench_guest.elf: $(B)/guests/bench_guest.guest.o \
		$(B)/guests/bench_compute.o $(GUEST_RT_OBJS) guests/guest.ld
	$(GUEST_CC) $(GUEST_LDFLAGS) -o $@ $(B)/guests/bench_guest.guest.o \
		$(B)/guests/bench_compute.o $(GUEST_RT_OBJS)

$(B)/bench/bench_compute_static: bench/bench_compute_main.c \
		$(B)/guests/bench_compute.o
	@mkdir -p $(dir $@)
	$(GUEST_CC) -O2 -static -o $@ $^

$(B)/bench/bench_guest: bench/bench_guest.c bench/bench.h \
		$(B)/tests/guest_util.o $(B)/libgmem.a \
		$(B)/guests/bench_guest.elf $(B)/bench/bench_compute_static
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -Iguests/include $< -o $@ $(LDFLAGS) \
		$(B)/tests/guest_util.o $(B)/libgmem.a $(LDLIBS)

$(B)/bench/bench_x86: bench/bench_x86.c bench/bench.h tests/x86_harness.h \
		$(X86_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< -o $@ $(LDFLAGS) $(X86_OBJS) $(LDLIBS)

# Guest runtime objects and guest images (see GUEST_TESTS above).
$(B)/guests/%.S.o: guests/%.S
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c $< -o $@

$(B)/guests/%.c.o: guests/%.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c $< -o $@

$(B)/guests/%.guest.o: tests/test_guest_%.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c $< -o $@

$(B)/guests/%.elf: $(B)/guests/%.guest.o $(GUEST_RT_OBJS) guests/guest.ld
	$(GUEST_CC) $(GUEST_LDFLAGS) -o $@ $< $(GUEST_RT_OBJS)

# The host half of a guest test, with the harness.
$(B)/tests/guest_util.o: tests/guest_util.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -Iguests/include -c $< -o $@

$(B)/tests/test_guest_%: tests/test_guest_%.c $(B)/tests/guest_util.o \
		$(B)/libgmem.a $(B)/guests/%.elf
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -Iguests/include $< -o $@ $(LDFLAGS) \
		$(B)/tests/guest_util.o $(B)/libgmem.a $(LDLIBS)

$(B)/tools/gmemvm/%.o: tools/gmemvm/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itools/gmemvm -Iguests/include -c $< -o $@

$(GMEMVM): $(GMEMVM_OBJS) $(B)/libgmem.a
	$(CC) $(LDFLAGS) -o $@ $(GMEMVM_OBJS) $(B)/libgmem.a $(LDLIBS)

$(DEMO_ELF): $(B)/guests/demo.c.o $(GUEST_RT_OBJS) guests/guest.ld
	$(GUEST_CC) $(GUEST_LDFLAGS) -o $@ $< $(GUEST_RT_OBJS)

# Scenario tests whose host half runs vCPUs with gmemvm's memory policy.
$(GMEMVM_GUEST_TESTS:%=$(B)/tests/test_guest_%): $(B)/tests/test_guest_%: \
		tests/test_guest_%.c $(B)/tests/guest_util.o $(GMEMVM_MEM_OBJ) \
		$(B)/libgmem.a $(B)/guests/%.elf
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -Iguests/include -Itools/gmemvm $< -o $@ \
		$(LDFLAGS) $(B)/tests/guest_util.o $(GMEMVM_MEM_OBJ) \
		$(B)/libgmem.a $(LDLIBS)

# Tests that run the gmemvm binary itself.
$(B)/tests/test_gmemvm: tests/test_gmemvm.c tests/tap.h $(GMEMVM) \
		$(DEMO_ELF) $(GUEST_ELFS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< -o $@ $(LDFLAGS)

# The shared library's exports against the public headers.
$(B)/tests/test_symbols: tests/test_symbols.sh $(B)/libgmem.so
	@mkdir -p $(dir $@)
	printf '#!/bin/sh\nexec sh %s %s %s\n' $(abspath $<) \
		$(abspath $(B)/libgmem.so) $(CURDIR)/include/gmem > $@
	chmod +x $@

# The include order of the library's layers (the order is in the script).
$(B)/tests/test_layers: tests/test_layers.sh $(LIB_SRCS) $(X86_SRCS)
	@mkdir -p $(dir $@)
	printf '#!/bin/sh\nexec sh %s %s\n' $(abspath $<) $(CURDIR)/src > $@
	chmod +x $@

# A KVM program that uses no gmem call: it runs itself under gmem-run.
$(B)/tests/test_dropin: tests/test_dropin.c tests/tap.h $(DROPIN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< -o $@ $(LDFLAGS)

# A harness: the model, vCPU or loader target with libFuzzer's main.
$(B)/tests/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/model.h tests/x86_harness.h \
		$(B)/libgmem.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -Itests $< -o $@ $(LDFLAGS) \
		-fsanitize=fuzzer $(B)/libgmem.a $(LDLIBS)

# The drop-in's wrappers are the harness's own open(), ioctl(), close() ...
$(B)/tests/fuzz/fuzz_dropin: tests/fuzz/fuzz_dropin.c \
		$(B)/tools/gmem-run/preload.o $(B)/libgmem.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer $< -o $@ $(LDFLAGS) -fsanitize=fuzzer \
		$(B)/tools/gmem-run/preload.o $(B)/libgmem.a $(LDLIBS) -ldl

# gmemvm's main() itself, forked per input; its memory policy beside it.
$(B)/tests/fuzz/fuzz_gmemvm: tests/fuzz/fuzz_gmemvm.c \
		tools/gmemvm/gmemvm.c $(GMEMVM_MEM_OBJ) $(B)/libgmem.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -Itools/gmemvm -Iguests/include $< \
		-o $@ $(LDFLAGS) -fsanitize=fuzzer $(GMEMVM_MEM_OBJ) \
		$(B)/libgmem.a $(LDLIBS)

$(B)/examples/%: examples/%.c $(B)/libgmem.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) $(B)/libgmem.a $(LDLIBS)

# Install the Debian packages $(1) that are missing, as root; as another
# user run the shell commands $(2) instead (they see $$missing).
define install-debs
	@missing=""; for p in $(1); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | \
			grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -q && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
		else \
			$(2); \
		fi; \
	fi
endef

# Debian packages the build and the suite need.  As root they are
# installed; otherwise the command to install them is printed.
DEPS_NOT_ROOT = echo "missing packages; run as root:"; \
	echo "  apt-get install -y$$missing"; exit 1
deps:
	$(call install-debs,$(DEB_PKGS),$(DEPS_NOT_ROOT))

test: deps
	$(MAKE) --no-print-directory all $(TEST_BINS)
	prove -f $(TEST_BINS)

test-tsan: deps
	$(MAKE) --no-print-directory MODE=tsan $(TSAN_TESTS:%=build/tsan/%)
	TSAN_OPTIONS=halt_on_error=1 prove -f $(TSAN_TESTS:%=build/tsan/%)

fuzz-bins:
	$(MAKE) --no-print-directory MODE=fuzz $(FUZZ_BINS)

fuzz-ci: deps fuzz-bins
	@for f in $(FUZZERS); do \
		mkdir -p build/fuzz/corpus/$$f build/fuzz/artifacts/$$f; \
		echo "fuzz_$$f: $(FUZZ_SECONDS) s"; \
		build/fuzz/tests/fuzz/fuzz_$$f $(FUZZ_OPTS) \
			-max_total_time=$(FUZZ_SECONDS) \
			-artifact_prefix=build/fuzz/artifacts/$$f/ \
			build/fuzz/corpus/$$f tests/fuzz/corpus/$$f \
			2>build/fuzz/fuzz_$$f.log || \
			{ tail -50 build/fuzz/fuzz_$$f.log; exit 1; }; \
		grep -E '^stat::(number_of_executed_units|peak_rss)' \
			build/fuzz/fuzz_$$f.log; \
	done

# The kernel's KVM selftests under gmem-run, one TAP line per test
# (tests/selftests/run.sh; SELFTESTS_FILTER=REGEX runs only the matching
# lines of the list).  See README, "Conformance".
selftests: selftests-deps
	$(MAKE) --no-print-directory dropin selftests-bins
	GMEM_RUN=$(GMEM_RUN) SELFTESTS_TIMEOUT=$(SELFTESTS_TIMEOUT) \
		prove -v tests/selftests/run.sh :: $(SELFTESTS_LIST) $(KSELFTESTS)

# The drop-in's soak (tests/selftests/soak.sh): the selftests' stress
# tests, in parallel, each run again and again for SOAK_SECONDS under
# ASan+UBSan and then under TSan, with the sanitizer's runtime preloaded
# before libgmem-kvm.so into the unmodified binaries.
SOAK_SECONDS ?= 60
soak-dropin: selftests-deps
	$(MAKE) --no-print-directory selftests-bins
	$(MAKE) --no-print-directory MODE=asan dropin
	$(MAKE) --no-print-directory MODE=gtsan dropin
	prove -v tests/selftests/soak.sh :: asan $(KSELFTESTS) $(SOAK_SECONDS) \
		$$(clang -print-file-name=libclang_rt.asan-x86_64.so):$(abspath build/asan/libgmem-kvm.so)
	prove -v tests/selftests/soak.sh :: tsan $(KSELFTESTS) $(SOAK_SECONDS) \
		$$(gcc -print-file-name=libtsan.so):$(abspath build/gtsan/libgmem-kvm.so)

selftests-deps: deps
	$(call install-debs,$(SELFTESTS_DEB_PKGS),$(DEPS_NOT_ROOT))

# Extracted once; again only when the package brings a newer tarball or
# the file list changes (-m: the files are newer than the last build's
# objects, so what changed is rebuilt).
$(KSRC)/.extracted: $(KSRC_TAR) $(SELFTESTS_FILES)
	rm -rf $(KSRC)
	@mkdir -p $(KSRC)
	sed -e '/^#/d' -e '/^$$/d' -e 's|^|$(KSRC_TOP)/|' $(SELFTESTS_FILES) | \
		tar -xmJf $(KSRC_TAR) -C $(KSRC) --strip-components=1 -T -
	@touch $@

$(KHDR)/.installed: $(KSRC)/.extracted
	rm -rf $(KOBJ) $(KHDR)
	@mkdir -p $(KOBJ)
	$(MAKE) -s -C $(KSRC) ARCH=x86 O=$(abspath $(KOBJ)) \
		INSTALL_HDR_PATH=$(abspath $(KHDR)) headers_install
	@touch $@

selftests-bins: $(KHDR)/.installed
	$(MAKE) -C $(KSRC)/tools/testing/selftests/kvm \
		OUTPUT=$(abspath $(KSELFTESTS)) \
		KHDR_INCLUDES='-isystem $(abspath $(KHDR))/include' \
		$(addprefix $(abspath $(KSELFTESTS))/,$(SELFTESTS_BINS))

# Timing lives here, never in a pass/fail test.  One process per family;
# then one table for the whole run, bench/results.csv and
# bench/results.png (the scaling curves).  GMEM_BENCH_QUICK=1: small sizes.
bench: deps bench-deps
	$(MAKE) --no-print-directory $(BENCH_BINS)
	@echo 'family,figure,gmem,unit,anchor,anchor_name,ratio,target,met' \
		> bench/results.csv
	@for b in $(BENCH_BINS); do \
		$$b bench/results.csv > /dev/null || exit 1; \
	done
	@sh bench/report.sh bench/results.csv bench/results.scaling.dat \
		bench/results.png

# The anchor and the plot need packages the build does not: installed as
# root, else make bench goes on without them (the rows say so).
BENCH_DEPS_NOT_ROOT = echo "missing (make bench goes on without them):$$missing"
bench-deps:
	$(call install-debs,$(BENCH_DEB_PKGS),$(BENCH_DEPS_NOT_ROOT))

# The CPU model's tests alone.
x86-test:
	$(MAKE) --no-print-directory $(X86_TEST_BINS)
	prove -f $(X86_TEST_BINS)

# The demo: gmemvm runs guests/demo.c on two vCPUs and prints statistics.
# It ends with the guest writing to memory it locked, which gmemvm refuses
# by stopping it: exit status 1 is the expected ending.
run: deps
	$(MAKE) --no-print-directory all
	@echo '$$ $(GMEMVM) --cpus 2 --xo --stats $(DEMO_ELF)'
	@$(GMEMVM) --cpus 2 --xo --stats $(DEMO_ELF); s=$$?; \
	if [ $$s -ne 1 ]; then \
		echo "demo: exit status $$s, expected 1 (the refused write)"; \
		exit 1; \
	fi; \
	echo "(exit status 1: gmemvm stopped the guest at the write to" \
		"its locked text, as the demo intends)"

install: lib $(B)/gmem.pc $(DROPIN)
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/gmem \
		$(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/lib/gmem \
		$(DESTDIR)$(PREFIX)/bin
	install -m 755 $(DROPIN_LIB) $(DESTDIR)$(PREFIX)/lib/gmem/
	install -m 755 $(GMEM_RUN_BIN) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(B)/libgmem.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(B)/libgmem.so \
		$(DESTDIR)$(PREFIX)/lib/libgmem.so.$(VERSION)
	ln -sf libgmem.so.$(VERSION) \
		$(DESTDIR)$(PREFIX)/lib/libgmem.so.$(SOVERSION)
	ln -sf libgmem.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libgmem.so
	install -m 644 include/gmem/*.h $(DESTDIR)$(PREFIX)/include/gmem/
	install -m 644 $(B)/gmem.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/

check-format:
	clang-format --dry-run -Werror include/gmem/*.h src/*.[ch] src/x86/*.[ch] \
		tests/*.[ch] tests/fuzz/*.c guests/*.c guests/include/*.h \
		tools/gmemvm/*.[ch] tools/gmem-run/*.c examples/*.c bench/*.[ch]

clean:
	rm -rf build

# Keep intermediate objects (guest runtime, guest halves) between builds.
.SECONDARY:

# (Not the kernel's: build/linux-6.12* and build/selftests have their own.)
-include $(shell find build \( -path 'build/linux-6.12*' -o -path $(KSELFTESTS) \) \
	-prune -o -name '*.d' -print 2>/dev/null)
