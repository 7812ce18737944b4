//! # lantern-states
//!
//! Learning *representational states* — directions over one layer's residual stream — from
//! labelled, pooled feature vectors, after Lee et al. 2025, "Emergence of psychopathological
//! computations in large language models" (arXiv:2504.08016). No ML library: plain
//! `Vec<Vec<f32>>` features in, a serialisable [`StateSet`] out.
//!
//! Pipeline of [`learn_states`]:
//! 1. validate data and config (errors, never panics or NaN);
//! 2. stratified seeded split ([`split_indices`]);
//! 3. fit a [`Standardizer`] on the **train** rows: `z = (x - mean) / std`;
//! 4. learn, per state, a direction `u` in standardised space and a linear readout
//!    `a(z) = w·z + b` (state "present" iff `a > 0`) with one of the [`ProbeMethod`]s;
//! 5. map each direction to the original space for steering:
//!    `direction = normalise(std ⊙ u)` (a displacement `u` of `z` is a displacement
//!    `std ⊙ u` of `x`); for diff-means this is exactly the raw difference of class means;
//! 6. held-out one-vs-rest balanced accuracy and ROC AUC per state; states whose balanced
//!    accuracy is below `accuracy_threshold` are `flagged` and described in
//!    [`StateSet::warnings`]. **Callers must check**: use [`StateSet::usable_states`].
//!
//! States: one per label except the baseline (e.g. `"neutral"`); with no baseline, one per
//! label (one-vs-rest). Baseline examples still count as negatives everywhere.

mod error;
mod io;
mod linalg;
mod metrics;
mod probes;
mod split;
mod standardize;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use error::{Result, StatesError};
pub use io::{encode_labels, read_labelled_text};
pub use linalg::cosine;
pub use metrics::{balanced_accuracy, roc_auc};
pub use split::split_indices;
pub use standardize::Standardizer;

/// Minimum examples of a state (and of its contrast class) in each of train and test.
pub const MIN_PER_SPLIT: usize = 2;

/// Labelled pooled features: `labels[i]` indexes `label_names`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub features: Vec<Vec<f32>>,
    pub labels: Vec<usize>,
    pub label_names: Vec<String>,
}

/// How states are learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProbeMethod {
    /// Difference of class means (state minus baseline, or minus rest without a baseline).
    #[serde(rename = "diff_means")]
    DiffMeans,
    /// One-vs-rest L2-regularised, class-balanced logistic regression.
    #[serde(rename = "logistic")]
    Logistic,
    /// Supervised sparse autoencoder (Lee et al. 2025).
    #[serde(rename = "sae")]
    SupervisedSae,
}

impl FromStr for ProbeMethod {
    type Err = StatesError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "diff_means" | "diffmeans" => Ok(Self::DiffMeans),
            "logistic" | "logreg" => Ok(Self::Logistic),
            "sae" | "supervised_sae" => Ok(Self::SupervisedSae),
            _ => Err(StatesError::InvalidConfig(format!(
                "unknown probe method '{s}' (expected diff_means|logistic|sae)"
            ))),
        }
    }
}

impl fmt::Display for ProbeMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DiffMeans => "diff_means",
            Self::Logistic => "logistic",
            Self::SupervisedSae => "sae",
        })
    }
}

/// Supervised-SAE hyper-parameters.
///
/// Model (on standardised `x ∈ R^d`, `m = width_multiplier · d`, `K` states):
/// `z = W_enc x` (bias-free, `W_enc: m × d`);
/// `h = [sigmoid(z_1..K) ; relu(z_K+1..m)]` — **this `h` feeds the decoder**;
/// `x̂ = W_dec h` (bias-free, `W_dec: d × m`).
/// Loss per mini-batch: `BCE(sigmoid(z_1..K), one-hot state)` (mean over batch × K; baseline
/// rows have all-zero targets) `+ recon_weight · mean((x̂ - x)²)` (mean over batch × d)
/// `+ l1 · mean(relu(z_K+1..m))` (mean over batch × (m−K)). Adam (β = 0.9, 0.999), seeded
/// uniform init, reshuffled each epoch; after each step the ReLU latents' decoder columns
/// are projected into the unit ball. The state readout is the encoder row of the state's
/// latent with a bias calibrated on the train split (midpoint of the positive and negative
/// mean logits) — the bias-free boundary `z = 0` passes through the training mean, i.e.
/// inside the negatives for a minority state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SaeConfig {
    pub width_multiplier: usize,
    pub epochs: usize,
    pub learning_rate: f64,
    pub l1: f64,
    pub batch_size: usize,
    pub recon_weight: f64,
    /// Worker threads (0 = all available). Results are identical for any value.
    pub threads: usize,
}

