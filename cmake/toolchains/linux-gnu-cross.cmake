# Shared part of the Linux/glibc cross toolchain files; expects FLEETS_CROSS_TRIPLE,
# FLEETS_CROSS_PROCESSOR, FLEETS_RUST_TARGET and FLEETS_QEMU_DEFAULT.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${FLEETS_CROSS_PROCESSOR})

if(NOT DEFINED FLEETS_CROSS_PREFIX)
  set(FLEETS_CROSS_PREFIX "${FLEETS_CROSS_TRIPLE}-")
endif()
if(NOT DEFINED FLEETS_CROSS_SYSROOT)
  set(FLEETS_CROSS_SYSROOT "/usr/${FLEETS_CROSS_TRIPLE}")
endif()

set(CMAKE_C_COMPILER "${FLEETS_CROSS_PREFIX}gcc")
# C++ is optional (only the C++17 header check uses it).
find_program(_fleets_cross_cxx "${FLEETS_CROSS_PREFIX}g++")
if(_fleets_cross_cxx)
  set(CMAKE_CXX_COMPILER "${_fleets_cross_cxx}")
endif()

# Headers and libraries from the target root only; programs (cargo, python3, qemu) from the host.
set(CMAKE_FIND_ROOT_PATH "${FLEETS_CROSS_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# ctest runs the cross-built programs under qemu-user; -L makes qemu load the target's
# dynamic loader and libc from the target root.
if(NOT DEFINED FLEETS_QEMU)
  set(FLEETS_QEMU "${FLEETS_QEMU_DEFAULT}")
endif()
set(CMAKE_CROSSCOMPILING_EMULATOR "${FLEETS_QEMU};-L;${FLEETS_CROSS_SYSROOT}")
