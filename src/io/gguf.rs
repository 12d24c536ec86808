//! GGUF files (llama.cpp's single-file format), memory-mapped: header, metadata, tensor infos and
//! dequantisation of F32, F16, BF16, Q8_0, Q4_0 and Q4_1 tensors to f32.
//!
//! Format: <https://github.com/ggml-org/ggml/blob/master/docs/gguf.md> (versions 2 and 3, little
//! endian). Dequantisation follows gguf-py's `gguf/quants.py` (`dequantize_blocks`) value for value,
//! including its f32 rounding (`d * q + m` as a product then a sum, never fused), so the results
//! are bit-identical to gguf-py's and hence to what transformers loads; `tests/gguf.rs` checks this
//! against gguf-py goldens. Shapes: GGUF lists `ne[0]` (the innermost, contiguous dimension) first;
//! [`GgufTensorInfo::shape`] gives the row-major order used everywhere else (`[rows, cols]`).
//!
//! Every read is bounds-checked: a truncated or corrupt file is an error naming the file (and the
//! tensor or metadata key), never a panic or an out-of-bounds read. Name mapping to Hugging Face
//! checkpoints, the config and the tokenizer live in `gguf_hf.rs`.

use crate::{Error, Result};
use memmap2::Mmap;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"GGUF";
/// `GGML_MAX_DIMS`: a tensor has at most 4 dimensions.
const MAX_DIMS: usize = 4;
const DEFAULT_ALIGNMENT: u64 = 32;

/// One metadata value. Arrays hold values of one type (nested arrays are allowed by the format).
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    Array(Vec<MetaValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl MetaValue {
    /// A non-negative integer of any integer type.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v as u64),
            MetaValue::U16(v) => Some(v as u64),
            MetaValue::U32(v) => Some(v as u64),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) => u64::try_from(v).ok(),
            MetaValue::I16(v) => u64::try_from(v).ok(),
            MetaValue::I32(v) => u64::try_from(v).ok(),
            MetaValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }
    /// A number of any numeric type as f64 (f32 values are widened exactly).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v as f64),
            MetaValue::F64(v) => Some(v),
            MetaValue::I8(v) => Some(v as f64),
            MetaValue::I16(v) => Some(v as f64),
            MetaValue::I32(v) => Some(v as f64),
            MetaValue::I64(v) => Some(v as f64),
            _ => self.as_u64().map(|v| v as f64),
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(b) => Some(b),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }
    }
    /// The value as JSON (integers stay integers, f32 is widened exactly to f64).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            MetaValue::U8(v) => J::from(*v),
            MetaValue::I8(v) => J::from(*v),
            MetaValue::U16(v) => J::from(*v),
            MetaValue::I16(v) => J::from(*v),
            MetaValue::U32(v) => J::from(*v),
            MetaValue::I32(v) => J::from(*v),
            MetaValue::U64(v) => J::from(*v),
            MetaValue::I64(v) => J::from(*v),
            MetaValue::F32(v) => J::from(*v as f64),
            MetaValue::F64(v) => J::from(*v),
            MetaValue::Bool(v) => J::from(*v),
            MetaValue::Str(v) => J::from(v.as_str()),
            MetaValue::Array(a) => J::Array(a.iter().map(MetaValue::to_json).collect()),
        }
    }
}

/// The ggml tensor types gradpath can dequantise; other type ids are kept as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q8_0,
    BF16,
    /// Any other ggml type id (K-quants, IQ*, integer types, ...): readable metadata, but an error
    /// when the tensor data is requested.
    Other(u32),
}

