//! Reading Hugging Face `config.json` values shared by several families: typed access with errors
//! naming the key, and the rotary settings in both transformers 4 (flat keys) and 5
//! (`rope_parameters`) styles.

use serde_json::Value;

use crate::config::RopeScaling;
use crate::error::{Error, Result};

/// Typed access to a JSON object with errors naming the missing key.
pub(crate) struct Json<'a>(pub &'a Value);

impl Json<'_> {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }
    pub fn usize(&self, key: &str) -> Result<usize> {
        self.get(key)
            .and_then(Value::as_u64)
            .map(|v| v as usize)
            .ok_or_else(|| {
                Error::config(format!("`{key}` is missing or not a non-negative integer"))
            })
    }
    /// A count that divides or sizes something: at least 1 and at most
    /// [`crate::config::MAX_COUNT`], checked before `d_model / n_heads` or `vec![_; n_layers]`.
    pub fn count(&self, key: &str) -> Result<usize> {
        let v = self.usize(key)?;
        if v == 0 || v > crate::config::MAX_COUNT {
            return Err(Error::config(format!(
                "`{key}` must be between 1 and {}, got {v}",
                crate::config::MAX_COUNT
            )));
        }
        Ok(v)
    }
    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize> {
        if self.get(key).is_some() {
            self.usize(key)
        } else {
            Ok(default)
        }
    }
    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| Error::config(format!("`{key}` is not a number"))),
        }
    }
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| Error::config(format!("`{key}` is not a boolean"))),
        }
    }
    pub fn str(&self, key: &str) -> Result<String> {
        self.get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| Error::config(format!("`{key}` is missing or not a string")))
    }
    pub fn token_id(&self, key: &str) -> Option<u32> {
        match self.get(key)? {
            Value::Number(n) => n.as_u64().map(|v| v as u32),
            Value::Array(a) => a.first().and_then(Value::as_u64).map(|v| v as u32),
            _ => None,
        }
    }
}

/// `rope_theta` (transformers < 5) or `rope_parameters.rope_theta` (transformers 5).
pub(crate) fn rope_theta(j: &Json, default: f64) -> Result<f64> {
    if let Some(t) = j
        .get("rope_parameters")
        .and_then(|r| r.get("rope_theta"))
        .and_then(Value::as_f64)
    {
        return Ok(t);
    }
    j.f64_or("rope_theta", j.f64_or("rotary_emb_base", default)?)
}

/// The fraction of each head's dimensions that is rotated: `rope_parameters.partial_rotary_factor`
/// (transformers 5), else `rotary_pct` (GPT-NeoX) or `partial_rotary_factor`.
pub(crate) fn partial_rotary_factor(j: &Json) -> Result<f64> {
    match j
        .get("rope_parameters")
        .and_then(|r| r.get("partial_rotary_factor"))
    {
        Some(v) => Ok(v.as_f64().unwrap_or(1.0)),
        None => j.f64_or("rotary_pct", j.f64_or("partial_rotary_factor", 1.0)?),
    }
}

pub(crate) fn rope_scaling(j: &Json) -> Result<Option<RopeScaling>> {
    let Some(s) = j.get("rope_scaling").or_else(|| j.get("rope_parameters")) else {
        return Ok(None);
    };
    let s = Json(s);
    let kind = s
        .str("rope_type")
        .or_else(|_| s.str("type"))
        .unwrap_or_else(|_| "default".into());
    Ok(match kind.as_str() {
        "default" => None,
        "linear" => Some(RopeScaling::Linear {
            factor: s.f64_or("factor", 1.0)?,
        }),
        "llama3" => Some(RopeScaling::Llama3 {
            factor: s.f64_or("factor", 8.0)?,
            low_freq_factor: s.f64_or("low_freq_factor", 1.0)?,
            high_freq_factor: s.f64_or("high_freq_factor", 4.0)?,
            original_max_position: s.f64_or("original_max_position_embeddings", 8192.0)?,
        }),
        other => return Err(Error::config(format!("unsupported rope scaling `{other}`"))),
    })
}
