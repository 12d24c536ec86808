//! Chat templates: a model's own prompt format (`chat_template` in `tokenizer_config.json` or
//! `chat_template.jinja`, `tokenizer.chat_template` in GGUF metadata), rendered with
//! [`minijinja`] the way `transformers`' `apply_chat_template` renders it with Jinja2: blocks
//! trimmed (`trim_blocks`, `lstrip_blocks`), loop controls, Python string methods (`.strip()`,
//! `.startswith()`, ... through `minijinja-contrib`'s pycompat), `raise_exception(msg)`, a
//! Python-style `tojson`, and the special tokens (`bos_token`, `eos_token`, `unk_token`,
//! `pad_token`) in the context beside `messages` and `add_generation_prompt`.
//!
//! Not provided: `strftime_now` (templates that test `strftime_now is defined` fall back to
//! their own date), tools and documents (rendered as none).

use crate::{Error, Result};
use minijinja::{Environment, ErrorKind, Value};
use serde::Serialize;
use std::collections::BTreeMap;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A model's chat template with the special tokens it may print.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatTemplate {
    /// The Jinja source.
    pub source: String,
    /// `bos_token`, `eos_token`, `unk_token`, `pad_token` (those the model has).
    pub special_tokens: BTreeMap<String, String>,
}

/// Python's `json.dumps(v, ensure_ascii=False)` (separators `, ` and `: `, or with `indent` one
/// item per line and `,`), as transformers' `tojson` filter writes it; maps keep their order.
fn py_json(
    v: &Value,
    indent: Option<usize>,
    level: usize,
    out: &mut String,
) -> std::result::Result<(), minijinja::Error> {
    use minijinja::value::ValueKind as K;
    let nl = |out: &mut String, l: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * l));
        }
    };
    let sep = if indent.is_some() { "," } else { ", " };
    let string = |s: &str| serde_json::to_string(s).unwrap_or_default();
    match v.kind() {
        K::Undefined | K::None => out.push_str("null"),
        K::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        K::Number => match v.as_i64() {
            Some(i) if v.is_integer() => out.push_str(&i.to_string()),
            _ => {
                let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
                out.push_str(&serde_json::to_string(&f).unwrap_or_else(|_| "NaN".into()))
            }
        },
        K::String => out.push_str(&string(v.as_str().unwrap_or(""))),
        K::Map => {
            let keys: Vec<Value> = v.try_iter()?.collect();
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                nl(out, level + 1);
                out.push_str(&string(&k.to_string()));
                out.push_str(": ");
                py_json(&v.get_item(k)?, indent, level + 1, out)?;
            }
            nl(out, level);
            out.push('}');
        }
        K::Seq | K::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                nl(out, level + 1);
                py_json(x, indent, level + 1, out)?;
            }
            nl(out, level);
            out.push(']');
        }
        _ => out.push_str(&string(&v.to_string())),
    }
    Ok(())
}

fn tojson(
    v: Value,
    indent: Option<usize>,
    kwargs: minijinja::value::Kwargs,
) -> std::result::Result<Value, minijinja::Error> {
    let indent = match indent {
        Some(i) => Some(i),
        None => kwargs.get::<Option<usize>>("indent")?,
    };
    kwargs.assert_all_used()?;
    let mut s = String::new();
    py_json(&v, indent, 0, &mut s)?;
    // not escaped again when printed (`{{ x | tojson }}` writes the JSON as it is)
    Ok(Value::from_safe_string(s))
}

/// A message as the template sees it: a map with `role` then `content` (Python dict order).
#[derive(Debug)]
struct MessageObject(Message);

impl minijinja::value::Object for MessageObject {
    fn repr(self: &std::sync::Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Map
    }
    fn get_value(self: &std::sync::Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "role" => Some(Value::from(self.0.role.clone())),
            "content" => Some(Value::from(self.0.content.clone())),
            _ => None,
        }
    }
    fn enumerate(self: &std::sync::Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Str(&["role", "content"])
    }
}

impl ChatTemplate {
    /// A template and the special tokens its context holds.
    pub fn new(
        source: impl Into<String>,
        special_tokens: BTreeMap<String, String>,
    ) -> ChatTemplate {
        ChatTemplate {
            source: source.into(),
            special_tokens,
        }
    }

    /// Renders `messages`, with the assistant's turn opened when `add_generation_prompt` (the
    /// text a model continues with its answer). A template error (syntax, or the template's own
    /// `raise_exception`) is [`Error::ChatTemplate`].
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .map_err(|e| Error::ChatTemplate(e.to_string()))?,
        );
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<Value, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_filter("tojson", tojson);
        let t = env
            .template_from_str(&self.source)
            .map_err(|e| Error::ChatTemplate(format!("the template does not parse: {e:#}")))?;
        let mut ctx: BTreeMap<String, Value> = self
            .special_tokens
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect();
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| Value::from_object(MessageObject(m.clone())))
            .collect();
        ctx.insert("messages".into(), Value::from(messages));
        ctx.insert(
            "add_generation_prompt".into(),
            Value::from(add_generation_prompt),
        );
        ctx.insert("tools".into(), Value::from(()));
        ctx.insert("documents".into(), Value::from(()));
        t.render(Value::from(ctx)).map_err(|e| {
            let detail = match e.kind() {
                ErrorKind::InvalidOperation => e.detail().unwrap_or("").to_string(),
                _ => format!("{e:#}"),
            };
            Error::ChatTemplate(format!("rendering failed: {detail}"))
        })
    }

    /// The messages of one user turn, after an optional system message.
    pub fn messages(user: &str, system: Option<&str>) -> Vec<Message> {
        let mut m = Vec::new();
        if let Some(s) = system {
            m.push(Message::new("system", s));
        }
        m.push(Message::new("user", user));
        m
    }
}

/// A special token as `tokenizer_config.json` writes it: a string or `{"content": ...}`.
pub(crate) fn config_token(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(m) => m.get("content")?.as_str().map(String::from),
        _ => None,
    }
}

/// The template of a Hugging Face folder: `chat_template.jinja`, else `chat_template` in
/// `tokenizer_config.json` (a string, or a list of named templates of which `default` is taken);
/// `None` when the folder has neither.
pub(crate) fn from_hf_folder(dir: &std::path::Path) -> Result<Option<ChatTemplate>> {
    let io = |p: &std::path::Path, e| Error::Io {
        path: p.display().to_string(),
        source: e,
    };
    let cfg_path = dir.join("tokenizer_config.json");
    let cfg: serde_json::Value = if cfg_path.is_file() {
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| io(&cfg_path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Config {
            file: cfg_path.display().to_string(),
            key: String::new(),
            detail: format!("malformed JSON ({e})"),
        })?
    } else {
        serde_json::Value::Null
    };
    let jinja = dir.join("chat_template.jinja");
    let source = if jinja.is_file() {
        Some(std::fs::read_to_string(&jinja).map_err(|e| io(&jinja, e))?)
    } else {
        match cfg.get("chat_template") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                .and_then(|t| t.get("template")?.as_str().map(String::from)),
            Some(_) => {
                return Err(Error::Config {
                    file: cfg_path.display().to_string(),
                    key: "chat_template".into(),
                    detail: "is neither a string nor a list of named templates".into(),
                })
            }
        }
    };
    let Some(source) = source else {
        return Ok(None);
    };
    let mut special = BTreeMap::new();
    for key in ["bos_token", "eos_token", "unk_token", "pad_token"] {
        if let Some(t) = cfg.get(key).and_then(config_token) {
            special.insert(key.to_string(), t);
        }
    }
    Ok(Some(ChatTemplate::new(source, special)))
}
