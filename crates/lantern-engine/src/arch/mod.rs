//! One place per architecture family. Each file in this folder owns everything Lantern knows about
//! its family: parsing the Hugging Face `config.json` and the GGUF metadata into a [`ModelConfig`],
//! the names of its tensors in both formats, and loading them into the canonical weight layout
//! (`weights.rs`). Everything outside `arch/` reads capabilities of the config (`post_norms`,
//! `norm_weight_offset`, `parallel_residual`, ...) and never an architecture's name.
//!
//! Adding an architecture = one new file here with a [`Family`], one line in [`FAMILIES`], one
//! [`Architecture`] variant, plus parity fixtures (see CONTRIBUTING.md).

mod gemma3;
mod gpt2;
mod gpt_neox;
mod llama;
mod parse;
mod phi3;

pub(crate) use parse::Json;

use crate::config::{Architecture, ModelConfig};
use crate::error::{Error, Result};
use crate::gguf::GgufMeta;
use crate::weights::{Loader, Weights};

/// An architecture family: how to read its configs and weights.
pub(crate) struct Family {
    /// The architectures this file handles, with their names in both formats.
    pub variants: &'static [Variant],
    /// Builds the config from a Hugging Face `config.json` of one of the variants.
    pub config_from_hf: fn(&Json, Architecture) -> Result<ModelConfig>,
    /// Builds the config from GGUF metadata (`None`: Lantern reads no GGUF of this family).
    pub config_from_gguf: Option<fn(&GgufMeta, Architecture) -> Result<ModelConfig>>,
    /// Every tensor the loader may read, under its Hugging Face and GGUF names.
    pub tensor_names: fn(&ModelConfig) -> Vec<TensorName>,
    /// Reads the checkpoint (Hugging Face names) into the canonical layout.
    pub load: fn(&ModelConfig, &mut Loader) -> Result<Weights>,
}

/// One architecture of a family.
pub(crate) struct Variant {
    pub architecture: Architecture,
    /// `model_type` values of its Hugging Face `config.json` (the first is the canonical one).
    pub model_types: &'static [&'static str],
    /// llama.cpp's `general.architecture`, when Lantern reads its GGUF files.
    pub gguf: Option<&'static str>,
}

/// The registry: every family Lantern can load.
static FAMILIES: &[&Family] = &[
    &gpt2::FAMILY,
    &gpt_neox::FAMILY,
    &llama::FAMILY,
    &gemma3::FAMILY,
    &phi3::FAMILY,
];

fn variants() -> impl Iterator<Item = (&'static Family, &'static Variant)> {
    FAMILIES
        .iter()
        .flat_map(|f| f.variants.iter().map(move |v| (*f, v)))
}

/// The family that handles `arch`.
pub(crate) fn family(arch: Architecture) -> &'static Family {
    variants()
        .find(|(_, v)| v.architecture == arch)
        .map(|(f, _)| f)
        .expect("every Architecture has a family in arch::FAMILIES")
}

/// The architecture of a Hugging Face `model_type`.
pub(crate) fn from_model_type(model_type: &str) -> Result<Architecture> {
    variants()
        .find(|(_, v)| v.model_types.contains(&model_type))
        .map(|(_, v)| v.architecture)
        .ok_or_else(|| Error::UnknownArchitecture(model_type.to_string()))
}

/// The supported Hugging Face `model_type` names, for error messages.
pub fn supported_model_types() -> String {
    variants()
        .map(|(_, v)| v.model_types[0])
        .collect::<Vec<_>>()
        .join(", ")
}

/// The supported GGUF `general.architecture` names, for error messages.
pub fn supported_gguf_architectures() -> String {
    variants()
        .filter_map(|(_, v)| v.gguf)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a Hugging Face `config.json` (already checked to be JSON).
pub(crate) fn config_from_hf(j: &Json) -> Result<ModelConfig> {
    let arch = from_model_type(&j.str("model_type")?)?;
    let cfg = (family(arch).config_from_hf)(j, arch)?;
    cfg.validate()?;
    Ok(cfg)
}

/// Parses GGUF metadata, dispatching on `general.architecture`.
pub(crate) fn config_from_gguf(meta: &GgufMeta) -> Result<ModelConfig> {
    let found = variants().find_map(|(f, v)| match (v.gguf, f.config_from_gguf) {
        (Some(name), Some(parse)) if name == meta.arch() => Some((v.architecture, parse)),
        _ => None,
    });
    let Some((arch, parse)) = found else {
        return Err(Error::invalid(format!(
            "GGUF architecture `{}` is not supported (supported: {})",
            meta.arch(),
            supported_gguf_architectures()
        )));
    };
    let cfg = parse(meta, arch)?;
    cfg.validate()?;
    Ok(cfg)
}

/// How a tensor stored in a GGUF file becomes the Hugging Face tensor of the same role.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FromGguf {
    AsStored,
    /// llama.cpp's converter permutes the q/k rows of Llama models for its interleaved rotary;
    /// undo it (`heads` query or KV heads) so the HF rotate-half convention holds throughout.
    UnpermuteRows {
        heads: usize,
    },
    /// llama.cpp stores Gemma's norm weights as `1 + w`; HF stores `w`.
    MinusOne,
}