impl Default for SaeConfig {
    fn default() -> Self {
        Self {
            width_multiplier: 8,
            epochs: 20,
            learning_rate: 1e-3,
            l1: 1.0,
            batch_size: 32,
            recon_weight: 1.0,
            threads: 0,
        }
    }
}

/// Logistic-regression hyper-parameters (`lr: None` = automatic `1/L` step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogisticConfig {
    pub l2: f64,
    pub epochs: usize,
    pub lr: Option<f64>,
}

impl Default for LogisticConfig {
    fn default() -> Self {
        Self {
            l2: 1e-2,
            epochs: 500,
            lr: None,
        }
    }
}

/// Configuration of [`learn_states`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatesConfig {
    pub method: ProbeMethod,
    /// Label treated as baseline (no state learned for it), e.g. `"neutral"`.
    pub baseline: Option<String>,
    pub test_fraction: f64,
    pub seed: u64,
    /// States with held-out balanced accuracy below this are flagged.
    pub accuracy_threshold: f64,
    pub sae: SaeConfig,
    pub logistic: LogisticConfig,
}

impl Default for StatesConfig {
    fn default() -> Self {
        Self {
            method: ProbeMethod::DiffMeans,
            baseline: None,
            test_fraction: 0.25,
            seed: 0,
            accuracy_threshold: 0.7,
            sae: SaeConfig::default(),
            logistic: LogisticConfig::default(),
        }
    }
}

/// Linear readout on **standardised** features: `activation = weights · z + bias`;
/// the state is predicted present iff `activation > 0`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearReadout {
    pub weights: Vec<f32>,
    pub bias: f64,
}

/// Held-out quality of one state (one-vs-rest on the test split).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateAccuracy {
    pub state: String,
    /// Balanced accuracy `(TPR + TNR)/2` of `activation > 0`, state vs everything else.
    pub accuracy: f64,
    /// ROC AUC of the activation, state vs everything else.
    pub auc: f64,
    /// Number of test examples (positives + negatives).
    pub n_test: usize,
    /// `accuracy < threshold`: do not use this state.
    pub flagged: bool,
}

/// Learned states. Field `i` of every vector refers to `label_names[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateSet {
    pub method: ProbeMethod,
    /// The states (all labels except the baseline), in label order.
    pub label_names: Vec<String>,
    pub baseline: Option<String>,
    pub standardizer: Standardizer,
    /// Unit-norm steering direction per state in the ORIGINAL (unstandardised) space:
    /// `normalise(std ⊙ u)` where `u` is the method's standardised-space direction
    /// (diff of means / logistic weights / SAE decoder column). All-zero if degenerate.
    pub directions: Vec<Vec<f32>>,
    /// Readout per state, applied to standardised features.
    pub readout: Vec<LinearReadout>,
    pub held_out: Vec<StateAccuracy>,
    /// The accuracy threshold used for flagging.
    pub threshold: f64,
    /// One message per flagged or degenerate state.
    pub warnings: Vec<String>,
}

impl StateSet {
    /// Feature dimension expected by [`StateSet::activations`].
    pub fn dim(&self) -> usize {
        self.standardizer.dim()
    }

    /// Index of a state by name.
    pub fn state_index(&self, state: &str) -> Option<usize> {
        self.label_names.iter().position(|s| s == state)
    }

