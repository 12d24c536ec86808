//! A GGUF file seen as a Hugging Face checkpoint: tensor names mapped to HF names (llama-style
//! architectures), q/k rows un-permuted, a `config.json`-like config from the metadata, and the
//! byte-level BPE tokenizer from `tokenizer.ggml.*`. The reference is transformers' GGUF loader
//! (`modeling_gguf_pytorch_utils.py`, `integrations/ggml.py`, transformers 4.57); `docs/GGUF.md`
//! lists what differs (BOS).

use super::gguf::{GgufFile, GgufTensorInfo, MetaValue};
use super::{NamedF32, Tokenizer, Weights};
use crate::{DType, Error, Result};
use serde_json::{json, Value};

/// `general.architecture` values whose tensors map to HF names with [`hf_tensor_name`].
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "mistral", "qwen2"];

/// The HF name of a GGUF tensor of a llama-style model (`blk.3.attn_q.weight` →
/// `model.layers.3.self_attn.q_proj.weight`); `None` for names outside the table.
pub fn hf_tensor_name(gguf: &str) -> Option<String> {
    let (stem, suffix) = gguf.rsplit_once('.')?;
    if suffix != "weight" && suffix != "bias" {
        return None;
    }
    let module = match stem {
        "token_embd" => "model.embed_tokens".to_string(),
        "output_norm" => "model.norm".to_string(),
        "output" => "lm_head".to_string(),
        _ => {
            let rest = stem.strip_prefix("blk.")?;
            let (layer, part) = rest.split_once('.')?;
            let layer: usize = layer.parse().ok()?;
            let hf = match part {
                "attn_norm" => "input_layernorm",
                "ffn_norm" => "post_attention_layernorm",
                "attn_q" => "self_attn.q_proj",
                "attn_k" => "self_attn.k_proj",
                "attn_v" => "self_attn.v_proj",
                "attn_output" => "self_attn.o_proj",
                "ffn_gate" => "mlp.gate_proj",
                "ffn_up" => "mlp.up_proj",
                "ffn_down" => "mlp.down_proj",
                _ => return None,
            };
            format!("model.layers.{layer}.{hf}")
        }
    };
    Some(format!("{module}.{suffix}"))
}

/// Undoes llama.cpp's q/k row permutation (`convert_hf_to_gguf.py` `LlamaModel.permute`:
/// `w.reshape(n_head, 2, rows / n_head / 2, cols).swapaxes(1, 2)`), i.e. within each head the
/// GGUF rows interleave the two rotary halves; HF keeps them as two contiguous halves.
/// `w` is row-major `[rows, cols]` (a bias is `[rows, 1]`).
pub fn unpermute_rows(
    w: &[f32],
    rows: usize,
    n_head: usize,
) -> std::result::Result<Vec<f32>, String> {
    if n_head == 0
        || rows == 0
        || !rows.is_multiple_of(2 * n_head)
        || !w.len().is_multiple_of(rows.max(1))
    {
        return Err(format!(
            "{rows} rows cannot be split into {n_head} heads of two rotary halves"
        ));
    }
    let cols = w.len() / rows;
    let half = rows / n_head / 2;
    let mut out = vec![0f32; w.len()];
    for h in 0..n_head {
        for i in 0..2 {
            for j in 0..half {
                let hf = h * 2 * half + i * half + j;
                let gg = h * 2 * half + j * 2 + i;
                out[hf * cols..(hf + 1) * cols].copy_from_slice(&w[gg * cols..(gg + 1) * cols]);
            }
        }
    }
    Ok(out)
}

