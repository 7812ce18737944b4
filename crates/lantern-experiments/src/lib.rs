//! # lantern-experiments
//!
//! The three paper reproductions as pipelines: each reads an experiment file (TOML), runs its
//! steps on a model, and writes a results folder with JSON/CSV per step and figures (SVG + PNG).
//!
//! - [`p1`]: factual recall (Yu, Merullo & Pavlick 2023): baseline answer rates, head
//!   attribution, activation patching, value-vector scaling.
//! - [`p2`]: Shapley prompt attribution (Mohammadi 2024).
//! - [`p3`]: time-lagged causal graphs of representational states (Lee et al. 2025).

pub mod experiment;
pub mod output;
pub mod p1;
mod p1_figures;
pub mod p2;
mod p2_figures;
pub mod p3;
mod p3_figures;
pub mod scorer;

pub use experiment::{run_experiment_file, ExperimentFile};
