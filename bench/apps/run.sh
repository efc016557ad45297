#!/usr/bin/env bash
# bench/apps/run.sh BUILD - the real-application use cases, end to end, on
# unmodified Debian builds (installed here when missing, as root). Each
# script starts its servers on 127.0.0.1 (ports 184xx), measures, stops
# everything it started, and prints `BENCH name value unit` lines:
#   hotpatch.sh   5. fix a running server's bug with replace/ (no restart)
#   redis.sh      4. redis durability: batch/delay fdatasync, loss bound
#   syscount.sh   3. nginx syscall counts: kernel tracepoint vs graft
#   sslsniff.sh   2. nginx HTTPS plaintext capture (libssl uprobes): kernel vs graft
#   firewall.sh   1. nginx request firewall: native module, Lua, graft
#   fuse.sh       6. FUSE metadata cache kept coherent by hooks (passfs)
# Knobs: APPS_RUNS (runs per configuration), APPS_SECS (seconds per wrk run),
# APPS_INSN=0 (skip the callgrind instruction counts, ~30 s).
# Exit status: 1 if any script's checks failed. Budget: ~6-8 minutes.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-build}
. "$HERE/lib.sh"
apps_install nginx nginx-dev libnginx-mod-http-lua redis-server redis-tools wrk curl fuse3 libfuse3-dev openssl valgrind ||
    echo "warning: could not install every package; scripts that need them say SKIP" >&2
rc=0
for s in hotpatch redis syscount sslsniff firewall fuse; do
    echo "== $s"
    bash "$HERE/$s.sh" "$BUILD" || { echo "FAIL: $s"; rc=1; }
done
exit $rc
