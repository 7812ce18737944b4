//! P2's protocol around the Shapley values: templates read (chat-wrapped where the model has a
//! chat template), options checked, the responsiveness check, counterbalanced orders, the noise
//! share's exchangeability null, and the framing difference.

use std::path::Path;

use anyhow::{bail, Context, Result};
use lantern_engine::LoadedModel;
use lantern_shapley::{Absent, Coalition, Game, PromptGame, Template, ValueKind};
use serde::Serialize;

use super::steps::{InformativeSwap, P2Config, TemplateReport};
use crate::chat::ChatWrap;
use crate::scorer::EngineScorer;

/// Reads a template file, exchanges the informative strings when `swap` is given, and wraps it
/// in the model's chat template when the config asks and the model has one. Returns the
/// template and whether it was chat-wrapped.
pub fn load_template(
    lm: &LoadedModel,
    cfg: &P2Config,
    path: &Path,
    swap: Option<&InformativeSwap>,
) -> Result<(Template, bool)> {
    let mut src = std::fs::read_to_string(path)
        .with_context(|| format!("reading template {}", path.display()))?;
    if let Some(s) = swap {
        src = swap_in_player(&src, s).with_context(|| format!("template {}", path.display()))?;
    }
    let chat = match (&lm.chat_template, cfg.chat_template) {
        (Some(t), true) => Some(ChatWrap::from_template(t)?),
        _ => None,
    };
    if let Some(w) = &chat {
        src = w.wrap_template_source(&src)?;
    }
    let t = Template::parse(&src).with_context(|| format!("template {}", path.display()))?;
    Ok((t, chat.is_some()))
}

/// The template source with `swap`'s two strings exchanged inside the player's text; an error
/// when the player is missing or holds neither string (nothing informative to swap).
pub fn swap_in_player(src: &str, s: &InformativeSwap) -> Result<String> {
    let open = format!("{{{{{}:", s.player);
    let start = src
        .find(&open)
        .with_context(|| format!("no player `{}` to swap (informative.player)", s.player))?;
    let end = start
        + src[start..]
            .find("}}")
            .with_context(|| format!("player `{}` is not closed", s.player))?;
    let [a, b] = &s.swap;
    if a.is_empty() || b.is_empty() || a == b {
        bail!("informative.swap needs two different, non-empty strings, got {a:?} and {b:?}");
    }
    let body = &src[start..end];
    const HOLD: &str = "\u{0}";
    let swapped = body.replace(a, HOLD).replace(b, a).replace(HOLD, b);
    if swapped == body {
        bail!(
            "player `{}` contains neither {a:?} nor {b:?}: the template has no informative attribute to swap",
            s.player
        );
    }
    Ok(format!("{}{swapped}{}", &src[..start], &src[end..]))
}

/// Each option must be one token: option probabilities compare next-token probabilities.
pub fn check_single_token_options(lm: &LoadedModel, cfg: &P2Config) -> Result<()> {
    if !matches!(cfg.value.as_str(), "option_prob" | "option_diff") {
        return Ok(());
    }
    for o in &cfg.options {
        let ids = lm.tokenizer.encode_raw(o)?;
        if ids.len() != 1 {
            let pieces: Vec<String> = ids.iter().map(|&i| lm.tokenizer.token_text(i)).collect();
            bail!(
                "[p2] option {o:?} is {} tokens for this model ({pieces:?}), not one; \
                 options are compared by their next-token probability",
                ids.len()
            );
        }
    }
    Ok(())
}

/// The noise share against exchangeable components: if the |φ| were assigned to players at
/// random, the noise players' share would average k/n; `p_lower`/`p_upper` are the shares of
/// all k-subsets of players whose share is ≤ / ≥ the observed one (exact enumeration).
#[derive(Debug, Clone, Serialize)]
pub struct NoiseNull {
    pub share: f64,
    /// k/n: the expected share under exchangeability.
    pub null_share: f64,
    pub p_lower: f64,
    pub p_upper: f64,
    /// k-subsets enumerated.
    pub subsets: usize,
}

/// Largest number of k-subsets enumerated (C(20, 10) ≈ 185 k); beyond it the test is skipped.
const MAX_SUBSETS: u64 = 1 << 20;