impl GgmlType {
    fn from_id(id: u32) -> GgmlType {
        match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            8 => GgmlType::Q8_0,
            30 => GgmlType::BF16,
            other => GgmlType::Other(other),
        }
    }
    /// ggml's name for the type (`ggml_type_name`).
    pub fn name(&self) -> String {
        let known = |id| -> &'static str {
            match id {
                6 => "Q5_0",
                7 => "Q5_1",
                9 => "Q8_1",
                10 => "Q2_K",
                11 => "Q3_K",
                12 => "Q4_K",
                13 => "Q5_K",
                14 => "Q6_K",
                15 => "Q8_K",
                16 => "IQ2_XXS",
                17 => "IQ2_XS",
                18 => "IQ3_XXS",
                19 => "IQ1_S",
                20 => "IQ4_NL",
                21 => "IQ3_S",
                22 => "IQ2_S",
                23 => "IQ4_XS",
                24 => "I8",
                25 => "I16",
                26 => "I32",
                27 => "I64",
                28 => "F64",
                29 => "IQ1_M",
                34 => "TQ1_0",
                35 => "TQ2_0",
                39 => "MXFP4",
                _ => "",
            }
        };
        match self {
            GgmlType::F32 => "F32".into(),
            GgmlType::F16 => "F16".into(),
            GgmlType::Q4_0 => "Q4_0".into(),
            GgmlType::Q4_1 => "Q4_1".into(),
            GgmlType::Q8_0 => "Q8_0".into(),
            GgmlType::BF16 => "BF16".into(),
            GgmlType::Other(id) if !known(*id).is_empty() => format!("{} (type {id})", known(*id)),
            GgmlType::Other(id) => format!("unknown type {id}"),
        }
    }
    /// (elements per block, bytes per block) of a supported type.
    fn block(&self) -> Option<(usize, usize)> {
        match self {
            GgmlType::F32 => Some((1, 4)),
            GgmlType::F16 | GgmlType::BF16 => Some((1, 2)),
            GgmlType::Q4_0 => Some((32, 18)),
            GgmlType::Q4_1 => Some((32, 20)),
            GgmlType::Q8_0 => Some((32, 34)),
            GgmlType::Other(_) => None,
        }
    }
}

/// One entry of the tensor-info table.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensorInfo {
    pub name: String,
    /// Dimensions as stored: `ne[0]` (innermost) first.
    pub ne: Vec<usize>,
    pub ggml_type: GgmlType,
    /// Byte offset of the data, relative to the start of the data section.
    pub offset: u64,
}

impl GgufTensorInfo {
    /// Row-major shape (outermost first): a GGUF `[576, 49152]` tensor is `[49152, 576]`.
    pub fn shape(&self) -> Vec<usize> {
        self.ne.iter().rev().copied().collect()
    }
    pub fn numel(&self) -> usize {
        self.ne.iter().product()
    }
}

/// A memory-mapped GGUF file with its parsed header.
pub struct GgufFile {
    path: PathBuf,
    mmap: Mmap,
    version: u32,
    metadata: BTreeMap<String, MetaValue>,
    tensors: Vec<GgufTensorInfo>,
    data_start: usize,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// A GGUF file or tensor that cannot be read (malformed header, unsupported type, truncated or
/// non-finite data).
fn bad(path: &Path, detail: impl std::fmt::Display) -> Error {
    Error::BadWeights {
        file: path.display().to_string(),
        detail: detail.to_string(),
    }
}

/// A bounds-checked little-endian reader over the header bytes.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> std::result::Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(e) => {
                let s = &self.buf[self.pos..e];
                self.pos = e;
                Ok(s)
            }
            None => Err(format!(
                "truncated file: {what} needs {n} bytes at offset {} but the file has {} bytes",
                self.pos,
                self.buf.len()
            )),
        }
    }
    fn array<const N: usize>(&mut self, what: &str) -> std::result::Result<[u8; N], String> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    /// A count that must fit in the rest of the file at `min_size` bytes per item (so a corrupt
    /// count cannot trigger a huge allocation).
    fn count(&mut self, min_size: usize, what: &str) -> std::result::Result<usize, String> {
        let n = self.u64(what)?;
        let left = (self.buf.len() - self.pos) as u64;
        if n.saturating_mul(min_size as u64) > left {
            return Err(format!(
                "corrupt file: {what} is {n} but only {left} bytes follow at offset {}",
                self.pos
            ));
        }
        Ok(n as usize)
    }
    fn string(&mut self, what: &str) -> std::result::Result<String, String> {
        let n = self.count(1, what)?;
        let s = self.take(n, what)?;
        String::from_utf8(s.to_vec()).map_err(|_| format!("{what} is not valid UTF-8"))
    }
    fn value(
        &mut self,
        ty: u32,
        what: &str,
        depth: usize,
    ) -> std::result::Result<MetaValue, String> {
        Ok(match ty {
            0 => MetaValue::U8(self.array::<1>(what)?[0]),
            1 => MetaValue::I8(self.array::<1>(what)?[0] as i8),
            2 => MetaValue::U16(u16::from_le_bytes(self.array(what)?)),
            3 => MetaValue::I16(i16::from_le_bytes(self.array(what)?)),
            4 => MetaValue::U32(self.u32(what)?),
            5 => MetaValue::I32(i32::from_le_bytes(self.array(what)?)),
            6 => MetaValue::F32(f32::from_le_bytes(self.array(what)?)),
            7 => match self.array::<1>(what)?[0] {
                0 => MetaValue::Bool(false),
                1 => MetaValue::Bool(true),
                b => return Err(format!("{what}: invalid bool byte {b}")),
            },
            8 => MetaValue::Str(self.string(what)?),
            9 => {
                if depth >= 8 {
                    return Err(format!("{what}: arrays nested too deeply"));
                }
                let inner = self.u32(what)?;
                // every element takes at least one byte (an empty string or array takes 8)
                let n = self.count(1, what)?;
                let mut v = Vec::with_capacity(n.min(1 << 20));
                for _ in 0..n {
                    v.push(self.value(inner, what, depth + 1)?);
                }
                MetaValue::Array(v)
            }
            10 => MetaValue::U64(self.u64(what)?),
            11 => MetaValue::I64(i64::from_le_bytes(self.array(what)?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.array(what)?)),
            t => return Err(format!("{what}: unknown metadata value type {t}")),
        })
    }
}

