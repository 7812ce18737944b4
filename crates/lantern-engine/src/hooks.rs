//! Named hook points, after TransformerLens's `hook_points.py`: a hook point is an identity in the
//! forward pass with a uniform name, e.g. `blocks.3.attn.hook_z`. Every point can be captured into
//! an [`ActivationCache`](crate::ActivationCache) and intervened on.
//!
//! Shapes (B = batch, T = positions, H = heads, Hkv = key/value heads):
//!
//! | point | shape |
//! |---|---|
//! | `hook_embed`, `hook_pos_embed`, `blocks.L.hook_resid_pre/mid/post`, `hook_attn_out`, `hook_mlp_out` | `[B, T, d_model]` |
//! | `blocks.L.ln1.hook_scale`, `ln2.hook_scale`, `ln_final.hook_scale` | `[B, T, 1]` |
//! | `blocks.L.ln1.hook_normalized` (norm output incl. weight/bias) | `[B, T, d_model]` |
//! | `blocks.L.attn.hook_q/hook_rot_q/hook_z` | `[B, T, H, d_head]` |
//! | `blocks.L.attn.hook_k/hook_v/hook_rot_k` | `[B, T, Hkv, d_head]` |
//! | `blocks.L.attn.hook_attn_scores/hook_pattern` | `[B, H, T_query, T_key]` |
//! | `blocks.L.attn.hook_result` (per-head output, computed only when asked) | `[B, T, H, d_model]` |
//! | `blocks.L.mlp.hook_pre/hook_pre_linear/hook_post` | `[B, T, d_mlp]` |
//! | `logits` | `[B, T, vocab]` |

use std::fmt;
use std::str::FromStr;

use crate::config::ModelConfig;
use crate::error::{Error, Result};

/// What a hook point measures; combined with a layer in [`HookPoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookKind {
    Embed,
    PosEmbed,
    ResidPre,
    Ln1Scale,
    Ln1Normalized,
    AttnQ,
    AttnK,
    AttnV,
    AttnRotQ,
    AttnRotK,
    AttnScores,
    AttnPattern,
    AttnZ,
    AttnResult,
    AttnOut,
    ResidMid,
    Ln2Scale,
    Ln2Normalized,
    MlpPre,
    MlpPreLinear,
    MlpPost,
    MlpOut,
    ResidPost,
    LnFinalScale,
    LnFinalNormalized,
    Logits,
}

use HookKind::*;

const GLOBAL_KINDS: [(HookKind, &str); 5] = [
    (Embed, "hook_embed"),
    (PosEmbed, "hook_pos_embed"),
    (LnFinalScale, "ln_final.hook_scale"),
    (LnFinalNormalized, "ln_final.hook_normalized"),
    (Logits, "logits"),
];

const BLOCK_KINDS: [(HookKind, &str); 21] = [
    (ResidPre, "hook_resid_pre"),
    (Ln1Scale, "ln1.hook_scale"),
    (Ln1Normalized, "ln1.hook_normalized"),
    (AttnQ, "attn.hook_q"),
    (AttnK, "attn.hook_k"),
    (AttnV, "attn.hook_v"),
    (AttnRotQ, "attn.hook_rot_q"),
    (AttnRotK, "attn.hook_rot_k"),
    (AttnScores, "attn.hook_attn_scores"),
    (AttnPattern, "attn.hook_pattern"),
    (AttnZ, "attn.hook_z"),
    (AttnResult, "attn.hook_result"),
    (AttnOut, "hook_attn_out"),
    (ResidMid, "hook_resid_mid"),
    (Ln2Scale, "ln2.hook_scale"),
    (Ln2Normalized, "ln2.hook_normalized"),
    (MlpPre, "mlp.hook_pre"),
    (MlpPreLinear, "mlp.hook_pre_linear"),
    (MlpPost, "mlp.hook_post"),
    (MlpOut, "hook_mlp_out"),
    (ResidPost, "hook_resid_post"),
];

/// Which axes of a hook's tensor are batch, position and head (for selecting where an
/// intervention applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Axes {
    pub batch: usize,
    pub pos: usize,
    pub head: Option<usize>,
}

impl HookKind {
    pub fn is_block(self) -> bool {
        !matches!(
            self,
            Embed | PosEmbed | LnFinalScale | LnFinalNormalized | Logits
        )
    }

