//! The three probe methods. All operate on standardised features and return, per state,
//! a direction in standardised space plus a linear readout whose decision boundary is 0.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Result, StatesError};
use crate::linalg::{axpy, dot, sigmoid};
use crate::{LinearReadout, LogisticConfig, SaeConfig};

/// Mean of the selected rows, in f64.
fn mean_of(x: &[Vec<f32>], sel: impl Iterator<Item = usize>) -> Vec<f64> {
    let d = x[0].len();
    let mut m = vec![0.0f64; d];
    let mut n = 0usize;
    for i in sel {
        for (a, &v) in m.iter_mut().zip(&x[i]) {
            *a += v as f64;
        }
        n += 1;
    }
    m.iter_mut().for_each(|a| *a /= n.max(1) as f64);
    m
}

/// Difference of means: `u = mean(pos) - mean(neg)`; readout `w = u/|u|`,
/// `b = -(w·mean(pos) + w·mean(neg))/2` (threshold at the midpoint of the projected means).
/// If the means coincide, `u = 0` and the readout is identically 0 (the state gets flagged).
pub(crate) fn diff_means(x: &[Vec<f32>], pos: &[bool], neg: &[bool]) -> (Vec<f32>, LinearReadout) {
    let mp = mean_of(x, (0..x.len()).filter(|&i| pos[i]));
    let mn = mean_of(x, (0..x.len()).filter(|&i| neg[i]));
    let u: Vec<f64> = mp.iter().zip(&mn).map(|(a, b)| a - b).collect();
    let nu = u.iter().map(|v| v * v).sum::<f64>().sqrt();
    if !nu.is_finite() || nu < 1e-12 {
        let d = u.len();
        return (
            vec![0.0; d],
            LinearReadout {
                weights: vec![0.0; d],
                bias: 0.0,
            },
        );
    }
    let w: Vec<f64> = u.iter().map(|v| v / nu).collect();
    let pp: f64 = w.iter().zip(&mp).map(|(a, b)| a * b).sum();
    let pn: f64 = w.iter().zip(&mn).map(|(a, b)| a * b).sum();
    let wf: Vec<f32> = w.iter().map(|&v| v as f32).collect();
    (
        wf.clone(),
        LinearReadout {
            weights: wf,
            bias: -(pp + pn) / 2.0,
        },
    )
}

fn dot64(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let ca = a.chunks_exact(4);
    let cb = b.chunks_exact(4);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f64>() + ra.iter().zip(rb).map(|(x, y)| x * y).sum::<f64>()
}

