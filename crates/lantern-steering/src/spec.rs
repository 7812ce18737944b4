//! Text form of an intervention, as the CLI and experiment files write it:
//!
//! ```text
//! scale blocks.11.attn.hook_v head=11 alpha=6          # value vectors of head 11 ×6 (b_V kept)
//! scale blocks.11.attn.hook_v head=11 alpha=6 bias=scale
//! zero  blocks.3.attn.hook_z head=2,5 pos=4
//! add   blocks.6.hook_resid_post vector=steer.json alpha=4   # JSON array of d_model numbers
//! add   blocks.6.hook_resid_post value=0.5
//! replace blocks.0.hook_resid_pre value=0 row=1
//! ```
//! Selectors: `head=`/`heads=`, `pos=`/`positions=`, `row=`/`rows=` (comma-separated indices).

use std::path::Path;

use candle_core::Tensor;
use lantern_engine::{Error, HookKind, HookPoint, Intervention, Model, Op, Result};

/// Parses one intervention spec for a model.
pub fn parse_intervention(spec: &str, model: &Model) -> Result<(HookPoint, Intervention)> {
    let bad = |msg: String| Error::invalid(format!("intervention `{spec}`: {msg}"));
    let mut words = spec.split_whitespace();
    let op = words.next().ok_or_else(|| bad("empty".into()))?;
    let hook = words
        .next()
        .ok_or_else(|| bad("missing the hook point after the operation".into()))?;
    let point = HookPoint::parse_for(hook, model.config())?;
    let mut alpha = None;
    let mut value = None;
    let mut vector = None;
    let mut scale_bias = false;
    let (mut heads, mut positions, mut rows) = (None, None, None);
    for w in words {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| bad(format!("`{w}` is not key=value")))?;
        let list = || -> Result<Vec<usize>> {
            v.split(',')
                .map(|x| {
                    x.trim()
                        .parse::<usize>()
                        .map_err(|_| bad(format!("`{k}={v}`: expected indices like 1,2,3")))
                })
                .collect()
        };
        // Values end up multiplying or replacing f32 activations: NaN, Inf or a number beyond
        // f32's range would silently poison every later activation.
        let num = || {
            let x = v
                .parse::<f64>()
                .map_err(|_| bad(format!("`{k}={v}`: expected a number")))?;
            lantern_engine::check::finite_f32(k, x).map_err(bad)
        };
        match k {
            "alpha" => alpha = Some(num()?),
            "value" => value = Some(num()?),
            "vector" => vector = Some(read_vector(Path::new(v)).map_err(|e| bad(e.to_string()))?),
            "bias" => {
                scale_bias = match v {
                    "scale" => true,
                    "keep" => false,
                    _ => return Err(bad("`bias` is `keep` (default) or `scale`".into())),
                }
            }
            "head" | "heads" => heads = Some(list()?),
            "pos" | "position" | "positions" => positions = Some(list()?),
            "row" | "rows" => rows = Some(list()?),
            _ => {
                return Err(bad(format!(
                    "unknown key `{k}` (known: alpha, value, vector, bias, head, pos, row)"
                )))
            }
        }
    }
    let cfg = model.config();
    if let Some(hs) = &heads {
        let count = if point.kind.is_kv() {
            cfg.n_kv_heads
        } else {
            cfg.n_heads
        };
        let what = if point.kind.is_kv() {
            "KV head"
        } else {
            "head"
        };
        hs.iter()
            .try_for_each(|&h| lantern_engine::error::check_index(what, h, count))?;
    }
    let need = |x: Option<f64>, name: &str| x.ok_or_else(|| bad(format!("`{op}` needs {name}=")));
    let device = model.device();
    let mut iv = match op {
        // Value scaling keeps `b_V` unless `bias=scale` (see [`crate::values`]).
        "scale" if point.kind == HookKind::AttnV => {
            let layer = point.layer.expect("attn.hook_v is a block point");
            crate::values::scale_values(model, layer, need(alpha, "alpha")?, scale_bias)?
        }
        "scale" => Intervention::new(Op::Scale(need(alpha, "alpha")?)),
        "zero" | "ablate" => Intervention::new(Op::Zero),
        "add" => match vector {
            Some(v) => {
                if v.len() != cfg.d_model {
                    return Err(bad(format!(
                        "the vector has {} numbers; d_model is {}",
                        v.len(),
                        cfg.d_model
                    )));
                }
                let alpha = alpha.unwrap_or(1.0);
                if v.iter().any(|&x| !((x as f64 * alpha) as f32).is_finite()) {
                    return Err(bad(format!(
                        "alpha={alpha} times the vector overflows a 32-bit float"
                    )));
                }
                Intervention::add((Tensor::from_vec(v, cfg.d_model, device)? * alpha)?)
            }
            None => Intervention::add(Tensor::new(need(value, "value or vector")? as f32, device)?),
        },
        "replace" | "set" => {
            Intervention::replace(Tensor::new(need(value, "value")? as f32, device)?)
        }
        other => {
            return Err(bad(format!(
                "unknown operation `{other}` (known: scale, zero, add, replace)"
            )))
        }
    };
    iv.selection.heads = heads;
    iv.selection.positions = positions;
    iv.selection.batch = rows;
    Ok((point, iv))
}

fn read_vector(path: &Path) -> Result<Vec<f32>> {
    let file_error = |message: String| Error::File {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    // Read as f64 so that a number beyond f32's range (1e39) is named, not a bare parse error.
    let wide = serde_json::from_str::<Vec<f64>>(&text)
        .map_err(|e| file_error(format!("expected a JSON array of numbers: {e}")))?;
    if let Some(i) = wide.iter().position(|&x| !(x as f32).is_finite()) {
        return Err(file_error(format!(
            "number {i} of the vector is {} (beyond a 32-bit float's range)",
            wide[i]
        )));
    }
    Ok(wide.into_iter().map(|x| x as f32).collect())
}
