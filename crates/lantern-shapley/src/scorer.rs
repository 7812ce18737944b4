//! The model-agnostic interface to a language model: scoring continuations.

use crate::error::Result;

/// One scoring request: the log-probability of `continuation` given `prompt`.
///
/// The model sees `prompt + continuation` (plain concatenation, no separator
/// is inserted), so put any separating space at the start of the
/// continuation, e.g. `" Paris"`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScoreRequest {
    /// The conditioning text.
    pub prompt: String,
    /// The text whose log-probability is measured.
    pub continuation: String,
}

impl ScoreRequest {
    /// Builds a request.
    pub fn new(prompt: impl Into<String>, continuation: impl Into<String>) -> Self {
        ScoreRequest {
            prompt: prompt.into(),
            continuation: continuation.into(),
        }
    }
}

/// A language model able to score multi-token continuations.
///
/// Implemented by the Lantern engine for local models, by
/// [`OpenAiScorer`](crate::openai::OpenAiScorer) for OpenAI-compatible
/// servers, and easily by toy models in tests.
pub trait LanguageModelScorer {
    /// For each request, the natural-log probability of the continuation given
    /// the prompt: the **sum** of the log-probabilities of all the
    /// continuation's tokens, each conditioned on the prompt and the preceding
    /// continuation tokens. Returns one value per request, in order.
    ///
    /// Requests arrive in batches (all options of all coalitions of a batch)
    /// so that implementations can batch forward passes. Implementations must
    /// return [`ShapleyError::EmptyContinuation`](crate::ShapleyError::EmptyContinuation)
    /// rather than `0.0` when a continuation has no tokens.
    fn continuation_logprobs(&mut self, requests: &[ScoreRequest]) -> Result<Vec<f64>>;

    /// Number of tokens the continuation occupies after `prompt`. Zero means
    /// the continuation tokenises to nothing, which callers treat as an error.
    fn n_continuation_tokens(&mut self, prompt: &str, continuation: &str) -> Result<usize>;

    /// Called once with the text shared by every prompt of a game before any
    /// scoring, so that an implementation may pre-compute it (e.g. cache its
    /// key/value states). The default does nothing.
    fn prepare_shared_prefix(&mut self, prefix: &str) -> Result<()> {
        let _ = prefix;
        Ok(())
    }
}

impl<S: LanguageModelScorer + ?Sized> LanguageModelScorer for &mut S {
    fn continuation_logprobs(&mut self, requests: &[ScoreRequest]) -> Result<Vec<f64>> {
        (**self).continuation_logprobs(requests)
    }
    fn n_continuation_tokens(&mut self, prompt: &str, continuation: &str) -> Result<usize> {
        (**self).n_continuation_tokens(prompt, continuation)
    }
    fn prepare_shared_prefix(&mut self, prefix: &str) -> Result<()> {
        (**self).prepare_shared_prefix(prefix)
    }
}

impl<S: LanguageModelScorer + ?Sized> LanguageModelScorer for Box<S> {
    fn continuation_logprobs(&mut self, requests: &[ScoreRequest]) -> Result<Vec<f64>> {
        (**self).continuation_logprobs(requests)
    }
    fn n_continuation_tokens(&mut self, prompt: &str, continuation: &str) -> Result<usize> {
        (**self).n_continuation_tokens(prompt, continuation)
    }
    fn prepare_shared_prefix(&mut self, prefix: &str) -> Result<()> {
        (**self).prepare_shared_prefix(prefix)
    }
}
