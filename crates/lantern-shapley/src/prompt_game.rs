//! [`PromptGame`]: the cooperative game whose players are prompt components
//! and whose worth is a quantity read off a language model's output
//! distribution (Mohammadi 2024, arXiv:2404.01332).

use crate::coalition::Coalition;
use crate::error::{Result, ShapleyError};
use crate::game::Game;
use crate::scorer::{LanguageModelScorer, ScoreRequest};
use crate::template::{Absent, Template};

/// The worth `v(S)` of a coalition's prompt.
///
/// All kinds are computed from whole-continuation log-probabilities (sums
/// over every token of the continuation), so multi-token targets and options
/// that share a first token (`" New York"` vs `" New Delhi"`) are handled
/// exactly, not by their first token.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ValueKind {
    /// `log p(target | prompt)`.
    LogProb {
        /// The continuation scored.
        target: String,
    },
    /// `p(target | prompt)`, i.e. the exponential of [`ValueKind::LogProb`].
    Prob {
        /// The continuation scored.
        target: String,
    },
    /// Probability of `options[chosen]` renormalised over the options:
    /// `exp(lp_chosen) / sum_k exp(lp_k)` (a softmax over whole-option
    /// log-probabilities).
    OptionProb {
        /// At least two distinct, non-empty continuations.
        options: Vec<String>,
        /// Index of the option whose probability is the worth.
        chosen: usize,
    },
    /// `log p(a | prompt) - log p(b | prompt)`.
    OptionDiff {
        /// Continuation counted positively.
        a: String,
        /// Continuation counted negatively.
        b: String,
    },
}

impl ValueKind {
    /// The value function named `name` (`logprob`, `prob`, `option_prob`, `option_diff`), built
    /// from the settings a command line or config file gives next to the name: `target` for
    /// logprob/prob, `options` (and `chosen`) for option_prob, exactly two `options` for
    /// option_diff.
    pub fn from_name(
        name: &str,
        target: Option<String>,
        options: Vec<String>,
        chosen: usize,
    ) -> Result<Self> {
        let target = || {
            target.ok_or_else(|| {
                ShapleyError::InvalidArgument(format!("the `{name}` value function needs a target"))
            })
        };
        Ok(match name {
            "logprob" => ValueKind::LogProb { target: target()? },
            "prob" => ValueKind::Prob { target: target()? },
            "option_prob" => ValueKind::OptionProb { options, chosen },
            "option_diff" => match <[String; 2]>::try_from(options) {
                Ok([a, b]) => ValueKind::OptionDiff { a, b },
                Err(options) => {
                    return Err(ShapleyError::InvalidArgument(format!(
                        "the `option_diff` value function needs exactly two options, got {}",
                        options.len()
                    )))
                }
            },
            other => {
                return Err(ShapleyError::InvalidArgument(format!(
                    "unknown value function `{other}` (logprob, prob, option_prob, option_diff)"
                )))
            }
        })
    }

    /// The continuations that must be scored for each coalition, in order.
    pub fn continuations(&self) -> Vec<&str> {
        match self {
            ValueKind::LogProb { target } | ValueKind::Prob { target } => vec![target],
            ValueKind::OptionProb { options, .. } => options.iter().map(String::as_str).collect(),
            ValueKind::OptionDiff { a, b } => vec![a, b],
        }
    }

    /// The worth given the log-probabilities of [`ValueKind::continuations`].
    pub fn value(&self, logprobs: &[f64]) -> f64 {
        match self {
            ValueKind::LogProb { .. } => logprobs[0],
            ValueKind::Prob { .. } => logprobs[0].exp(),
            ValueKind::OptionProb { chosen, .. } => {
                let max = logprobs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let denom: f64 = logprobs.iter().map(|lp| (lp - max).exp()).sum();
                (logprobs[*chosen] - max).exp() / denom
            }
            ValueKind::OptionDiff { .. } => logprobs[0] - logprobs[1],
        }
    }

    /// Checks the options: non-empty continuations; for `OptionProb` at least
    /// two distinct options and `chosen` in range.
    pub fn validate(&self) -> Result<()> {
        if let ValueKind::OptionProb { options, chosen } = self {
            if options.len() < 2 {
                return Err(ShapleyError::InvalidArgument(format!(
                    "option_prob needs at least two options, got {}",
                    options.len()
                )));
            }
            if *chosen >= options.len() {
                return Err(ShapleyError::InvalidArgument(format!(
                    "chosen option {chosen} out of range for {} options",
                    options.len()
                )));
            }
            for (i, o) in options.iter().enumerate() {
                if options[..i].contains(o) {
                    return Err(ShapleyError::InvalidArgument(format!(
                        "duplicate option {o:?}"
                    )));
                }
            }
        }
        if let Some(c) = self.continuations().into_iter().find(|c| c.is_empty()) {
            return Err(ShapleyError::EmptyContinuation {
                continuation: c.to_string(),
            });
        }
        Ok(())
    }
}

