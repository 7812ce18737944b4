//! Residual-stream steering scaled to the hidden state (paper P3, Lee et al. 2025): at every
//! position, `h' = h + strength ‖h‖ d` for a unit direction `d`, optionally rescaled back to
//! `‖h‖`, so a strength means the same push whatever the layer's typical norm.

use candle_core::{Device, Tensor, D};
use lantern_engine::{Error, Intervention, Result};

/// The steering intervention for a residual-stream point (`[B, T, M]`, e.g.
/// `blocks.L.hook_resid_post`): adds `strength ‖h‖ d`, `d` being `direction` normalised; with
/// `renormalize`, the result is rescaled to the original `‖h‖`.
pub fn residual_steering(
    direction: &[f32],
    strength: f64,
    renormalize: bool,
    device: &Device,
) -> Result<Intervention> {
    let norm: f32 = direction.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(Error::invalid("the steering direction is zero"));
    }
    let d = Tensor::from_vec(
        direction.iter().map(|v| v / norm).collect::<Vec<_>>(),
        direction.len(),
        device,
    )?;
    Ok(Intervention::custom(move |x, _| {
        let h_norm = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?; // [B, T, 1]
        let d = d.to_dtype(x.dtype())?;
        let steered = (x + h_norm
            .broadcast_mul(&d.unsqueeze(0)?.unsqueeze(0)?)?
            .affine(strength, 0.0)?)?;
        if !renormalize {
            return Ok(steered);
        }
        let new_norm = steered.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
        steered.broadcast_mul(&h_norm.broadcast_div(&new_norm)?)
    }))
}