impl GgufFile {
    /// Maps `path` and parses the header, metadata and tensor infos (tensor data is read lazily).
    pub fn open(path: &Path) -> Result<GgufFile> {
        let mmap = super::mmap_read_only(path)?;
        let (version, metadata, tensors, data_start) =
            parse(&mmap).map_err(|d| bad(path, format!("not a valid GGUF file: {d}")))?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            mmap,
            version,
            metadata,
            tensors,
            data_start,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }
    /// All metadata, by key.
    pub fn metadata(&self) -> &BTreeMap<String, MetaValue> {
        &self.metadata
    }
    pub fn meta(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.get(key)
    }
    /// Tensor infos in file order.
    pub fn tensors(&self) -> &[GgufTensorInfo] {
        &self.tensors
    }
    pub fn tensor_info(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The tensor `name` dequantised to f32, in row-major order of [`GgufTensorInfo::shape`].
    /// Unsupported types and non-finite values are errors naming the tensor.
    pub fn dequantize(&self, name: &str) -> Result<Vec<f32>> {
        let info = self.tensor_info(name).ok_or_else(|| Error::MissingTensor {
            file: self.path.display().to_string(),
            name: name.to_string(),
            detail: String::new(),
        })?;
        self.dequantize_info(info)
    }

    pub(crate) fn dequantize_info(&self, info: &GgufTensorInfo) -> Result<Vec<f32>> {
        let name = &info.name;
        let err = |d: String| bad(&self.path, format!("tensor `{name}`: {d}"));
        let bytes = self.tensor_bytes(info).map_err(err)?;
        let out = dequantize_bytes(bytes, info.ggml_type, info.numel()).map_err(err)?;
        if let Some(i) = out.iter().position(|v| !v.is_finite()) {
            return Err(err(format!(
                "non-finite value at element {i} (the weights are corrupt or overflowed)"
            )));
        }
        Ok(out)
    }

    /// The raw data bytes of a tensor of a supported type, bounds-checked against the file.
    fn tensor_bytes(&self, info: &GgufTensorInfo) -> std::result::Result<&[u8], String> {
        let (bs, ts) = info.ggml_type.block().ok_or_else(|| {
            format!(
                "type {} is not supported (F32, F16, BF16, Q8_0, Q4_0 and Q4_1 are)",
                info.ggml_type.name()
            )
        })?;
        let row = info.ne.first().copied().unwrap_or(1);
        if !row.is_multiple_of(bs) {
            return Err(format!(
                "row length {row} is not a multiple of the {}-element block of {}",
                bs,
                info.ggml_type.name()
            ));
        }
        let nbytes = (info.numel() / bs)
            .checked_mul(ts)
            .ok_or("size overflows")?;
        let start = usize::try_from(info.offset)
            .ok()
            .and_then(|o| o.checked_add(self.data_start));
        start
            .and_then(|s| Some(s..s.checked_add(nbytes)?))
            .and_then(|r| self.mmap.get(r))
            .ok_or_else(|| {
                format!(
                    "data ({nbytes} bytes at data offset {}) lies outside the file ({} bytes; \
                     truncated?)",
                    info.offset,
                    self.mmap.len()
                )
            })
    }
}

type Parsed = (u32, BTreeMap<String, MetaValue>, Vec<GgufTensorInfo>, usize);

fn parse(buf: &[u8]) -> std::result::Result<Parsed, String> {
    let mut c = Cursor { buf, pos: 0 };
    let magic = c.take(4, "the magic")?;
    if magic != MAGIC {
        return Err(format!(
            "bad magic {magic:02x?} (expected \"GGUF\" = {MAGIC:02x?})"
        ));
    }
    let version = c.u32("the version")?;
    match version {
        2 | 3 => {}
        1 => return Err("GGUF version 1 is not supported (versions 2 and 3 are)".into()),
        v if v.swap_bytes() <= 3 => {
            return Err("big-endian GGUF files are not supported".into());
        }
        v => {
            return Err(format!(
                "unknown GGUF version {v} (versions 2 and 3 are supported)"
            ))
        }
    }
    // each tensor info takes at least 8 (name) + 4 + 4 + 8 bytes, each key-value at least 8 + 4
    let n_tensors = c.count(24, "the tensor count")?;
    let n_kv = c.count(12, "the metadata count")?;
    let mut metadata = BTreeMap::new();
    for i in 0..n_kv {
        let key = c.string(&format!("metadata key {i}"))?;
        let ty = c.u32(&format!("type of metadata `{key}`"))?;
        let v = c.value(ty, &format!("metadata `{key}`"), 0)?;
        if metadata.insert(key.clone(), v).is_some() {
            return Err(format!("duplicate metadata key `{key}`"));
        }
    }
    let mut tensors = Vec::with_capacity(n_tensors);
    for i in 0..n_tensors {
        let name = c.string(&format!("name of tensor {i}"))?;
        let what = format!("info of tensor `{name}`");
        let n_dims = c.u32(&what)? as usize;
        if n_dims > MAX_DIMS {
            return Err(format!(
                "tensor `{name}` has {n_dims} dimensions (at most {MAX_DIMS})"
            ));
        }
        let mut ne = Vec::with_capacity(n_dims);
        for _ in 0..n_dims {
            let d = c.u64(&what)?;
            ne.push(
                usize::try_from(d)
                    .map_err(|_| format!("tensor `{name}`: dimension {d} too large"))?,
            );
        }
        ne.iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| format!("tensor `{name}`: element count overflows ({ne:?})"))?;
        let ggml_type = GgmlType::from_id(c.u32(&what)?);
        let offset = c.u64(&what)?;
        tensors.push(GgufTensorInfo {
            name,
            ne,
            ggml_type,
            offset,
        });
    }
    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(MetaValue::U32(a)) if *a != 0 && a.is_power_of_two() => *a as u64,
        Some(v) => return Err(format!("general.alignment {v:?} is not a power-of-two u32")),
    };
    for t in &tensors {
        if t.offset % alignment != 0 {
            return Err(format!(
                "tensor `{}`: data offset {} is not a multiple of the alignment {alignment}",
                t.name, t.offset
            ));
        }
    }
    let data_start = (c.pos as u64).div_ceil(alignment) * alignment;
    let data_start = usize::try_from(data_start).map_err(|_| "data offset overflows")?;
    check_data_ranges(&tensors, buf.len().saturating_sub(data_start))?;
    Ok((version, metadata, tensors, data_start))
}

