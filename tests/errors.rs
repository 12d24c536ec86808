//! The CLI hint is chosen by the error's variant (and the field that says what a value is), not
//! by its message: errors of one variant with any message get that variant's hint.

use gradpath::cli::hint;
use gradpath::Error;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// `hint(e)` contains every one of `needles`.
fn hints(e: Error, needles: &[&str]) {
    let h = hint(&e);
    for n in needles {
        assert!(h.contains(n), "hint for {e:?} lacks {n:?}: {h}");
    }
}

#[test]
fn model_file_hints() {
    hints(
        Error::NotFound {
            path: "x".into(),
            what: "model folder".into(),
        },
        &[
            "--model",
            "config.json",
            "model.safetensors",
            "tokenizer.json",
        ],
    );
    hints(
        Error::AmbiguousModel {
            dir: "d".into(),
            candidates: strings(&["a.gguf", "b.gguf"]),
        },
        &["--model", ".gguf"],
    );
    hints(
        Error::UnsupportedArchitecture {
            found: "GPTNeoXForCausalLM".into(),
            supported: strings(&["BertModel"]),
        },
        &["architectures"],
    );
    hints(
        Error::Config {
            file: "config.json".into(),
            key: "architectures".into(),
            detail: "names no architecture".into(),
        },
        &["architectures"],
    );
    for e in [
        Error::Config {
            file: "config.json".into(),
            key: "hidden_size".into(),
            detail: "is missing".into(),
        },
        Error::MissingTensor {
            file: "w".into(),
            name: "t".into(),
            detail: String::new(),
        },
        Error::BadWeights {
            file: "w".into(),
            detail: "not a valid safetensors file".into(),
        },
    ] {
        hints(e, &["damaged", "re-download"]);
    }
    hints(Error::Tokenizer("cannot read".into()), &["tokenizer"]);
}

#[test]
fn input_hints() {
    hints(Error::Empty("the text"), &["--text"]);
    hints(Error::Empty("the text after tokenization"), &["--text"]);
    hints(Error::Empty("the list of layers"), &["--help"]);
    hints(
        Error::TooLong {
            tokens: 99,
            max: 64,
        },
        &["--truncate"],
    );
    hints(
        Error::UnknownBoundary {
            name: "x".into(),
            valid: vec![],
        },
        &["gradpath hooks"],
    );
    let oor = |what| Error::OutOfRange {
        what,
        index: 9,
        len: 2,
    };
    hints(oor("layer"), &["numbered from 0", "gradpath hooks"]);
    hints(oor("head"), &["numbered from 0"]);
    hints(oor("token"), &["token list", "index"]);
    hints(oor("class"), &["class index", "id2label"]);
    hints(oor("target token id"), &["vocabulary"]);
    hints(oor("row"), &["--help"]);
    let unknown = |what| Error::Unknown {
        what,
        value: "v".into(),
        valid: vec![],
    };
    hints(unknown("class label"), &["id2label"]);
    hints(unknown("token"), &["token list"]);
    hints(unknown("target token"), &["one token"]);
    hints(unknown("quadrature rule"), &["--help"]);
    let bad = |name| Error::BadValue {
        name,
        detail: "must be at least 1".into(),
    };
    for name in ["draws", "samples", "sigma", "stdev"] {
        hints(bad(name), &["at least one draw", "noise level"]);
    }
    hints(bad("steps"), &["--help"]);
    hints(
        Error::TargetMismatch("a similarity target needs a sentence-embedding model".into()),
        &["--target", "--similar-to", "--target-token"],
    );
}

#[test]
fn bug_and_environment_hints() {
    hints(Error::Internal("x".into()), &["bug"]);
    hints(
        Error::Shape {
            op: "matmul",
            detail: "x".into(),
        },
        &["bug"],
    );
    hints(Error::NotCompiledWithCuda("cuda"), &["--features cuda"]);
    hints(
        Error::Io {
            path: "p".into(),
            source: std::io::Error::other("x"),
        },
        &["path"],
    );
}

/// The message does not matter for a typed variant: the same variant with words that the old
/// text matching keyed on gets the same hint.
#[test]
fn hints_ignore_messages() {
    let a = Error::Tokenizer("cannot read".into());
    let b = Error::Tokenizer("unknown boundary, class, empty, not found, --token".into());
    assert_eq!(hint(&a), hint(&b));
    let a = Error::BadWeights {
        file: "w".into(),
        detail: "x".into(),
    };
    let b = Error::BadWeights {
        file: "w".into(),
        detail: "unsupported, not found, missing config".into(),
    };
    assert_eq!(hint(&a), hint(&b));
}

#[test]
fn data_set_hints() {
    // A bad line: what a line must hold, and --skip-bad.
    hints(
        Error::BadExample {
            file: "in.jsonl".into(),
            line: 3,
            id: Some("x".into()),
            detail: "no \"text\"".into(),
            cause: None,
        },
        &["\"text\"", "\"id\"", "--skip-bad"],
    );
    // An example the method refuses: the cause's hint, then --skip-bad.
    hints(
        Error::BadExample {
            file: "in.jsonl".into(),
            line: 3,
            id: Some("x".into()),
            detail: "anything".into(),
            cause: Some(Box::new(Error::TooLong { tokens: 9, max: 8 })),
        },
        &["--truncate", "--skip-bad"],
    );
    hints(
        Error::Incomplete {
            missing: strings(&["a"]),
            duplicated: vec![],
            unexpected: vec![],
        },
        &["--resume", "--shard", "FNV-1a", "--partial"],
    );
    let e = Error::Incomplete {
        missing: (0..12).map(|i| i.to_string()).collect(),
        duplicated: strings(&["d"]),
        unexpected: vec![],
    };
    assert_eq!(
        e.to_string(),
        "the shard outputs are incomplete: 12 ids missing (\"0\", \"1\", \"2\", \"3\", \"4\", \"5\", \"6\", \"7\", \"8\", \"9\", and 2 more); 1 id more than once (\"d\")"
    );
    let e = Error::BadExample {
        file: "in.jsonl".into(),
        line: 3,
        id: Some("x".into()),
        detail: "no \"text\"".into(),
        cause: None,
    };
    assert_eq!(e.to_string(), "in.jsonl line 3 (id \"x\"): no \"text\"");
    let e = Error::BadExample {
        file: "in.jsonl".into(),
        line: 0,
        id: None,
        detail: "has no examples".into(),
        cause: None,
    };
    assert_eq!(e.to_string(), "in.jsonl: has no examples");
    assert!(!e.to_string().contains("--"));
}
