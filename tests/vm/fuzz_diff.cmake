# Included by tests/vm/CMakeLists.txt: JIT-specific tests and the
# JIT-vs-interpreter differential fuzzer (plain executable: seed, seconds).
graft_test(vm_jit SOURCES test_jit.c LIBS graft_vm LABELS sanitize)

if(GRAFT_SANITIZE)
  set(GRAFT_FUZZ_DIFF_SECONDS 15)
else()
  set(GRAFT_FUZZ_DIFF_SECONDS 30)
endif()
# seed 0 = derive from the clock; the seed is printed for reproduction
graft_test(vm_fuzz_diff SOURCES fuzz_diff.c LIBS graft_vm
           ARGS 0 ${GRAFT_FUZZ_DIFF_SECONDS} LABELS sanitize TIMEOUT 120)

# The optimizing passes (host calls, division by constants, stack slots).
graft_test(vm_jit_opt SOURCES test_jit_opt.c LIBS graft_vm LABELS sanitize)
