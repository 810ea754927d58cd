//! Gives the shared library its SONAME, so that `libfleets.so.0` is what programs record and
//! load while the library is 0.x (`libfleets.so.MAJOR` from 1.0 on).

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" || target_os == "android" {
        let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libfleets.so.{major}");
    }
    // The C test programs (tests/c_programs.rs) are compiled for the same target.
    if let Ok(target) = std::env::var("TARGET") {
        println!("cargo:rustc-env=FLEETS_BUILD_TARGET={target}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
