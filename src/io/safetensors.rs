//! Model weights by name: memory-mapped `.safetensors` files, or f32 tensors held in memory (GGUF
//! files, dequantised when opened; see `gguf_hf.rs`). Safetensors tensors are read lazily by name
//! and converted from the stored dtype (F32, F16, BF16, F64) to the compute dtype (f32 or f64); the
//! in-memory ones are converted the same way. Every failure names the file and the tensor: a
//! missing name, a shape that differs from the config, an unsupported dtype, a non-finite value.

use crate::tensor::{pool, Float};
use crate::{with_dtype, DType, Error, Result, Tensor};
use memmap2::Mmap;
use rayon::prelude::*;
use safetensors::tensor::{Dtype as StDtype, TensorInfo};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One in-memory tensor: name, row-major shape, f32 values.
pub type NamedF32 = (String, Vec<usize>, Vec<f32>);

/// The tensors of one weight file: a memory-mapped safetensors file, or f32 tensors in memory.
pub struct Weights {
    path: PathBuf,
    source: Source,
    dtype: DType,
}

enum Source {
    Safetensors {
        mmap: Mmap,
        data_start: usize,
        infos: HashMap<String, TensorInfo>,
    },
    /// Row-major f32 tensors by name, each with its shape.
    F32(HashMap<String, (Vec<usize>, Vec<f32>)>),
}

/// A weight file that cannot be used as it is (malformed, wrong shape or dtype, non-finite).
fn bad(path: &Path, detail: impl std::fmt::Display) -> Error {
    Error::BadWeights {
        file: path.display().to_string(),
        detail: detail.to_string(),
    }
}

fn missing(path: &Path, name: &str) -> Error {
    Error::MissingTensor {
        file: path.display().to_string(),
        name: name.to_string(),
        detail: String::new(),
    }
}

impl Weights {
    /// Maps `path` and reads its header; tensors are converted to `dtype` when read.
    pub fn open(path: &Path, dtype: DType) -> Result<Weights> {
        let mmap = super::mmap_read_only(path)?;
        let (n, meta) = safetensors::SafeTensors::read_metadata(&mmap)
            .map_err(|e| bad(path, format!("not a valid safetensors file ({e})")))?;
        let infos = meta
            .tensors()
            .into_iter()
            .map(|(k, v)| (k, v.clone()))
            .collect();
        Ok(Weights {
            path: path.to_path_buf(),
            source: Source::Safetensors {
                mmap,
                data_start: 8 + n,
                infos,
            },
            dtype,
        })
    }

