//! Text ↔ token ids, from a `tokenizer.json` or from a GGUF file's vocabulary and merges.

use std::path::Path;

use candle_core::quantized::gguf_file::Value;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper};

use crate::error::{Error, Result};

/// A tokenizer that never adds special tokens on its own: what you pass is what the model sees
/// (Hugging Face adds no BOS for SmolLM2 either; prepend one yourself where a model needs it).
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

impl Tokenizer {
    pub fn from_file(path: &Path) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| Error::file(path, format!("invalid tokenizer: {e}")))?;
        Ok(Tokenizer { inner })
    }

    pub fn from_inner(inner: tokenizers::Tokenizer) -> Self {
        Tokenizer { inner }
    }

    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Token ids of `text` (no special tokens added; special-token text such as `<|im_start|>` is
    /// recognised).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of a sequence of ids.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// Display text of one token (e.g. `" Paris"`).
    pub fn token_text(&self, id: u32) -> String {
        self.decode(&[id]).unwrap_or_else(|_| format!("<{id}>"))
    }

    /// The id of a text that must be exactly one token, e.g. `" London"`.
    pub fn single_token(&self, text: &str) -> Result<u32> {
        match self.encode(text)?.as_slice() {
            [id] => Ok(*id),
            [] => Err(Error::Tokenizer(format!("{text:?} tokenises to nothing"))),
            ids => Err(Error::Tokenizer(format!(
                "{text:?} is {} tokens ({:?}), not a single token",
                ids.len(),
                ids.iter().map(|&i| self.token_text(i)).collect::<Vec<_>>()
            ))),
        }
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}

/// Builds a byte-level BPE tokenizer from GGUF metadata (`tokenizer.ggml.*`).
///
/// For pre-tokenizer `smollm` (and other gpt2-style BPEs) this is Digits(individual) followed by
/// ByteLevel without a prefix space — what the Hugging Face tokenizer of SmolLM2 does.
pub(crate) fn from_gguf_metadata(meta: &crate::gguf::Metadata) -> Result<Tokenizer> {
    let get = |k: &str| {
        meta.get(k)
            .ok_or_else(|| Error::Tokenizer(format!("GGUF metadata lacks `{k}`")))
    };
    let model = get("tokenizer.ggml.model")?
        .to_string()
        .map_err(|e| Error::Tokenizer(e.to_string()))?
        .clone();
    if model != "gpt2" {
        return Err(Error::Tokenizer(format!(
            "GGUF tokenizer model `{model}` is not supported (only byte-level BPE, `gpt2`)"
        )));
    }
    let strings = |k: &str| -> Result<Vec<String>> {
        match get(k)? {
            Value::Array(items) => items
                .iter()
                .map(|v| {
                    v.to_string()
                        .cloned()
                        .map_err(|e| Error::Tokenizer(e.to_string()))
                })
                .collect(),
            _ => Err(Error::Tokenizer(format!("`{k}` is not an array"))),
        }
    };
    let tokens = strings("tokenizer.ggml.tokens")?;
    let merges: Vec<(String, String)> = strings("tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| Error::Tokenizer(format!("bad merge `{m}`")))
        })
        .collect::<Result<_>>()?;
    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    let mut inner = tokenizers::Tokenizer::new(bpe);
    let pre = Sequence::new(vec![
        PreTokenizerWrapper::Digits(Digits::new(true)),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
    ]);
    inner.with_pre_tokenizer(Some(pre));
    inner.with_decoder(Some(ByteLevel::new(false, true, true)));
    // Control tokens (type 3) such as <|im_start|> are matched whole, as Hugging Face does.
    if let Ok(Value::Array(types)) = get("tokenizer.ggml.token_type") {
        let special: Vec<AddedToken> = types
            .iter()
            .zip(&tokens)
            .filter(|(t, _)| t.to_i32().ok() == Some(3))
            .map(|(_, tok)| AddedToken::from(tok.clone(), true))
            .collect();
        inner.add_special_tokens(&special);
    }
    Ok(Tokenizer { inner })
}