/// One tensor of a family, under both names.
#[derive(Debug, Clone)]
pub(crate) struct TensorName {
    /// Hugging Face name relative to the model body (`layers.3.self_attn.q_proj.weight`), or to
    /// the checkpoint root when `root` (`lm_head.weight`).
    pub hf: String,
    pub root: bool,
    /// llama.cpp's GGUF name (`blk.3.attn_q.weight`), when GGUF files hold this tensor as is.
    pub gguf: Option<String>,
    pub from_gguf: FromGguf,
}

impl TensorName {
    /// A tensor in the model body.
    pub fn body(hf: impl Into<String>) -> Self {
        TensorName {
            hf: hf.into(),
            root: false,
            gguf: None,
            from_gguf: FromGguf::AsStored,
        }
    }
    /// A tensor outside the model body (the untied unembedding).
    pub fn root(hf: impl Into<String>) -> Self {
        TensorName {
            root: true,
            ..Self::body(hf)
        }
    }
    pub fn gguf(mut self, name: impl Into<String>) -> Self {
        self.gguf = Some(name.into());
        self
    }
    /// How the stored GGUF tensor is converted to the Hugging Face one.
    pub fn converted(mut self, how: FromGguf) -> Self {
        self.from_gguf = how;
        self
    }
    /// The name under the given body prefix (`model.` etc.), as the loader asks for it.
    pub fn full(&self, body_prefix: &str, root_prefix: &str) -> String {
        let prefix = if self.root { root_prefix } else { body_prefix };
        format!("{prefix}{}", self.hf)
    }
}

/// `.weight` and `.bias` of a module, both mapped to GGUF.
pub(crate) fn weight_and_bias(hf: &str, gguf: &str) -> [TensorName; 2] {
    ["weight", "bias"].map(|k| TensorName::body(format!("{hf}.{k}")).gguf(format!("{gguf}.{k}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::SafetensorsSource;
    use candle_core::{DType, Device};
    use std::path::Path;

    /// Every family's name list is exactly what its loader reads, so the tensor count shown while
    /// loading (and the GGUF name map) comes from the list, not from a hand count.
    #[test]
    fn tensor_lists_match_what_the_loaders_read() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        for name in [
            "gpt2",
            "gpt_neox",
            "llama",
            "llama3_rope",
            "qwen2",
            "gemma3",
            "phi3",
        ] {
            let dir = fixtures.join(name);
            let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
            let cfg = ModelConfig::from_hf_json(&text).unwrap();
            let mut source = SafetensorsSource::open_dir(&dir).unwrap();
            let all: Vec<String> = source.names().cloned().collect();
            let mut loader = Loader::new(&mut source, DType::F32, Device::Cpu, None);
            (family(cfg.architecture).load)(&cfg, &mut loader).unwrap();
            let expected = loader.expected();
            let mut read = loader.read_names().to_vec();
            read.sort();
            let mut listed: Vec<String> = all
                .into_iter()
                .filter(|n| expected.contains(n))
                .collect::<Vec<_>>();
            listed.sort();
            assert_eq!(read, listed, "{name}: tensors read vs listed and present");
            assert!(!read.is_empty());
        }
    }

    #[test]
    fn supported_names_come_from_the_registry() {
        let names = supported_model_types();
        for n in [
            "gpt2", "gpt_neox", "llama", "mistral", "qwen2", "gemma3", "phi3",
        ] {
            assert!(
                names.split(", ").any(|x| x == n),
                "{n} missing from {names}"
            );
        }
        assert_eq!(from_model_type("phi3").unwrap(), Architecture::Phi3);
        assert!(from_model_type("mamba").is_err());
    }
}
