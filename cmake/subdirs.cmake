# Add every immediate subfolder of the current folder that has its own CMakeLists.txt.
# Each subfolder declares its sources with lantern_portable_sources()/lantern_kernel_sources().
file(GLOB _lantern_children LIST_DIRECTORIES true CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*)
list(SORT _lantern_children)
foreach(_child IN LISTS _lantern_children)
  if(IS_DIRECTORY ${_child} AND EXISTS ${_child}/CMakeLists.txt)
    add_subdirectory(${_child})
  endif()
endforeach()