    /// Per-head points, whose head axis can be selected.
    pub fn axes(self) -> Axes {
        match self {
            AttnQ | AttnK | AttnV | AttnRotQ | AttnRotK | AttnZ | AttnResult => Axes {
                batch: 0,
                pos: 1,
                head: Some(2),
            },
            AttnScores | AttnPattern => Axes {
                batch: 0,
                pos: 2,
                head: Some(1),
            },
            _ => Axes {
                batch: 0,
                pos: 1,
                head: None,
            },
        }
    }

    /// True for the key/value points, whose head axis counts KV heads under GQA.
    pub fn is_kv(self) -> bool {
        matches!(self, AttnK | AttnV | AttnRotK)
    }

    fn suffix(self) -> &'static str {
        GLOBAL_KINDS
            .iter()
            .chain(BLOCK_KINDS.iter())
            .find(|(k, _)| *k == self)
            .map(|(_, s)| *s)
            .expect("every kind has a name")
    }
}

/// One hook point: a kind and, for block points, a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HookPoint {
    pub layer: Option<usize>,
    pub kind: HookKind,
}

impl HookPoint {
    pub fn global(kind: HookKind) -> Self {
        debug_assert!(!kind.is_block());
        HookPoint { layer: None, kind }
    }
    pub fn block(layer: usize, kind: HookKind) -> Self {
        debug_assert!(kind.is_block());
        HookPoint {
            layer: Some(layer),
            kind,
        }
    }
    pub fn resid_pre(layer: usize) -> Self {
        Self::block(layer, ResidPre)
    }
    pub fn resid_post(layer: usize) -> Self {
        Self::block(layer, ResidPost)
    }
    pub fn attn(layer: usize, kind: HookKind) -> Self {
        Self::block(layer, kind)
    }
    pub fn logits() -> Self {
        Self::global(Logits)
    }

    /// The TransformerLens-style name, e.g. `blocks.3.attn.hook_z`.
    pub fn name(&self) -> String {
        self.to_string()
    }

    /// Parses a name and checks it against a model: the layer must exist, and points the
    /// architecture lacks (e.g. `hook_resid_mid` under parallel attention) are refused.
    pub fn parse_for(name: &str, cfg: &ModelConfig) -> Result<Self> {
        let point: HookPoint = name.parse()?;
        point.check(cfg)?;
        Ok(point)
    }

    /// Fails if the point does not exist in a model with this config.
    pub fn check(&self, cfg: &ModelConfig) -> Result<()> {
        if let Some(layer) = self.layer {
            crate::error::check_index("layer", layer, cfg.n_layers)?;
        }
        if !available(self.kind, cfg) {
            return Err(Error::UnknownHook {
                name: self.name(),
                hint: format!(" ({:?} models have no such point)", cfg.architecture),
            });
        }
        Ok(())
    }
}

/// Whether an architecture has this kind of point.
fn available(kind: HookKind, cfg: &ModelConfig) -> bool {
    match kind {
        PosEmbed => cfg.rope.is_none(),
        AttnRotQ | AttnRotK => cfg.rope.is_some(),
        ResidMid => !cfg.parallel_residual,
        MlpPreLinear => cfg.gated_mlp,
        _ => true,
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.layer {
            Some(l) => write!(f, "blocks.{l}.{}", self.kind.suffix()),
            None => f.write_str(self.kind.suffix()),
        }
    }
}

impl FromStr for HookPoint {
    type Err = Error;
    fn from_str(name: &str) -> Result<Self> {
        let unknown = || Error::UnknownHook {
            name: name.to_string(),
            hint: suggest(name),
        };
        if let Some(&(kind, _)) = GLOBAL_KINDS.iter().find(|(_, s)| *s == name) {
            return Ok(HookPoint::global(kind));
        }
        let rest = name.strip_prefix("blocks.").ok_or_else(unknown)?;
        let (layer, suffix) = rest.split_once('.').ok_or_else(unknown)?;
        let layer: usize = layer.parse().map_err(|_| unknown())?;
        let &(kind, _) = BLOCK_KINDS
            .iter()
            .find(|(_, s)| *s == suffix)
            .ok_or_else(unknown)?;
        Ok(HookPoint::block(layer, kind))
    }
}

