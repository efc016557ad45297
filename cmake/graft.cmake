# Helpers shared by every CMakeLists.txt in the tree.

# A program that sets the target property GRAFT_STATIC_DEPS to ON links the
# field libraries (libbpf, libelf, libdw, libyaml, zlib, libmd and what they need)
# from their static archives where Debian ships them: the graft CLI does, so
# that `graft start` and `graft attach` do not pay for loading six shared
# libraries (~2 ms per run here). Shared objects (the agent, libgraft.so)
# cannot: Debian's archives are not built as PIC.
set(GRAFT_STATIC_ARCHIVE_DEPS_bpf elf z zstd)
set(GRAFT_STATIC_ARCHIVE_DEPS_elf z zstd)
set(GRAFT_STATIC_ARCHIVE_DEPS_dw elf lzma bz2 zstd z)
foreach(lib bpf elf dw yaml z md)
  set(archives)
  foreach(a ${lib} ${GRAFT_STATIC_ARCHIVE_DEPS_${lib}})
    find_library(GRAFT_ARCHIVE_${a} NAMES lib${a}.a)
    if(GRAFT_ARCHIVE_${a})
      list(APPEND archives ${GRAFT_ARCHIVE_${a}})
    else()
      set(archives)
      break()
    endif()
  endforeach()
  if(archives)
    string(REPLACE ";" "$<SEMICOLON>" archives "${archives}")
    set(GRAFT_LINK_${lib}
        "$<IF:$<BOOL:$<TARGET_PROPERTY:GRAFT_STATIC_DEPS>>,${archives},${lib}>")
  endif()
endforeach()

# graft_component(<name> SOURCES <files...> [DEPS <components...>] [LIBS <libs...>]
#                  [GENERAL_REGS_ONLY <files...>])
# Declares src/<name> as static library graft_<name> and records its sources
# for the bundled libgraft. GENERAL_REGS_ONLY files (a subset of SOURCES) are
# compiled with -mgeneral-regs-only in every library they go into: code the
# syscall hooks run without saving the vector registers (util/fpsafe.h).
function(graft_component name)
  cmake_parse_arguments(C "" "" "SOURCES;DEPS;LIBS;GENERAL_REGS_ONLY" ${ARGN})
  add_library(graft_${name} STATIC ${C_SOURCES})
  foreach(src ${C_GENERAL_REGS_ONLY})
    get_filename_component(abs ${src} ABSOLUTE)
    set_source_files_properties(${abs} PROPERTIES COMPILE_OPTIONS -mgeneral-regs-only)
    set_property(GLOBAL APPEND PROPERTY GRAFT_GRO_SOURCES ${abs})
  endforeach()
  if(GRAFT_FUZZ_COVERAGE)
    # libFuzzer's coverage counters in the library code, so the fuzz targets
    # (which link libFuzzer with -fsanitize=fuzzer) are guided by what graft
    # itself does with their inputs; other programs get the counters' weak
    # callbacks from the sanitizer runtime.
    target_compile_options(graft_${name} PRIVATE -fsanitize=fuzzer-no-link)
  endif()
  foreach(dep ${C_DEPS})
    target_link_libraries(graft_${name} PUBLIC graft_${dep})
  endforeach()
  foreach(lib ${C_LIBS})
    target_link_libraries(graft_${name} PUBLIC ${GRAFT_LINK_${lib}})
    if(NOT GRAFT_LINK_${lib})
      target_link_libraries(graft_${name} PUBLIC ${lib})
    endif()
  endforeach()
  foreach(src ${C_SOURCES})
    get_filename_component(abs ${src} ABSOLUTE)
    set_property(GLOBAL APPEND PROPERTY GRAFT_ALL_SOURCES ${abs})
  endforeach()
  set_property(GLOBAL APPEND PROPERTY GRAFT_ALL_LIBS ${C_LIBS})
  set_property(GLOBAL APPEND PROPERTY GRAFT_ALL_COMPONENTS graft_${name})
endfunction()

# libgraft.a / libgraft.so: every component in one library for embedders.
function(graft_bundle)
  get_property(srcs GLOBAL PROPERTY GRAFT_ALL_SOURCES)
  get_property(libs GLOBAL PROPERTY GRAFT_ALL_LIBS)
  if(NOT srcs)
    return()
  endif()
  list(REMOVE_DUPLICATES libs)
  # source properties are per directory: set them again for the bundles
  get_property(gro GLOBAL PROPERTY GRAFT_GRO_SOURCES)
  if(gro)
    set_source_files_properties(${gro} PROPERTIES COMPILE_OPTIONS -mgeneral-regs-only)
  endif()
  add_library(graft SHARED ${srcs})
  add_library(graft_static STATIC ${srcs})
  set_target_properties(graft_static PROPERTIES OUTPUT_NAME graft)
  target_link_libraries(graft PRIVATE ${libs})
  target_link_libraries(graft_static PUBLIC ${libs})
  # Generated sources (the syscall table) are produced by rules attached to
  # their component's target; build the components first so they exist.
  get_property(comps GLOBAL PROPERTY GRAFT_ALL_COMPONENTS)
  add_dependencies(graft ${comps})
  add_dependencies(graft_static ${comps})
endfunction()

# graft_test(<name> SOURCES <files...> [LIBS <targets...>] [LABELS <labels...>]
#            [ARGS <args...>] [TIMEOUT <s>])
# Label "sanitize" marks tests that the ASan+UBSan build runs too. Every test
# also gets its component's label, the folder under tests/ it is defined in
# (vm, maps, verifier, ...): `ctest -L verifier` runs all of the verifier's.
function(graft_test_component out)
  file(RELATIVE_PATH rel ${CMAKE_SOURCE_DIR}/tests ${CMAKE_CURRENT_SOURCE_DIR})
  string(REGEX REPLACE "/.*" "" comp "${rel}")
  set(${out} ${comp} PARENT_SCOPE)
endfunction()

function(graft_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;ARGS" ${ARGN})
  graft_test_component(comp)
  list(APPEND T_LABELS ${comp})
  list(REMOVE_DUPLICATES T_LABELS)
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS})
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS} WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}")
endfunction()

# graft_bpf_object(<target> <out.o> <src.bpf.c> [FLAGS <clang flags...>]):
# compile BPF C with stock clang against libbpf's headers, exactly as a user
# would.
function(graft_bpf_object target out src)
  cmake_parse_arguments(B "" "" "FLAGS" ${ARGN})
  get_filename_component(abs ${src} ABSOLUTE)
  add_custom_command(OUTPUT ${out}
    COMMAND clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -I${CMAKE_SOURCE_DIR}/include
            -I/usr/include/x86_64-linux-gnu ${B_FLAGS} -c ${abs} -o ${out}
    DEPENDS ${abs} VERBATIM)
  add_custom_target(${target} ALL DEPENDS ${out})
endfunction()