/// Class-balanced, L2-regularised logistic regression (`y` = positive class), minimising
/// `(1/n) Σ c_i [softplus(s_i) - y_i s_i] + (l2/2)|w|²`, `s_i = w·x_i + b`,
/// `c_i = n / (2 n_{class(i)})`, bias unregularised. Full-batch Nesterov accelerated gradient
/// with adaptive (gradient) restart; step `1/L` with `L = λ_max(weighted Gram of [x;1])/4 + l2`
/// from 30 power iterations, unless `cfg.lr` is given. Starts at 0 (deterministic).
pub(crate) fn logistic(
    x: &[Vec<f64>],
    y: &[bool],
    cfg: &LogisticConfig,
) -> Result<(Vec<f32>, LinearReadout)> {
    let n = x.len();
    let d = x[0].len();
    let n_pos = y.iter().filter(|&&v| v).count().max(1) as f64;
    let n_neg = (n as f64 - n_pos).max(1.0);
    let c: Vec<f64> = y
        .iter()
        .map(|&v| {
            if v {
                n as f64 / (2.0 * n_pos)
            } else {
                n as f64 / (2.0 * n_neg)
            }
        })
        .collect();
    let lr = match cfg.lr {
        Some(lr) => lr,
        None => {
            // power iteration on M = (1/n) Σ c_i x̃_i x̃_iᵀ, x̃ = [x; 1]
            let mut v = vec![1.0 / ((d + 1) as f64).sqrt(); d + 1];
            let mut lambda = 1.0;
            for _ in 0..30 {
                let mut mv = vec![0.0f64; d + 1];
                for i in 0..n {
                    let s = (dot64(&x[i], &v[..d]) + v[d]) * c[i] / n as f64;
                    for (a, &xi) in mv[..d].iter_mut().zip(&x[i]) {
                        *a += s * xi;
                    }
                    mv[d] += s;
                }
                lambda = mv.iter().map(|a| a * a).sum::<f64>().sqrt();
                if lambda.is_nan() || lambda <= 1e-12 {
                    lambda = 1.0;
                    break;
                }
                v = mv.iter().map(|a| a / lambda).collect();
            }
            1.0 / (0.25 * lambda + cfg.l2)
        }
    };
    let mut w = vec![0.0f64; d + 1]; // last entry is the bias
    let mut yk = w.clone();
    let mut t = 1.0f64;
    let mut g = vec![0.0f64; d + 1];
    for _ in 0..cfg.epochs {
        g.iter_mut().for_each(|a| *a = 0.0);
        for i in 0..n {
            let s = dot64(&x[i], &yk[..d]) + yk[d];
            let r = c[i] * (sigmoid(s) - if y[i] { 1.0 } else { 0.0 }) / n as f64;
            for (a, &xi) in g[..d].iter_mut().zip(&x[i]) {
                *a += r * xi;
            }
            g[d] += r;
        }
        for j in 0..d {
            g[j] += cfg.l2 * yk[j];
        }
        let gnorm = g.iter().map(|a| a * a).sum::<f64>().sqrt();
        if !gnorm.is_finite() {
            return Err(StatesError::Diverged(
                "logistic gradient is not finite".into(),
            ));
        }
        if gnorm < 1e-7 {
            w.clone_from(&yk);
            break;
        }
        let w_new: Vec<f64> = yk.iter().zip(&g).map(|(a, b)| a - lr * b).collect();
        let restart = g
            .iter()
            .zip(w_new.iter().zip(&w))
            .map(|(gi, (a, b))| gi * (a - b))
            .sum::<f64>()
            > 0.0;
        if restart {
            t = 1.0;
        }
        let t_new = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
        let beta = if restart { 0.0 } else { (t - 1.0) / t_new };
        yk = w_new
            .iter()
            .zip(&w)
            .map(|(a, b)| a + beta * (a - b))
            .collect();
        w = w_new;
        t = t_new;
    }
    if w.iter().any(|a| !a.is_finite()) {
        return Err(StatesError::Diverged(
            "logistic weights are not finite".into(),
        ));
    }
    let weights: Vec<f32> = w[..d].iter().map(|&a| a as f32).collect();
    Ok((
        weights.clone(),
        LinearReadout {
            weights,
            bias: w[d],
        },
    ))
}

/// Supervised SAE parameters. `enc` is `[m × d]` row-major (row j = encoder row of latent j);
/// `dec` is stored transposed, `[m × d]` row-major, so row j is decoder column j.
pub(crate) struct Sae {
    pub m: usize,
    pub d: usize,
    pub enc: Vec<f32>,
    pub dec: Vec<f32>,
}

/// Adam (β1 = 0.9, β2 = 0.999, ε = 1e-8) on one parameter row.
#[inline]
fn adam_row(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], step_size: f32) {
    const B1: f32 = 0.9;
    const B2: f32 = 0.999;
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = B1 * *m + (1.0 - B1) * g;
        *v = B2 * *v + (1.0 - B2) * g * g;
        *p -= step_size * *m / (v.sqrt() + 1e-8);
    }
}

/// Number of fixed latent-row blocks. Work is split by block, never by thread, and block
/// partial sums are reduced in block order, so results do not depend on the thread count.
const N_BLOCKS: usize = 16;

/// One block of latent rows and everything owned per row.
struct Block<'a> {
    j0: usize,
    enc: &'a mut [f32],
    dec: &'a mut [f32],
    enc_m: &'a mut [f32],
    enc_v: &'a mut [f32],
    dec_m: &'a mut [f32],
    dec_v: &'a mut [f32],
    /// latent pre-activations, `[row][batch]`
    z: &'a mut [f32],
    /// partial reconstruction of the batch from this block's latents, `[batch][d]`
    xhat: &'a mut [f32],
}

