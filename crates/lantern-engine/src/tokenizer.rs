//! Text ↔ token ids, from a `tokenizer.json` or from a GGUF file's vocabulary and merges.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::Value;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::replace::Replace;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::Split;
use tokenizers::{AddedToken, DecoderWrapper, PreTokenizerWrapper, SplitDelimiterBehavior};

use crate::error::{Error, Result};

/// Text ↔ token ids.
///
/// The only special token it ever adds is a beginning-of-sequence token, and only for models
/// whose GGUF asks for one (`tokenizer.ggml.add_bos_token`, e.g. Gemma 3, which needs `<bos>`):
/// then [`Tokenizer::encode`] (and so `Batch::from_prompts`) prepends it, as Hugging Face's
/// `tokenizer(text)` does. [`Tokenizer::encode_raw`] never adds anything: use it for fragments
/// appended to a prompt (continuations, `" Paris"`). SmolLM2 wants no BOS (Hugging Face adds none
/// either), so for it the two are the same.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos: Option<u32>,
}

impl Tokenizer {
    /// From a `tokenizer.json` ([`Tokenizer::encode`] adds no BOS; see [`Tokenizer::with_bos`]).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
        // tokenizers 0.23 panics (`expect("Helper")`) on a JSON syntax error inside the
        // `decoder` section: the text is checked to be JSON first.
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::file(path, format!("invalid tokenizer: not valid JSON: {e}")))?;
        check_bpe_merges(&json)
            .map_err(|e| Error::file(path, format!("invalid tokenizer: {e}")))?;
        let inner: tokenizers::Tokenizer = text
            .parse()
            .map_err(|e| Error::file(path, format!("invalid tokenizer: {e}")))?;
        Ok(Tokenizer { inner, bos: None })
    }

    pub fn from_inner(inner: tokenizers::Tokenizer) -> Self {
        Tokenizer { inner, bos: None }
    }

    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// The BOS id [`Tokenizer::encode`] prepends, if this model wants one.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// Makes [`Tokenizer::encode`] prepend `bos` (or nothing, with `None`).
    pub fn with_bos(mut self, bos: Option<u32>) -> Self {
        self.bos = bos;
        self
    }

    /// Token ids of a prompt: the BOS first when the model wants one (see [`Tokenizer::bos`]),
    /// then [`Tokenizer::encode_raw`] of `text`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let raw = self.encode_raw(text)?;
        Ok(match self.bos {
            Some(bos) => std::iter::once(bos).chain(raw).collect(),
            None => raw,
        })
    }

    /// Token ids of `text` with no special tokens added (special-token text such as
    /// `<|im_start|>` or `<bos>` is still recognised).
    pub fn encode_raw(&self, text: &str) -> Result<Vec<u32>> {
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

    /// The id of a text that must be exactly one token, e.g. `" London"` (never the BOS).
    pub fn single_token(&self, text: &str) -> Result<u32> {
        match self.encode_raw(text)?.as_slice() {
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

/// tokenizers 0.23 slices `b[prefix_len..]` of every merge `a b` of a BPE model with a
/// `continuing_subword_prefix`, and panics when `b` is shorter than the prefix.
fn check_bpe_merges(json: &serde_json::Value) -> std::result::Result<(), String> {
    let model = &json["model"];
    let Some(prefix) = model["continuing_subword_prefix"].as_str() else {
        return Ok(());
    };
    for m in model["merges"].as_array().into_iter().flatten() {
        let second = match m {
            serde_json::Value::String(s) => s.split_once(' ').map(|(_, b)| b),
            serde_json::Value::Array(p) => p.get(1).and_then(|b| b.as_str()),
            _ => None,
        };
        if let Some(b) = second {
            if b.len() < prefix.len() {
                return Err(format!(
                    "merge {m}: its second token is shorter than the continuing_subword_prefix {prefix:?}"
                ));
            }
        }
    }
    Ok(())
}

/// Builds the tokenizer a GGUF file describes (`tokenizer.ggml.*`), the same one transformers
/// builds when it loads the GGUF:
///
/// * `gpt2` (byte-level BPE: SmolLM2, Qwen2, ...): the vocabulary and merges of the file, split
///   before BPE by the rules of the file's pre-tokenizer type `tokenizer.ggml.pre` (see
///   [`PreTokenizerType`]; an unknown type is an error).
/// * `llama` (SentencePiece) for Gemma (`gemma`, `gemma2`, `gemma3`): see [`gemma_tokenizer`]
///   (pre-tokenizer type `default` or none: SentencePiece does not split by a regex).
///
/// Control tokens (type 3, e.g. `<|im_start|>`, `<bos>`) are matched whole as special tokens;
/// user-defined ones (type 4: Gemma's `\n\n`, `<h1>`; Qwen2's `<tool_call>`) are matched whole
/// as plain tokens.
/// [`Tokenizer::encode`] prepends `tokenizer.ggml.bos_token_id` when
/// `tokenizer.ggml.add_bos_token` is true (default: true for `llama` vocabularies, as in
/// llama.cpp and transformers; false otherwise).
pub(crate) fn from_gguf_metadata(meta: &crate::gguf::Metadata) -> Result<Tokenizer> {
    let get = |k: &str| {
        meta.get(k)
            .ok_or_else(|| Error::Tokenizer(format!("GGUF metadata lacks `{k}`")))
    };
    let string = |k: &str| -> Result<String> {
        get(k)?
            .to_string()
            .cloned()
            .map_err(|e| Error::Tokenizer(format!("`{k}`: {e}")))
    };
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
    let id = |k: &str| -> Option<u32> {
        let v = meta.get(k)?;
        v.to_u32()
            .ok()
            .or_else(|| v.to_i32().ok().map(|x| x as u32))
            .or_else(|| v.to_u64().ok().map(|x| x as u32))
    };
    let model = string("tokenizer.ggml.model")?;
    let arch = string("general.architecture").unwrap_or_default();
    let tokens = strings("tokenizer.ggml.tokens")?;
    // Token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    let types: Vec<i32> = match meta.get("tokenizer.ggml.token_type") {
        Some(Value::Array(items)) => items.iter().map(|v| v.to_i32().unwrap_or(1)).collect(),
        _ => Vec::new(),
    };
    // llama.cpp and gguf-py write no `tokenizer.ggml.pre` for some files (older converters, our
    // own fixtures): both llama.cpp and transformers then use the default rules.
    let pre = match meta.get("tokenizer.ggml.pre") {
        Some(_) => string("tokenizer.ggml.pre")?,
        None => "default".to_string(),
    };
    let inner = match model.as_str() {
        "gpt2" => {
            let pre = PreTokenizerType::parse(&pre)?;
            let merges: Vec<(String, String)> = strings("tokenizer.ggml.merges")?
                .into_iter()
                .map(|m| {
                    m.split_once(' ')
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .ok_or_else(|| Error::Tokenizer(format!("bad merge `{m}`")))
                })
                .collect::<Result<_>>()?;
            byte_level_tokenizer(&tokens, &types, merges, pre)?
        }
        "llama" if matches!(arch.as_str(), "gemma" | "gemma2" | "gemma3") => {
            if pre != "default" {
                return Err(Error::Tokenizer(format!(
                    "GGUF pre-tokenizer type `{pre}` is not supported for the SentencePiece vocabulary of `{arch}` (supported: `default`)"
                )));
            }
            let unk = id("tokenizer.ggml.unknown_token_id")
                .and_then(|i| tokens.get(i as usize))
                .cloned()
                .unwrap_or_else(|| "<unk>".to_string());
            gemma_tokenizer(&tokens, &types, &unk)?
        }
        other => {
            return Err(Error::Tokenizer(format!(
                "GGUF tokenizer model `{other}` (architecture `{arch}`) is not supported (supported: byte-level BPE `gpt2`; SentencePiece `llama` of Gemma)"
            )))
        }
    };
    let add_bos = match meta.get("tokenizer.ggml.add_bos_token") {
        Some(v) => v
            .to_bool()
            .map_err(|e| Error::Tokenizer(format!("`tokenizer.ggml.add_bos_token`: {e}")))?,
        None => model == "llama",
    };
    let bos = if add_bos {
        Some(id("tokenizer.ggml.bos_token_id").ok_or_else(|| {
            Error::Tokenizer("`tokenizer.ggml.add_bos_token` is set but there is no `tokenizer.ggml.bos_token_id`".into())
        })?)
    } else {
        None
    };
    Ok(Tokenizer { inner, bos })
}

/// How a byte-level BPE vocabulary splits text into words before BPE (`tokenizer.ggml.pre`).
/// Each type has its own rules, taken from the model's Hugging Face `tokenizer.json` (llama.cpp's
/// `llama-vocab.cpp` lists the same regexes per type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTokenizerType {
    /// `default` / `gpt2` (and files without the key): GPT-2's regex
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    Gpt2,
    /// `smollm` (SmolLM, SmolLM2): every digit alone, then GPT-2's regex.
    SmolLm,
    /// `qwen2` (Qwen2, Qwen2.5): [`QWEN2_SPLIT`]: letters take one leading non-letter (`(n`),
    /// punctuation runs take the newlines after them (`):\n`), digits one at a time.
    Qwen2,
}

/// The pre-tokenizer regex of Qwen2's `tokenizer.json` (isolated matches, then byte-level
/// mapping without a second regex).
pub const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

impl PreTokenizerType {
    /// The names `tokenizer.ggml.pre` may hold, for messages.
    pub const SUPPORTED: &'static str = "default, gpt2, smollm, qwen2";

    /// The type of a `tokenizer.ggml.pre` value; an unknown one is an error naming it.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "default" | "gpt2" => Ok(Self::Gpt2),
            "smollm" => Ok(Self::SmolLm),
            "qwen2" => Ok(Self::Qwen2),
            other => Err(Error::Tokenizer(format!(
                "GGUF pre-tokenizer type `{other}` (`tokenizer.ggml.pre`) is not supported (supported: {})",
                Self::SUPPORTED
            ))),
        }
    }

    fn pre_tokenizer(self) -> Result<PreTokenizerWrapper> {
        // ByteLevel(add_prefix_space = false, trim_offsets = true, use_regex): with
        // use_regex it splits by GPT-2's regex itself.
        let byte_level =
            |use_regex| PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, use_regex));
        Ok(match self {
            Self::Gpt2 => byte_level(true),
            Self::SmolLm => PreTokenizerWrapper::Sequence(Sequence::new(vec![
                PreTokenizerWrapper::Digits(Digits::new(true)),
                byte_level(true),
            ])),
            Self::Qwen2 => {
                let split = Split::new(
                    tokenizers::pre_tokenizers::split::SplitPattern::Regex(QWEN2_SPLIT.into()),
                    SplitDelimiterBehavior::Isolated,
                    false,
                )
                .map_err(|e| Error::Tokenizer(e.to_string()))?;
                PreTokenizerWrapper::Sequence(Sequence::new(vec![
                    PreTokenizerWrapper::Split(split),
                    byte_level(false),
                ]))
            }
        })
    }
}

