# FleetsCargo.cmake: build the libfleets Rust crate with cargo and expose it to CMake.
#
# Nothing is downloaded at configure time: configuring only asks rustc which system libraries
# Rust's static library needs. `cargo build` runs at build time (cargo may fetch crates then,
# unless they are vendored / in the cargo cache or CARGO_NET_OFFLINE is set).
#
# Inputs (cache variables):
#   FLEETS_CARGO            cargo executable
#   FLEETS_RUSTC            rustc executable
#   FLEETS_RUST_TARGET      Rust target triple; empty = host (set by cmake/toolchains/*.cmake)
#   FLEETS_CARGO_TARGET_DIR cargo target directory (default: <source>/target, shared with cargo)
#   FLEETS_CARGO_PROFILE    cargo profile (default: release; device = the smaller device build,
#                           panic=abort, see docs/device-build.md)
#   FLEETS_CARGO_FLAGS      extra arguments to `cargo build` (default --locked; e.g. --locked;--offline)
#   FLEETS_CARGO_OPT_LEVEL  override the profile's opt-level (e.g. s); empty = Cargo.toml
#
# Outputs:
#   fleets_cargo_build      custom target running cargo
#   FLEETS_LIB_DIR          build-tree directory holding libfleets.so.X.Y.Z, its symlinks and libfleets.a
#   FLEETS_SHARED_LIB_FILE  versioned shared library in FLEETS_LIB_DIR
#   FLEETS_SONAME           libfleets.so.<major> (libfleets.so.0 while 0.x)
#   FLEETS_STATIC_LIB_FILE  static library in FLEETS_LIB_DIR
#   FLEETS_NATIVE_STATIC_LIBS  system libraries the static library needs, as bare names
#                              (from `rustc --print native-static-libs`)

find_program(FLEETS_CARGO cargo HINTS "$ENV{CARGO_HOME}/bin" "$ENV{HOME}/.cargo/bin" REQUIRED)
find_program(FLEETS_RUSTC rustc HINTS "$ENV{CARGO_HOME}/bin" "$ENV{HOME}/.cargo/bin" REQUIRED)

set(FLEETS_RUST_TARGET "${FLEETS_RUST_TARGET}" CACHE STRING
    "Rust target triple (empty = host); cmake/toolchains/*.cmake set it")
set(FLEETS_CARGO_TARGET_DIR "${PROJECT_SOURCE_DIR}/target" CACHE PATH "cargo target directory")
set(FLEETS_CARGO_PROFILE "release" CACHE STRING
    "cargo profile used for the library: release, or device (smaller; a panic aborts the process; docs/device-build.md)")
set_property(CACHE FLEETS_CARGO_PROFILE PROPERTY STRINGS release device)
set(FLEETS_CARGO_FLAGS "--locked" CACHE STRING
    "extra arguments for cargo build (;-separated); --locked: use the committed Cargo.lock")
set(FLEETS_CARGO_OPT_LEVEL "" CACHE STRING
    "Override the cargo profile's opt-level (e.g. s: ~12% smaller library, ~15-20% more CPU per request); empty = Cargo.toml")

if(CMAKE_CROSSCOMPILING AND NOT FLEETS_RUST_TARGET)
  message(FATAL_ERROR "Cross-compiling without FLEETS_RUST_TARGET: use a toolchain file from "
                      "cmake/toolchains/ or pass -DFLEETS_RUST_TARGET=<rust triple>.")
endif()

# Where cargo puts the artifacts.
if(FLEETS_CARGO_PROFILE STREQUAL "dev")
  set(_fleets_profile_dir debug)
else()
  set(_fleets_profile_dir "${FLEETS_CARGO_PROFILE}")
endif()
if(FLEETS_RUST_TARGET)
  set(_fleets_cargo_out "${FLEETS_CARGO_TARGET_DIR}/${FLEETS_RUST_TARGET}/${_fleets_profile_dir}")
else()
  set(_fleets_cargo_out "${FLEETS_CARGO_TARGET_DIR}/${_fleets_profile_dir}")
endif()

# cargo environment: for a cross build, link and compile C dependencies (ring) with the same
# cross compiler CMake uses.
set(_fleets_cargo_env "CARGO_TARGET_DIR=${FLEETS_CARGO_TARGET_DIR}")
set(_fleets_target_args "")
if(NOT FLEETS_CARGO_OPT_LEVEL STREQUAL "")
  string(TOUPPER "${FLEETS_CARGO_PROFILE}" _fleets_profile_uc)
  string(REPLACE "-" "_" _fleets_profile_uc "${_fleets_profile_uc}")
  list(APPEND _fleets_cargo_env "CARGO_PROFILE_${_fleets_profile_uc}_OPT_LEVEL=${FLEETS_CARGO_OPT_LEVEL}")
endif()
if(FLEETS_RUST_TARGET)
  string(TOUPPER "${FLEETS_RUST_TARGET}" _fleets_triple_uc)
  string(REPLACE "-" "_" _fleets_triple_uc "${_fleets_triple_uc}")
  string(REPLACE "-" "_" _fleets_triple_lc "${FLEETS_RUST_TARGET}")
  list(APPEND _fleets_cargo_env
       "CARGO_TARGET_${_fleets_triple_uc}_LINKER=${CMAKE_C_COMPILER}"
       "CC_${_fleets_triple_lc}=${CMAKE_C_COMPILER}"
       "AR_${_fleets_triple_lc}=${CMAKE_AR}")
  set(_fleets_target_args --target "${FLEETS_RUST_TARGET}")
  # A toolchain with CMAKE_SYSROOT (Yocto/Buildroot SDKs): compile ring's C code and link
  # against that sysroot too, unless the environment already says how.
  if(CMAKE_SYSROOT)
    if(NOT DEFINED ENV{CFLAGS_${_fleets_triple_lc}})
      list(APPEND _fleets_cargo_env "CFLAGS_${_fleets_triple_lc}=--sysroot=${CMAKE_SYSROOT}")
    endif()
    if(NOT DEFINED ENV{CARGO_TARGET_${_fleets_triple_uc}_RUSTFLAGS} AND NOT DEFINED ENV{RUSTFLAGS})
      list(APPEND _fleets_cargo_env
           "CARGO_TARGET_${_fleets_triple_uc}_RUSTFLAGS=-Clink-arg=--sysroot=${CMAKE_SYSROOT}")
    endif()
  endif()
