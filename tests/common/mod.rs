//! Shared helpers of the workspace's integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lantern_engine::{load_path, DType, Device, LoadOptions, LoadedModel, Tensor};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A fresh, empty folder under the system temp dir, removed when dropped. A failing (panicking)
/// test keeps it and prints its path, so its files can be inspected.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// `<temp>/lantern-<pid>-<name>`; `name` must be unique within the test binary.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("lantern-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        Self(dir)
    }
}

impl std::ops::Deref for ScratchDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for ScratchDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept the failed test's files in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn fixture_dir(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(name)
}

pub fn quiet() -> LoadOptions {
    LoadOptions {
        progress: false,
        ..LoadOptions::default()
    }
}

pub fn load_fixture(name: &str) -> LoadedModel {
    load_path(&fixture_dir(name), &quiet())
        .unwrap_or_else(|e| panic!("loading fixture {name}: {e}"))
}

pub fn load_reference(name: &str, file: &str) -> HashMap<String, Tensor> {
    let path = fixture_dir(name).join(file);
    candle_core::safetensors::load(&path, &Device::Cpu)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Where the tests keep the real models: `$LANTERN_MODEL_DIR` (scripts/test.sh sets it), else the
/// repository's `models/` — the folder scripts/fetch-model.sh fills by default — rather than the
/// library's default, the user's cache folder.
pub fn model_dir() -> PathBuf {
    match std::env::var_os("LANTERN_MODEL_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("models"),
    }
}

/// A model file in [`model_dir`], fetched (cached, idempotent, sha256-checked) by `script` when
/// missing.
pub fn fetched_model(file: &str, script: &str) -> PathBuf {
    let path = model_dir().join(file);
    if path.exists() {
        return path;
    }
    let out = std::process::Command::new("bash")
        .arg(repo_root().join("scripts").join(script))
        .env("LANTERN_MODEL_DIR", model_dir())
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("running scripts/{script}: {e}"));
    assert!(out.status.success(), "scripts/{script} failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The real model, fetched (cached, idempotent) by scripts/fetch-model.sh when missing.
pub fn smollm2_path() -> PathBuf {
    fetched_model(lantern_engine::load::DEFAULT_MODEL_FILE, "fetch-model.sh")
}

pub fn load_smollm2() -> LoadedModel {
    load_path(&smollm2_path(), &quiet()).expect("loading SmolLM2")
}

/// Largest absolute value of a tensor.
pub fn max_abs(t: &Tensor) -> f32 {
    t.to_dtype(DType::F32)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Largest absolute difference between two tensors of the same shape.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let a = a.to_dtype(DType::F32).unwrap();
    let b = b.to_dtype(DType::F32).unwrap();
    max_abs(&(a - b).unwrap())
}

/// The committed tokenizer cases of a fixture: `(text, reference ids, the whole case)`.
pub fn tokenizer_cases(fixture: &str) -> Vec<(String, Vec<u32>, serde_json::Value)> {
    let path = fixture_dir(fixture).join("tokenizer_cases.json");
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    cases
        .into_iter()
        .map(|case| {
            let text = case["text"].as_str().unwrap().to_string();
            let ids = case["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            (text, ids, case)
        })
        .collect()
}

pub fn ids_of(t: &Tensor) -> Vec<Vec<u32>> {
    t.to_dtype(DType::I64)
        .unwrap()
        .to_vec2::<i64>()
        .unwrap()
        .into_iter()
        .map(|r| r.into_iter().map(|v| v as u32).collect())
        .collect()
}

/// A copy of fixture `name` in `dir` whose weight `tensor` has its first element set to `value`
/// (e.g. NaN or Inf: a corrupt weight). Returns `dir`.
pub fn fixture_with_weight(name: &str, tensor: &str, value: f32, dir: &Path) -> PathBuf {
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(fixture_dir(name).join(f), dir.join(f)).unwrap();
    }
    let mut weights =
        candle_core::safetensors::load(fixture_dir(name).join("model.safetensors"), &Device::Cpu)
            .unwrap();
    let w = weights
        .get(tensor)
        .unwrap_or_else(|| panic!("fixture {name} has no tensor {tensor}"));
    let mut values = w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    values[0] = value;
    let damaged = Tensor::from_vec(values, w.dims(), &Device::Cpu).unwrap();
    weights.insert(tensor.to_string(), damaged);
    candle_core::safetensors::save(&weights, dir.join("model.safetensors")).unwrap();
    dir.to_path_buf()
}
