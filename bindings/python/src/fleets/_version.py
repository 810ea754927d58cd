"""The package version. It must equal the Rust crate's version (checked when the wheel is
built, and again at import time against the loaded library's ``fleets_version()``)."""

__version__ = "0.1.0"
