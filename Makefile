# gmem — plain GNU Make.  `make MODE=asan` / `make MODE=tsan` build the
# sanitizer variants into their own directories.

MODE ?= release
PREFIX ?= /usr/local
DESTDIR ?=
VERSION := 0.1.0

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
else
$(error MODE must be release, debug, asan or tsan)
endif

B := build/$(MODE)
WARN := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) $(SAN) $(WARN) -pthread -fPIC \
	-Iinclude -Isrc -MMD -MP $(EXTRA_CFLAGS)
LDFLAGS := $(SAN) -pthread $(EXTRA_LDFLAGS)
LDLIBS :=

# The library, one subsystem per file pair.
LIB_SRCS := \
	src/util.c \
	src/attr.c \
	src/memslot.c \
	src/guest_memfd.c \
	src/mmu.c \
	src/vm.c \
	src/ioctl.c

LIB_OBJS := $(LIB_SRCS:%.c=$(B)/%.o)

# The x86-64 CPU model.  Part of the library; its tests link the objects
# directly so that they build on their own (`make x86-test`).
X86_SRCS := \
	src/x86/decode.c \
	src/x86/exec.c \
	src/x86/paging.c \
	src/x86/system.c

X86_OBJS := $(X86_SRCS:%.c=$(B)/%.o)
LIB_OBJS += $(X86_OBJS)
LDLIBS += -lZydis

# Tests: each a standalone TAP program, run under prove.
TESTS := \
	tests/test_uapi \
	tests/test_attr \
	tests/test_guest_memfd \
	tests/test_memslot \
	tests/test_ioctl \
	tests/test_enomem \
	tests/test_model

X86_TESTS := \
	tests/test_x86_unit \
	tests/test_x86_diff \
	tests/test_x86_fuzz \
	tests/test_x86_gcc \
	tests/test_x86_smp

TESTS += $(X86_TESTS)

TEST_BINS := $(TESTS:%=$(B)/%)
X86_TEST_BINS := $(X86_TESTS:%=$(B)/%)

EXAMPLES := examples/convert
EXAMPLE_BINS := $(EXAMPLES:%=$(B)/%)

DEB_PKGS := gcc make clang libclang-rt-14-dev libzydis-dev perl pkg-config

.PHONY: all lib test run install clean deps check-format x86-test bench
all: lib $(EXAMPLE_BINS) $(B)/gmem.pc

lib: $(B)/libgmem.a $(B)/libgmem.so

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/libgmem.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(B)/libgmem.so: $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,libgmem.so.0 $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/gmem.pc: gmem.pc.in
	@mkdir -p $(B)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

$(B)/tests/%: tests/%.c tests/tap.h $(B)/libgmem.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< -o $@ $(LDFLAGS) $(B)/libgmem.a $(LDLIBS)

$(B)/tests/test_x86_%: tests/test_x86_%.c tests/tap.h tests/x86_harness.h \
		$(X86_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< -o $@ $(LDFLAGS) $(X86_OBJS) $(LDLIBS)

# Guest code for test_x86_gcc: built the way gmem guests are, with gcc,
# uninstrumented.
X86_GUEST_CC := gcc
X86_GUEST_CFLAGS := -O2 -ffreestanding -mgeneral-regs-only -mno-red-zone \
	-fno-tree-loop-distribute-patterns -fstack-protector-strong -fPIC \
	-Wall -Wextra -Werror -Itests

$(B)/tests/x86_gcc_guest.o: tests/x86_gcc_guest.c tests/x86_gcc_guest.h
	@mkdir -p $(dir $@)
	$(X86_GUEST_CC) $(X86_GUEST_CFLAGS) -c $< -o $@

$(B)/tests/test_x86_gcc: tests/test_x86_gcc.c tests/tap.h \
		tests/x86_harness.h tests/x86_gcc_guest.h \
		$(B)/tests/x86_gcc_guest.o $(X86_OBJS)
	$(CC) $(CFLAGS) -Itests $< -o $@ $(LDFLAGS) \
		$(B)/tests/x86_gcc_guest.o $(X86_OBJS) $(LDLIBS)

$(B)/bench/bench_x86: bench/bench_x86.c tests/x86_harness.h $(X86_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< -o $@ $(LDFLAGS) $(X86_OBJS) $(LDLIBS)

$(B)/examples/%: examples/%.c $(B)/libgmem.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) $(B)/libgmem.a $(LDLIBS)

# Debian packages the build and the suite need.  As root they are
# installed; otherwise the command to install them is printed.
deps:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | \
			grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -q && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
		else \
			echo "missing packages; run as root:"; \
			echo "  apt-get install -y$$missing"; exit 1; \
		fi; \
	fi

test: deps
	$(MAKE) --no-print-directory all $(TEST_BINS)
	prove -f $(TEST_BINS)

# The CPU model's tests alone.
x86-test:
	$(MAKE) --no-print-directory $(X86_TEST_BINS)
	prove -f $(X86_TEST_BINS)

bench: $(B)/bench/bench_x86
	$(B)/bench/bench_x86

run: deps
	$(MAKE) --no-print-directory all
	$(B)/examples/convert

install: lib $(B)/gmem.pc
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/gmem \
		$(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 $(B)/libgmem.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(B)/libgmem.so $(DESTDIR)$(PREFIX)/lib/libgmem.so.0
	ln -sf libgmem.so.0 $(DESTDIR)$(PREFIX)/lib/libgmem.so
	install -m 644 include/gmem/*.h $(DESTDIR)$(PREFIX)/include/gmem/
	install -m 644 $(B)/gmem.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/

check-format:
	clang-format --dry-run -Werror include/gmem/*.h src/*.[ch] tests/*.[ch]

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