impl GgufFile {
    fn file(&self) -> String {
        self.path().display().to_string()
    }
    /// A metadata key that is missing, of the wrong type or out of range.
    fn config_err(&self, key: impl Into<String>, detail: impl std::fmt::Display) -> Error {
        Error::Config {
            file: self.file(),
            key: key.into(),
            detail: detail.to_string(),
        }
    }
    /// Tensors that cannot be served under HF names.
    fn weights_err(&self, detail: impl std::fmt::Display) -> Error {
        Error::BadWeights {
            file: self.file(),
            detail: detail.to_string(),
        }
    }
    /// A tokenizer that cannot be built from the metadata.
    fn tokenizer_err(&self, detail: impl std::fmt::Display) -> Error {
        Error::Tokenizer(format!("{}: {detail}", self.file()))
    }

    /// `general.architecture`, checked against [`SUPPORTED_ARCHITECTURES`].
    pub fn architecture(&self) -> Result<&str> {
        let arch = self
            .meta("general.architecture")
            .and_then(MetaValue::as_str)
            .ok_or_else(|| {
                self.config_err(
                    "general.architecture",
                    "is not in the metadata (a string is needed)",
                )
            })?;
        if !SUPPORTED_ARCHITECTURES.contains(&arch) {
            return Err(Error::UnsupportedArchitecture {
                found: arch.to_string(),
                supported: SUPPORTED_ARCHITECTURES
                    .iter()
                    .map(|a| a.to_string())
                    .collect(),
            });
        }
        Ok(arch)
    }

