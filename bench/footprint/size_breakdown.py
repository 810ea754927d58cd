#!/usr/bin/env python3
"""Where the bytes of an unstripped libfleets.so go: symbol sizes (nm) summed per crate.

    bench/footprint/size_breakdown.py [--nm aarch64-linux-gnu-nm] [--size aarch64-linux-gnu-size] LIB.so [...]

Build the library without stripping first, e.g. the device profile for aarch64:

    CARGO_PROFILE_DEVICE_STRIP=false CARGO_TARGET_DIR=target/symbols \
      cargo build --locked --profile device -p fleets --target aarch64-unknown-linux-gnu
    (plus CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc and CC_/AR_ as in
    bench/run.sh; a separate target dir keeps the stripped build in target/ as it is)

A symbol counts for the first crate named in its demangled name that is not core/alloc/std
(`core::ptr::drop_in_place<rustls::...>` is rustls': the code exists because of rustls);
symbols naming only core/alloc/std are "std", C and assembly symbols of ring
(`ring_core_*`, and its un-prefixed field arithmetic) are "ring (C/asm)". Bytes that no
symbol covers (string literals, anonymous constants, relocations, unwind tables) are shown
per section. stdlib only.
"""

import argparse
import collections
import re
import subprocess

CRATES = ("fleets base64 bytes http httparse httpdate itoa libc log memchr once_cell "
          "openssl_probe percent_encoding ring rustls rustls_native_certs rustls_pki_types "
          "webpki serde serde_core serde_json socket2 subtle untrusted ureq ureq_proto "
          "utf8_zero webpki_roots zeroize zmij getrandom cfg_if").split()
STD = {"core", "alloc", "std", "std_detect", "panic_unwind", "panic_abort", "unwind",
       "addr2line", "gimli", "miniz_oxide", "adler2", "rustc_demangle", "object", "memchr_std",
       "hashbrown"}
# std's backtrace printing (used by the panic hook) pulls these in; shown apart from the rest of std.
BACKTRACE = {"addr2line", "gimli", "miniz_oxide", "adler2", "rustc_demangle", "object", "backtrace_rs"}
# ring's C/assembly symbols without the ring_core_ prefix (curve25519, P-256, field arithmetic).
RING_C = re.compile(r"^(fe_|ge_|x25519_|ecp_nistz256|p256_|nistz256|GFp_|k25519|sc_|gcm_|aes_|"
                    r"bn_|LIMBS_|limbs_|chacha20_|poly1305|CRYPTO_|OPENSSL_|little_endian|"
                    r"x25519|ed25519|sha256_|sha512_|ChaCha20|aes_hw|vpaes|"
                    r"ecp_|ecp_nistz|nistz384|_vpaes|Bi$|k25519)")


def crate_of(name):
    if name.startswith("ring_core_") or RING_C.match(name):
        return "ring (C/asm)"
    if name.startswith("fleets_"):  # the C exports
        return "fleets"
    if re.match(r"<(u8|u16|u32|u64|u128|usize|i8|i16|i32|i64|i128|isize|f32|f64|char|str|bool)>::", name) \
            or name.startswith("rust_eh_personality"):
        return "std"
    idents = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)::", name)
    if not idents:
        return "(C / other)"
    for ident in idents:
        if ident in CRATES:
            return ident
    for ident in idents:
        if ident in BACKTRACE:
            return "std (backtrace: gimli, addr2line, miniz_oxide)"
    if "backtrace" in name or "gimli" in name:
        return "std (backtrace: gimli, addr2line, miniz_oxide)"
    if idents[0] in STD or any(i in STD for i in idents):
        return "std"
    return idents[0]


def breakdown(lib, nm, size_tool):
    out = subprocess.run([nm, "-C", "-S", "--size-sort", lib], capture_output=True, text=True,
                         check=True).stdout
    per = collections.Counter()
    kinds = collections.Counter()
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 4:
            continue
        size, kind, name = int(parts[1], 16), parts[2], parts[3]
        per[crate_of(name)] += size
        kinds["text" if kind in "tT" else "data"] += size
    sections = {}
    for line in subprocess.run([size_tool, "-A", lib], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        f = line.split()
        if len(f) >= 2 and f[0].startswith(".") and f[1].isdigit():
            sections[f[0]] = int(f[1])
    return per, kinds, sections


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nm", default="nm")
    ap.add_argument("--size", default="size")
    ap.add_argument("libs", nargs="+")
    a = ap.parse_args()
    for lib in a.libs:
        per, kinds, sections = breakdown(lib, a.nm, a.size)
        alloc = {k: v for k, v in sections.items()
                 if k not in (".comment", ".symtab", ".strtab", ".shstrtab") and not k.startswith(".debug")}
        total = sum(alloc.values())
        print(f"{lib}: {total / 1024:,.0f} KiB in loaded sections (about the stripped size)")
        print(f"  {'symbols per crate':<52} {'KiB':>7} {'share':>6}")
        for crate, n in per.most_common():
            if n >= 1024:
                print(f"  {crate:<52} {n / 1024:7.1f} {n / total:6.1%}")
        covered = sum(per.values())
        print(f"  {'(symbols total)':<52} {covered / 1024:7.1f} {covered / total:6.1%}")
        print(f"  {'sections':<52} {'KiB':>7}")
        for sec, n in sorted(alloc.items(), key=lambda kv: -kv[1]):
            if n >= 1024:
                print(f"  {sec:<52} {n / 1024:7.1f} {n / total:6.1%}")
        print()


if __name__ == "__main__":
    main()
