//! Progress reporting handed to the pipelines by their caller (the CLI draws bars; tests and
//! notebooks pass a no-op).

/// `bar(label, total)` returns a callback `(done, total)` for one step.
pub type BarFactory<'a> = &'a dyn Fn(&str, usize) -> Box<dyn FnMut(usize, usize)>;
