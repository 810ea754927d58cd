# libfleets: top-level entry points. `make demo` runs the C thermostat against a local
# emulator; `make test` runs every test suite (what CI runs).
CARGO ?= cargo

.PHONY: demo test test-rust test-soak test-c test-python test-go lint build release clean

demo:
	cmake/ci.sh demo

test: lint test-rust test-soak test-c test-python test-go

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The C programs in tests/c link the cdylib, which `cargo test` alone does not produce.
test-rust:
	$(CARGO) build -p fleets --lib
	$(CARGO) test --workspace
	$(CARGO) test -p fleets --no-default-features --test bundled_roots

# CMake build, C examples against the emulator, the C programs and examples under
# ASan+UBSan and valgrind, install + consumer projects, aarch64 and armv7 cross builds
# tested under qemu.
test-c:
	cmake/ci.sh all

# One client, 8 threads, 50,000 calls with 5 % injected faults; prints RSS.
test-soak:
	$(CARGO) test --release --test soak -- --ignored --nocapture

test-python:
	bindings/python/run_tests.sh

test-go:
	bindings/go/run_tests.sh

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release -p fleets -p fleets-cli

clean:
	$(CARGO) clean
	rm -rf build

# Benchmarks against libcurl, requests, httpx and net/http (bench/README.md); bench-smoke is CI's.
.PHONY: bench bench-smoke
bench bench-smoke: ; bench/run.sh $(if $(findstring smoke,$@),--smoke)
