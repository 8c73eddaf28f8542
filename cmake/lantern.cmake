# Helpers every folder's CMakeLists.txt uses to declare its sources.
#
#   lantern_portable_sources(file...)   code with no hardware access: built into the kernel
#                                       AND into lantern_portable_host for GoogleTest.
#   lantern_kernel_sources(file...)     kernel-only code (asm, port I/O, MSRs, MMIO, ...).
#
# Paths are relative to the calling folder.
set(LANTERN_WARNINGS -Wall -Wextra -Werror -Wno-missing-field-initializers)

if(LANTERN_FUZZ)
  # Coverage instrumentation for libFuzzer without its main(); the harnesses link -fsanitize=fuzzer.
  set(LANTERN_HOST_SANITIZE_FLAGS -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
      -fno-omit-frame-pointer)
elseif(LANTERN_SANITIZE)
  set(LANTERN_HOST_SANITIZE_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
else()
  set(LANTERN_HOST_SANITIZE_FLAGS "")
endif()

function(lantern_portable_sources)
  foreach(f IN LISTS ARGN)
    set_property(GLOBAL APPEND PROPERTY LANTERN_PORTABLE_SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/${f})
  endforeach()
endfunction()

function(lantern_kernel_sources)
  foreach(f IN LISTS ARGN)
    set_property(GLOBAL APPEND PROPERTY LANTERN_KERNEL_SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/${f})
  endforeach()
endfunction()