fn run_blocks<T: Send>(items: &mut [T], threads: usize, f: impl Fn(&mut T) + Sync) {
    if threads <= 1 || items.len() <= 1 {
        items.iter_mut().for_each(f);
        return;
    }
    let per = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        for group in items.chunks_mut(per) {
            let f = &f;
            s.spawn(move || group.iter_mut().for_each(f));
        }
    });
}

#[inline]
fn latent_out(j: usize, k: usize, z: f32) -> f32 {
    if j < k {
        sigmoid(z as f64) as f32
    } else {
        z.max(0.0)
    }
}

/// Train the supervised SAE on standardised rows `x`; `target[i] = Some(k)` when row i
/// belongs to state k (< `k_states`), `None` for baseline rows (all-zero targets).
///
/// Per mini-batch: (1) every block computes `z` for its rows over the whole batch and its
/// partial `x̂`; (2) the partials are summed in block order and the reconstruction gradient
/// formed; (3) every block back-propagates into its rows and applies Adam row by row (the
/// gradient of a row is complete once the batch has been swept), then projects ReLU decoder
/// columns into the unit ball. Rows stay in cache across the batch.
pub(crate) fn train_sae(
    x: &[Vec<f32>],
    target: &[Option<usize>],
    k_states: usize,
    cfg: &SaeConfig,
    seed: u64,
) -> Result<Sae> {
    let n = x.len();
    let d = x[0].len();
    let m = cfg.width_multiplier * d;
    let k = k_states;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5AE5_AE5A_E5AE_5AE5);
    let a = 1.0 / (d as f32).sqrt();
    let enc: Vec<f32> = (0..m * d).map(|_| rng.random_range(-a..a)).collect();
    // decoder columns start as the (unit-normalised) encoder rows, scaled by 1/sqrt(m / d)
    let scale = 1.0 / ((m / d).max(1) as f32).sqrt();
    let mut dec = enc.clone();
    for row in dec.chunks_exact_mut(d) {
        let nr = crate::linalg::norm(row) as f32;
        row.iter_mut().for_each(|v| *v *= scale / nr.max(1e-12));
    }
    let mut sae = Sae { m, d, enc, dec };
    let (mut enc_m, mut enc_v) = (vec![0.0f32; m * d], vec![0.0f32; m * d]);
    let (mut dec_m, mut dec_v) = (vec![0.0f32; m * d], vec![0.0f32; m * d]);
    let bmax = cfg.batch_size.min(n);
    let rows_per_block = m.div_ceil(N_BLOCKS);
    let n_blocks = m.div_ceil(rows_per_block);
    let mut zbuf = vec![0.0f32; m * bmax];
    let mut xhat_parts = vec![0.0f32; n_blocks * bmax * d];
    let threads = match cfg.threads {
        0 => std::thread::available_parallelism().map_or(1, |t| t.get()),
        t => t,
    }
    .min(n_blocks);
    let mut order: Vec<usize> = (0..n).collect();
    let mut step = 0i32;
    let lr = cfg.learning_rate as f32;
    let l1 = cfg.l1 as f32;
    let recon_weight = cfg.recon_weight as f32;
    let mut gx = vec![0.0f32; bmax * d];
    for _epoch in 0..cfg.epochs {
        rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rng);
        for batch in order.chunks(bmax) {
            let bsz = batch.len();
            let xs: Vec<&[f32]> = batch.iter().map(|&i| x[i].as_slice()).collect();
            let ys: Vec<Option<usize>> = batch.iter().map(|&i| target[i]).collect();
            let bce_scale = 1.0 / (bsz as f32 * k as f32);
            let l1_grad = if m > k {
                l1 / (bsz as f32 * (m - k) as f32)
            } else {
                0.0
            };
            let rec_scale = recon_weight * 2.0 / (bsz as f32 * d as f32);
            step += 1;
            let step_size = lr * (1.0 - 0.999f32.powi(step)).sqrt() / (1.0 - 0.9f32.powi(step));
            let rb = rows_per_block * d;
            let mut blocks: Vec<Block> = sae
                .enc
                .chunks_mut(rb)
                .zip(sae.dec.chunks_mut(rb))
                .zip(enc_m.chunks_mut(rb).zip(enc_v.chunks_mut(rb)))
                .zip(dec_m.chunks_mut(rb).zip(dec_v.chunks_mut(rb)))
                .zip(
                    zbuf.chunks_mut(rows_per_block * bmax)
                        .zip(xhat_parts.chunks_mut(bmax * d)),
                )
                .enumerate()
                .map(
                    |(bi, ((((enc, dec), (enc_m, enc_v)), (dec_m, dec_v)), (z, xhat)))| Block {
                        j0: bi * rows_per_block,
                        enc,
                        dec,
                        enc_m,
                        enc_v,
                        dec_m,
                        dec_v,
                        z,
                        xhat,
                    },
                )
                .collect();
            // (1) forward
            run_blocks(&mut blocks, threads, |blk| {
                blk.xhat[..bsz * d].iter_mut().for_each(|v| *v = 0.0);
                for (jj, (er, dr)) in blk
                    .enc
                    .chunks_exact(d)
                    .zip(blk.dec.chunks_exact(d))
                    .enumerate()
                {
                    let j = blk.j0 + jj;
                    for (b, xb) in xs.iter().enumerate() {
                        let zv = dot(er, xb);
                        blk.z[jj * bsz + b] = zv;
                        let h = latent_out(j, k, zv);
                        if h != 0.0 {
                            axpy(h, dr, &mut blk.xhat[b * d..(b + 1) * d]);
                        }
                    }
                }
            });
            // (2) reconstruction gradient, partials summed in block order
            for b in 0..bsz {
                let g = &mut gx[b * d..(b + 1) * d];
                for (gi, &xv) in g.iter_mut().zip(xs[b]) {
                    *gi = -xv;
                }
                for blk in &blocks {
                    for (gi, &p) in g.iter_mut().zip(&blk.xhat[b * d..(b + 1) * d]) {
                        *gi += p;
                    }
                }
                g.iter_mut().for_each(|v| *v *= rec_scale);
            }
            // (3) backward + Adam, row by row
            let gx_ref = &gx;
            run_blocks(&mut blocks, threads, |blk| {
                let mut genc = vec![0.0f32; d];
                let mut gdec = vec![0.0f32; d];
                let rows = blk.enc.len() / d;
                for jj in 0..rows {
                    let j = blk.j0 + jj;
                    let r = jj * d..(jj + 1) * d;
                    genc.iter_mut().for_each(|v| *v = 0.0);
                    gdec.iter_mut().for_each(|v| *v = 0.0);
                    for (b, xb) in xs.iter().enumerate() {
                        let zv = blk.z[jj * bsz + b];
                        let gb = &gx_ref[b * d..(b + 1) * d];
                        let h = latent_out(j, k, zv);
                        let dz = if j < k {
                            let y = if ys[b] == Some(j) { 1.0 } else { 0.0 };
                            dot(&blk.dec[r.clone()], gb) * h * (1.0 - h) + (h - y) * bce_scale
                        } else if zv > 0.0 {
                            dot(&blk.dec[r.clone()], gb) + l1_grad
                        } else {
                            continue;
                        };
                        axpy(h, gb, &mut gdec);
                        axpy(dz, xb, &mut genc);
                    }
                    adam_row(
                        &mut blk.enc[r.clone()],
                        &genc,
                        &mut blk.enc_m[r.clone()],
                        &mut blk.enc_v[r.clone()],
                        step_size,
                    );
                    adam_row(
                        &mut blk.dec[r.clone()],
                        &gdec,
                        &mut blk.dec_m[r.clone()],
                        &mut blk.dec_v[r.clone()],
                        step_size,
                    );
                    if j >= k {
                        // keep ReLU decoder columns within the unit ball so the L1 penalty
                        // cannot be dodged by shrinking latents and growing decoder columns
                        let row = &mut blk.dec[r];
                        let nr = crate::linalg::norm(row) as f32;
                        if nr > 1.0 {
                            row.iter_mut().for_each(|v| *v /= nr);
                        }
                    }
                }
            });
        }
        if sae.enc.iter().chain(&sae.dec).any(|v| !v.is_finite()) {
            return Err(StatesError::Diverged("SAE weights are not finite".into()));
        }
    }
    Ok(sae)
}
