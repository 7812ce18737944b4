//! Text formats of the analysis crates: experiment TOML files, Shapley templates, causal CSV
//! series, and learned state sets (the steering-direction files P3 and the CLI read).

use std::sync::OnceLock;

use lantern_causal::{CsvOptions, TimeSeries};
use lantern_experiments::experiment::ExperimentFile;
use lantern_shapley::{Absent, Coalition, Template};
use lantern_states::{learn_states, Dataset, StateSet, StatesConfig};
use proptest::prelude::*;

use crate::common::repo_root;
use crate::harness::{check, config, scratch};
use crate::mutate::{apply_all, json_mutations, mutate_json_text, mutations};

fn read_dir_files(dir: &str, ext: &str) -> Vec<Vec<u8>> {
    let mut paths: Vec<_> = std::fs::read_dir(repo_root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// A recorded series as `lantern sessions` writes it: session, step, one column per state.
fn series_seed(with_crlf: bool) -> Vec<u8> {
    let mut s = String::from("session,step,low_mood,anxious,\"calm, rested\"\n");
    for session in 0..2 {
        for step in 0..12 {
            let x = |k: usize| ((session * 31 + step * 7 + k * 13) % 17) as f64 / 8.0 - 1.0;
            s.push_str(&format!("{session},{step},{},{},{}\n", x(0), x(1), x(2)));
        }
    }
    if with_crlf {
        s = s.replace('\n', "\r\n");
    }
    s.into_bytes()
}

fn states_seed() -> serde_json::Value {
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for i in 0..24 {
        let label = i % 3;
        features.push(
            (0..6)
                .map(|k| ((i * 7 + k * 5) % 11) as f32 / 5.0 + if k == label { 2.0 } else { 0.0 })
                .collect(),
        );
        labels.push(label);
    }
    let data = Dataset {
        features,
        labels,
        label_names: vec!["neutral".into(), "happy".into(), "sad".into()],
    };
    let set = learn_states(
        &data,
        &StatesConfig {
            baseline: Some("neutral".into()),
            ..StatesConfig::default()
        },
    )
    .unwrap();
    serde_json::to_value(&set).unwrap()
}

proptest! {
    #![proptest_config(config())]

    /// Experiment files: NaN/Inf/huge/negative numbers, duplicated and deleted lines (keys).
    #[test]
    fn experiment_toml(seed in 0usize..6, ms in mutations(4)) {
        thread_local!(static DIR: crate::common::ScratchDir = scratch("experiment"));
        static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        let seeds = SEEDS.get_or_init(|| read_dir_files("experiments", "toml"));
        let bytes = apply_all(&seeds[seed % seeds.len()], &ms);
        let path = DIR.with(|d| d.join("exp.toml"));
        std::fs::write(&path, &bytes).unwrap();
        check("experiment_toml", &bytes, || ExperimentFile::read(&path))?;
    }

    /// Shapley templates; an accepted one renders its empty, full and a mixed coalition.
    #[test]
    fn shapley_template(seed in 0usize..5, ms in mutations(4), bits in any::<u64>()) {
        static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        let seeds = SEEDS.get_or_init(|| read_dir_files("experiments/data", "txt")
            .into_iter()
            .filter(|t| t.windows(2).any(|w| w == b"{{"))
            .collect());
        let bytes = apply_all(&seeds[seed % seeds.len()], &ms);
        let text = String::from_utf8_lossy(&bytes);
        check("shapley_template", &bytes, || -> lantern_shapley::Result<()> {
            let t = Template::parse(&text)?;
            let n = t.n_players();
            for c in [Coalition::empty(), Coalition::full(n), Coalition::from_bits(bits)] {
                t.render(c, Absent::Remove)?;
                if t.check_absent_mode(Absent::Filler).is_ok() {
                    t.render(c, Absent::Filler)?;
                }
            }
            Ok(())
        })?;
    }

    /// Causal CSV series (quotes, CRLF, sessions); an accepted series is validated and its
    /// moments computed, as `lantern graph` does before discovery.
    #[test]
    fn causal_csv(crlf in any::<bool>(), ignore_step in any::<bool>(), ms in mutations(4)) {
        let bytes = apply_all(&series_seed(crlf), &ms);
        let text = String::from_utf8_lossy(&bytes);
        let opts = CsvOptions {
            ignore_columns: if ignore_step { vec!["step".into()] } else { vec![] },
            ..CsvOptions::default()
        };
        check("causal_csv", &bytes, || -> lantern_causal::Result<()> {
            let ts = TimeSeries::from_csv_str_with(&text, &opts)?;
            ts.validate()?;
            ts.check_finite()?;
            ts.moments();
            ts.usable_samples(2);
            Ok(())
        })?;
    }

    /// State sets (steering directions): an accepted set answers every query the CLI makes.
    #[test]
    fn states_json(js in json_mutations(4), ms in prop::collection::vec(crate::mutate::mutation(), 0..3)) {
        thread_local!(static DIR: crate::common::ScratchDir = scratch("states"));
        static SEED: OnceLock<serde_json::Value> = OnceLock::new();
        let seed = SEED.get_or_init(states_seed);
        let bytes = mutate_json_text(seed, &js, &ms);
        let path = DIR.with(|d| d.join("states.json"));
        std::fs::write(&path, &bytes).unwrap();
        check("states_json", &bytes, || -> lantern_states::Result<()> {
            let set = StateSet::load(&path)?;
            let acts = set.try_activations(&vec![0.5; set.dim()])?;
            assert_eq!(acts.len(), set.label_names.len());
            for s in set.usable_states() {
                set.direction(s);
            }
            Ok(())
        })?;
    }
}
