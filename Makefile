# libfleets: top-level entry points. `make setup` installs the prerequisites (Debian/Ubuntu);
# `make demo` runs the C thermostat against a local emulator; `make test` runs every test
# suite (what CI runs). demo, test and each test-* target first check their prerequisites
# (scripts/setup.sh) and stop in seconds with the exact fix when one is missing.
CARGO ?= cargo
# Builds use the committed Cargo.lock, never a newer resolution (.ci/newest-ureq.sh tries that).
LOCKED := --locked
SETUP := scripts/setup.sh
# The Go >= 1.24 that `make setup` found or fetched, first on PATH; GOTOOLCHAIN=local so that
# the go command never tries to download another toolchain itself.
WITH_GO = PATH="$$($(SETUP) go-bin):$$PATH" GOTOOLCHAIN=local

.PHONY: setup doctor demo test check-test lint test-rust test-soak test-c test-python test-go \
        test-readme build release clean

setup:
	@$(SETUP) install

doctor:
	@$(SETUP) check

demo:
	@$(SETUP) check demo
	cmake/ci.sh demo

test: check-test lint test-rust test-soak test-c test-python test-go test-readme

check-test:
	@$(SETUP) check test

lint:
	@$(SETUP) check -q lint
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy $(LOCKED) --workspace --all-targets -- -D warnings
	$(CARGO) clippy $(LOCKED) -p fleets --lib --no-default-features --features bundled-roots -- -D warnings

# The C programs in tests/c link the cdylib, which `cargo test` alone does not produce.
test-rust:
	@$(SETUP) check -q test-rust
	$(CARGO) build $(LOCKED) -p fleets --lib
	$(CARGO) test $(LOCKED) --workspace
	$(CARGO) test $(LOCKED) -p fleets --no-default-features --test bundled_roots
	$(CARGO) test $(LOCKED) -p fleets --no-default-features --features bundled-roots --test api

# CMake build, C examples against the emulator, the C programs and examples under
# ASan+UBSan and valgrind, install + consumer projects, aarch64 and armv7 cross builds
# tested under qemu.
test-c:
	@$(SETUP) check -q test-c
	cmake/ci.sh all

# One client, 8 threads, 50,000 calls with 5 % injected faults; prints RSS.
test-soak:
	@$(SETUP) check -q test-soak
	$(CARGO) test $(LOCKED) --release --test soak -- --ignored --nocapture

test-python:
	@$(SETUP) check -q test-python
	bindings/python/run_tests.sh

test-go:
	@$(SETUP) check -q test-go
	$(WITH_GO) bindings/go/run_tests.sh

# The README's install-and-run snippets (C program, Go module) run as written.
test-readme:
	@$(SETUP) check -q test-readme
	$(WITH_GO) python3 tests/readme/run_readme.py

build:
	$(CARGO) build $(LOCKED) --workspace

release:
	$(CARGO) build $(LOCKED) --release -p fleets -p fleets-cli

clean:
	$(CARGO) clean
	rm -rf build

# Benchmarks against libcurl, requests, httpx and net/http (bench/README.md); bench-smoke is CI's.
.PHONY: bench bench-smoke
bench bench-smoke:
	@$(SETUP) check -q bench
	$(WITH_GO) bench/run.sh $(if $(findstring smoke,$@),--smoke)