    /// State activations (readout scores; > 0 = present) for one pooled feature vector.
    /// A vector of the wrong length yields all-NaN; use [`StateSet::try_activations`] to get
    /// an error instead.
    pub fn activations(&self, features: &[f32]) -> Vec<f64> {
        self.try_activations(features)
            .unwrap_or_else(|_| vec![f64::NAN; self.label_names.len()])
    }

    /// Checked [`StateSet::activations`].
    pub fn try_activations(&self, features: &[f32]) -> Result<Vec<f64>> {
        let z = self.standardizer.try_transform(features)?;
        Ok(self.readout.iter().map(|r| score(r, &z)).collect())
    }

    /// Steering direction (unit norm, original space) of a state.
    pub fn direction(&self, state: &str) -> Option<&[f32]> {
        self.state_index(state)
            .map(|i| self.directions[i].as_slice())
    }

    /// States that passed the held-out accuracy check.
    pub fn usable_states(&self) -> Vec<&str> {
        self.held_out
            .iter()
            .filter(|a| !a.flagged)
            .map(|a| a.state.as_str())
            .collect()
    }

    /// Pretty JSON, written atomically (temp file in the same directory, then rename).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let json = serde_json::to_string_pretty(self)?;
        lantern_io::write_atomic(path, json.as_bytes()).map_err(|source| StatesError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Load a state set written by [`StateSet::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| StatesError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let set: StateSet = serde_json::from_str(&text)?;
        let k = set.label_names.len();
        let d = set.dim();
        if set.directions.len() != k
            || set.readout.len() != k
            || set.standardizer.std.len() != d
            || set.directions.iter().any(|v| v.len() != d)
            || set.readout.iter().any(|r| r.weights.len() != d)
        {
            return Err(StatesError::InvalidConfig(format!(
                "{}: inconsistent state set (states/dimensions disagree)",
                path.display()
            )));
        }
        Ok(set)
    }
}

fn score(r: &LinearReadout, z: &[f32]) -> f64 {
    r.weights
        .iter()
        .zip(z)
        .map(|(&w, &v)| w as f64 * v as f64)
        .sum::<f64>()
        + r.bias
}

fn validate_config(cfg: &StatesConfig) -> Result<()> {
    let bad = |m: String| Err(StatesError::InvalidConfig(m));
    if !(cfg.test_fraction > 0.0 && cfg.test_fraction < 1.0) {
        return bad(format!(
            "test_fraction must be in (0, 1), got {}",
            cfg.test_fraction
        ));
    }
    if !(0.0..=1.0).contains(&cfg.accuracy_threshold) {
        return bad(format!(
            "accuracy_threshold must be in [0, 1], got {}",
            cfg.accuracy_threshold
        ));
    }
    match cfg.method {
        ProbeMethod::DiffMeans => {}
        ProbeMethod::Logistic => {
            let l = &cfg.logistic;
            if !(l.l2 >= 0.0 && l.l2.is_finite()) || l.epochs == 0 {
                return bad("logistic: need l2 >= 0 and epochs > 0".into());
            }
            if let Some(lr) = l.lr {
                if !(lr > 0.0 && lr.is_finite()) {
                    return bad(format!("logistic: lr must be > 0, got {lr}"));
                }
            }
        }
        ProbeMethod::SupervisedSae => {
            let s = &cfg.sae;
            if s.width_multiplier == 0 || s.epochs == 0 || s.batch_size == 0 {
                return bad("sae: width_multiplier, epochs and batch_size must be > 0".into());
            }
            if !(s.learning_rate > 0.0 && s.learning_rate.is_finite()) {
                return bad(format!(
                    "sae: learning_rate must be > 0, got {}",
                    s.learning_rate
                ));
            }
            if !(s.l1 >= 0.0
                && s.l1.is_finite()
                && s.recon_weight >= 0.0
                && s.recon_weight.is_finite())
            {
                return bad("sae: l1 and recon_weight must be finite and >= 0".into());
            }
        }
    }
    Ok(())
}

/// Learn one state per non-baseline label. See the crate docs for the pipeline.
pub fn learn_states(data: &Dataset, cfg: &StatesConfig) -> Result<StateSet> {
    validate_config(cfg)?;
    let n = data.features.len();
    if n == 0 {
        return Err(StatesError::EmptyData("no examples".into()));
    }
    if data.labels.len() != n {
        return Err(StatesError::LengthMismatch {
            features: n,
            labels: data.labels.len(),
        });
    }
    let d = standardize::check_rows(&data.features)?;
    let n_labels = data.label_names.len();
    for (row, &label) in data.labels.iter().enumerate() {
        if label >= n_labels {
            return Err(StatesError::LabelOutOfRange {
                row,
                label,
                n_labels,
            });
        }
    }
    for (i, name) in data.label_names.iter().enumerate() {
        if data.label_names[..i].contains(name) {
            return Err(StatesError::DuplicateLabel(name.clone()));
        }
    }
    let baseline = match &cfg.baseline {
        None => None,
        Some(b) => Some(
            data.label_names
                .iter()
                .position(|l| l == b)
                .ok_or_else(|| StatesError::UnknownBaseline {
                    baseline: b.clone(),
                    available: data.label_names.clone(),
                })?,
        ),
    };
    let states: Vec<usize> = (0..n_labels).filter(|&l| Some(l) != baseline).collect();
    if states.is_empty() {
        return Err(StatesError::NoStates);
    }
    let width = cfg.sae.width_multiplier * d;
    if cfg.method == ProbeMethod::SupervisedSae && width < states.len() {
        return Err(StatesError::InvalidConfig(format!(
            "sae width {width} is smaller than the number of states {}",
            states.len()
        )));
    }

    // ---- split and per-split class checks
    let (train, test) = split_indices(&data.labels, cfg.test_fraction, cfg.seed);
    let count = |idx: &[usize], f: &dyn Fn(usize) -> bool| {
        idx.iter().filter(|&&i| f(data.labels[i])).count()
    };
    let need_total = 2 * MIN_PER_SPLIT;
    let mut checks: Vec<(String, usize, Option<String>)> = states
        .iter()
        .map(|&s| (data.label_names[s].clone(), s, None))
        .collect();
    if let (Some(b), ProbeMethod::DiffMeans) = (baseline, cfg.method) {
        checks.push((data.label_names[b].clone(), b, Some("baseline".into())));
    }
    for (name, s, _) in &checks {
        let total = data.labels.iter().filter(|&&l| l == *s).count();
        if total < need_total {
            return Err(StatesError::TooFewExamples {
                state: name.clone(),
                n: total,
                need: need_total,
                context: String::new(),
            });
        }
        for (idx, split_name) in [(&train, "train"), (&test, "test")] {
            let k = count(idx, &|l| l == *s);
            if k < MIN_PER_SPLIT {
                return Err(StatesError::TooFewExamples {
                    state: name.clone(),
                    n: k,
                    need: MIN_PER_SPLIT,
                    context: format!(" in the {split_name} split"),
                });
            }
        }
    }
    for &s in &states {
        for (idx, split_name) in [(&train, "train"), (&test, "test")] {
            let k = count(idx, &|l| l != s);
            if k < MIN_PER_SPLIT {
                return Err(StatesError::TooFewContrast {
                    state: data.label_names[s].clone(),
                    contrast: "all other labels".into(),
                    n: k,
                    need: MIN_PER_SPLIT,
                    context: format!(" in the {split_name} split"),
                });
            }
        }
    }

    // ---- standardise on train
    let train_rows: Vec<Vec<f32>> = train.iter().map(|&i| data.features[i].clone()).collect();
    let standardizer = Standardizer::fit(&train_rows)?;
    let xtr = standardizer.transform_all(&train_rows);
    let ytr: Vec<usize> = train.iter().map(|&i| data.labels[i]).collect();

    // ---- learn
    let mut std_dirs = Vec::with_capacity(states.len());
    let mut readout = Vec::with_capacity(states.len());
    match cfg.method {
        ProbeMethod::DiffMeans => {
            for &s in &states {
                let pos: Vec<bool> = ytr.iter().map(|&l| l == s).collect();
                let neg: Vec<bool> = ytr
                    .iter()
                    .map(|&l| match baseline {
                        Some(b) => l == b,
                        None => l != s,
                    })
                    .collect();
                let (u, r) = probes::diff_means(&xtr, &pos, &neg);
                std_dirs.push(u);
                readout.push(r);
            }
        }
        ProbeMethod::Logistic => {
            let x64: Vec<Vec<f64>> = xtr
                .iter()
                .map(|r| r.iter().map(|&v| v as f64).collect())
                .collect();
            for &s in &states {
                let y: Vec<bool> = ytr.iter().map(|&l| l == s).collect();
                let (u, r) = probes::logistic(&x64, &y, &cfg.logistic)?;
                std_dirs.push(u);
                readout.push(r);
            }
        }
        ProbeMethod::SupervisedSae => {
            let target: Vec<Option<usize>> = ytr
                .iter()
                .map(|&l| states.iter().position(|&s| s == l))
                .collect();
            let sae = probes::train_sae(&xtr, &target, states.len(), &cfg.sae, cfg.seed)?;
            for k in 0..states.len() {
                std_dirs.push(sae.dec[k * sae.d..(k + 1) * sae.d].to_vec());
                let mut r = LinearReadout {
                    weights: sae.enc[k * sae.d..(k + 1) * sae.d].to_vec(),
                    bias: 0.0,
                };
                // The bias-free encoder's boundary passes through the training mean (0 after
                // centring), which sits inside the negatives for a minority state; calibrate
                // the readout threshold at the midpoint of the class-mean latent logits.
                let (mut sp, mut np_, mut sn, mut nn) = (0.0, 0usize, 0.0, 0usize);
                for (row, t) in xtr.iter().zip(&target) {
                    let a = score(&r, row);
                    if *t == Some(k) {
                        sp += a;
                        np_ += 1;
                    } else {
                        sn += a;
                        nn += 1;
                    }
                }
                r.bias = -0.5 * (sp / np_.max(1) as f64 + sn / nn.max(1) as f64);
                readout.push(r);
            }
            debug_assert_eq!(sae.m, width);
        }
    }

    // ---- directions in the original space
    let mut warnings = Vec::new();
    let label_names: Vec<String> = states
        .iter()
        .map(|&s| data.label_names[s].clone())
        .collect();
    let directions: Vec<Vec<f32>> = std_dirs
        .iter()
        .zip(&label_names)
        .map(
            |(u, name)| match linalg::normalized(&standardizer.displacement_to_original(u)) {
                Some(v) => v,
                None => {
                    warnings.push(format!("state '{name}': degenerate (zero) direction"));
                    vec![0.0; d]
                }
            },
        )
        .collect();

    // ---- held-out evaluation (one-vs-rest)
    let xte: Vec<Vec<f32>> = test
        .iter()
        .map(|&i| standardizer.transform(&data.features[i]))
        .collect();
    let mut held_out = Vec::with_capacity(states.len());
    for (k, &s) in states.iter().enumerate() {
        let (mut pos, mut neg) = (Vec::new(), Vec::new());
        for (row, &i) in xte.iter().zip(&test) {
            let a = score(&readout[k], row);
            if data.labels[i] == s {
                pos.push(a);
            } else {
                neg.push(a);
            }
        }
        let accuracy = balanced_accuracy(&pos, &neg);
        let auc = roc_auc(&pos, &neg);
        let flagged = accuracy.is_nan() || accuracy < cfg.accuracy_threshold;
        if flagged {
            warnings.push(format!(
                "state '{}' flagged: held-out balanced accuracy {:.3} < threshold {:.3} (AUC {:.3}, n_test {}); do not use it",
                label_names[k],
                accuracy,
                cfg.accuracy_threshold,
                auc,
                pos.len() + neg.len()
            ));
        }
        held_out.push(StateAccuracy {
            state: label_names[k].clone(),
            accuracy,
            auc,
            n_test: pos.len() + neg.len(),
            flagged,
        });
    }

    Ok(StateSet {
        method: cfg.method,
        label_names,
        baseline: cfg.baseline.clone(),
        standardizer,
        directions,
        readout,
        held_out,
        threshold: cfg.accuracy_threshold,
        warnings,
    })
}
