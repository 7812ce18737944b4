//! Fuzz harnesses for every input format Lantern reads (issue #13), on stable Rust with proptest.
//!
//! Each harness takes REAL seed files (the tiny fixture models, the experiment files and data, a
//! tiny GGUF written here with SmolLM2's metadata keys), mutates them (truncation, bit flips, huge
//! lengths and counts, wrong dtypes, NaN/Inf, duplicated and missing keys) and asserts that the
//! public entry point returns `Ok` or a non-empty `Err`: never a panic, never an abort. A capped
//! global allocator (`alloc_cap.rs`) turns an allocation driven by an unchecked length into a
//! test failure instead of a machine that swaps.
//!
//! Knobs (environment): `LANTERN_FUZZ_CASES` cases per target (default 10,000),
//! `LANTERN_FUZZ_SEED` the RNG seed (default fixed, so CI is deterministic),
//! `LANTERN_FUZZ_SAVE=prefix` writes every input to `prefix.<target>` before it is parsed (after an
//! abort that file holds the input that caused it). `scripts/fuzz-long.sh` runs them for an hour.
//!
//! Crashes the harnesses found are named tests in `regressions.rs`.

#[path = "../common/mod.rs"]
mod common;

mod alloc_cap;
mod formats;
mod gguf_seed;
mod harness;
mod model_formats;
mod mutate;
mod regressions;
mod specs;
