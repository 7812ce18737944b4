//! Rendering to SVG / PNG in memory and atomic file output.

use std::ffi::OsString;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use image::codecs::png::PngEncoder;
use image::{ColorType, ImageEncoder};
use plotters::prelude::*;

use crate::canvas::{render_err, Canvas};
use crate::error::{PlotError, Result};
use crate::options::PlotOptions;

/// PNGs are drawn at this multiple of the output resolution and
/// box-filtered down, which anti-aliases lines and shapes.
const SUPERSAMPLE: u32 = 2;

pub(crate) trait Figure {
    fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<()>;
}

/// `<stem>.<ext>` (appends, so stems containing dots are kept intact).
pub(crate) fn with_ext(stem: &Path, ext: &str) -> PathBuf {
    let mut s: OsString = stem.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn check_stem(stem: &Path) -> Result<()> {
    if stem.file_name().is_none() {
        return Err(PlotError::InvalidInput(format!(
            "output stem {:?} has no file name",
            stem.display().to_string()
        )));
    }
    let dir = parent_dir(stem);
    if !dir.is_dir() {
        if dir.exists() {
            return Err(PlotError::Io {
                path: dir,
                source: std::io::Error::other("not a directory"),
            });
        }
        return Err(PlotError::MissingDirectory(dir));
    }
    Ok(())
}

fn catch<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(PlotError::Render(format!(
                "drawing backend panicked: {msg}"
            )))
        }
    }
}

pub(crate) fn render_svg<F: Figure>(fig: &F, size: (u32, u32)) -> Result<String> {
    catch(|| {
        let mut buf = String::new();
        {
            let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
            root.fill(&WHITE).map_err(render_err)?;
            let c = Canvas::new(&root, 1.0, size.0 as f64, size.1 as f64);
            fig.draw(&c)?;
            root.present().map_err(render_err)?;
        }
        Ok(buf)
    })
}

pub(crate) fn render_png<F: Figure>(fig: &F, size: (u32, u32), scale: u32) -> Result<Vec<u8>> {
    catch(|| {
        let (ow, oh) = (size.0 * scale, size.1 * scale);
        let (bw, bh) = (ow * SUPERSAMPLE, oh * SUPERSAMPLE);
        let mut big = vec![255u8; (bw as usize) * (bh as usize) * 3];
        {
            let root = BitMapBackend::with_buffer(&mut big, (bw, bh)).into_drawing_area();
            let s = (scale * SUPERSAMPLE) as f64;
            let c = Canvas::new(&root, s, size.0 as f64, size.1 as f64);
            fig.draw(&c)?;
            root.present().map_err(render_err)?;
        }
        let small = downsample(&big, bw as usize, bh as usize, SUPERSAMPLE as usize);
        let mut png = Vec::new();
        PngEncoder::new(&mut png)
            .write_image(&small, ow, oh, ColorType::Rgb8)
            .map_err(|e| PlotError::Render(format!("PNG encoding failed: {e}")))?;
        Ok(png)
    })
}

/// Box-filter an RGB buffer down by an integer factor.
fn downsample(src: &[u8], w: usize, h: usize, k: usize) -> Vec<u8> {
    let (ow, oh) = (w / k, h / k);
    let mut out = vec![0u8; ow * oh * 3];
    let n = (k * k) as u32;
    for oy in 0..oh {
        for ox in 0..ow {
            let mut acc = [0u32; 3];
            for dy in 0..k {
                let row = (oy * k + dy) * w;
                for dx in 0..k {
                    let i = (row + ox * k + dx) * 3;
                    acc[0] += src[i] as u32;
                    acc[1] += src[i + 1] as u32;
                    acc[2] += src[i + 2] as u32;
                }
            }
            let o = (oy * ow + ox) * 3;
            for ch in 0..3 {
                out[o + ch] = ((acc[ch] + n / 2) / n) as u8;
            }
        }
    }
    out
}

/// Render every requested format in memory, then write them atomically.
/// Returns the written paths (SVG first).
pub(crate) fn render_and_write<F: Figure>(
    fig: &F,
    plot: &PlotOptions,
    stem: &Path,
) -> Result<Vec<PathBuf>> {
    plot.validate()?;
    check_stem(stem)?;
    let mut outputs: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    if plot.formats.svg {
        outputs.push((
            with_ext(stem, "svg"),
            render_svg(fig, plot.size)?.into_bytes(),
        ));
    }
    if plot.formats.png {
        outputs.push((
            with_ext(stem, "png"),
            render_png(fig, plot.size, plot.png_scale)?,
        ));
    }
    for (path, bytes) in &outputs {
        lantern_io::write_atomic(path, bytes).map_err(|source| PlotError::Io {
            path: path.clone(),
            source,
        })?;
    }
    Ok(outputs.into_iter().map(|(p, _)| p).collect())
}
