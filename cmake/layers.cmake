# The kernel's layers as a build fact (docs/architecture.md, "Layers").
#
# Each layer is an OBJECT library built from the kernel sources of its top-level folder. Its only
# include root is build/layers/<layer>/, which holds one symbolic link, <layer> -> the folder, so
# `#include "vmx/..."` resolves only in a target that links the vmx layer. A layer links PRIVATE
# the layers it may see (the table below, closed under "what their headers include"), so a header
# that runs back up fails to compile: "fatal error: web/api/api.h: No such file or directory".
# The composition root (root/) is the kernel executable's own sources and sees every layer.
# The two backends, vmx/ and svm/, see the vendor-neutral core (guest/) and the kernel, never
# each other; web/ sees both (the console shows VMCS and VMCB fields).
# ctest layers.include_up_fails proves the rule (tests/layers/).
#
#   layer    may include
set(LANTERN_LAYER_DEPS_kernel "")
set(LANTERN_LAYER_DEPS_guest  kernel)
set(LANTERN_LAYER_DEPS_vmx    guest kernel)
set(LANTERN_LAYER_DEPS_svm    guest kernel)
set(LANTERN_LAYER_DEPS_net    kernel)
set(LANTERN_LAYER_DEPS_web    vmx svm guest net kernel)
set(LANTERN_LAYERS kernel guest vmx svm net web)

# Compile settings every piece of kernel code shares (cmake/kernel.cmake sets the flags).
add_library(lantern_kernel_flags INTERFACE)
target_compile_definitions(lantern_kernel_flags INTERFACE LANTERN_KERNEL=1 JSON_NOEXCEPTION=1 JSON_NO_IO=1
  LANTERN_VERSION="${PROJECT_VERSION}")
target_compile_options(lantern_kernel_flags INTERFACE
  ${LANTERN_KERNEL_CODEGEN}
  $<$<COMPILE_LANGUAGE:CXX>:-fno-exceptions -fno-rtti ${LANTERN_WARNINGS}>
  $<$<COMPILE_LANGUAGE:C>:${LANTERN_WARNINGS}>)

# The layer a source file belongs to: its top-level folder, for generated files the folder under
# build/generated/ (root for root/).
function(lantern_layer_of path out_var)
  cmake_path(IS_PREFIX CMAKE_BINARY_DIR "${path}" NORMALIZE _in_build)
  if(_in_build)
    file(RELATIVE_PATH _rel ${CMAKE_BINARY_DIR}/generated ${path})
  else()
    file(RELATIVE_PATH _rel ${CMAKE_SOURCE_DIR} ${path})
  endif()
  string(REGEX MATCH "^[^/]+" _top "${_rel}")
  set(${out_var} ${_top} PARENT_SCOPE)
endfunction()

set(LANTERN_ROOT_SOURCES "")
foreach(_layer IN LISTS LANTERN_LAYERS)
  set(LANTERN_LAYER_SOURCES_${_layer} "")
endforeach()
foreach(_src IN LISTS LANTERN_KERNEL_ONLY LANTERN_PORTABLE)
  lantern_layer_of(${_src} _layer)
  if(_layer STREQUAL "root")
    list(APPEND LANTERN_ROOT_SOURCES ${_src})
  elseif(_layer IN_LIST LANTERN_LAYERS)
    list(APPEND LANTERN_LAYER_SOURCES_${_layer} ${_src})
  else()
    message(FATAL_ERROR "${_src} is in no layer: cmake/layers.cmake knows ${LANTERN_LAYERS} and root")
  endif()
endforeach()

foreach(_layer IN LISTS LANTERN_LAYERS)
  set(_root ${CMAKE_BINARY_DIR}/layers/${_layer})
  file(MAKE_DIRECTORY ${_root})
  file(CREATE_LINK ${CMAKE_SOURCE_DIR}/${_layer} ${_root}/${_layer} SYMBOLIC)
  add_library(lantern_layer_${_layer} OBJECT ${LANTERN_LAYER_SOURCES_${_layer}})
  set_target_properties(lantern_layer_${_layer} PROPERTIES LANTERN_KERNEL_CODE ON)
  target_include_directories(lantern_layer_${_layer} INTERFACE ${_root})
  target_include_directories(lantern_layer_${_layer} PRIVATE ${_root})
  target_link_libraries(lantern_layer_${_layer} PRIVATE lantern_kernel_flags)
  foreach(_dep IN LISTS LANTERN_LAYER_DEPS_${_layer})
    target_link_libraries(lantern_layer_${_layer} PRIVATE lantern_layer_${_dep})
  endforeach()
endforeach()
