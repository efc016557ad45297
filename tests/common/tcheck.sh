# tests/common/tcheck.sh - sourced (not run) by the shell tests and the
# application benchmarks: the check line, as tcheck.h prints it for the C
# tests.
pass=0
fails=0

# check WHAT COMMAND...: runs COMMAND; "ok: WHAT" or "FAIL: WHAT", counted
# in pass / fails.
check() {
    local what=$1; shift
    if "$@"; then pass=$((pass + 1)); echo "ok: $what"; else fails=$((fails + 1)); echo "FAIL: $what"; fi
}

# has PATTERN TEXT: TEXT holds a line matching PATTERN (grep).
has() { grep -q -- "$1" <<<"$2"; }
