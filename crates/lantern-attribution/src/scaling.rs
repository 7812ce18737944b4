//! Paper P1's sweep: scale the value vectors of one head (or a set) by alpha at every position
//! (the intervention itself is `lantern_steering::scale_head_values`), generate, and count how
//! often the answer follows the context vs memory.

use lantern_engine::{GenerateConfig, Hooks, Model, Result, Tokenizer};
use serde::{Deserialize, Serialize};

/// A counterfactual prompt with its two candidate answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecallPrompt {
    pub prompt: String,
    /// The (wrong) city stated in the context.
    pub in_context: String,
    /// The true, memorised answer.
    pub memorized: String,
}

/// Which answer a continuation gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    InContext,
    Memorized,
    Other,
}

/// Substring match, as in P1: whichever of the two answers occurs first in the continuation.
pub fn classify(continuation: &str, p: &RecallPrompt) -> Answer {
    let find = |s: &str| {
        if s.is_empty() {
            None
        } else {
            continuation.find(s)
        }
    };
    match (find(&p.in_context), find(&p.memorized)) {
        (Some(a), Some(b)) if a <= b => Answer::InContext,
        (Some(_), Some(_)) => Answer::Memorized,
        (Some(_), None) => Answer::InContext,
        (None, Some(_)) => Answer::Memorized,
        (None, None) => Answer::Other,
    }
}

/// Rates at one alpha.
#[derive(Debug, Clone, Serialize)]
pub struct AlphaPoint {
    pub alpha: f64,
    pub in_context: f64,
    pub memorized: f64,
    pub other: f64,
    pub n: usize,
    /// The continuations, in prompt order.
    pub continuations: Vec<String>,
}

impl AlphaPoint {
    /// Rates from classified continuations.
    pub fn from_answers(alpha: f64, continuations: Vec<String>, prompts: &[RecallPrompt]) -> Self {
        let n = prompts.len().max(1) as f64;
        let answers: Vec<Answer> = continuations
            .iter()
            .zip(prompts)
            .map(|(c, p)| classify(c, p))
            .collect();
        let rate = |a: Answer| answers.iter().filter(|&&x| x == a).count() as f64 / n;
        AlphaPoint {
            alpha,
            in_context: rate(Answer::InContext),
            memorized: rate(Answer::Memorized),
            other: rate(Answer::Other),
            n: prompts.len(),
            continuations,
        }
    }
}

/// Greedy continuations of every prompt under `hooks`, in batches.
pub fn continuations(
    model: &Model,
    tokenizer: &Tokenizer,
    prompts: &[RecallPrompt],
    gen: &GenerateConfig,
    hooks: &Hooks,
    batch_size: usize,
) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(batch_size.max(1)) {
        let texts: Vec<&str> = chunk.iter().map(|p| p.prompt.as_str()).collect();
        let g = model.generate_batch(tokenizer, &texts, gen, &mut hooks.clone())?;
        out.extend(g.rows.into_iter().map(|r| r.text));
    }
    Ok(out)
}

/// For each alpha, scales the value vectors of every `(layer, head)` in `heads` by alpha and
/// reports the answer rates. `scale_bias` chooses the b_V convention (see
/// `lantern_steering::values`). `progress(done, total)` counts alphas.
#[allow(clippy::too_many_arguments)]
pub fn alpha_sweep(
    model: &Model,
    tokenizer: &Tokenizer,
    prompts: &[RecallPrompt],
    heads: &[(usize, usize)],
    alphas: &[f64],
    scale_bias: bool,
    gen: &GenerateConfig,
    batch_size: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<AlphaPoint>> {
    let mut points = Vec::with_capacity(alphas.len());
    for (i, &alpha) in alphas.iter().enumerate() {
        let mut hooks = Hooks::new();
        for &(layer, head) in heads {
            let (p, iv) =
                lantern_steering::scale_head_values(model, layer, head, alpha, scale_bias)?;
            hooks = hooks.intervene(p, iv);
        }
        let conts = continuations(model, tokenizer, prompts, gen, &hooks, batch_size)?;
        points.push(AlphaPoint::from_answers(alpha, conts, prompts));
        progress(i + 1, alphas.len());
    }
    Ok(points)
}