fn byte_level_tokenizer(
    tokens: &[String],
    types: &[i32],
    merges: Vec<(String, String)>,
    pre: PreTokenizerType,
) -> Result<tokenizers::Tokenizer> {
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
    inner.with_pre_tokenizer(Some(pre.pre_tokenizer()?));
    inner.with_decoder(Some(ByteLevel::new(false, true, true)));
    inner
        .add_special_tokens(tokens_of_type(tokens, types, 3, true))
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    inner
        .add_tokens(tokens_of_type(tokens, types, 4, false))
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    Ok(inner)
}

/// Gemma's SentencePiece vocabulary as the BPE with byte fallback that transformers builds from a
/// Gemma GGUF (`integrations/gguf`'s `gemma_tokenizer` + `GemmaTokenizer`), reproduced exactly:
///
/// * tokens made only of whitespace including a space (`"  "`, ids 138..167 in Gemma 3) are
///   stored with real spaces but looked up after normalisation, so they are respelled `"▁▁"`;
/// * the file lists no merges: every split of a token into two vocabulary pieces is a merge,
///   ranked by the token's position in the file (Gemma's scores do not follow its merge order),
///   and within a token the longer left piece first;
/// * normalizer: `" "` → `"▁"` (no prefix space); pre-tokenizer: Split on `" "` (a no-op after
///   the normalizer, kept to mirror transformers); decoder: `"▁"` → `" "`, ByteFallback, Fuse;
/// * control tokens (type 3) are special, user-defined ones (type 4, e.g. `"\n\n"`, `"<h1>"`)
///   are matched whole too, both before normalisation.
fn gemma_tokenizer(tokens: &[String], types: &[i32], unk: &str) -> Result<tokenizers::Tokenizer> {
    let spelled: Vec<String> = tokens
        .iter()
        .map(|t| {
            if t.contains(' ') && t.chars().all(char::is_whitespace) {
                "\u{2581}".repeat(t.chars().count())
            } else {
                t.clone()
            }
        })
        .collect();
    let index: HashMap<&str, u32> = spelled
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i as u32))
        .collect();
    let mut merges = Vec::new();
    for t in &spelled {
        let cuts: Vec<usize> = t.char_indices().skip(1).map(|(i, _)| i).collect();
        for &cut in cuts.iter().rev() {
            let (l, r) = t.split_at(cut);
            if index.contains_key(l) && index.contains_key(r) {
                merges.push((l.to_string(), r.to_string()));
            }
        }
    }
    let vocab: tokenizers::models::bpe::Vocab =
        index.iter().map(|(t, &i)| (t.to_string(), i)).collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .unk_token(unk.to_string())
        .fuse_unk(true)
        .byte_fallback(true)
        .build()
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    let tok_err = |e: tokenizers::Error| Error::Tokenizer(e.to_string());
    let mut inner = tokenizers::Tokenizer::new(bpe);
    inner
        .with_normalizer(Some(Replace::new(" ", "\u{2581}").map_err(tok_err)?))
        .map_err(tok_err)?;
    inner.with_pre_tokenizer(Some(
        Split::new(" ", SplitDelimiterBehavior::MergedWithPrevious, false).map_err(tok_err)?,
    ));
    inner.with_decoder(Some(DecoderSequence::new(vec![
        DecoderWrapper::Replace(Replace::new("\u{2581}", " ").map_err(tok_err)?),
        DecoderWrapper::ByteFallback(ByteFallback::new()),
        DecoderWrapper::Fuse(Fuse::new()),
    ])));
    inner
        .add_special_tokens(tokens_of_type(tokens, types, 3, true))
        .map_err(tok_err)?;
    // User-defined tokens that keep their spelling in the vocabulary (not the respelled spaces).
    let user: Vec<AddedToken> = tokens_of_type(tokens, types, 4, false)
        .into_iter()
        .filter(|t| index.contains_key(t.content.as_str()))
        .collect();
    inner.add_tokens(user).map_err(tok_err)?;
    Ok(inner)
}