    fn arch_u64(&self, arch: &str, key: &str) -> Result<Option<u64>> {
        let full = format!("{arch}.{key}");
        match self.meta(&full) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.config_err(&full, format!("is {v:?}, not an integer"))),
        }
    }
    fn arch_req(&self, arch: &str, key: &str) -> Result<u64> {
        self.arch_u64(arch, key)?
            .ok_or_else(|| self.config_err(format!("{arch}.{key}"), "is not in the metadata"))
    }
    fn tok_id(&self, key: &str) -> Option<u64> {
        self.meta(&format!("tokenizer.ggml.{key}"))
            .and_then(MetaValue::as_u64)
    }

    /// `tokenizer.ggml.add_bos_token`, defaulting like llama.cpp (true for sentencepiece `llama`
    /// vocabularies, false for `gpt2` byte-level BPE).
    pub fn add_bos_token(&self) -> bool {
        match self
            .meta("tokenizer.ggml.add_bos_token")
            .and_then(MetaValue::as_bool)
        {
            Some(b) => b,
            None => {
                self.meta("tokenizer.ggml.model")
                    .and_then(MetaValue::as_str)
                    == Some("llama")
            }
        }
    }

    /// A Hugging Face `config.json` equivalent, as transformers derives it from the metadata.
    pub fn hf_config(&self) -> Result<Value> {
        let arch = self.architecture()?;
        let hidden = self.arch_req(arch, "embedding_length")?;
        let heads = self.arch_req(arch, "attention.head_count")?;
        let kv_heads = self
            .arch_u64(arch, "attention.head_count_kv")?
            .unwrap_or(heads);
        if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 {
            return Err(self.config_err(
                format!("{arch}.attention.head_count_kv"),
                format!("{heads} attention heads cannot share {kv_heads} key/value heads"),
            ));
        }
        let head_dim = match arch {
            // transformers reads head_dim from rope.dimension_count for llama and mistral only
            "qwen2" => None,
            _ => self.arch_u64(arch, "rope.dimension_count")?,
        }
        .unwrap_or(hidden / heads);
        let f = |key: &str, default: f64| -> Result<f64> {
            let full = format!("{arch}.{key}");
            match self.meta(&full) {
                None => Ok(default),
                Some(v) => v
                    .as_f64()
                    .ok_or_else(|| self.config_err(&full, format!("is {v:?}, not a number"))),
            }
        };
        let eps_key = format!("{arch}.attention.layer_norm_rms_epsilon");
        let eps = self
            .meta(&eps_key)
            .and_then(MetaValue::as_f64)
            .ok_or_else(|| {
                self.config_err(&eps_key, "is not in the metadata (a number is needed)")
            })?;
        let vocab = match self.arch_u64(arch, "vocab_size")? {
            Some(v) => v,
            None => self
                .meta("tokenizer.ggml.tokens")
                .and_then(MetaValue::as_array)
                .map(|a| a.len() as u64)
                .ok_or_else(|| {
                    self.config_err(
                        format!("{arch}.vocab_size"),
                        "is not in the metadata, and there is no `tokenizer.ggml.tokens` to count",
                    )
                })?,
        };
        let rope_scaling = match self
            .meta(&format!("{arch}.rope.scaling.type"))
            .and_then(MetaValue::as_str)
        {
            None | Some("none") => Value::Null,
            Some(kind) => {
                let mut m = json!({ "rope_type": kind, "factor": f("rope.scaling.factor", 1.0)? });
                if let Some(n) = self.arch_u64(arch, "rope.scaling.original_context_length")? {
                    m["original_max_position_embeddings"] = json!(n);
                }
                m
            }
        };
        let (class, model_type) = match arch {
            "qwen2" => ("Qwen2ForCausalLM", "qwen2"),
            "mistral" => ("MistralForCausalLM", "mistral"),
            _ => ("LlamaForCausalLM", "llama"),
        };
        let mut cfg = json!({
            "architectures": [class],
            "model_type": model_type,
            "hidden_size": hidden,
            "intermediate_size": self.arch_req(arch, "feed_forward_length")?,
            "num_hidden_layers": self.arch_req(arch, "block_count")?,
            "num_attention_heads": heads,
            "num_key_value_heads": kv_heads,
            "head_dim": head_dim,
            "rms_norm_eps": eps,
            "rope_theta": f("rope.freq_base", 10000.0)?,
            "max_position_embeddings": self.arch_u64(arch, "context_length")?.unwrap_or(2048),
            "vocab_size": vocab,
            "tie_word_embeddings": self.tensor_info("output.weight").is_none(),
            "hidden_act": "silu",
            "rope_scaling": rope_scaling,
            "add_bos_token": self.add_bos_token(),
        });
        for (key, field) in [
            ("bos_token_id", "bos_token_id"),
            ("eos_token_id", "eos_token_id"),
            ("padding_token_id", "pad_token_id"),
            ("unknown_token_id", "unk_token_id"),
        ] {
            cfg[field] = self.tok_id(key).map_or(Value::Null, Value::from);
        }
        Ok(cfg)
    }

    /// Every tensor under its HF name, dequantised to f32 with its row-major HF shape, q/k rows
    /// un-permuted for llama and mistral. Unknown tensor names are an error (nothing is dropped
    /// silently) except `rope_freqs.weight`, which transformers also ignores (llama 3 rope
    /// scaling, described by `rope_scaling` in the config).
    pub fn hf_tensors(&self) -> Result<Vec<NamedF32>> {
        let arch = self.architecture()?;
        let cfg = self.hf_config()?;
        let permuted = arch != "qwen2";
        let heads = cfg["num_attention_heads"].as_u64().unwrap_or(0) as usize;
        let kv_heads = cfg["num_key_value_heads"].as_u64().unwrap_or(0) as usize;
        let mut out = Vec::with_capacity(self.tensors().len());
        for info in self.tensors() {
            if info.name == "rope_freqs.weight" {
                continue;
            }
            let hf = hf_tensor_name(&info.name).ok_or_else(|| {
                self.weights_err(format!(
                    "tensor `{}` has no Hugging Face name for architecture `{arch}`",
                    info.name
                ))
            })?;
            let mut data = self.dequantize_info(info)?;
            let shape = info.shape();
            if permuted {
                let n_head = if info.name.contains(".attn_q.") {
                    Some(heads)
                } else if info.name.contains(".attn_k.") {
                    Some(kv_heads)
                } else {
                    None
                };
                if let Some(n) = n_head {
                    data = unpermute(info, &data, n)
                        .map_err(|d| self.weights_err(format!("tensor `{}`: {d}", info.name)))?;
                }
            }
            out.push((hf, shape, data));
        }
        Ok(out)
    }

    /// The HF-named tensors as [`Weights`] converted to `dtype` on read.
    pub fn weights(&self, dtype: DType) -> Result<Weights> {
        Weights::from_f32_tensors(self.path(), self.hf_tensors()?, dtype)
    }

    /// `tokenizer.chat_template` with the special tokens named by `tokenizer.ggml.*_token_id`
    /// (`None` without a template).
    pub fn chat_template(&self) -> Option<crate::io::ChatTemplate> {
        let source = self.meta("tokenizer.chat_template")?.as_str()?.to_string();
        let tokens = self
            .meta("tokenizer.ggml.tokens")
            .and_then(MetaValue::as_array);
        let mut special = std::collections::BTreeMap::new();
        for (name, key) in [
            ("bos_token", "bos_token_id"),
            ("eos_token", "eos_token_id"),
            ("unk_token", "unknown_token_id"),
            ("pad_token", "padding_token_id"),
        ] {
            let tok = self
                .tok_id(key)
                .and_then(|id| tokens?.get(id as usize)?.as_str().map(String::from));
            if let Some(t) = tok {
                special.insert(name.to_string(), t);
            }
        }
        Some(crate::io::ChatTemplate::new(source, special))
    }

    /// The tokenizer described by `tokenizer.ggml.*`. Only byte-level BPE (`gpt2`) vocabularies
    /// are supported so far.
    pub fn tokenizer(&self) -> Result<Tokenizer> {
        let model = self
            .meta("tokenizer.ggml.model")
            .and_then(MetaValue::as_str)
            .ok_or_else(|| {
                self.config_err(
                    "tokenizer.ggml.model",
                    "is not in the metadata (a string is needed)",
                )
            })?;
        if model != "gpt2" {
            return Err(self.tokenizer_err(format!(
                "tokenizer model `{model}` is not supported yet (only `gpt2` byte-level BPE is)"
            )));
        }
        let strings = |key: &str| -> Result<Vec<&str>> {
            let full = format!("tokenizer.ggml.{key}");
            let arr = self
                .meta(&full)
                .and_then(MetaValue::as_array)
                .ok_or_else(|| {
                    self.config_err(&full, "is not in the metadata (an array is needed)")
                })?;
            arr.iter()
                .map(|v| {
                    v.as_str()
                        .ok_or_else(|| self.config_err(&full, format!("holds a non-string {v:?}")))
                })
                .collect()
        };
        let tokens = strings("tokens")?;
        let merges = strings("merges")?;
        let types: Vec<u64> = match self.meta("tokenizer.ggml.token_type") {
            None => vec![1; tokens.len()],
            Some(v) => v
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .map(MetaValue::as_u64)
                        .collect::<Option<Vec<u64>>>()
                })
                .filter(|t| t.len() == tokens.len())
                .ok_or_else(|| {
                    self.config_err(
                        "tokenizer.ggml.token_type",
                        format!("is not an integer array of {} entries", tokens.len()),
                    )
                })?,
        };
        let token = |key: &str| -> Result<Option<&str>> {
            match self.tok_id(key) {
                None => Ok(None),
                Some(id) => tokens.get(id as usize).copied().map(Some).ok_or_else(|| {
                    self.config_err(
                        format!("tokenizer.ggml.{key}"),
                        format!("= {id} is outside the vocabulary of {}", tokens.len()),
                    )
                }),
            }
        };
        let add_eos = self
            .meta("tokenizer.ggml.add_eos_token")
            .and_then(MetaValue::as_bool)
            .unwrap_or(false);
        let spec = BpeSpec {
            tokens: &tokens,
            types: &types,
            merges: &merges,
            unk: token("unknown_token_id")?,
            bos: if self.add_bos_token() {
                token("bos_token_id")?
            } else {
                None
            },
            eos: if add_eos {
                token("eos_token_id")?
            } else {
                None
            },
        };
        build_bpe(&spec).map_err(|d| self.tokenizer_err(format!("cannot build the tokenizer: {d}")))
    }
}

