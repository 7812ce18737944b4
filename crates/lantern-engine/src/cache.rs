//! Captured activations by hook point, with export to safetensors and NumPy `.npy`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use candle_core::{DType, Tensor};

use crate::error::{Error, Result};
use crate::hooks::HookPoint;

/// Activations captured during a run, keyed by hook point (in forward order).
#[derive(Debug, Clone, Default)]
pub struct ActivationCache {
    tensors: BTreeMap<HookPoint, Tensor>,
}

impl ActivationCache {
    pub fn insert(&mut self, point: HookPoint, tensor: Tensor) {
        self.tensors.insert(point, tensor);
    }
    pub fn get(&self, point: HookPoint) -> Option<&Tensor> {
        self.tensors.get(&point)
    }
    /// The activation at a point, or an error naming it when it was not captured.
    pub fn require(&self, point: HookPoint) -> Result<&Tensor> {
        self.tensors.get(&point).ok_or_else(|| {
            Error::invalid(format!(
                "`{point}` was not captured (captured: {} points)",
                self.tensors.len()
            ))
        })
    }
    /// Lookup by name, e.g. `blocks.0.hook_resid_post`.
    pub fn get_name(&self, name: &str) -> Result<&Tensor> {
        self.require(name.parse()?)
    }
    pub fn len(&self) -> usize {
        self.tensors.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&HookPoint, &Tensor)> {
        self.tensors.iter()
    }
    /// Bytes held by the cached tensors.
    pub fn nbytes(&self) -> usize {
        self.tensors
            .values()
            .map(|t| t.elem_count() * t.dtype().size_in_bytes())
            .sum()
    }
    /// Mean over the batch axis, keeping it (size 1) so it broadcasts: for mean-ablation.
    pub fn mean_over_batch(&self, point: HookPoint) -> Result<Tensor> {
        Ok(self.require(point)?.mean_keepdim(point.kind.axes().batch)?)
    }

    /// Writes every tensor to one safetensors file, keyed by hook name. Atomic: a temporary file
    /// in the same folder is renamed into place, so a failure never leaves a partial file.
    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        let named: Vec<(String, Tensor)> = self
            .tensors
            .iter()
            .map(|(p, t)| (p.name(), t.clone()))
            .collect();
        lantern_io::write_atomic_with(path, |tmp| {
            candle_core::safetensors::save(
                &named.iter().map(|(n, t)| (n.as_str(), t.clone())).collect(),
                tmp,
            )
            .map_err(|e| std::io::Error::other(crate::error::without_backtrace(e)))
        })
        .map_err(|e| Error::file(path, e))
    }

    /// Writes one `<hook name>.npy` per tensor into a new folder `dir` (created atomically).
    pub fn save_npy_dir(&self, dir: &Path) -> Result<()> {
        if dir.exists() {
            return Err(Error::file(
                dir,
                "already exists; choose a new folder for the .npy files",
            ));
        }
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = parent.join(format!(
            ".{}.partial",
            dir.file_name().and_then(|n| n.to_str()).unwrap_or("npy")
        ));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| Error::file(&tmp, e))?;
        let result = self
            .tensors
            .iter()
            .try_for_each(|(p, t)| write_npy(&tmp.join(format!("{}.npy", p.name())), t));
        match result {
            Ok(()) => std::fs::rename(&tmp, dir).map_err(|e| Error::file(dir, e)),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(e)
            }
        }
    }
}

/// NumPy format 1.0: magic, header dict padded to 64 bytes, little-endian data in C order.
fn write_npy(path: &Path, t: &Tensor) -> Result<()> {
    let t = match t.dtype() {
        DType::F16 | DType::BF16 => t.to_dtype(DType::F32)?,
        _ => t.clone(),
    };
    let (descr, data): (&str, Vec<u8>) = match t.dtype() {
        DType::F32 => (
            "<f4",
            t.flatten_all()?
                .to_vec1::<f32>()?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
        DType::F64 => (
            "<f8",
            t.flatten_all()?
                .to_vec1::<f64>()?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
        DType::U32 => (
            "<u4",
            t.flatten_all()?
                .to_vec1::<u32>()?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
        DType::I64 => (
            "<i8",
            t.flatten_all()?
                .to_vec1::<i64>()?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
        DType::U8 => ("|u1", t.flatten_all()?.to_vec1::<u8>()?),
        other => {
            return Err(Error::invalid(format!(
                "cannot write dtype {other:?} to .npy"
            )))
        }
    };
    let shape = match t.dims() {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut f = std::fs::File::create(path).map_err(|e| Error::file(path, e))?;
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    f.write_all(&data)?;
    Ok(())
}
