//! `include/fleets.h` is generated from the Rust sources and committed; this test fails when
//! the two drift apart. `FLEETS_UPDATE_HEADER=1 cargo test --test header` rewrites it.

use std::path::Path;

fn generate() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut config = cbindgen::Config::from_file(Path::new(root).join("cbindgen.toml"))
        .expect("cbindgen.toml parses");
    config.after_includes = Some(format!(
        "\n#define FLEETS_VERSION \"{}\"\n#define FLEETS_VERSION_MAJOR {}\n#define FLEETS_VERSION_MINOR {}\n#define FLEETS_VERSION_PATCH {}\n",
        env!("CARGO_PKG_VERSION"),
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
    ));
    let bindings = cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("header is UTF-8")
}

#[test]
fn header_matches_rust_sources() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/fleets.h");
    let generated = generate();
    if std::env::var_os("FLEETS_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write include/fleets.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/fleets.h is out of date with the Rust sources; regenerate it with\n  FLEETS_UPDATE_HEADER=1 cargo test --test header"
    );
}