fn unpermute(
    info: &GgufTensorInfo,
    w: &[f32],
    n_head: usize,
) -> std::result::Result<Vec<f32>, String> {
    let rows = info.shape().first().copied().unwrap_or(1);
    unpermute_rows(w, rows, n_head)
}

struct BpeSpec<'a> {
    tokens: &'a [&'a str],
    types: &'a [u64],
    merges: &'a [&'a str],
    unk: Option<&'a str>,
    /// Prepended / appended by the post-processor when set.
    bos: Option<&'a str>,
    eos: Option<&'a str>,
}

/// Token types of llama.cpp (`llama_token_type`).
const TOKEN_CONTROL: u64 = 3;
const TOKEN_USER_DEFINED: u64 = 4;

/// Byte-level BPE as transformers' `GGUFGPTConverter` builds it: BPE over the vocabulary and
/// merges (byte fallback on, unknown pieces fused), GPT-2 byte-level pre-tokenizer without a prefix
/// space, byte-level decoder, no normaliser; control tokens become special added tokens and
/// user-defined ones plain added tokens.
fn build_bpe(s: &BpeSpec) -> std::result::Result<Tokenizer, String> {
    use tokenizers::models::bpe::BPE;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::processors::template::TemplateProcessing;
    use tokenizers::AddedToken;

    let mut vocab = tokenizers::models::bpe::Vocab::default();
    for (i, t) in s.tokens.iter().enumerate() {
        // a repeated token keeps its first id, as the vocabulary lookup of llama.cpp does
        vocab.entry(t.to_string()).or_insert(i as u32);
    }
    let merges = s
        .merges
        .iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| format!("merge {m:?} is not two tokens separated by a space"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .fuse_unk(true)
        .byte_fallback(true);
    if let Some(u) = s.unk {
        builder = builder.unk_token(u.to_string());
    }
    let bpe = builder.build().map_err(|e| e.to_string())?;
    let mut tk = tokenizers::Tokenizer::new(bpe);
    tk.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tk.with_decoder(Some(ByteLevel::new(false, true, true)));
    let added = |ty: u64, special: bool| -> Vec<AddedToken> {
        s.tokens
            .iter()
            .zip(s.types)
            .filter(|(_, &t)| t == ty)
            .map(|(tok, _)| AddedToken::from(tok.to_string(), special).normalized(false))
            .collect()
    };
    tk.add_special_tokens(&added(TOKEN_CONTROL, true));
    tk.add_tokens(&added(TOKEN_USER_DEFINED, false));
    if s.bos.is_some() || s.eos.is_some() {
        // HF LlamaTokenizerFast.update_post_processor: "<bos>:0 $A:0 <eos>:0", pair "... <bos>:1 $B:1 <eos>:1"
        let seq = |x: &str, t: u32| -> String {
            let mut v = Vec::new();
            if let Some(b) = s.bos {
                v.push(format!("{b}:{t}"));
            }
            v.push(format!("${x}:{t}"));
            if let Some(e) = s.eos {
                v.push(format!("{e}:{t}"));
            }
            v.join(" ")
        };
        let mut specials = Vec::new();
        for t in [s.bos, s.eos].into_iter().flatten() {
            let id = tk
                .token_to_id(t)
                .ok_or_else(|| format!("{t} not in the vocabulary"))?;
            if !specials.iter().any(|(n, _)| n == t) {
                specials.push((t.to_string(), id));
            }
        }
        let post = TemplateProcessing::builder()
            .try_single(seq("A", 0))
            .map_err(|e| e.to_string())?
            .try_pair(format!("{} {}", seq("A", 0), seq("B", 1)))
            .map_err(|e| e.to_string())?
            .special_tokens(specials)
            .build()
            .map_err(|e| e.to_string())?;
        tk.with_post_processor(Some(post));
    }
    Tokenizer::from_tokenizers(tk).map_err(|e| e.to_string())
}
