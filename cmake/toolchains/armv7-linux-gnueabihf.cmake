# Cross-compile libfleets for 32-bit Armv7-A Linux, hard float (glibc): Rust target
# armv7-unknown-linux-gnueabihf.
#
#   cmake -S . -B build/armv7 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/armv7-linux-gnueabihf.cmake
#
# Needs: rustup target add armv7-unknown-linux-gnueabihf; Debian/Ubuntu packages
# gcc-arm-linux-gnueabihf libc6-dev-armhf-cross (and qemu-user to run ctest on the build host).
# Debian's arm-linux-gnueabihf-gcc defaults to -march=armv7-a -mfpu=vfpv3-d16 -mthumb, the
# same baseline as the Rust target. Overridable as in aarch64-linux-gnu.cmake.
set(FLEETS_CROSS_TRIPLE arm-linux-gnueabihf)
set(FLEETS_CROSS_PROCESSOR armv7l)
set(FLEETS_RUST_TARGET armv7-unknown-linux-gnueabihf CACHE STRING "Rust target triple")
set(FLEETS_QEMU_DEFAULT qemu-arm)
include("${CMAKE_CURRENT_LIST_DIR}/linux-gnu-cross.cmake")