pub fn noise_null(names: &[String], values: &[f64], noise: &[String]) -> NoiseNull {
    let abs: Vec<f64> = values.iter().map(|v| v.abs()).collect();
    let total: f64 = abs.iter().sum();
    let n = abs.len();
    let is_noise: Vec<bool> = names.iter().map(|p| noise.contains(p)).collect();
    let k = is_noise.iter().filter(|&&x| x).count();
    let share_of = |mask: &dyn Fn(usize) -> bool| {
        if total > 0.0 {
            (0..n).filter(|&i| mask(i)).map(|i| abs[i]).sum::<f64>() / total
        } else {
            0.0
        }
    };
    let share = share_of(&|i| is_noise[i]);
    let null_share = if n > 0 { k as f64 / n as f64 } else { 0.0 };
    let (mut le, mut ge, mut subsets) = (0usize, 0usize, 0usize);
    if n < 64 && k > 0 && binomial(n as u64, k as u64) <= MAX_SUBSETS {
        // Every n-bit mask with k bits set (Gosper's hack).
        let mut m: u64 = (1u64 << k) - 1;
        while m < (1u64 << n) {
            let s = share_of(&|i| m >> i & 1 == 1);
            // A tolerance so that ties (equal |φ|) count on both sides.
            le += usize::from(s <= share + 1e-12);
            ge += usize::from(s >= share - 1e-12);
            subsets += 1;
            let c = m & m.wrapping_neg();
            let r = m + c;
            m = (((r ^ m) >> 2) / c) | r;
        }
    }
    let p = |x: usize| {
        if subsets > 0 {
            x as f64 / subsets as f64
        } else {
            f64::NAN
        }
    };
    NoiseNull {
        share,
        null_share,
        p_lower: p(le),
        p_upper: p(ge),
        subsets,
    }
}

fn binomial(n: u64, k: u64) -> u64 {
    let k = k.min(n - k.min(n));
    (0..k).fold(1u64, |acc, i| acc.saturating_mul(n - i) / (i + 1))
}

/// The responsiveness check of one template in one order.
#[derive(Debug, Clone, Serialize)]
pub struct Responsiveness {
    pub order: String,
    pub player: String,
    pub swap: [String; 2],
    /// p(chosen) with every component present, as written and with the strings exchanged.
    pub p_chosen: f64,
    pub p_chosen_swapped_attribute: f64,
    pub delta: f64,
    /// Whether the preferred option (p > 0.5) changes.
    pub choice_flips: bool,
}

/// Smallest |Δp| reported as "moves the choice".
pub const RESPONSIVE_DELTA: f64 = 0.05;

impl Responsiveness {
    pub fn moves(&self) -> bool {
        self.delta.abs() >= RESPONSIVE_DELTA
    }
}

/// Value of the full prompt (every component present) of a template for option `chosen`.
pub fn full_value(
    lm: &LoadedModel,
    cfg: &P2Config,
    template: Template,
    chosen: usize,
) -> Result<f64> {
    let absent: Absent = cfg.absent.parse()?;
    let value = ValueKind::from_name(&cfg.value, cfg.target.clone(), cfg.options.clone(), chosen)?;
    let n = template.n_players();
    let mut scorer = EngineScorer::new(lm);
    scorer.batch_size = cfg.batch_size;
    let mut game = PromptGame::new(template, absent, value, scorer)?;
    Ok(game.evaluate(&[Coalition::full(n)])?[0])
}

/// Runs the responsiveness check for one template file in one order.
pub fn responsiveness(
    lm: &LoadedModel,
    cfg: &P2Config,
    path: &Path,
    swap: &InformativeSwap,
    chosen: usize,
    order: &str,
    p_chosen: f64,
) -> Result<Responsiveness> {
    let (t, _) = load_template(lm, cfg, path, Some(swap))?;
    let p_swapped = full_value(lm, cfg, t, chosen)?;
    Ok(Responsiveness {
        order: order.to_string(),
        player: swap.player.clone(),
        swap: swap.swap.clone(),
        p_chosen,
        p_chosen_swapped_attribute: p_swapped,
        delta: p_swapped - p_chosen,
        choice_flips: (p_chosen > 0.5) != (p_swapped > 0.5),
    })
}

/// One template in both orders, and the per-player mean over orders.
#[derive(Debug, Clone, Serialize)]
pub struct Counterbalanced {
    pub template: String,
    pub frame: Option<String>,
    pub players: Vec<String>,
    /// Per order (original first), the exact Shapley values in `players` order.
    pub values_by_order: Vec<Vec<f64>>,
    /// Their mean over orders.
    pub values_mean: Vec<f64>,
    /// p(chosen option's content), full prompt, per order and mean.
    pub p_chosen_by_order: Vec<f64>,
    pub p_chosen_mean: f64,
    pub noise_share_by_order: Vec<f64>,
    /// Noise share and its null on the order-averaged values.
    pub noise_null_mean: NoiseNull,
    pub responsiveness: Vec<Responsiveness>,
}

/// Joins a template's reports over orders; the orders' players must match by name.
pub fn counterbalance(
    reports: &[&TemplateReport],
    frame: Option<String>,
    noise: &[String],
    responsiveness: Vec<Responsiveness>,
) -> Result<Counterbalanced> {
    let first = reports.first().context("no report to counterbalance")?;
    let players = first.exact.players.clone();
    let mut values_by_order = Vec::new();
    for r in reports {
        let mut v = Vec::with_capacity(players.len());
        for p in &players {
            let i = r
                .exact
                .players
                .iter()
                .position(|q| q == p)
                .with_context(|| {
                    format!("the swapped template {} has no player `{p}`", r.template)
                })?;
            v.push(r.exact.values[i]);
        }
        if r.exact.players.len() != players.len() {
            bail!(
                "{} has {} players, its other order {}",
                r.template,
                r.exact.players.len(),
                players.len()
            );
        }
        values_by_order.push(v);
    }
    let k = reports.len() as f64;
    let values_mean: Vec<f64> = (0..players.len())
        .map(|i| values_by_order.iter().map(|v| v[i]).sum::<f64>() / k)
        .collect();
    let p_chosen_by_order: Vec<f64> = reports.iter().map(|r| r.exact.v_full).collect();
    Ok(Counterbalanced {
        template: first.template.clone(),
        frame,
        noise_null_mean: noise_null(&players, &values_mean, noise),
        players,
        values_by_order,
        values_mean,
        p_chosen_mean: p_chosen_by_order.iter().sum::<f64>() / k,
        p_chosen_by_order,
        noise_share_by_order: reports.iter().map(|r| r.noise_share).collect(),
        responsiveness,
    })
}

