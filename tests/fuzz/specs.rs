//! Hook names and intervention specs (the `--intervene` text and experiment files), including
//! the steering-vector files `vector=` reads. Specs are generated from the grammar in `spec.rs`
//! with hostile numbers and indices, and an accepted spec is run on the tiny Llama fixture (GQA),
//! so selections that only fail inside the forward pass are exercised too.

use std::sync::OnceLock;

use lantern_engine::hooks::{resolve_list, HookPoint};
use lantern_engine::{Batch, Hooks, LoadedModel};
use lantern_steering::parse_intervention;
use proptest::prelude::*;

use crate::common::load_fixture;
use crate::harness::{check, config, scratch};

fn model() -> &'static LoadedModel {
    static LM: OnceLock<LoadedModel> = OnceLock::new();
    LM.get_or_init(|| load_fixture("llama"))
}

const SUFFIXES: [&str; 12] = [
    "hook_resid_pre",
    "hook_resid_post",
    "attn.hook_v",
    "attn.hook_z",
    "attn.hook_k",
    "attn.hook_pattern",
    "attn.hook_rot_q",
    "mlp.hook_post",
    "hook_pos_embed",
    "ln1.hook_scale",
    "hook_resid_",
    "*",
];

/// Hook names and glob patterns: real suffixes, hostile layers, stray characters.
fn hook_name() -> impl Strategy<Value = String> {
    let layer = prop_oneof![
        3 => (0usize..4).prop_map(|l| l.to_string()),
        1 => Just("18446744073709551616".to_string()),
        1 => Just("-1".to_string()),
        1 => Just("*".to_string()),
        1 => Just(String::new()),
        1 => "[0-9a-z*.]{0,6}",
    ];
    prop_oneof![
        6 => (layer, prop::sample::select(&SUFFIXES[..])).prop_map(|(l, s)| format!("blocks.{l}.{s}")),
        1 => Just("hook_embed".to_string()),
        1 => Just("logits".to_string()),
        1 => "[a-z_.*0-9]{0,24}",
        1 => Just("**.*.*..**".to_string()),
    ]
}

const NUMBERS: [&str; 16] = [
    "0",
    "1",
    "-1",
    "6",
    "0.5",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "1e309",
    "1e39",
    "-1e39",
    "18446744073709551616",
    "4294967296",
    "",
    "1,2",
];

const INDICES: [&str; 12] = [
    "0",
    "1",
    "3",
    "4",
    "0,1",
    "1,1",
    "99",
    "18446744073709551615",
    "-1",
    "",
    ",",
    "0,,1",
];

/// `key=value` words of a spec. Vector files are written by the harness (see `VECTORS`).
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (prop::sample::select(&["alpha", "value"][..]), prop::sample::select(&NUMBERS[..]))
            .prop_map(|(k, v)| format!("{k}={v}")),
        3 => (prop::sample::select(&["head", "heads", "pos", "row", "rows"][..]), prop::sample::select(&INDICES[..]))
            .prop_map(|(k, v)| format!("{k}={v}")),
        2 => (0..VECTORS.len()).prop_map(|i| format!("vector=@{i}")),
        1 => prop::sample::select(&["bias=scale", "bias=keep", "bias=", "junk", "=", "k=v"][..]).prop_map(String::from),
    ]
}

/// Steering-vector files: (name, contents). `@i` in a spec becomes the path of file i.
const VECTORS: [(&str, &str); 8] = [
    ("ok.json", ""), // filled with d_model numbers
    ("short.json", "[1.0, 2.0]"),
    ("empty.json", "[]"),
    ("huge.json", ""), // d_model numbers of which one is 1e39 (inf as f32)
    ("text.json", "not json"),
    ("object.json", "{\"a\": 1}"),
    ("nested.json", "[[1.0]]"),
    ("missing.json", "-"), // not written
];

fn vector_dir() -> &'static std::path::Path {
    static DIR: OnceLock<crate::common::ScratchDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = scratch("vectors");
        let n = model().model.config().d_model;
        for (name, text) in VECTORS {
            let text = match name {
                "ok.json" => serde_json::to_string(&vec![0.25f32; n]).unwrap(),
                "huge.json" => {
                    let mut v = vec!["0.5".to_string(); n];
                    v[n / 2] = "1e39".into();
                    format!("[{}]", v.join(","))
                }
                "missing.json" => continue,
                _ => text.to_string(),
            };
            std::fs::write(d.join(name), text).unwrap();
        }
        d
    })
}

proptest! {
    #![proptest_config(config())]

    /// Hook names and comma-separated pattern lists.
    #[test]
    fn hook_names(names in prop::collection::vec(hook_name(), 1..4)) {
        let list = names.join(",");
        let cfg = model().model.config();
        check("hook_names", list.as_bytes(), || resolve_list(&list, cfg))?;
        check("hook_names", names[0].as_bytes(), || HookPoint::parse_for(&names[0], cfg))?;
    }

    /// Intervention specs, parsed and (when accepted) applied in a forward pass.
    #[test]
    fn intervention_spec(
        op in prop::sample::select(&["scale", "zero", "ablate", "add", "replace", "set", "steer", ""][..]),
        hook in hook_name(),
        words in prop::collection::vec(word(), 0..4),
    ) {
        let dir = vector_dir();
        let words: Vec<String> = words
            .into_iter()
            .map(|w| match w.strip_prefix("vector=@") {
                Some(i) => format!("vector={}", dir.join(VECTORS[i.parse::<usize>().unwrap()].0).display()),
                None => w,
            })
            .collect();
        let spec = format!("{op} {hook} {}", words.join(" "));
        let lm = model();
        check("intervention_spec", spec.as_bytes(), || -> lantern_engine::Result<()> {
            let (point, iv) = parse_intervention(&spec, &lm.model)?;
            let batch = Batch::from_prompts(&lm.tokenizer, &["The capital of France", "is"])?;
            let mut hooks = Hooks::new().intervene(point, iv);
            lm.model.run(&batch, &mut hooks, lantern_engine::RunOptions::default())?;
            Ok(())
        })?;
    }
}
