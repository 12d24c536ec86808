//! The `error:` line: a library error said in the vocabulary of the command line. The library
//! names its options (`steps`, `max_points`, the similarity text, ...); here they become flags.

use crate::Error;

/// The flag of a library option name, where there is one.
fn flag(name: &str) -> Option<&'static str> {
    Some(match name {
        "steps" => "--steps",
        "batch" => "--batch",
        "tolerance" => "--tolerance",
        "max_points" => "--max-points",
        "baseline" => "--baseline",
        "samples" => "--samples",
        "draws" => "--draws",
        "sigma" => "--sigma",
        "max_new_tokens" => "--max-new-tokens",
        "the similarity text" => "--similar-to",
        "lr" => "--lr",
        "epochs" => "--epochs",
        "warmup" => "--warmup",
        "weight_decay" => "--weight-decay",
        "max_len" => "--max-len",
        "limit" => "--limit",
        "conductance_steps" => "--conductance-steps",
        "labels" => "--labels",
        "memory" => "--memory",
        "shard" => "--shard",
        "words" => "--words",
        "answer" | "the answer" => "--answer",
        "contrast" | "the contrast" => "--contrast",
        "per_token_paths" => "--per-token-paths",
        "chat" => "--chat",
        _ => return None,
    })
}

/// The message printed after `error: `.
pub fn message(e: &Error) -> String {
    let range = |len: usize| format!("0..{}", len.saturating_sub(1));
    match e {
        Error::BadValue { name, detail } => match flag(name) {
            Some(f) => format!("{f}: {detail}"),
            None => e.to_string(),
        },
        Error::Empty(what) => match flag(what) {
            Some(f) => format!("{f}: the text is empty"),
            None => e.to_string(),
        },
        Error::TooLong { tokens, max } => {
            format!("the text has {tokens} tokens but the model takes at most {max}")
        }
        Error::OutOfRange { what, index, len } => match *what {
            "position" => format!(
                "--position {index} is out of range: the text has {len} tokens ({})",
                range(*len)
            ),
            "token" => format!(
                "--token {index} is out of range: the input has {len} tokens ({})",
                range(*len)
            ),
            "token id" => {
                format!("target token id {index} is out of range: the vocabulary has {len} tokens")
            }
            "class" => format!(
                "class {index} is out of range: the model has {len} classes ({})",
                range(*len)
            ),
            "layer" | "head" => format!(
                "{what} {index} is out of range: this model has {len} {what}s ({})",
                range(*len)
            ),
            _ => e.to_string(),
        },
        Error::Unknown { what, value, valid } if *what == "token" => format!(
            "--token `{value}` is not in the input; its tokens are: {}",
            valid.join(" ")
        ),
        _ => e.to_string(),
    }
}
