//! # lantern-attribution
//!
//! The measurements of paper P1 (Yu, Merullo & Pavlick 2023, "Characterizing Mechanisms for
//! Factual Recall in Language Models", arXiv 2310.15910), usable on any lantern-engine model:
//!
//! - [`dla`]: direct logit attribution of every head, MLP and bias to a logit direction;
//! - [`lens`]: logit lens and accumulated residual stream;
//! - [`patching`]: activation patching sweeps, batched and resumed from the patched layer;
//! - [`atp`]: attribution patching (AtP, AtP*): every patching cell from one backward pass;
//! - [`scaling`]: scaling one head's value vectors over a grid of alphas, with generation.
//!
//! No CLI code lives here; results are plain serialisable structs.

pub mod atp;
pub mod dla;
pub mod lens;
pub mod patching;
pub mod scaling;

pub use atp::{
    atp_sweep, has_gradient, hook_gradients, rank_cells, AtpOptions, AtpResult, HookGradients,
};
pub use dla::{direct_logit_attribution, logit_direction, rank_heads, Dla, LogitDirection};
pub use lens::{logit_lens, token_stats, LensLayer, TokenStat};
pub use patching::{
    patch_blocks, patch_cells, patch_sweep, patch_sweep_blocks, patch_sweep_naive, BlockOptions,
    CellValue, Metric, MetricKind, PatchBlocks, PatchGrid, PatchResult, PatchTarget, SweepOptions,
};
pub use scaling::{
    alpha_sweep, classify, other_kind, wilson_interval, AlphaPoint, Answer, OtherBreakdown,
    OtherKind, RecallPrompt,
};
