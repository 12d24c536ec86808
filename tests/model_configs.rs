//! Per-family serde configs: HF defaults where HF has them, and a wrongly typed or missing key is
//! an `Error::Config` naming the key, never a silent default.

use gradpath::models::{DecoderConfig, EncoderConfig};
use gradpath::Error;
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let p = format!(
        "{}/tests/fixtures/models/{name}/config.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn with(mut cfg: Value, key: &str, v: Value) -> Value {
    cfg.as_object_mut().unwrap().insert(key.into(), v);
    cfg
}

fn without(mut cfg: Value, key: &str) -> Value {
    cfg.as_object_mut().unwrap().remove(key);
    cfg
}

/// The config error's key, or a panic naming what came back.
fn key_of<T: std::fmt::Debug>(r: gradpath::Result<T>) -> String {
    match r {
        Err(Error::Config { key, .. }) => key,
        other => panic!("expected Error::Config, got {other:?}"),
    }
}

#[test]
fn fixtures_parse_and_defaults_apply() {
    for m in ["tiny-gpt2", "tiny-llama", "tiny-mistral", "tiny-qwen2"] {
        DecoderConfig::from_hf(&fixture(m)).unwrap();
    }
    for m in [
        "tiny-bert",
        "tiny-bert-embed",
        "tiny-roberta",
        "tiny-distilbert",
    ] {
        EncoderConfig::from_hf(&fixture(m)).unwrap();
    }
    // HF defaults for optional settings.
    let c = DecoderConfig::from_hf(&without(fixture("tiny-llama"), "rms_norm_eps")).unwrap();
    assert_eq!(c.norm_eps, 1e-6);
    let c = DecoderConfig::from_hf(&without(fixture("tiny-gpt2"), "n_inner")).unwrap();
    assert_eq!(c.d_mlp, 4 * c.d_model);
    let c = EncoderConfig::from_hf(&without(fixture("tiny-bert"), "layer_norm_eps")).unwrap();
    assert_eq!(c.ln_eps, 1e-12);
    // Llama 3 writes eos_token_id as a list: the first id is used.
    let c = DecoderConfig::from_hf(&with(
        fixture("tiny-llama"),
        "eos_token_id",
        serde_json::json!([7, 9]),
    ))
    .unwrap();
    assert_eq!(c.eos_token_id, Some(7));
}

#[test]
fn wrongly_typed_values_are_errors_naming_the_key() {
    let cases: [(&str, &str, Value); 8] = [
        ("tiny-llama", "num_hidden_layers", "2".into()),
        ("tiny-llama", "rope_theta", "ten thousand".into()),
        ("tiny-llama", "tie_word_embeddings", 1.into()),
        ("tiny-llama", "eos_token_id", "</s>".into()),
        ("tiny-gpt2", "n_embd", 32.5.into()),
        ("tiny-gpt2", "layer_norm_epsilon", "1e-5".into()),
        ("tiny-bert", "layer_norm_eps", "1e-12".into()),
        ("tiny-distilbert", "dim", Value::Null),
    ];
    for (model, key, v) in cases {
        let cfg = with(fixture(model), key, v.clone());
        let got = if model.contains("bert") {
            key_of(EncoderConfig::from_hf(&cfg))
        } else {
            key_of(DecoderConfig::from_hf(&cfg))
        };
        assert_eq!(got, key, "{model}: `{key}` = {v}");
    }
}

#[test]
fn missing_sizes_and_unsupported_settings_name_the_key() {
    assert_eq!(
        key_of(DecoderConfig::from_hf(&without(
            fixture("tiny-llama"),
            "vocab_size"
        ))),
        "vocab_size"
    );
    assert_eq!(
        key_of(EncoderConfig::from_hf(&without(
            fixture("tiny-bert"),
            "hidden_size"
        ))),
        "hidden_size"
    );
    let e = DecoderConfig::from_hf(&with(
        fixture("tiny-llama"),
        "rope_scaling",
        serde_json::json!({"rope_type": "yarn", "factor": 4.0}),
    ))
    .unwrap_err();
    assert!(e.to_string().contains("yarn"), "{e}");
    let e = EncoderConfig::from_hf(&with(fixture("tiny-bert"), "hidden_act", "swiglu".into()))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config { key, .. } if key == "hidden_act")
            && e.to_string().contains("swiglu"),
        "{e}"
    );
    let e = EncoderConfig::from_hf(&with(
        fixture("tiny-bert"),
        "architectures",
        serde_json::json!(["GPTNeoXForCausalLM"]),
    ))
    .unwrap_err();
    assert!(matches!(e, Error::UnsupportedArchitecture { .. }), "{e}");
}
