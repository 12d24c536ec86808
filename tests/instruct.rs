//! Instruct models as people use them (issue 15): readable tokens (`tokens_display`), chat
//! templates, answer-level and contrastive targets.

use gradpath::io::{display_tokens, printable, TokenSpelling, Tokenizer};
use gradpath::models;
use gradpath::report::{aggregate_words, Aggregate};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn smollm2() -> PathBuf {
    let d = root().join("models/SmolLM2-135M-Instruct");
    assert!(
        d.join("SmolLM2-135M-Instruct.Q4_1.gguf").exists(),
        "{} is missing: run scripts/fetch-models.sh (scripts/test.sh does it)",
        d.display()
    );
    d
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn byte_level_tokens_decode_to_text() {
    // "Сколько\n many": С = D0 A1 is split over two tokens ("Ð" = 0xD0, "¡" = 0xA1)
    let toks = strings(&[
        "<|im_start|>",
        "Ð",
        "¡",
        "ÐºÐ¾Ð»",
        "Ċ",
        "Ġmany",
        "<|im_end|>",
    ]);
    let special = [true, false, false, false, false, false, true];
    let d = display_tokens(TokenSpelling::ByteLevel, &toks, &special);
    assert_eq!(
        d,
        strings(&["<|im_start|>", "С", "", "кол", "\n", " many", "<|im_end|>"])
    );
    // a sequence cut inside a character keeps the byte visible
    let d = display_tokens(TokenSpelling::ByteLevel, &strings(&["ĠÐ"]), &[false]);
    assert_eq!(d, strings(&[" <0xD0>"]));
    assert_eq!(printable("\n"), "⏎");
    assert_eq!(printable(""), "·");
}

#[test]
fn sentencepiece_tokens_decode_to_text() {
    let toks = strings(&["<s>", "▁Hello", "▁", "<0xD0>", "<0xA1>", "<0x0A>", "ing"]);
    let special = [true, false, false, false, false, false, false];
    let d = display_tokens(TokenSpelling::SentencePiece, &toks, &special);
    assert_eq!(d, strings(&["<s>", " Hello", " ", "С", "", "\n", "ing"]));
}

#[test]
fn tokenizers_know_their_spelling() {
    let m = root().join("tests/fixtures/models");
    let llama = models::load_tokenizer(&m.join("tiny-llama")).unwrap();
    assert_eq!(llama.spelling(), TokenSpelling::ByteLevel);
    let bert = models::load_tokenizer(&m.join("tiny-bert")).unwrap();
    assert_eq!(bert.spelling(), TokenSpelling::Plain);
    let smol = models::load_tokenizer(&smollm2()).unwrap();
    assert_eq!(smol.spelling(), TokenSpelling::ByteLevel);
}

/// Every non-special display token concatenated is the text, for Cyrillic (two-byte characters
/// that byte-level BPE splits across tokens), for newlines and for English.
#[test]
fn smollm2_display_tokens_concatenate_to_the_text() {
    let tok: Tokenizer = models::load_tokenizer(&smollm2()).unwrap();
    for text in [
        "Сколько планет в Солнечной системе?",
        "How many planets are in the Solar System?\nAnswer: eight",
        "naïve café — 日本語",
    ] {
        let e = tok.encode(text, None).unwrap();
        let d = tok.display_tokens(&e.tokens, &e.special);
        assert_eq!(d.len(), e.len());
        let joined: String = d
            .iter()
            .zip(&e.special)
            .filter(|(_, &s)| !s)
            .map(|(t, _)| t.as_str())
            .collect();
        assert_eq!(joined, text);
        // no raw byte-level spelling is left
        assert!(
            d.iter().all(|t| !t.contains('Ġ') && !t.contains('Ð')),
            "{d:?}"
        );
    }
    // the Russian sentence splits "С" over two tokens: the character sits on the first
    let e = tok.encode("Сколько", None).unwrap();
    let d = tok.display_tokens(&e.tokens, &e.special);
    assert_eq!(e.tokens[..2], strings(&["Ð", "¡"])[..]);
    assert_eq!(d[..2], strings(&["С", ""])[..]);
    assert_eq!(tok.display_token(e.ids[2]).as_ref(), Some(&d[2]));
    assert!(d[2].chars().all(|c| ('а'..='я').contains(&c)), "{d:?}");
}

/// `--words` on Cyrillic: the words are the text's words, and their scores the sums.
#[test]
fn words_of_a_russian_sentence() {
    let tok = models::load_tokenizer(&smollm2()).unwrap();
    let text = "Сколько планет в Солнечной системе?";
    let e = tok.encode(text, None).unwrap();
    let d = tok.display_tokens(&e.tokens, &e.special);
    let scores: Vec<f64> = (0..e.len()).map(|i| i as f64).collect();
    let w = aggregate_words(
        text,
        &d,
        &e.words,
        &e.offsets,
        &e.type_ids,
        &scores,
        Aggregate::Sum,
    );
    assert_eq!(
        w.labels,
        strings(&["Сколько", " планет", " в", " Солнечной", " системе", "?"])
    );
    assert_eq!(w.scores.iter().sum::<f64>(), scores.iter().sum::<f64>());
    // the label concatenation is the text, word by word
    assert_eq!(w.labels.concat(), text);
}

// ----------------------------------------------------------------------------------------------
// Chat templates
// ----------------------------------------------------------------------------------------------

use gradpath::explain::{
    AblateOptions, AttAttrOptions, ConductanceOptions, Explainer, IgOptions, Input, LayerIgOptions,
    Options, PathOptions, Quadrature, SaliencyOptions, SensitivityOptions,
};
use gradpath::io::{ChatTemplate, Message, ModelDir};
use gradpath::{DType, Error};
use serde_json::Value;

fn json(path: &str) -> Value {
    let p = root().join(path);
    let text = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (see tests/reference/)", p.display()));
    serde_json::from_str(&text).unwrap()
}

/// gradpath's rendering (minijinja) against transformers' `apply_chat_template` (Jinja2), byte
/// for byte, and the token ids of the rendered prompt, on SmolLM2's template (GGUF metadata),
/// the tiny fixture's (tokenizer_config.json) and a multi-line template; template errors
/// (`raise_exception`) where transformers raises. Goldens: tests/reference/make_chat_goldens.py.
#[test]
fn chat_templates_render_like_transformers() {
    let g = json("tests/fixtures/chat_goldens.json");
    let cases = g["cases"].as_array().unwrap();
    assert!(cases.len() >= 30);
    let (mut rendered, mut failed) = (0, 0);
    for c in cases {
        let model = root().join(c["model"].as_str().unwrap());
        let md = ModelDir::open(&model).unwrap();
        let mut t = md
            .chat_template()
            .unwrap()
            .expect("the model has a template");
        if let Some(f) = c["template_file"].as_str() {
            t.source = std::fs::read_to_string(root().join(f)).unwrap();
        }
        let messages: Vec<Message> = c["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| Message::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
            .collect();
        let gen = c["add_generation_prompt"].as_bool().unwrap();
        let what = format!(
            "{} {:?} {}",
            c["model"], c["template_file"], c["conversation"]
        );
        match c["text"].as_str() {
            Some(want) => {
                let got = t
                    .render(&messages, gen)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(got, want, "{what} gen={gen}");
                let tok = md.tokenizer().unwrap();
                let ids = tok.encode_with(&got, None, false).unwrap().ids;
                let want_ids: Vec<usize> = c["ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as usize)
                    .collect();
                assert_eq!(ids, want_ids, "{what} gen={gen}");
                rendered += 1;
            }
            None => {
                let err = c["error"].as_str().unwrap();
                match t.render(&messages, gen) {
                    Err(Error::ChatTemplate(m)) => assert!(m.contains(err), "{what}: {m} vs {err}"),
                    other => panic!("{what}: expected the template's error {err:?}, got {other:?}"),
                }
                failed += 1;
            }
        }
    }
    assert!(
        rendered >= 20 && failed >= 4,
        "{rendered} rendered, {failed} errors"
    );
}

#[test]
fn a_model_without_a_template_is_a_typed_error() {
    let ex = Explainer::load(
        root().join("tests/fixtures/models/tiny-llama"),
        Options::default(),
    )
    .unwrap();
    assert!(ex.chat_template().is_none());
    match ex.ig(&Input::text("the quick").chat(), &IgOptions::default()) {
        Err(Error::NoChatTemplate { .. }) => {}
        other => panic!("expected NoChatTemplate, got {:?}", other.map(|_| ())),
    }
    // a template that does not parse
    let t = ChatTemplate::new("{% for m in messages %}", Default::default());
    assert!(matches!(
        t.render(&ChatTemplate::messages("x", None), true),
        Err(Error::ChatTemplate(_))
    ));
}

/// With the chat template, the template's special tokens stay in the pad baseline (like BOS)
/// and the JSON keeps the user's text beside the rendered prompt.
#[test]
fn chat_prompt_keeps_its_special_tokens_in_the_baseline() {
    let ex = Explainer::load(
        root().join("tests/fixtures/models/tiny-llama-chat"),
        Options::default(),
    )
    .unwrap();
    let r = ex
        .ig(
            &Input::text("what does the lazy dog do?").chat(),
            &IgOptions::default(),
        )
        .unwrap();
    let h = &r.header;
    assert!(h.text.starts_with("<s><|user|>\n"), "{:?}", h.text);
    assert!(h.text.ends_with("<|assistant|>\n"));
    let b = h.baseline_ids.as_ref().unwrap();
    let mut kept = 0;
    assert_eq!(b.len(), h.ids.len());
    for ((&bi, &id), &special) in b.iter().zip(&h.ids).zip(&h.special) {
        if special {
            assert_eq!(bi, id);
            kept += 1;
        } else {
            assert_eq!(bi, 2, "pad");
        }
    }
    assert_eq!(kept, 2, "<s> and <|endoftext|>: {:?}", h.tokens);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["chat"]["user"], "what does the lazy dog do?");
    assert_eq!(v["tokens_display"].as_array().unwrap().len(), h.ids.len());
}

/// `generate-attr --chat`: the prompt is the rendered template (the same ids as a chat IG), the
/// generated tokens are those greedy decoding gives after it, and the template's special tokens
/// stay in the baseline, so they get exactly zero attribution at every step.
#[test]
fn generation_with_the_chat_template() {
    use gradpath::explain::{Chat, GenerateOptions};
    let ex = f64_explainer("tiny-llama-chat");
    let user = "what does the lazy dog do?";
    let (rendered, e) = ex.encode_chat(user, None).unwrap();
    let g = ex
        .generate(
            user,
            &GenerateOptions {
                max_new_tokens: 3,
                chat: Some(Chat::default()),
                ..GenerateOptions::default()
            },
        )
        .unwrap();
    assert_eq!(g.text, rendered);
    assert_eq!(g.prompt_ids, e.ids);
    // the same continuation as generating after the rendered text without the template flag
    let plain = ex
        .generate(
            &rendered,
            &GenerateOptions {
                max_new_tokens: 3,
                ..GenerateOptions::default()
            },
        )
        .unwrap();
    assert_eq!(g.generated_ids, plain.generated_ids);
    let specials: Vec<usize> = (0..e.len()).filter(|&i| e.special[i]).collect();
    assert!(!specials.is_empty());
    for row in &g.matrix {
        for &i in &specials {
            assert_eq!(row[i], Some(0.0), "special token {i} moved");
        }
    }
    let v = serde_json::to_value(&g).unwrap();
    assert_eq!(v["chat"]["user"], user);
    assert!(serde_json::to_value(&plain).unwrap().get("chat").is_none());
}

// ----------------------------------------------------------------------------------------------
// Answer and contrast targets
// ----------------------------------------------------------------------------------------------

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn input_of(c: &Value) -> Input {
    let mut i = Input::text(c["text"].as_str().unwrap()).answer(c["answer"].as_str().unwrap());
    if c["chat"].as_bool().unwrap() {
        i = i.chat();
    }
    if let Some(k) = c["contrast"].as_str() {
        i = i.contrast(k);
    }
    i
}

fn f64_explainer(model: &str) -> Explainer {
    Explainer::load(
        root().join("tests/fixtures/models").join(model),
        Options {
            dtype: DType::F64,
            ..Options::default()
        },
    )
    .unwrap()
}

/// Token IG of an answer / contrast target against the hand-written PyTorch reference
/// (tests/reference/make_instruct_goldens.py), f64, to 1e-8 of the largest attribution: the
/// attributions, F at both ends, every term at both ends, the sequence and baseline ids.
#[test]
fn answer_targets_match_pytorch() {
    let g = json("tests/fixtures/instruct_goldens.json");
    let cases = g["cases"].as_array().unwrap();
    assert!(cases.len() >= 9);
    for c in cases {
        let model = c["model"].as_str().unwrap();
        let what = format!(
            "{model} {} answer {} contrast {}",
            c["baseline"], c["answer"], c["contrast"]
        );
        let ex = f64_explainer(model);
        let o = IgOptions {
            path: PathOptions {
                baseline: gradpath::attribution::Baseline::parse(c["baseline"].as_str().unwrap())
                    .unwrap(),
                quadrature: Quadrature {
                    steps: c["steps"].as_u64().unwrap() as usize,
                    ..Quadrature::default()
                },
            },
            adaptive: None,
        };
        let r = ex
            .ig(&input_of(c), &o)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["ids"], c["ids"], "{what}");
        if !c["baseline_ids"].is_null() {
            assert_eq!(v["baseline_ids"], c["baseline_ids"], "{what}");
        }
        assert_eq!(v["target"]["type"], "answer");
        assert_eq!(
            v["target"]["contrast_branch"], c["contrast_branch"],
            "{what}"
        );
        let terms = v["target"]["terms"].as_array().unwrap();
        let want_terms = c["terms"].as_array().unwrap();
        assert_eq!(terms.len(), want_terms.len(), "{what}");
        for (t, w) in terms.iter().zip(want_terms) {
            for k in ["position", "token", "kind", "weight"] {
                assert_eq!(t[k], w[k], "{what} term {k}");
            }
        }
        let want = f64s(&c["attributions"]);
        let got = &r.attributions;
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let err = got
            .iter()
            .zip(&want)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        eprintln!(
            "{what}: max abs diff {err:.2e} (scale {scale:.3}), delta {:.3e}",
            r.delta
        );
        assert!(
            err <= 1e-8 * scale,
            "{what}: attributions differ by {err:e} (scale {scale})"
        );
        let fs = [
            (r.f_input, c["f_input"].as_f64().unwrap()),
            (r.f_baseline, c["f_baseline"].as_f64().unwrap()),
        ];
        for (a, b) in fs {
            assert!(
                (a - b).abs() <= 1e-8 * b.abs().max(1.0),
                "{what}: F {a} vs {b}"
            );
        }
        let at = v["answer_terms"].as_array().unwrap();
        for (i, t) in at.iter().enumerate() {
            let (fi, fb) = (
                t["f_input"].as_f64().unwrap(),
                t["f_baseline"].as_f64().unwrap(),
            );
            let (wi, wb) = (
                c["term_input"][i].as_f64().unwrap(),
                c["term_baseline"][i].as_f64().unwrap(),
            );
            assert!(
                (fi - wi).abs() <= 1e-8 * wi.abs().max(1.0),
                "{what} term {i}"
            );
            assert!(
                (fb - wb).abs() <= 1e-8 * wb.abs().max(1.0),
                "{what} term {i}"
            );
        }
        // the answer's own positions are fixed: exactly zero attribution
        let n_prompt = v["target"]["prompt_tokens"].as_u64().unwrap() as usize;
        assert!(got[n_prompt..].iter().all(|&a| a == 0.0), "{what}");
        // the same delta as the reference's
        let d = c["delta"].as_f64().unwrap();
        assert!(
            (r.delta - d).abs() <= 1e-8 * scale,
            "{what}: delta {} vs {d}",
            r.delta
        );
    }
}

/// Completeness holds for the sum: with enough points the delta vanishes (f64, tiny Llama).
#[test]
fn answer_target_is_complete() {
    let ex = f64_explainer("tiny-llama");
    let o = IgOptions {
        path: PathOptions {
            quadrature: Quadrature {
                steps: 64,
                ..Quadrature::default()
            },
            ..PathOptions::default()
        },
        adaptive: None,
    };
    for input in [
        Input::text("the quick brown fox jumps over the").answer(" lazy dog."),
        Input::text("the quick brown fox jumps over the")
            .answer(" lazy dog.")
            .contrast(" lazy do"),
    ] {
        let r = ex.ig(&input, &o).unwrap();
        assert!(
            r.relative_delta < 1e-6,
            "relative delta {} (F {} → {})",
            r.relative_delta,
            r.f_baseline,
            r.f_input
        );
        // F is the weighted sum of the terms
        let terms = r.header.answer_terms.as_ref().unwrap();
        let f: f64 = terms.iter().map(|t| t.weight * t.f_input).sum();
        assert!((f - r.f_input).abs() < 1e-10);
    }
}

/// Every method that takes a target takes an answer target: layer IG and conductance are
/// complete for it, saliency and ablation run on the same F, and the answer's positions are
/// never moved (zero ablation effect, zero attribution).
#[test]
fn answer_targets_work_in_every_method() {
    let ex = f64_explainer("tiny-llama");
    let input = Input::text("the quick brown fox jumps over the")
        .answer(" lazy dog.")
        .contrast(" lazy do");
    let q = Quadrature {
        steps: 64,
        ..Quadrature::default()
    };
    let ig = ex
        .ig(
            &input,
            &IgOptions {
                path: PathOptions {
                    quadrature: q,
                    ..PathOptions::default()
                },
                adaptive: None,
            },
        )
        .unwrap();
    let n_prompt = ig.header.answer_terms.as_ref().unwrap()[0].position + 1;
    let mut lo = LayerIgOptions::default();
    lo.path.quadrature = q;
    lo.boundary = "blocks.0.hook_resid_post".into();
    let l = ex.layer_ig(&input, &lo).unwrap();
    assert!(
        l.relative_delta.unwrap() < 1e-6,
        "layer IG {:?}",
        l.relative_delta
    );
    assert!((l.f_input - ig.f_input).abs() < 1e-10);
    // conductance (gradient at the left point × the layer's difference) with both path ends
    // among its nodes: the delta is its discretisation error and falls as the steps grow
    let cond = |steps: usize| {
        let mut co = ConductanceOptions::default();
        co.path.quadrature = Quadrature {
            rule: gradpath::integrate::Rule::RiemannTrapezoid,
            steps,
        };
        let c = ex.conductance(&input, &co).unwrap();
        assert!((c.f_input - ig.f_input).abs() < 1e-10);
        c.layers
            .iter()
            .map(|l| l.relative_delta.unwrap())
            .fold(0.0, f64::max)
    };
    let (r20, r200) = (cond(20), cond(200));
    assert!(
        r200 < r20 / 5.0,
        "conductance relative delta {r20} -> {r200}"
    );
    let s = ex.saliency(&input, &SaliencyOptions::default()).unwrap();
    assert!((s.f_input - ig.f_input).abs() < 1e-10);
    for zero in [false, true] {
        let a = ex
            .ablate(
                &input,
                &AblateOptions {
                    zero,
                    ..AblateOptions::default()
                },
            )
            .unwrap();
        assert!(
            a.attributions[n_prompt..].iter().all(|&v| v == 0.0),
            "{:?}",
            a.attributions
        );
        assert!(a.attributions[..n_prompt].iter().any(|&v| v != 0.0));
    }
    // ATTATTR explains the same F through every layer's attention pattern, complete per layer
    let aa = ex
        .attattr(
            &input,
            &AttAttrOptions {
                quadrature: Quadrature {
                    rule: gradpath::integrate::Rule::GaussLegendre,
                    steps: 64,
                },
                ..AttAttrOptions::default()
            },
        )
        .unwrap();
    assert_eq!(
        aa.header.answer_terms.as_ref().unwrap().len(),
        ig.header.answer_terms.as_ref().unwrap().len()
    );
    for l in &aa.layers {
        assert!((l.f_input - ig.f_input).abs() < 1e-10);
        assert!(
            l.relative_delta < 1e-6,
            "ATTATTR layer {}: {}",
            l.layer,
            l.relative_delta
        );
    }
    // noise sensitivity perturbs the prompt only: the answer is part of the target
    let sens = ex
        .sensitivity(&input, &SensitivityOptions::default())
        .unwrap();
    assert!((sens.f_input - ig.f_input).abs() < 1e-10);
    assert!(
        sens.std[n_prompt..].iter().all(|&v| v == 0.0),
        "{:?}",
        sens.std
    );
    assert!(sens.std[..n_prompt].iter().any(|&v| v > 0.0));
}

#[test]
fn answer_target_errors_are_typed() {
    let ex = f64_explainer("tiny-llama");
    let base = Input::text("the quick brown fox jumps over the");
    // contrast without an answer
    let mut i = base.clone();
    i.target.contrast = Some(" lazy".into());
    assert!(matches!(
        ex.ig(&i, &IgOptions::default()),
        Err(Error::BadValue {
            name: "contrast",
            ..
        })
    ));
    // a contrast equal to the answer explains nothing
    let i = base.clone().answer(" lazy dog.").contrast(" lazy dog.");
    assert!(matches!(
        ex.ig(&i, &IgOptions::default()),
        Err(Error::BadValue {
            name: "contrast",
            ..
        })
    ));
    // an answer replaces the next-token target
    let i = base.clone().answer(" lazy").next_token(" lazy");
    assert!(matches!(
        ex.ig(&i, &IgOptions::default()),
        Err(Error::BadValue { name: "answer", .. })
    ));
    // encoders take no answer
    let enc = Explainer::load(
        root().join("tests/fixtures/models/tiny-bert"),
        Options::default(),
    )
    .unwrap();
    assert!(matches!(
        enc.ig(&Input::text("a b").answer("c"), &IgOptions::default()),
        Err(Error::TargetMismatch(_))
    ));
}

/// `--per-token-paths` against Captum's own `LLMGradientAttribution` + `LayerIntegratedGradients`
/// (tests/reference/make_instruct_goldens.py, f64, Gauss–Legendre 20): `token_attr` and
/// `seq_attr` on the prompt's non-special tokens (Captum's skip_tokens), to 1e-8 of the largest
/// value; plain prompts and a chat-rendered one.
#[test]
fn per_token_paths_match_captum() {
    let g = json("tests/fixtures/instruct_goldens.json");
    let cases = g["captum"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for c in cases {
        let model = c["model"].as_str().unwrap();
        let ex = f64_explainer(model);
        let mut input =
            Input::text(c["text"].as_str().unwrap()).answer(c["answer"].as_str().unwrap());
        if c["chat"].as_bool().unwrap() {
            input = input.chat();
        }
        let o = PathOptions {
            quadrature: Quadrature {
                steps: c["steps"].as_u64().unwrap() as usize,
                ..Quadrature::default()
            },
            ..PathOptions::default()
        };
        let r = ex.answer_token_paths(&input, &o).unwrap();
        let h = &r.header;
        assert_eq!(serde_json::to_value(&h.ids).unwrap(), c["ids"], "{model}");
        let keep: Vec<usize> = (0..h.ids.len()).filter(|&i| !h.special[i]).collect();
        let want_tok = c["token_attr"].as_array().unwrap();
        assert_eq!(r.token_attr.len(), want_tok.len(), "{model}: answer tokens");
        let mut scale = 0.0f64;
        let mut err = 0.0f64;
        for (row, want) in r.token_attr.iter().zip(want_tok) {
            let want = f64s(want);
            assert_eq!(want.len(), keep.len(), "{model}: interpretable tokens");
            for (&i, w) in keep.iter().zip(&want) {
                scale = scale.max(w.abs());
                err = err.max((row[i] - w).abs());
            }
            // special tokens (kept in the baseline) get exactly zero
            assert!((0..h.ids.len())
                .filter(|&i| h.special[i])
                .all(|i| row[i] == 0.0));
        }
        let want_seq = f64s(&c["seq_attr"]);
        for (&i, w) in keep.iter().zip(&want_seq) {
            err = err.max((r.seq_attr[i] - w).abs());
        }
        eprintln!("{model}: per-token paths vs Captum, max abs diff {err:.2e} (scale {scale:.3})");
        assert!(err <= 1e-8 * scale, "{model}: {err:e} vs scale {scale}");
    }
}

/// A contrast that differs from the answer before their last tokens runs as a second branch of a
/// token tree after the shared prompt (`models::batch`). Every method that is linear in F must
/// then give, on the prompt, exactly the answer's run minus the contrast's run on the same nodes:
/// IG, layer IG, conductance, input × gradient, ablation, and ATTATTR on the prompt's block of
/// every pattern.
/// GPT-2 (learned positions) and Llama (rotary), f64.
#[test]
fn a_diverging_contrast_is_the_difference_of_two_answer_runs() {
    let text = "the quick brown fox jumps over the";
    let q = Quadrature {
        steps: 16,
        ..Quadrature::default()
    };
    // got[..n] == a[..n] − b[..n] to 1e-10 of the larger of the two runs
    let close = |what: &str, n: usize, got: &[f64], a: &[f64], b: &[f64]| {
        let scale = a.iter().chain(b).fold(1.0f64, |m, v| m.max(v.abs()));
        for i in 0..n {
            let want = a[i] - b[i];
            assert!(
                (got[i] - want).abs() <= 1e-10 * scale,
                "{what} [{i}]: {} vs {want} (scale {scale})",
                got[i]
            );
        }
    };
    for model in ["tiny-gpt2", "tiny-llama"] {
        let ex = f64_explainer(model);
        // the contrast target and the two answer runs it is the difference of
        let inputs = [
            Input::text(text)
                .answer(" lazy dog.")
                .contrast(" quick fox"),
            Input::text(text).answer(" lazy dog."),
            Input::text(text).answer(" quick fox"),
        ];
        let three = |f: &dyn Fn(&Input) -> Vec<f64>| -> [Vec<f64>; 3] {
            [f(&inputs[0]), f(&inputs[1]), f(&inputs[2])]
        };
        let io = IgOptions {
            path: PathOptions {
                quadrature: q,
                ..PathOptions::default()
            },
            adaptive: None,
        };
        let ig = ex.ig(&inputs[0], &io).unwrap();
        let (ig_a, ig_c) = (
            ex.ig(&inputs[1], &io).unwrap(),
            ex.ig(&inputs[2], &io).unwrap(),
        );
        let v = serde_json::to_value(&ig).unwrap();
        let n = v["target"]["prompt_tokens"].as_u64().unwrap() as usize;
        let branch = v["target"]["contrast_branch"].as_u64().unwrap() as usize;
        // no shared first token: the prompt, the answer's inputs, then the contrast's
        assert_eq!(branch, ig_a.attributions.len());
        assert_eq!(
            ig.attributions.len(),
            branch + ig_c.attributions.len() - n,
            "{model}"
        );
        close(
            &format!("{model} IG"),
            n,
            &ig.attributions,
            &ig_a.attributions,
            &ig_c.attributions,
        );
        assert!(ig.attributions[n..].iter().all(|&x| x == 0.0));
        assert!((ig.f_input - (ig_a.f_input - ig_c.f_input)).abs() < 1e-10);
        assert!((ig.f_baseline - (ig_a.f_baseline - ig_c.f_baseline)).abs() < 1e-10);
        // every answer term is its own run's value: the branches do not see each other
        let terms = ig.header.answer_terms.as_ref().unwrap();
        let f: f64 = terms.iter().map(|t| t.weight * t.f_input).sum();
        assert!((f - ig.f_input).abs() < 1e-10);

        let mut lo = LayerIgOptions::default();
        lo.path.quadrature = q;
        lo.boundary = "blocks.1.hook_resid_pre".into();
        let [l, l_a, l_c] = three(&|i| ex.layer_ig(i, &lo).unwrap().attributions);
        close(&format!("{model} layer IG"), n, &l, &l_a, &l_c);

        let mut co = ConductanceOptions::default();
        co.path.quadrature = q;
        let cd: Vec<_> = inputs
            .iter()
            .map(|i| ex.conductance(i, &co).unwrap())
            .collect();
        for (k, layer) in cd[0].layers.iter().enumerate() {
            close(
                &format!("{model} conductance {}", layer.boundary),
                n,
                &layer.attributions,
                &cd[1].layers[k].attributions,
                &cd[2].layers[k].attributions,
            );
        }

        let so = SaliencyOptions {
            times_input: true,
            ..SaliencyOptions::default()
        };
        let [s, s_a, s_c] = three(&|i| ex.saliency(i, &so).unwrap().attributions);
        close(&format!("{model} input x gradient"), n, &s, &s_a, &s_c);

        let ao = AblateOptions::default();
        let [ab, ab_a, ab_c] = three(&|i| ex.ablate(i, &ao).unwrap().attributions);
        close(&format!("{model} ablation"), n, &ab, &ab_a, &ab_c);

        let aa_o = AttAttrOptions {
            quadrature: q,
            ..AttAttrOptions::default()
        };
        let aa: Vec<_> = inputs
            .iter()
            .map(|i| ex.attattr(i, &aa_o).unwrap())
            .collect();
        for (k, l) in aa[0].layers.iter().enumerate() {
            let (la, lc) = (&aa[1].layers[k], &aa[2].layers[k]);
            for h in 0..l.attribution.len() {
                for i in 0..n {
                    close(
                        &format!("{model} ATTATTR layer {} head {h} row {i}", l.layer),
                        n,
                        &l.attribution[h][i],
                        &la.attribution[h][i],
                        &lc.attribution[h][i],
                    );
                }
                // a branch never attends to the other branch
                for i in branch..l.attention[h].len() {
                    assert!(l.attention[h][i][n..branch].iter().all(|&p| p == 0.0));
                }
            }
            assert!((l.f_input - ig.f_input).abs() < 1e-10);
        }
    }
}
