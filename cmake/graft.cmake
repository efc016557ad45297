# Helpers shared by every CMakeLists.txt in the tree.

# graft_component(<name> SOURCES <files...> [DEPS <components...>] [LIBS <libs...>])
# Declares src/<name> as static library graft_<name> and records its sources
# for the bundled libgraft.
function(graft_component name)
  cmake_parse_arguments(C "" "" "SOURCES;DEPS;LIBS" ${ARGN})
  add_library(graft_${name} STATIC ${C_SOURCES})
  foreach(dep ${C_DEPS})
    target_link_libraries(graft_${name} PUBLIC graft_${dep})
  endforeach()
  if(C_LIBS)
    target_link_libraries(graft_${name} PUBLIC ${C_LIBS})
  endif()
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
# Label "sanitize" marks tests that the ASan+UBSan build runs too.
function(graft_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;ARGS" ${ARGN})
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
