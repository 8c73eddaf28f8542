# The freestanding kernel ELF (build/lantern.elf) and the bootable ISO (build/lantern.iso).
get_property(LANTERN_KERNEL_ONLY GLOBAL PROPERTY LANTERN_KERNEL_SOURCES)
get_property(LANTERN_PORTABLE GLOBAL PROPERTY LANTERN_PORTABLE_SOURCES)

set(LANTERN_LINKER_SCRIPT ${CMAKE_SOURCE_DIR}/kernel/arch/x86_64/linker.ld)

# Code generation for a higher-half x86-64 kernel (see docs/architecture.md):
# no red zone (interrupts push onto the current stack), kernel code model (top 2 GiB),
# no PIC, frame pointers for the panic backtrace. SSE stays enabled: libstdc++ and
# nlohmann/json need it, so interrupt entry saves the FPU/SSE state (kernel/arch/x86_64/isr.S).
set(LANTERN_KERNEL_CODEGEN
  -ffreestanding -mno-red-zone -mcmodel=kernel -fno-pic -fno-pie
  -fno-stack-protector -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer
  -fno-asynchronous-unwind-tables -fno-unwind-tables)

include(${CMAKE_SOURCE_DIR}/cmake/layers.cmake)

# The composition root (root/) is the executable's own code; every layer's objects link in.
add_executable(lantern_kernel ${LANTERN_ROOT_SOURCES})
set_target_properties(lantern_kernel PROPERTIES
  OUTPUT_NAME lantern.elf
  SUFFIX ""
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}
  LINK_DEPENDS ${LANTERN_LINKER_SCRIPT}
  LANTERN_KERNEL_CODE ON)
target_include_directories(lantern_kernel PRIVATE ${CMAKE_SOURCE_DIR})
target_link_libraries(lantern_kernel PRIVATE lantern_kernel_flags)
foreach(_layer IN LISTS LANTERN_LAYERS)
  target_link_libraries(lantern_kernel PRIVATE lantern_layer_${_layer})
endforeach()

# The VM-exit path and the event arbiter keep the guest's extended state loaded across the exits
# they handle themselves (vmx/hw/vcpu.h, ExitTableEntry::keeps_guest_xstate; vmx_operation.cpp
# for capabilities(), guest/hw/xstate_hw.cpp for host_xstate(), guest/cpuid_policy.cpp,
# guest/xstate.cpp and kernel/core/time.cpp for a CPUID answer), so the code on that path must not
# touch SSE/x87 registers: the compiler may use them for copies and vectorised loops otherwise.
set(LANTERN_GPR_ONLY_SOURCES
  ${CMAKE_SOURCE_DIR}/vmx/hw/vcpu.cpp
  ${CMAKE_SOURCE_DIR}/vmx/hw/vcpu_vlapic.cpp
  ${CMAKE_SOURCE_DIR}/vmx/hw/vmx_operation.cpp
  ${CMAKE_SOURCE_DIR}/vmx/exit_qualification.cpp
  ${CMAKE_SOURCE_DIR}/guest/vlapic.cpp
  ${CMAKE_SOURCE_DIR}/guest/general_registers.cpp
  ${CMAKE_SOURCE_DIR}/guest/pending_events.cpp
  ${CMAKE_SOURCE_DIR}/guest/cpuid_policy.cpp
  ${CMAKE_SOURCE_DIR}/guest/xstate.cpp
  ${CMAKE_SOURCE_DIR}/guest/event_arbiter.cpp
  ${CMAKE_SOURCE_DIR}/guest/io_bus.cpp
  ${CMAKE_SOURCE_DIR}/guest/hw/xstate_hw.cpp
  ${CMAKE_SOURCE_DIR}/kernel/core/time.cpp
  ${CMAKE_SOURCE_DIR}/kernel/lib/string.cpp)
# A file that moved would otherwise lose the flag without a word.
foreach(_src IN LISTS LANTERN_GPR_ONLY_SOURCES)
  if(NOT EXISTS ${_src})
    message(FATAL_ERROR "LANTERN_GPR_ONLY_SOURCES names ${_src}, which does not exist")
  endif()
endforeach()
set_property(SOURCE ${LANTERN_GPR_ONLY_SOURCES} APPEND PROPERTY COMPILE_OPTIONS
  $<$<BOOL:$<TARGET_PROPERTY:LANTERN_KERNEL_CODE>>:-mgeneral-regs-only>)

execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libstdc++.a
  OUTPUT_VARIABLE LANTERN_LIBSTDCXX OUTPUT_STRIP_TRAILING_WHITESPACE)
execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libgcc.a
  OUTPUT_VARIABLE LANTERN_LIBGCC OUTPUT_STRIP_TRAILING_WHITESPACE)

target_link_options(lantern_kernel PRIVATE
  -nostdlib -static -no-pie
  -Wl,-T,${LANTERN_LINKER_SCRIPT}
  -Wl,--no-warn-rwx-segments  # the 32-bit .boot segment is RWX by design (linker.ld)
  -Wl,-z,max-page-size=0x1000 -Wl,--build-id=none -Wl,--gc-sections -Wl,-Map=${CMAKE_BINARY_DIR}/lantern.map)
target_link_libraries(lantern_kernel PRIVATE
  -Wl,--start-group ${LANTERN_LIBSTDCXX} ${LANTERN_LIBGCC} -Wl,--end-group)

# ---- ISO ------------------------------------------------------------------------------
get_property(LANTERN_ISO_MODULES GLOBAL PROPERTY LANTERN_ISO_MODULES)          # file paths
get_property(LANTERN_ISO_MODULE_TARGETS GLOBAL PROPERTY LANTERN_ISO_MODULE_TARGETS)
set(_module_args "")
foreach(m IN LISTS LANTERN_ISO_MODULES)
  list(APPEND _module_args --module ${m})
endforeach()
set(LANTERN_ISO ${CMAKE_BINARY_DIR}/lantern.iso)
add_custom_command(
  OUTPUT ${LANTERN_ISO}
  COMMAND ${CMAKE_SOURCE_DIR}/iso/make_iso.sh
          --kernel $<TARGET_FILE:lantern_kernel>
          --stage ${CMAKE_BINARY_DIR}/iso
          --output ${LANTERN_ISO}
          ${_module_args}
  DEPENDS lantern_kernel ${LANTERN_ISO_MODULE_TARGETS} ${LANTERN_ISO_MODULES}
          ${CMAKE_SOURCE_DIR}/iso/make_iso.sh ${CMAKE_SOURCE_DIR}/grub/grub.cfg.in
  COMMENT "Making build/lantern.iso"
  VERBATIM)
add_custom_target(iso ALL DEPENDS ${LANTERN_ISO})