/// A [`Game`] over the components of a prompt [`Template`].
///
/// A batch of coalitions becomes **one** call to
/// [`LanguageModelScorer::continuation_logprobs`] with every continuation of
/// every coalition (coalition-major order), so the scorer can batch forwards.
/// Before the first evaluation the game calls
/// [`LanguageModelScorer::prepare_shared_prefix`] with
/// [`PromptGame::shared_prefix`] and checks with
/// [`LanguageModelScorer::n_continuation_tokens`] that no continuation
/// tokenises to nothing after the full prompt.
///
/// ```
/// use lantern_shapley::{
///     exact, Absent, ExactOptions, LanguageModelScorer, PromptGame, ScoreRequest,
///     ShapleyError, Template, ValueKind,
/// };
///
/// /// Toy model: the answer " yes" gains log-probability with each "good" word.
/// struct Toy;
/// impl LanguageModelScorer for Toy {
///     fn continuation_logprobs(&mut self, reqs: &[ScoreRequest]) -> Result<Vec<f64>, ShapleyError> {
///         Ok(reqs.iter().map(|r| -3.0 + r.prompt.matches("good").count() as f64).collect())
///     }
///     fn n_continuation_tokens(&mut self, _: &str, c: &str) -> Result<usize, ShapleyError> {
///         Ok(c.split_whitespace().count())
///     }
/// }
///
/// let t = Template::parse("Review: {{a: good food. }}{{b: good view. }}{{c: bad wine. }}Ok?").unwrap();
/// let value = ValueKind::LogProb { target: " yes".into() };
/// let mut game = PromptGame::new(t, Absent::Remove, value, Toy).unwrap();
/// assert_eq!(game.shared_prefix(), "Review: ");
/// let r = exact(&mut game, &ExactOptions::default(), None).unwrap();
/// let expected = [1.0, 1.0, 0.0];
/// assert!(r.values.iter().zip(expected).all(|(v, e)| (v - e).abs() < 1e-12));
/// assert_eq!(r.evaluations, 8);
/// ```
pub struct PromptGame<S> {
    template: Template,
    absent: Absent,
    value: ValueKind,
    scorer: S,
    prepared: bool,
    scorer_calls: usize,
}

impl<S: LanguageModelScorer> PromptGame<S> {
    /// Builds the game; errors if the value kind is invalid or `absent` is
    /// [`Absent::Filler`] while some component has no filler.
    pub fn new(template: Template, absent: Absent, value: ValueKind, scorer: S) -> Result<Self> {
        template.check_absent_mode(absent)?;
        value.validate()?;
        Ok(PromptGame {
            template,
            absent,
            value,
            scorer,
            prepared: false,
            scorer_calls: 0,
        })
    }

    /// Text before the first component, identical in every coalition's prompt.
    pub fn shared_prefix(&self) -> &str {
        self.template.shared_prefix()
    }

    /// The template.
    pub fn template(&self) -> &Template {
        &self.template
    }

    /// How absent components are rendered.
    pub fn absent(&self) -> Absent {
        self.absent
    }

    /// The worth definition.
    pub fn value_kind(&self) -> &ValueKind {
        &self.value
    }

    /// The scorer.
    pub fn scorer(&self) -> &S {
        &self.scorer
    }

    /// The scorer, mutably.
    pub fn scorer_mut(&mut self) -> &mut S {
        &mut self.scorer
    }

    /// Unwraps the scorer.
    pub fn into_scorer(self) -> S {
        self.scorer
    }

    /// Number of batched calls made to `continuation_logprobs`.
    pub fn scorer_calls(&self) -> usize {
        self.scorer_calls
    }

    /// The prompt of a coalition.
    pub fn prompt(&self, coalition: Coalition) -> Result<String> {
        self.template.render(coalition, self.absent)
    }

    /// The scoring requests for a batch of coalitions (coalition-major).
    pub fn requests(&self, coalitions: &[Coalition]) -> Result<Vec<ScoreRequest>> {
        let conts = self.value.continuations();
        let mut out = Vec::with_capacity(coalitions.len() * conts.len());
        for &c in coalitions {
            let prompt = self.prompt(c)?;
            for cont in &conts {
                out.push(ScoreRequest::new(prompt.clone(), *cont));
            }
        }
        Ok(out)
    }

    fn prepare(&mut self) -> Result<()> {
        if self.prepared {
            return Ok(());
        }
        self.scorer
            .prepare_shared_prefix(self.template.shared_prefix())?;
        let full = self.prompt(Coalition::full(self.template.n_players()))?;
        for cont in self.value.continuations() {
            if self.scorer.n_continuation_tokens(&full, cont)? == 0 {
                return Err(ShapleyError::EmptyContinuation {
                    continuation: cont.to_string(),
                });
            }
        }
        self.prepared = true;
        Ok(())
    }
}

impl<S: LanguageModelScorer> Game for PromptGame<S> {
    fn n_players(&self) -> usize {
        self.template.n_players()
    }

    fn player_names(&self) -> Vec<String> {
        self.template.player_names()
    }

    fn evaluate(&mut self, coalitions: &[Coalition]) -> Result<Vec<f64>> {
        self.prepare()?;
        if coalitions.is_empty() {
            return Ok(Vec::new());
        }
        let requests = self.requests(coalitions)?;
        let logprobs = self.scorer.continuation_logprobs(&requests)?;
        self.scorer_calls += 1;
        if logprobs.len() != requests.len() {
            return Err(ShapleyError::LengthMismatch {
                what: "scorer",
                expected: requests.len(),
                got: logprobs.len(),
            });
        }
        let k = self.value.continuations().len();
        Ok(logprobs
            .chunks(k)
            .map(|lps| self.value.value(lps))
            .collect())
    }
}