endif()

if(FLEETS_RUST_TARGET)
  set(_fleets_target_label "${FLEETS_RUST_TARGET}")
else()
  set(_fleets_target_label "host")
endif()

set(FLEETS_LIB_DIR "${PROJECT_BINARY_DIR}/fleets-lib")
set(FLEETS_SONAME "libfleets.so.${PROJECT_VERSION_MAJOR}")
set(FLEETS_SHARED_LIB_FILE "${FLEETS_LIB_DIR}/libfleets.so.${PROJECT_VERSION}")
set(FLEETS_STATIC_LIB_FILE "${FLEETS_LIB_DIR}/libfleets.a")

# cargo decides itself what is stale, so it runs on every build (a no-op takes well under a
# second); the copies below only rerun when cargo changed its outputs.
add_custom_target(fleets_cargo_build ALL
  COMMAND ${CMAKE_COMMAND} -E env ${_fleets_cargo_env}
          "${FLEETS_CARGO}" build --lib -p fleets --profile "${FLEETS_CARGO_PROFILE}"
          ${_fleets_target_args} ${FLEETS_CARGO_FLAGS}
  BYPRODUCTS "${_fleets_cargo_out}/libfleets.so" "${_fleets_cargo_out}/libfleets.a"
  WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
  COMMENT "cargo build libfleets (${FLEETS_CARGO_PROFILE}, ${_fleets_target_label})"
  USES_TERMINAL
  VERBATIM)

# Copy into the build tree with the usual versioned names: libfleets.so.X.Y.Z (the file),
# libfleets.so.X (= SONAME, what programs load) and libfleets.so (what the linker finds).
add_custom_command(
  OUTPUT "${FLEETS_SHARED_LIB_FILE}" "${FLEETS_LIB_DIR}/${FLEETS_SONAME}" "${FLEETS_LIB_DIR}/libfleets.so"
         "${FLEETS_STATIC_LIB_FILE}"
  COMMAND ${CMAKE_COMMAND} -E make_directory "${FLEETS_LIB_DIR}"
  COMMAND ${CMAKE_COMMAND} -E copy "${_fleets_cargo_out}/libfleets.so" "${FLEETS_SHARED_LIB_FILE}"
  COMMAND ${CMAKE_COMMAND} -E create_symlink "libfleets.so.${PROJECT_VERSION}" "${FLEETS_LIB_DIR}/${FLEETS_SONAME}"
  COMMAND ${CMAKE_COMMAND} -E create_symlink "${FLEETS_SONAME}" "${FLEETS_LIB_DIR}/libfleets.so"
  COMMAND ${CMAKE_COMMAND} -E copy "${_fleets_cargo_out}/libfleets.a" "${FLEETS_STATIC_LIB_FILE}"
  DEPENDS "${_fleets_cargo_out}/libfleets.so" "${_fleets_cargo_out}/libfleets.a" fleets_cargo_build
  COMMENT "Staging libfleets.so.${PROJECT_VERSION} and libfleets.a"
  VERBATIM)
add_custom_target(fleets_stage ALL
  DEPENDS "${FLEETS_SHARED_LIB_FILE}" "${FLEETS_STATIC_LIB_FILE}")

# System libraries that Rust's static library needs, straight from rustc for this target.
function(_fleets_native_static_libs out_var)
  set(_dir "${PROJECT_BINARY_DIR}/CMakeFiles/fleets-native-static-libs")
  file(MAKE_DIRECTORY "${_dir}")
  file(WRITE "${_dir}/probe.rs" "")
  set(_args --crate-type staticlib --crate-name fleets_probe --print native-static-libs
            -o "${_dir}/libfleets_probe.a" "${_dir}/probe.rs")
  if(FLEETS_RUST_TARGET)
    list(PREPEND _args --target "${FLEETS_RUST_TARGET}")
  endif()
  execute_process(COMMAND "${FLEETS_RUSTC}" ${_args}
                  RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "rustc --print native-static-libs failed (is the Rust target "
                        "'${FLEETS_RUST_TARGET}' installed? rustup target add ...):\n${_err}")
  endif()
  if(NOT "${_out}${_err}" MATCHES "native-static-libs: ([^\n]*)")
    message(FATAL_ERROR "rustc did not print native-static-libs:\n${_err}")
  endif()
  string(STRIP "${CMAKE_MATCH_1}" _flags)
  separate_arguments(_flags UNIX_COMMAND "${_flags}")
  set(_libs "")
  foreach(_f IN LISTS _flags)
    if(_f MATCHES "^-l(.+)$")
      list(APPEND _libs "${CMAKE_MATCH_1}")
    else()
      list(APPEND _libs "${_f}")
    endif()
  endforeach()
  set(${out_var} "${_libs}" PARENT_SCOPE)
endfunction()

_fleets_native_static_libs(FLEETS_NATIVE_STATIC_LIBS)
message(STATUS "libfleets: Rust target ${_fleets_target_label}, "
               "static library needs: ${FLEETS_NATIVE_STATIC_LIBS}")
