#!/usr/bin/env bash
# Install the build into a scratch prefix and build tests/embed/embed.c
# against it with nothing but pkg-config: the public header and libgraft.a
# must be complete on their own.
set -euo pipefail
BUILD=$1
HERE=$(cd "$(dirname "$0")" && pwd)
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$BUILD" --prefix "$prefix" >/dev/null
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cc -std=gnu11 -Wall -Wextra -Werror -o "$prefix/embed" "$HERE/embed.c" \
   $(pkg-config --cflags graft) "$prefix/lib/libgraft.a" \
   $(pkg-config --static --libs graft | sed 's/-lgraft//')
"$prefix/embed"
