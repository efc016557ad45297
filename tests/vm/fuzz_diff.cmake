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

# The verifier's facts used by the JIT, true and planted wrong.
graft_test(vm_jit_facts SOURCES test_jit_facts.c LIBS graft_vm LABELS sanitize)

# The kernel's own eBPF test table (lib/test_bpf.c of Debian's
# linux-source-6.1, which scripts/install-deps.sh installs), extracted and
# made compilable at build time by gen_kernel_test_bpf.py: never copied here.
find_file(GRAFT_LINUX_SOURCE_TAR linux-source-6.1.tar.xz PATHS /usr/src NO_DEFAULT_PATH)
find_program(GRAFT_PYTHON3 python3)
if(GRAFT_LINUX_SOURCE_TAR AND GRAFT_PYTHON3)
  set(ktb_dir ${CMAKE_CURRENT_BINARY_DIR}/kernel_test_bpf)
  add_custom_command(OUTPUT ${ktb_dir}/test_bpf.c
    COMMAND ${CMAKE_COMMAND} -E make_directory ${ktb_dir}
    COMMAND tar -xJf ${GRAFT_LINUX_SOURCE_TAR} -C ${ktb_dir} --strip-components=2
            linux-source-6.1/lib/test_bpf.c
    DEPENDS ${GRAFT_LINUX_SOURCE_TAR}
    COMMENT "lib/test_bpf.c from linux-source-6.1" VERBATIM)
  add_custom_command(OUTPUT ${ktb_dir}/test_bpf_table.c
    COMMAND ${GRAFT_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/gen_kernel_test_bpf.py
            ${ktb_dir}/test_bpf.c ${ktb_dir}/test_bpf_table.c
    DEPENDS ${ktb_dir}/test_bpf.c ${CMAKE_CURRENT_SOURCE_DIR}/gen_kernel_test_bpf.py
    VERBATIM)
  # the kernel's text, not ours: its warnings are not ours to fix
  set_source_files_properties(${ktb_dir}/test_bpf_table.c PROPERTIES COMPILE_OPTIONS -w)
  graft_test(vm_kernel_test_bpf SOURCES test_kernel_bpf.c ${ktb_dir}/test_bpf_table.c
             LIBS graft_vm graft_verifier LABELS sanitize)
  target_include_directories(vm_kernel_test_bpf PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
else()
  message(STATUS "linux-source-6.1 not in /usr/src: the kernel's test_bpf table will not "
                 "run (scripts/install-deps.sh installs it)")
endif()

# No WRPKRU/XRSTOR byte pattern in the JIT's code, whatever the program's
# constants and layout (isolation: docs/isolation.md).
graft_test(vm_jit_gadget SOURCES test_jit_gadget.c LIBS graft_vm LABELS sanitize TIMEOUT 120)
