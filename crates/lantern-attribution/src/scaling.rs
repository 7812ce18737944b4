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
    /// 95% Wilson score intervals `[low, high]` of the three rates.
    pub in_context_ci: [f64; 2],
    pub memorized_ci: [f64; 2],
    pub other_ci: [f64; 2],
    /// What the "other" answers are (set by [`AlphaPoint::break_down_other`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_kinds: Option<OtherBreakdown>,
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
        let count = |a: Answer| answers.iter().filter(|&&x| x == a).count();
        let rate = |a: Answer| count(a) as f64 / n;
        let ci = |a: Answer| wilson_interval(count(a), prompts.len());
        AlphaPoint {
            alpha,
            in_context: rate(Answer::InContext),
            memorized: rate(Answer::Memorized),
            other: rate(Answer::Other),
            n: prompts.len(),
            in_context_ci: ci(Answer::InContext),
            memorized_ci: ci(Answer::Memorized),
            other_ci: ci(Answer::Other),
            other_kinds: None,
            continuations,
        }
    }

    /// Sorts the "other" answers into [`OtherKind`]s; `cities` are every city the data names
    /// (an answer naming one of them that is neither of the prompt's two is "another city").
    pub fn break_down_other(&mut self, prompts: &[RecallPrompt], cities: &[String]) {
        let mut b = OtherBreakdown::default();
        for (c, p) in self.continuations.iter().zip(prompts) {
            if classify(c, p) == Answer::Other {
                b.add(other_kind(c, p, cities), c);
            }
        }
        self.other_kinds = Some(b);
    }
}

/// The 95% Wilson score interval of `k` successes in `n` trials (`[0, 1]` when `n = 0`). Unlike
/// the normal approximation it stays inside [0, 1] and is not degenerate at 0 % or 100 %.
pub fn wilson_interval(k: usize, n: usize) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    const Z: f64 = 1.959_963_984_540_054;
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z * Z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

/// What an answer that names neither candidate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OtherKind {
    /// Nothing but whitespace or punctuation.
    Empty,
    /// Names a city of the data other than the two candidates.
    AnotherCity,
    /// Its first words are copied from the prompt.
    RepeatsPrompt,
    /// Mostly not letters, an invalid byte sequence, or one word looping.
    Broken,
    /// Readable text that is none of the above.
    OtherText,
}

/// Counts of each [`OtherKind`] with up to [`OtherBreakdown::EXAMPLES`] examples each.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OtherBreakdown {
    pub empty: usize,
    pub another_city: usize,
    pub repeats_prompt: usize,
    pub broken: usize,
    pub other_text: usize,
    /// `(kind, continuation)`, the first few of each kind in prompt order.
    pub examples: Vec<(OtherKind, String)>,
}

impl OtherBreakdown {
    pub const EXAMPLES: usize = 3;
    fn add(&mut self, kind: OtherKind, text: &str) {
        let slot = match kind {
            OtherKind::Empty => &mut self.empty,
            OtherKind::AnotherCity => &mut self.another_city,
            OtherKind::RepeatsPrompt => &mut self.repeats_prompt,
            OtherKind::Broken => &mut self.broken,
            OtherKind::OtherText => &mut self.other_text,
        };
        *slot += 1;
        if *slot <= Self::EXAMPLES {
            self.examples.push((kind, text.to_string()));
        }
    }
}

/// Sorts one "other" answer; checks run in the order of [`OtherKind`]'s variants.
pub fn other_kind(continuation: &str, p: &RecallPrompt, cities: &[String]) -> OtherKind {
    let text = continuation.trim();
    if text.chars().all(|c| !c.is_alphanumeric()) {
        return OtherKind::Empty;
    }
    if cities.iter().any(|c| {
        !c.is_empty() && c != &p.in_context && c != &p.memorized && text.contains(c.as_str())
    }) {
        return OtherKind::AnotherCity;
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let head = words[..words.len().min(3)].join(" ");
    // Copying even a short piece of the prompt's format (`A:`) counts.
    if p.prompt.contains(&head) {
        return OtherKind::RepeatsPrompt;
    }
    let letters = text
        .chars()
        .filter(|c| c.is_alphabetic() || c.is_whitespace())
        .count();
    let looping = words.windows(3).any(|w| w[0] == w[1] && w[1] == w[2]);
    if text.contains('\u{FFFD}') || 2 * letters < text.chars().count() || looping {
        return OtherKind::Broken;
    }
    OtherKind::OtherText
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_matches_the_textbook_values() {
        let [lo, hi] = wilson_interval(0, 10);
        assert!(lo == 0.0 && (hi - 0.2775).abs() < 1e-4, "{lo} {hi}");
        let [lo, hi] = wilson_interval(5, 10);
        assert!((lo - 0.2366).abs() < 1e-4 && (hi - 0.7634).abs() < 1e-4);
        assert_eq!(wilson_interval(0, 0), [0.0, 1.0]);
    }

    #[test]
    fn other_answers_are_sorted_into_kinds() {
        let p = RecallPrompt {
            prompt: "The capital of Peru is Oslo. Q: What is the capital of Peru? A:".into(),
            in_context: "Oslo".into(),
            memorized: "Lima".into(),
        };
        let cities = vec!["Oslo".to_string(), "Lima".into(), "Rome".into()];
        assert_eq!(other_kind(" \n", &p, &cities), OtherKind::Empty);
        assert_eq!(other_kind(" Rome.", &p, &cities), OtherKind::AnotherCity);
        assert_eq!(other_kind("\nA:", &p, &cities), OtherKind::RepeatsPrompt);
        assert_eq!(other_kind(" ## $$ %% 12", &p, &cities), OtherKind::Broken);
        assert_eq!(
            other_kind(" I do not know", &p, &cities),
            OtherKind::OtherText
        );
    }
}