/// Every tensor's data (of a type gradpath reads) lies inside the data section and no two
/// tensors share bytes: a file whose entries alias one block would otherwise make a small file
/// expand into gigabytes of "weights".
fn check_data_ranges(
    tensors: &[GgufTensorInfo],
    data_len: usize,
) -> std::result::Result<(), String> {
    let mut ranges: Vec<(u64, u64, &str)> = Vec::with_capacity(tensors.len());
    for t in tensors {
        let Some((bs, ts)) = t.ggml_type.block() else {
            continue; // unsupported types are an error when (and if) the tensor is read
        };
        let n = t.ne.iter().product::<usize>() as u64;
        let bytes = (n / bs as u64)
            .checked_mul(ts as u64)
            .ok_or_else(|| format!("tensor `{}`: size overflows", t.name))?;
        let end = t
            .offset
            .checked_add(bytes)
            .filter(|&e| e <= data_len as u64)
            .ok_or_else(|| {
                format!(
                    "tensor `{}`: data ({bytes} bytes at data offset {}) lies outside the file's \
                     {data_len}-byte data section (truncated or damaged file)",
                    t.name, t.offset
                )
            })?;
        if bytes > 0 {
            ranges.push((t.offset, end, &t.name));
        }
    }
    ranges.sort_unstable();
    for w in ranges.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(format!(
                "tensors `{}` and `{}` share data bytes ({}..{} and {}..{}); the file is damaged",
                w[0].2, w[1].2, w[0].0, w[0].1, w[1].0, w[1].1
            ));
        }
    }
    Ok(())
}

