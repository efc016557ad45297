#!/bin/sh
# Turn the kernel's unistd_64.h (#define __NR_read 0) into C table rows.
set -e
sed -n 's/^#define __NR_\([a-z0-9_]*\)[ \t]\{1,\}\([0-9]\{1,\}\)$/{ "\1", \2 },/p' "$1" > "$2.tmp"
[ -s "$2.tmp" ] || { echo "gen_syscalls: no syscalls found in $1" >&2; exit 1; }
mv "$2.tmp" "$2"