/// The tokens of one GGUF token type, as added tokens matched before normalisation.
fn tokens_of_type(tokens: &[String], types: &[i32], kind: i32, special: bool) -> Vec<AddedToken> {
    types
        .iter()
        .zip(tokens)
        .filter(|(&t, _)| t == kind)
        .map(|(_, tok)| AddedToken::from(tok.clone(), special).normalized(false))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A byte-level vocabulary (the 256 byte symbols plus `(n`, `):`, `):\n`, `12`) with the given
    /// `tokenizer.ggml.pre` (none with `None`).
    fn byte_level_meta(pre: Option<&str>) -> crate::gguf::Metadata {
        let bytes = ByteLevel::alphabet();
        let mut tokens: Vec<String> = bytes.iter().map(|c| c.to_string()).collect();
        tokens.sort();
        tokens.extend(["(n", "):", "):Ċ", "12"].map(String::from));
        let merges = ["( n", ") :", "): Ċ", "1 2"].map(|m| Value::String(m.into()));
        let mut meta = crate::gguf::Metadata::new();
        meta.insert("tokenizer.ggml.model".into(), Value::String("gpt2".into()));
        meta.insert(
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.into_iter().map(Value::String).collect()),
        );
        meta.insert(
            "tokenizer.ggml.merges".into(),
            Value::Array(merges.to_vec()),
        );
        if let Some(pre) = pre {
            meta.insert("tokenizer.ggml.pre".into(), Value::String(pre.into()));
        }
        meta
    }

    fn pieces(pre: Option<&str>, text: &str) -> Vec<String> {
        let tok = from_gguf_metadata(&byte_level_meta(pre)).unwrap();
        let ids = tok.encode(text).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), text);
        ids.iter().map(|&i| tok.token_text(i)).collect()
    }

    #[test]
    fn each_pre_tokenizer_type_splits_by_its_own_rules() {
        // Qwen2: a letter run takes one leading punctuation mark, a punctuation run its newline.
        assert_eq!(pieces(Some("qwen2"), "f(n):\n"), ["f", "(n", "):\n"]);
        // GPT-2 rules (and SmolLM's): punctuation and letters apart, the newline apart.
        for pre in [None, Some("default"), Some("gpt2"), Some("smollm")] {
            assert_eq!(
                pieces(pre, "f(n):\n"),
                ["f", "(", "n", "):", "\n"],
                "{pre:?}"
            );
        }
        // SmolLM and Qwen2: digits one at a time; GPT-2: a digit run is one word, merged.
        assert_eq!(pieces(Some("smollm"), " 12"), [" ", "1", "2"]);
        assert_eq!(pieces(Some("qwen2"), " 12"), [" ", "1", "2"]);
        assert_eq!(pieces(Some("gpt2"), " 12"), [" ", "12"]);
    }

    #[test]
    fn an_unknown_pre_tokenizer_type_is_an_error_naming_it() {
        let err = from_gguf_metadata(&byte_level_meta(Some("llama-bpe")))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("`llama-bpe`"), "{err}");
        assert!(err.contains(PreTokenizerType::SUPPORTED), "{err}");
    }
}