    /// Weights held in memory as `(name, row-major shape, f32 values)`, converted to `dtype` when
    /// read, like a safetensors F32 tensor; `path` is the file they came from (for messages).
    /// Errors on a repeated name or a value count that does not match the shape.
    pub fn from_f32_tensors(path: &Path, tensors: Vec<NamedF32>, dtype: DType) -> Result<Weights> {
        let mut map = HashMap::with_capacity(tensors.len());
        for (name, shape, data) in tensors {
            let n: usize = shape.iter().product();
            if n != data.len() {
                return Err(bad(
                    path,
                    format!(
                        "tensor `{name}` has {} values for shape {shape:?}",
                        data.len()
                    ),
                ));
            }
            if map.contains_key(&name) {
                return Err(bad(path, format!("tensor `{name}` appears twice")));
            }
            map.insert(name, (shape, data));
        }
        Ok(Weights {
            path: path.to_path_buf(),
            source: Source::F32(map),
            dtype,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn contains(&self, name: &str) -> bool {
        match &self.source {
            Source::Safetensors { infos, .. } => infos.contains_key(name),
            Source::F32(map) => map.contains_key(name),
        }
    }

    /// All tensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = match &self.source {
            Source::Safetensors { infos, .. } => infos.keys().map(String::as_str).collect(),
            Source::F32(map) => map.keys().map(String::as_str).collect(),
        };
        v.sort_unstable();
        v
    }

    /// Stored shape of `name`, if present.
    pub fn shape_of(&self, name: &str) -> Option<&[usize]> {
        match &self.source {
            Source::Safetensors { infos, .. } => infos.get(name).map(|i| i.shape.as_slice()),
            Source::F32(map) => map.get(name).map(|(s, _)| s.as_slice()),
        }
    }

    /// Header entry and raw bytes of `name` in a safetensors file.
    fn raw(&self, name: &str) -> Result<(&TensorInfo, &[u8])> {
        let Source::Safetensors {
            mmap,
            data_start,
            infos,
        } = &self.source
        else {
            return Err(Error::Internal(format!(
                "{}: raw bytes of tensor `{name}` asked of an in-memory weight set",
                self.path.display()
            )));
        };
        let info = infos.get(name).ok_or_else(|| missing(&self.path, name))?;
        let (s, e) = info.data_offsets;
        let bytes = mmap
            .get(data_start + s..data_start + e)
            .ok_or_else(|| bad(&self.path, format!("tensor `{name}` lies outside the file")))?;
        Ok((info, bytes))
    }

    /// Reads `name` converted to the compute dtype.
    pub fn get(&self, name: &str) -> Result<Tensor> {
        if let Source::F32(map) = &self.source {
            let (shape, data) = map.get(name).ok_or_else(|| missing(&self.path, name))?;
            let t = with_dtype!(self.dtype, T => Tensor::from_vec(convert_f32::<T>(data).map_err(|d| bad(&self.path, format!("tensor `{name}`: {d}")))?, shape)?);
            return Ok(t);
        }
        let (info, bytes) = self.raw(name)?;
        let n: usize = info.shape.iter().product();
        let t = with_dtype!(self.dtype, T => Tensor::from_vec(convert::<T>(bytes, info.dtype, n).map_err(|d| bad(&self.path, format!("tensor `{name}`: {d}")))?, &info.shape)?);
        Ok(t)
    }

    /// Reads an integer tensor (I64, I32, U32, U8) as `usize` values, e.g. token ids in golden files.
    pub fn get_ids(&self, name: &str) -> Result<Vec<usize>> {
        if let Source::F32(map) = &self.source {
            if map.contains_key(name) {
                return Err(bad(
                    &self.path,
                    format!("tensor `{name}` is F32, not an integer tensor"),
                ));
            }
            return Err(missing(&self.path, name));
        }
        let (info, bytes) = self.raw(name)?;
        let conv = |c: &[u8]| -> i64 {
            match c.len() {
                8 => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
                4 if info.dtype == StDtype::I32 => {
                    i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64
                }
                4 => u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
                _ => c[0] as i64,
            }
        };
        let size = match info.dtype {
            StDtype::I64 => 8,
            StDtype::I32 | StDtype::U32 => 4,
            StDtype::U8 => 1,
            other => {
                return Err(bad(
                    &self.path,
                    format!("tensor `{name}` is {other:?}, not an integer tensor"),
                ))
            }
        };
        bytes
            .chunks_exact(size)
            .map(conv)
            .map(|v| {
                usize::try_from(v)
                    .map_err(|_| bad(&self.path, format!("tensor `{name}` has a negative id {v}")))
            })
            .collect()
    }

    /// Reads `name` and checks its shape.
    pub fn get_shaped(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.get(name)?;
        if t.shape() != shape {
            return Err(bad(
                &self.path,
                format!(
                    "tensor `{name}` has shape {:?} but the config implies {shape:?}",
                    t.shape()
                ),
            ));
        }
        Ok(t)
    }
}

fn convert<T: Float>(bytes: &[u8], dt: StDtype, n: usize) -> std::result::Result<Vec<T>, String> {
    let size = match dt {
        StDtype::F32 => 4,
        StDtype::F16 | StDtype::BF16 => 2,
        StDtype::F64 => 8,
        other => {
            return Err(format!(
                "unsupported dtype {other:?} (F32, F16, BF16 and F64 are supported)"
            ))
        }
    };
    if bytes.len() != n * size {
        return Err(format!("{} bytes for {n} elements of {dt:?}", bytes.len()));
    }
    let mut out = pool::take::<T>(n);
    // One loop per stored dtype (the match stays outside the per-element work), in parallel.
    fn fill<T: Float>(out: &mut [T], bytes: &[u8], size: usize, f: impl Fn(&[u8]) -> f64 + Sync) {
        out.par_chunks_mut(1 << 14)
            .zip(bytes.par_chunks(size << 14))
            .for_each(|(o, b)| {
                for (o, c) in o.iter_mut().zip(b.chunks_exact(size)) {
                    *o = T::from_f64(f(c));
                }
            });
    }
    match dt {
        StDtype::F32 => fill(&mut out, bytes, 4, |c| {
            f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64
        }),
        StDtype::F16 => fill(&mut out, bytes, 2, |c| {
            half::f16::from_le_bytes([c[0], c[1]]).to_f64()
        }),
        StDtype::BF16 => fill(&mut out, bytes, 2, |c| {
            half::bf16::from_le_bytes([c[0], c[1]]).to_f64()
        }),
        _ => fill(&mut out, bytes, 8, |c| {
            f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
        }),
    }
    finite(out)
}

/// `out`, or an error naming the first non-finite element.
fn finite<T: Float>(out: Vec<T>) -> std::result::Result<Vec<T>, String> {
    if let Some(i) = out.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "non-finite value at element {i} (the weights are corrupt or overflowed)"
        ));
    }
    Ok(out)
}

/// In-memory f32 values converted to the compute dtype, with the same non-finite check as
/// [`convert`].
fn convert_f32<T: Float>(data: &[f32]) -> std::result::Result<Vec<T>, String> {
    let mut out = pool::take::<T>(data.len());
    out.par_chunks_mut(1 << 14)
        .zip(data.par_chunks(1 << 14))
        .for_each(|(o, d)| {
            for (o, &v) in o.iter_mut().zip(d) {
                *o = T::from_f64(v as f64);
            }
        });
    finite(out)
}

/// A prefix into a [`Weights`] file, mirroring checkpoint module paths (`vp.pp("encoder.layer.0")`).
pub struct VarPath<'a> {
    pub w: &'a Weights,
    pub prefix: String,
}

impl<'a> VarPath<'a> {
    pub fn root(w: &'a Weights, prefix: &str) -> Self {
        VarPath {
            w,
            prefix: prefix.to_string(),
        }
    }
    /// A sub-path `prefix.name`.
    pub fn pp(&self, name: impl std::fmt::Display) -> VarPath<'a> {
        let prefix = if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        };
        VarPath { w: self.w, prefix }
    }
    fn full(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }
    /// Tensor `prefix.name` with the expected shape; `gamma`/`beta` are accepted for old
    /// LayerNorm checkpoints that use them instead of `weight`/`bias`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let full = self.full(name);
        if !self.w.contains(&full) {
            let alias = match name {
                "weight" => Some("gamma"),
                "bias" => Some("beta"),
                _ => None,
            };
            if let Some(a) = alias.map(|a| self.full(a)).filter(|a| self.w.contains(a)) {
                return self.w.get_shaped(&a, shape);
            }
        }
        self.w.get_shaped(&full, shape)
    }
    pub fn contains(&self, name: &str) -> bool {
        self.w.contains(&self.full(name))
    }
}