fn f16(b: &[u8]) -> f32 {
    half::f16::from_le_bytes([b[0], b[1]]).to_f32()
}

/// Dequantises `n` elements of type `ty` from exactly the bytes they occupy.
fn dequantize_bytes(bytes: &[u8], ty: GgmlType, n: usize) -> std::result::Result<Vec<f32>, String> {
    let (bs, ts) = ty.block().ok_or("unsupported type")?;
    if bytes.len() != n / bs * ts || !n.is_multiple_of(bs) {
        return Err(format!(
            "{} bytes for {n} elements of {}",
            bytes.len(),
            ty.name()
        ));
    }
    let mut out = vec![0f32; n];
    // blocks are independent; 1024 blocks per task keeps the rayon overhead negligible
    let chunk = 1024;
    out.par_chunks_mut(chunk * bs)
        .zip(bytes.par_chunks(chunk * ts))
        .for_each(|(o, b)| {
            for (o, b) in o.chunks_exact_mut(bs).zip(b.chunks_exact(ts)) {
                dequantize_block(ty, b, o);
            }
        });
    Ok(out)
}

/// One block, as gguf-py's `dequantize_blocks`: all arithmetic in f32.
fn dequantize_block(ty: GgmlType, b: &[u8], o: &mut [f32]) {
    match ty {
        GgmlType::F32 => o[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        GgmlType::F16 => o[0] = f16(b),
        GgmlType::BF16 => o[0] = f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16),
        // d: f16 scale, then 32 signed bytes; x = q * d
        GgmlType::Q8_0 => {
            let d = f16(b);
            for (o, &q) in o.iter_mut().zip(&b[2..34]) {
                *o = (q as i8) as f32 * d;
            }
        }
        // d: f16 scale, then 16 bytes: the low nibbles are elements 0..16, the high ones 16..32;
        // x = d * (q - 8)
        GgmlType::Q4_0 => {
            let d = f16(b);
            for (j, &q) in b[2..18].iter().enumerate() {
                o[j] = d * ((q & 0x0f) as i32 - 8) as f32;
                o[j + 16] = d * ((q >> 4) as i32 - 8) as f32;
            }
        }
        // d, m: f16 scale and minimum, then 16 bytes of nibbles as Q4_0; x = d * q + m
        GgmlType::Q4_1 => {
            let (d, m) = (f16(b), f16(&b[2..]));
            for (j, &q) in b[4..20].iter().enumerate() {
                o[j] = d * (q & 0x0f) as f32 + m;
                o[j + 16] = d * (q >> 4) as f32 + m;
            }
        }
        GgmlType::Other(_) => {}
    }
}
