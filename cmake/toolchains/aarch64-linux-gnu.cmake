# Cross-compile libfleets for 64-bit Arm Linux (glibc): Rust target aarch64-unknown-linux-gnu.
#
#   cmake -S . -B build/aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
#
# Needs: rustup target add aarch64-unknown-linux-gnu; Debian/Ubuntu packages
# gcc-aarch64-linux-gnu libc6-dev-arm64-cross (and qemu-user to run ctest on the build host).
# Overridable: FLEETS_CROSS_PREFIX (compiler prefix), FLEETS_CROSS_SYSROOT (target root used by
# qemu -L and find_*), FLEETS_QEMU (qemu-user binary).
set(FLEETS_CROSS_TRIPLE aarch64-linux-gnu)
set(FLEETS_CROSS_PROCESSOR aarch64)
set(FLEETS_RUST_TARGET aarch64-unknown-linux-gnu CACHE STRING "Rust target triple")
set(FLEETS_QEMU_DEFAULT qemu-aarch64)
include("${CMAKE_CURRENT_LIST_DIR}/linux-gnu-cross.cmake")
