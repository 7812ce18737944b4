//! What every harness shares: the proptest config (case count and seed from the environment) and
//! the check "returns Ok or a clear Err, never panics".

use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};

use proptest::test_runner::{Config, RngSeed, TestCaseError};

/// Cases per target: `LANTERN_FUZZ_CASES`, default 10,000 (issue #13's floor for CI).
pub fn cases() -> u32 {
    std::env::var("LANTERN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// A fixed seed unless `LANTERN_FUZZ_SEED` says otherwise: CI runs the same inputs every time,
/// the long run (`scripts/fuzz-long.sh`) a new seed per round.
pub fn config() -> Config {
    let seed = std::env::var("LANTERN_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x1a47e54);
    Config {
        cases: cases(),
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        // Shrinking re-runs the parser; a few thousand steps reach a minimal mutation list.
        max_shrink_iters: 4096,
        ..Config::default()
    }
}

/// Runs one parse of `input` under `target`'s name: `Ok(Some(value))` for an accepted input,
/// `Ok(None)` for a rejected one, a test failure (with the input) for a panic or an empty error.
pub fn check<T, E: Display>(
    target: &'static str,
    input: &[u8],
    parse: impl FnOnce() -> Result<T, E>,
) -> Result<Option<T>, TestCaseError> {
    crate::alloc_cap::set_current(target);
    if let Some(prefix) = std::env::var_os("LANTERN_FUZZ_SAVE") {
        let mut path = prefix;
        path.push(format!(".{target}"));
        std::fs::write(path, input).expect("LANTERN_FUZZ_SAVE is writable");
    }
    match catch_unwind(AssertUnwindSafe(parse)) {
        Ok(Ok(v)) => Ok(Some(v)),
        Ok(Err(e)) => {
            let msg = e.to_string();
            if msg.trim().is_empty() {
                return Err(TestCaseError::fail(format!(
                    "{target}: empty error message for input {}",
                    show(input)
                )));
            }
            Ok(None)
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(TestCaseError::fail(format!(
                "{target} panicked: {msg}\ninput: {}",
                show(input)
            )))
        }
    }
}

/// The input as escaped text, cut to 4,000 characters (binary inputs stay readable enough to
/// diff against the seed).
pub fn show(input: &[u8]) -> String {
    let text: String = input.escape_ascii().to_string();
    if text.len() > 4000 {
        format!("{}… ({} bytes)", &text[..4000], input.len())
    } else {
        text
    }
}

/// A scratch file path unique to a harness (harnesses run on parallel threads).
pub fn scratch(target: &str) -> crate::common::ScratchDir {
    crate::common::ScratchDir::new(&format!("fuzz-{target}"))
}