/// Every hook point of a model, in forward order.
pub fn all_points(cfg: &ModelConfig) -> Vec<HookPoint> {
    let mut points = vec![HookPoint::global(Embed)];
    if available(PosEmbed, cfg) {
        points.push(HookPoint::global(PosEmbed));
    }
    for layer in 0..cfg.n_layers {
        points.extend(
            BLOCK_KINDS
                .iter()
                .filter(|(k, _)| available(*k, cfg))
                .map(|&(k, _)| HookPoint::block(layer, k)),
        );
    }
    points.extend([LnFinalScale, LnFinalNormalized, Logits].map(HookPoint::global));
    points
}

/// Resolves a name or glob pattern (`*` matches any run of characters, e.g.
/// `blocks.*.hook_resid_post` or `blocks.3.attn.*`) to the matching points of a model.
/// A pattern matching nothing is an error that suggests near names.
pub fn resolve(pattern: &str, cfg: &ModelConfig) -> Result<Vec<HookPoint>> {
    if !pattern.contains('*') {
        return Ok(vec![HookPoint::parse_for(pattern, cfg)?]);
    }
    let found: Vec<HookPoint> = all_points(cfg)
        .into_iter()
        .filter(|p| glob_match(pattern, &p.name()))
        .collect();
    if found.is_empty() {
        return Err(Error::UnknownHook {
            name: pattern.to_string(),
            hint: format!(" (the pattern matches no hook point{})", suggest(pattern)),
        });
    }
    Ok(found)
}

/// Resolves a comma-separated list of names and patterns, without duplicates, in forward order.
pub fn resolve_list(patterns: &str, cfg: &ModelConfig) -> Result<Vec<HookPoint>> {
    let mut points = Vec::new();
    for p in patterns.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        points.extend(resolve(p, cfg)?);
    }
    points.sort();
    points.dedup();
    Ok(points)
}

/// `*` matches any (possibly empty) run of characters.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first)
        || !text[first.len()..].ends_with(last)
        || text.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// " (did you mean ...?)" with the nearest valid names by edit distance, or "".
fn suggest(name: &str) -> String {
    // Compare against the layer-0 form of every name, keeping the user's layer number.
    let layer = name
        .strip_prefix("blocks.")
        .and_then(|r| r.split('.').next())
        .filter(|l| l.parse::<usize>().is_ok())
        .unwrap_or("0");
    let mut candidates: Vec<String> = GLOBAL_KINDS.iter().map(|(_, s)| s.to_string()).collect();
    candidates.extend(
        BLOCK_KINDS
            .iter()
            .map(|(_, s)| format!("blocks.{layer}.{s}")),
    );
    let mut scored: Vec<(usize, String)> = candidates
        .into_iter()
        .map(|c| (edit_distance(name, &c), c))
        .collect();
    scored.sort();
    let best: Vec<String> = scored
        .into_iter()
        .take(3)
        .map(|(_, c)| format!("`{c}`"))
        .collect();
    format!("; did you mean {}?", best.join(", "))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in [
            "hook_embed",
            "blocks.3.attn.hook_z",
            "blocks.0.ln1.hook_scale",
            "ln_final.hook_normalized",
            "logits",
            "blocks.12.mlp.hook_post",
        ] {
            assert_eq!(name.parse::<HookPoint>().unwrap().name(), name);
        }
    }

    #[test]
    fn unknown_names_suggest_near_ones() {
        let err = "blocks.2.attn.hook_zz"
            .parse::<HookPoint>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("`blocks.2.attn.hook_z`"), "{err}");
        let err = "blocks.x.hook_resid_pre"
            .parse::<HookPoint>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean"), "{err}");
    }

    #[test]
    fn glob() {
        assert!(glob_match(
            "blocks.*.hook_resid_post",
            "blocks.12.hook_resid_post"
        ));
        assert!(!glob_match(
            "blocks.*.hook_resid_post",
            "blocks.12.hook_resid_pre"
        ));
        assert!(glob_match("*", "logits"));
        assert!(glob_match("blocks.1.*", "blocks.1.attn.hook_q"));
        assert!(!glob_match("blocks.1.*", "blocks.10.attn.hook_q"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b*c", "aXc"));
    }
}
