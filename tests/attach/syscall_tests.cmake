# Syscall hook tests (src/attach/syscall_*), included from CMakeLists.txt.
# One binary, one ctest entry per scenario (see syscall_hook_test.c).
add_executable(syscall_hook_test syscall_hook_test.c fp_util.c)
target_link_libraries(syscall_hook_test PRIVATE graft_attach graft_helpers graft_maps graft_vm pthread)
foreach(t names count count_seccomp deny deny_seccomp bpf strace fast calls pair sled ids ids_seccomp)
  string(REPLACE "_" ";" args ${t})
  add_test(NAME syscall_${t} COMMAND syscall_hook_test ${args})
  set_tests_properties(syscall_${t} PROPERTIES TIMEOUT 60 LABELS "attach")
endforeach()

# The vector registers a syscall's caller gets back, with and without the
# programs' xmm save (handler_keeps_fp; see syscall_fp_test.c)
add_executable(syscall_fp_test syscall_fp_test.c fp_util.c)
target_link_libraries(syscall_fp_test PRIVATE graft_attach graft_helpers graft_maps graft_vm pthread)
add_test(NAME syscall_fp COMMAND syscall_fp_test)
set_tests_properties(syscall_fp PROPERTIES TIMEOUT 60 LABELS "attach")
