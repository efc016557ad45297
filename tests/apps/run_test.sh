#!/usr/bin/env bash
# tests/apps/run_test.sh BUILD NAME - run bench/apps/NAME.sh as a test: short
# runs on the binaries ctest was given (no rebuild), never installing
# packages (scripts/install-deps.sh does; a missing one prints SKIP, exit 0),
# exit status from the script's own ok:/FAIL: checks.
set -uo pipefail
BUILD=$1
NAME=$2
export APPS_NO_INSTALL=1 APPS_NOBUILD=1 APPS_RUNS=1 APPS_SECS=1 APPS_INSN=0
case $NAME in
    redis) export REDIS_N=3000 REDIS_BATCHES="2 8" REDIS_KILLS=2 ;;
    syscount) export SC_REQS=500 ;;
    firewall) export APPS_TEST_ONLY=1 ;;
    sslsniff) export APPS_TEST_ONLY=1 SS_REQS=200 ;;
    fuse) export APPS_TEST_ONLY=1 FUSE_DIRS=4 FUSE_FILES=25 ;;
esac
exec bash "$(dirname "$0")/../../bench/apps/$NAME.sh" "$BUILD"
