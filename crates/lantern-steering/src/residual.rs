//! Residual-stream steering scaled to the hidden state (paper P3, Lee et al. 2025): at every
//! position, `h' = h + strength ‖h‖ d` for a unit direction `d`, optionally rescaled back to
//! `‖h‖`, so a strength means the same push whatever the layer's typical norm.

use candle_core::{Device, Tensor, D};
use lantern_engine::{Error, Intervention, Result};

/// Which positions a steering intervention acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SteerScope {
    /// Every position of every forward pass, the prompt (prefill) included.
    All,
    /// Only the positions that predict generated tokens: the last prompt position in the
    /// prefill pass (it predicts the first new token) and every position of the KV-cached
    /// generation steps (P3: "during generation only"). The prompt's own representation is
    /// left as the model computed it.
    #[default]
    Generated,
}

/// The steering intervention for a residual-stream point (`[B, T, M]`, e.g.
/// `blocks.L.hook_resid_post`): adds `strength ‖h‖ d`, `d` being `direction` normalised; with
/// `renormalize`, the result is rescaled to the original `‖h‖`.
pub fn residual_steering(
    direction: &[f32],
    strength: f64,
    renormalize: bool,
    device: &Device,
) -> Result<Intervention> {
    residual_steering_at(direction, strength, renormalize, SteerScope::All, device)
}

/// [`residual_steering`] restricted to `scope`. The prefill pass is the one that starts at
/// position 0 with more than one position; with [`SteerScope::Generated`] only its last
/// position is steered (left padding puts every row's last prompt token there).
pub fn residual_steering_at(
    direction: &[f32],
    strength: f64,
    renormalize: bool,
    scope: SteerScope,
    device: &Device,
) -> Result<Intervention> {
    if !strength.is_finite() {
        return Err(Error::invalid(format!(
            "the steering strength must be finite, got {strength}"
        )));
    }
    let norm: f32 = direction.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(Error::invalid("the steering direction is zero"));
    }
    let d = Tensor::from_vec(
        direction.iter().map(|v| v / norm).collect::<Vec<_>>(),
        direction.len(),
        device,
    )?;
    Ok(Intervention::custom(move |x, ctx| {
        let t = x.dim(1)?;
        if scope == SteerScope::Generated && ctx.pos_offset == 0 && t > 1 {
            // Prefill: keep the prompt, steer the last position only. x: [B, T, M].
            let head = x.narrow(1, 0, t - 1)?;
            let last = steer(&x.narrow(1, t - 1, 1)?, &d, strength, renormalize)?;
            return Tensor::cat(&[&head, &last], 1);
        }
        steer(x, &d, strength, renormalize)
    }))
}

/// `x + strength ‖x‖ d` per position (optionally renormalised). x: [B, T, M], d: [M].
fn steer(x: &Tensor, d: &Tensor, strength: f64, renormalize: bool) -> candle_core::Result<Tensor> {
    {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lantern_engine::{HookContext, HookPoint, Op};

    fn run(iv: &Intervention, x: &Tensor, pos_offset: usize) -> Tensor {
        let Op::Custom(f) = &iv.op else {
            panic!("steering is a custom op")
        };
        let ctx = HookContext {
            point: HookPoint::resid_post(0),
            pos_offset,
        };
        f(x, &ctx).unwrap()
    }

    #[test]
    fn generated_scope_leaves_the_prompt_and_steers_the_rest() {
        let dev = Device::Cpu;
        // x: [B=1, T=3, M=2]
        let x = Tensor::new(&[[[1f32, 0.0], [0.0, 2.0], [3.0, 4.0]]], &dev).unwrap();
        let gen =
            residual_steering_at(&[1.0, 0.0], 1.0, false, SteerScope::Generated, &dev).unwrap();
        let all = residual_steering(&[1.0, 0.0], 1.0, false, &dev).unwrap();
        let prefill = run(&gen, &x, 0).to_vec3::<f32>().unwrap();
        // Prompt positions unchanged; the last one gets + ‖h‖ d = (5, 0).
        assert_eq!(prefill[0][0], vec![1.0, 0.0]);
        assert_eq!(prefill[0][1], vec![0.0, 2.0]);
        assert_eq!(prefill[0][2], vec![8.0, 4.0]);
        let every = run(&all, &x, 0).to_vec3::<f32>().unwrap();
        assert_eq!(every[0][0], vec![2.0, 0.0]);
        // A cached generation step (one position, offset > 0) is steered.
        let step = x.narrow(1, 2, 1).unwrap();
        let stepped = run(&gen, &step, 7).to_vec3::<f32>().unwrap();
        assert_eq!(stepped[0][0], vec![8.0, 4.0]);
        assert!(residual_steering_at(&[1.0, 0.0], f64::NAN, true, SteerScope::All, &dev).is_err());
    }
}
