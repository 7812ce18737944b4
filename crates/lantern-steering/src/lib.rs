//! # lantern-steering
//!
//! Every way Lantern steers a model, in one place, built only from the engine's general
//! interventions ([`Intervention`](lantern_engine::Intervention) at named hook points), so the
//! engine core knows nothing about steering:
//!
//! - [`values`]: scale the value vectors of one head (paper P1's intervention), with either
//!   convention for the value bias `b_V`, at `attn.hook_v` or, under grouped-query attention, at
//!   `attn.hook_z`;
//! - [`residual`]: add a direction to the residual stream scaled to the hidden state's norm,
//!   optionally renormalised (paper P3's steering);
//! - [`random`]: seeded random unit directions, the control for a steering direction;
//! - [`spec`]: the text form of an intervention (`scale blocks.11.attn.hook_v head=11 alpha=6`),
//!   as the CLI's `--intervene` and experiment files write it.
//!
//! ```no_run
//! # use lantern_engine::*;
//! # fn demo(model: &Model, batch: &Batch) -> Result<()> {
//! let (point, iv) = lantern_steering::scale_head_values(model, 23, 0, 6.0, false)?;
//! let out = model.run(batch, &mut Hooks::new().intervene(point, iv), RunOptions::default())?;
//! # Ok(()) }
//! ```
//!
//! The answer-rate sweep over alphas (P1's measurement protocol: generate, classify the answer as
//! in-context or memorised) stays in `lantern-attribution::scaling`, which calls
//! [`scale_head_values`].

pub mod random;
pub mod residual;
pub mod spec;
pub mod values;

pub use random::random_direction;
pub use residual::{residual_steering, residual_steering_at, SteerScope};
pub use spec::parse_intervention;
pub use values::{scale_head_values, scale_values};
