#!/bin/sh
# libgmem.so exports exactly the functions include/gmem/ declares: every
# one of them, and no internal symbol (x86_*, gmem_mmu_*, ...).
# Usage: test_symbols.sh LIBGMEM_SO INCLUDE_DIR
lib=$1
inc=$2
echo "TAP version 13"
echo "1..2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' | sed 's/@.*//' |
	sort -u >"$tmp/exported"
grep -ohE '\bgmem_[a-z0-9_]+[[:space:]]*\(' "$inc"/*.h |
	sed 's/[[:space:]]*($//' | sort -u >"$tmp/public"
leaked=$(comm -23 "$tmp/exported" "$tmp/public")
missing=$(comm -13 "$tmp/exported" "$tmp/public")
if [ -z "$leaked" ]; then
	echo "ok 1 - no internal symbol is exported"
else
	echo "not ok 1 - no internal symbol is exported"
	echo "$leaked" | sed 's/^/# leaked: /'
fi
if [ -z "$missing" ]; then
	echo "ok 2 - every public function is exported"
else
	echo "not ok 2 - every public function is exported"
	echo "$missing" | sed 's/^/# missing: /'
fi
