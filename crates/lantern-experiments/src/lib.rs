//! # lantern-experiments
//!
//! The three paper reproductions as pipelines: each reads an experiment file (TOML), runs its
//! steps on a model, and writes a results folder with JSON/CSV per step and figures (SVG + PNG).
//!
//! - [`p1`]: factual recall (Yu, Merullo & Pavlick 2023): baseline answer rates, head
//!   attribution, activation patching, value-vector scaling.
//! - [`p2`]: Shapley prompt attribution (Mohammadi 2024).
//! - [`p3`]: time-lagged causal graphs of representational states (Lee et al. 2025).
//!
//! Each paper is a folder: `steps` computes (configs, step functions, result types),
//! `artefacts` writes (one function per JSON/CSV file or figure, shared with the CLI), and the
//! folder's `mod.rs` holds the pipeline (`run_all`) that runs the steps and writes the
//! artefacts in order. Modules only import downwards:
//! `experiment → pN → pN::artefacts → pN::steps → output, progress, scorer`.

pub mod experiment;
pub mod output;
pub mod p1;
pub mod p2;
pub mod p3;
pub mod progress;
pub mod scorer;
pub mod shard;

pub use experiment::{run_experiment_file, ExperimentFile};
pub use progress::BarFactory;