/// The framing effect: mean over matched (gain, loss) template pairs and orders of
/// p_gain(chosen) − p_loss(chosen), with a 95% t interval over those differences (the
/// variation is over paraphrases and option orders; one prompt's probability has no sampling
/// error of its own).
#[derive(Debug, Clone, Serialize)]
pub struct Framing {
    pub gain_minus_loss: f64,
    /// `None` with fewer than two differences.
    pub ci95: Option<[f64; 2]>,
    pub differences: Vec<FramingPair>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FramingPair {
    pub gain: String,
    pub loss: String,
    pub order: usize,
    pub difference: f64,
}

/// Pairs the i-th gain template with the i-th loss template (in `templates` order).
pub fn framing(cb: &[Counterbalanced]) -> Result<Option<Framing>> {
    let of = |f: &str| {
        cb.iter()
            .filter(|c| c.frame.as_deref() == Some(f))
            .collect::<Vec<_>>()
    };
    let (gains, losses) = (of("gain"), of("loss"));
    if gains.is_empty() && losses.is_empty() {
        return Ok(None);
    }
    if gains.len() != losses.len() {
        bail!(
            "[p2] frames name {} gain and {} loss templates; they are paired in order",
            gains.len(),
            losses.len()
        );
    }
    let mut differences = Vec::new();
    for (g, l) in gains.iter().zip(&losses) {
        for (o, (pg, pl)) in g
            .p_chosen_by_order
            .iter()
            .zip(&l.p_chosen_by_order)
            .enumerate()
        {
            differences.push(FramingPair {
                gain: g.template.clone(),
                loss: l.template.clone(),
                order: o,
                difference: pg - pl,
            });
        }
    }
    let d: Vec<f64> = differences.iter().map(|p| p.difference).collect();
    let n = d.len() as f64;
    let mean = d.iter().sum::<f64>() / n;
    let ci95 = (d.len() >= 2).then(|| {
        let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let half = t_quantile_975(d.len() - 1) * (var / n).sqrt();
        [mean - half, mean + half]
    });
    Ok(Some(Framing {
        gain_minus_loss: mean,
        ci95,
        differences,
    }))
}

/// The 97.5% quantile of Student's t with `df` degrees of freedom (table to 30, then normal).
pub fn t_quantile_975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => T[df - 1],
        _ => 1.960,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("p{i}")).collect()
    }

    #[test]
    fn noise_null_is_k_over_n_and_exact_p_values() {
        let n = names(4);
        // The single noise player holds the largest |φ|: only 1 of 4 subsets is ≥ it.
        let r = noise_null(&n, &[4.0, -1.0, 2.0, 3.0], &["p0".into()]);
        assert_eq!(r.subsets, 4);
        assert!((r.null_share - 0.25).abs() < 1e-12);
        assert!((r.share - 0.4).abs() < 1e-12);
        assert!((r.p_upper - 0.25).abs() < 1e-12);
        assert!((r.p_lower - 1.0).abs() < 1e-12);
        // Equal |φ|: every subset ties, both p-values are 1.
        let r = noise_null(&n, &[1.0, 1.0, -1.0, 1.0], &["p1".into(), "p2".into()]);
        assert_eq!(r.subsets, 6);
        assert_eq!((r.p_lower, r.p_upper), (1.0, 1.0));
        assert!((r.share - 0.5).abs() < 1e-12);
    }

    #[test]
    fn informative_swap_exchanges_inside_the_player_only() {
        let s = InformativeSwap {
            player: "price".into(),
            swap: ["$1".into(), "$2".into()],
        };
        let src = "A $1.\n{{price: A $1, B $2.\n}}{{x: $1}}Q";
        assert_eq!(
            swap_in_player(src, &s).unwrap(),
            "A $1.\n{{price: A $2, B $1.\n}}{{x: $1}}Q"
        );
        let e = swap_in_player("{{price: free}}", &s)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no informative attribute"), "{e}");
        let e = swap_in_player("{{cost: $1}}", &s).unwrap_err().to_string();
        assert!(e.contains("no player `price`"), "{e}");
    }

    #[test]
    fn t_quantiles_and_binomials() {
        assert_eq!(t_quantile_975(1), 12.706);
        assert_eq!(t_quantile_975(100), 1.960);
        assert_eq!(binomial(10, 4), 210);
        assert_eq!(binomial(20, 10), 184_756);
    }
}
