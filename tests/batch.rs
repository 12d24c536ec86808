//! `gradpath batch`, `merge` and `report` end to end on the tiny fixture classifier:
//!
//! - four shards run in parallel as processes, one killed with SIGKILL mid-way and resumed, the
//!   shards merged and compared example by example with a single-process run: every field but
//!   the wall-clock `timing` and the `shard` label is bit-identical (same binary, same thread
//!   count, one example at a time: the floating-point work of an example does not depend on
//!   which process runs it or what ran before it);
//! - a torn last line (a write cut short) is cut off on resume and its example redone, exactly
//!   once;
//! - bad lines: a clear error naming the line without --skip-bad; skipped and listed with it;
//!   merge reports the missing ids and exits non-zero;
//! - the shard from Slurm and Kubernetes environment variables;
//! - the report page.

use gradpath::batch::Shard;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gradpath");

fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-bert")
}

#[path = "common/tempdir.rs"]
mod tempdir;
use tempdir::TempDir;

fn command(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).env("RAYON_NUM_THREADS", "1");
    for k in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "JOB_COMPLETION_INDEX",
        "GRADPATH_NUM_SHARDS",
    ] {
        c.env_remove(k);
    }
    c
}

fn gradpath(args: &[&str]) -> Output {
    command(args).output().expect("cannot start gradpath")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `n` sentences of 4 to 12 words (ids `ex-0` ...).
fn write_input(path: &Path, n: usize) {
    const WORDS: [&str; 12] = [
        "the", "film", "was", "good", "bad", "quick", "fox", "never", "always", "music", "dull",
        "bright",
    ];
    let mut s = String::new();
    for i in 0..n {
        let len = 4 + (i * 5) % 9;
        let words: Vec<&str> = (0..len)
            .map(|k| WORDS[(i * 7 + k * 3) % WORDS.len()])
            .collect();
        s.push_str(
            &serde_json::json!({"id": format!("ex-{i}"), "text": words.join(" ") + "."})
                .to_string(),
        );
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Lines by id, asserting each id appears once; `timing` and `shard` removed.
fn by_id(path: &Path) -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    for mut v in lines(path) {
        let o = v.as_object_mut().unwrap();
        o.remove("timing");
        o.remove("shard");
        let id = o["id"].as_str().unwrap().to_string();
        assert!(
            m.insert(id.clone(), v).is_none(),
            "{id} twice in {}",
            path.display()
        );
    }
    m
}

fn ig_args<'a>(input: &'a str, output: &'a str) -> Vec<&'a str> {
    vec![
        "batch", "--method", "ig", "--model", MODEL_MARK, "--input", input, "--output", output,
        "--steps", "96", "--quiet",
    ]
}

const MODEL_MARK: &str = "@model";

fn with_model(args: Vec<&str>) -> Vec<String> {
    let m = model().display().to_string();
    args.into_iter()
        .map(|a| {
            if a == MODEL_MARK {
                m.clone()
            } else {
                a.to_string()
            }
        })
        .collect()
}

fn run_ok(args: &[String]) -> Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = gradpath(&refs);
    assert!(
        out.status.success(),
        "gradpath {args:?} failed:\n{}",
        text(&out.stderr)
    );
    out
}

#[test]
fn four_shards_with_a_kill_and_resume_match_one_process() {
    let dir = TempDir::new("shards");
    let input = dir.join("in.jsonl");
    write_input(&input, 120);
    let inp = input.display().to_string();
    let single = dir.join("single.jsonl").display().to_string();
    let parts: Vec<String> = (0..4)
        .map(|i| dir.join(&format!("part-{i}.jsonl")).display().to_string())
        .collect();
    // Four shards and the single-process run, all at once.
    let spawn = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        command(&refs)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut reference = spawn(with_model(ig_args(&inp, &single)));
    let mut shards: Vec<std::process::Child> = (0..4)
        .map(|i| {
            let mut a = with_model(ig_args(&inp, &parts[i]));
            a.extend(["--shard".to_string(), format!("{i}/4")]);
            spawn(a)
        })
        .collect();
    // Shard 2 is killed (SIGKILL) once it has written three lines.
    let victim = 2;
    let expected: usize = (0..120)
        .filter(|i| Shard::of(&format!("ex-{i}"), 4) == victim)
        .count();
    let t0 = Instant::now();
    loop {
        let n = std::fs::read_to_string(&parts[victim])
            .map(|s| s.lines().count())
            .unwrap_or(0);
        if n >= 3 {
            break;
        }
        assert!(
            shards[victim].try_wait().unwrap().is_none(),
            "the shard finished before it could be killed"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no output from shard {victim}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    shards[victim].kill().unwrap(); // SIGKILL on Unix
    let st = shards[victim].wait().unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(9), "{st:?}");
    }
    let killed_at = lines_or_torn(Path::new(&parts[victim]));
    assert!(
        killed_at < expected,
        "the kill came after the shard's last example ({killed_at} of {expected})"
    );
    eprintln!(
        "shard {victim} killed (SIGKILL) after {killed_at} of its {expected} examples ({} bytes on disk)",
        std::fs::metadata(&parts[victim]).map(|m| m.len()).unwrap_or(0)
    );
    for (i, c) in shards.iter_mut().enumerate() {
        if i != victim {
            let out = c.wait_with_output_ref();
            assert!(out.0.success(), "shard {i}: {}", out.1);
        }
    }
    let (st, err) = reference.wait_with_output_ref();
    assert!(st.success(), "single run: {err}");
    // Merging now reports the victim's missing ids and fails.
    let merged = dir.join("merged.jsonl").display().to_string();
    let mut margs: Vec<String> = vec!["merge".into()];
    margs.extend(parts.iter().cloned());
    margs.extend([
        "--output".into(),
        merged.clone(),
        "--input".into(),
        inp.clone(),
    ]);
    let refs: Vec<&str> = margs.iter().map(String::as_str).collect();
    let out = gradpath(&refs);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("ids missing") && err.contains("hint:"),
        "{err}"
    );
    assert!(!Path::new(&merged).exists());
    // Resume the victim: it finishes its shard, each id once.
    let mut a = with_model(ig_args(&inp, &parts[victim]));
    a.extend(["--shard".into(), format!("{victim}/4"), "--resume".into()]);
    run_ok(&a);
    assert_eq!(by_id(Path::new(&parts[victim])).len(), expected);
    // A second resume finds nothing to do and writes nothing.
    let before = std::fs::read(&parts[victim]).unwrap();
    run_ok(&a);
    assert_eq!(std::fs::read(&parts[victim]).unwrap(), before);
    run_ok(&margs);
    let m = by_id(Path::new(&merged));
    let s = by_id(Path::new(&single));
    assert_eq!(m.len(), 120);
    assert_eq!(m.keys().collect::<Vec<_>>(), s.keys().collect::<Vec<_>>());
    for (id, v) in &s {
        assert_eq!(
            &m[id], v,
            "example {id} differs between the shards and one process"
        );
    }
    eprintln!(
        "merged 4 shards: {} ids, each equal to the single-process line (timing and shard aside)",
        m.len()
    );
    // The merged file follows the input order.
    let order: Vec<String> = lines(Path::new(&merged))
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = (0..120).map(|i| format!("ex-{i}")).collect();
    assert_eq!(order, want);
    // Completeness holds on every line (the method's own delta, not a copy of the other run).
    for v in m.values() {
        let d = v["relative_delta"].as_f64().unwrap();
        assert!(d.abs() < 1e-2, "{d}");
    }
}

/// Complete lines of a file, ignoring a torn tail.
fn lines_or_torn(p: &Path) -> usize {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    s.matches('\n').count()
}

trait WaitRef {
    fn wait_with_output_ref(&mut self) -> (std::process::ExitStatus, String);
}

impl WaitRef for std::process::Child {
    fn wait_with_output_ref(&mut self) -> (std::process::ExitStatus, String) {
        use std::io::Read;
        let mut err = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (self.wait().unwrap(), err)
    }
}

#[test]
fn a_torn_last_line_is_cut_and_redone_exactly_once() {
    let dir = TempDir::new("torn");
    let input = dir.join("in.jsonl");
    write_input(&input, 12);
    let inp = input.display().to_string();
    let full = dir.join("full.jsonl").display().to_string();
    let out = dir.join("out.jsonl").display().to_string();
    run_ok(&with_model(ig_args(&inp, &full)));
    let text_full = std::fs::read_to_string(&full).unwrap();
    let ls: Vec<&str> = text_full.lines().collect();
    assert_eq!(ls.len(), 12);
    // Five complete lines, then half of the sixth (no newline): a write cut short.
    let mut torn = String::new();
    for l in &ls[..5] {
        torn.push_str(l);
        torn.push('\n');
    }
    torn.push_str(&ls[5][..ls[5].len() / 2]);
    std::fs::write(&out, &torn).unwrap();
    // Without --resume the existing output is refused.
    let refs = with_model(ig_args(&inp, &out));
    let r: Vec<&str> = refs.iter().map(String::as_str).collect();
    let o = gradpath(&r);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("already exists") && err.contains("--resume"),
        "{err}"
    );
    let mut a = with_model(ig_args(&inp, &out));
    a.push("--resume".into());
    a.retain(|x| x != "--quiet");
    let o = run_ok(&a);
    let err = text(&o.stderr);
    assert!(
        err.contains("5 already done") && err.contains("torn last line"),
        "{err}"
    );
    let got = by_id(Path::new(&out));
    let want = by_id(Path::new(&full));
    assert_eq!(got, want);
    // Resuming with other options is refused (the lines would not be comparable).
    let mut b = with_model(ig_args(&inp, &out));
    b.push("--resume".into());
    let k = b.iter().position(|x| x == "96").unwrap();
    b[k] = "32".into();
    let r: Vec<&str> = b.iter().map(String::as_str).collect();
    let o = gradpath(&r);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("other options"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn bad_lines_fail_clearly_or_are_skipped_and_listed() {
    let dir = TempDir::new("bad");
    let input = dir.join("in.jsonl");
    let long = vec!["word"; 200].join(" ");
    let content = [
        r#"{"id": "a", "text": "a good film."}"#.to_string(),
        r#"{"id": "b", "text": "a bad film."}"#.to_string(),
        r#"{"id": "c", "text": "broken"#.to_string(),
        r#"{"id": "d", "text": "the fox."}"#.to_string(),
        r#"{"id": "e", "txt": "no text key"}"#.to_string(),
        r#"{"id": "f", "text": "bright music."}"#.to_string(),
        r#"{"id": "a", "text": "a repeated id."}"#.to_string(),
        String::new(),
        serde_json::json!({"id": "g", "text": long}).to_string(),
        r#"{"id": "h", "text": "never dull.", "target": 7}"#.to_string(),
    ]
    .join("\n");
    std::fs::write(&input, content + "\n").unwrap();
    let inp = input.display().to_string();
    let out = dir.join("out.jsonl").display().to_string();
    let o = gradpath(
        &with_model(ig_args(&inp, &out))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    let el: Vec<&str> = err.lines().collect();
    assert_eq!(el.len(), 2, "{err}");
    assert!(
        el[0].starts_with("error: ")
            && el[0].contains("line 3")
            && el[0].contains("not a JSON object"),
        "{err}"
    );
    assert!(
        el[1].starts_with("hint: ") && el[1].contains("--skip-bad"),
        "{err}"
    );
    // With --skip-bad the others run and the bad ones are listed at the end.
    let mut a = with_model(ig_args(&inp, &out));
    a.push("--skip-bad".into());
    a.push("--overwrite".into());
    let o = run_ok(&a);
    let err = text(&o.stderr);
    assert!(err.contains("skipped 5 examples"), "{err}");
    for (line, why) in [
        (3, "not a JSON object"),
        (5, "no \"text\""),
        (7, "already used on line 1"),
        (9, "tokens but the model takes at most 64"),
        (10, "class 7 is out of range"),
    ] {
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("line {line} ")) && l.contains(why)),
            "line {line}: {why}\n{err}"
        );
    }
    let got: HashSet<String> = by_id(Path::new(&out)).into_keys().collect();
    let want: HashSet<String> = ["a", "b", "d", "f"].map(String::from).into();
    assert_eq!(got, want);
    // An example the method refuses, without --skip-bad: the line, the id and the cause.
    let in2 = dir.join("in2.jsonl");
    std::fs::write(
        &in2,
        r#"{"id": "z", "text": "the film.", "target": "NOPE"}"#.to_string() + "\n",
    )
    .unwrap();
    let o = gradpath(
        &with_model(ig_args(
            &in2.display().to_string(),
            &dir.join("o2.jsonl").display().to_string(),
        ))
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("line 1 (id \"z\")") && err.contains("unknown class label `NOPE`"),
        "{err}"
    );
    assert!(
        err.contains("id2label") && err.contains("--skip-bad"),
        "{err}"
    );
    // Merge against the input: the skipped ids are missing, exit 1; --partial writes the rest.
    let merged = dir.join("merged.jsonl").display().to_string();
    let o = gradpath(&["merge", &out, "--output", &merged, "--input", &inp]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    // Missing: the unparsable line 3 (its id is its line number), "e", "g" and "h"; the
    // repeated "a" is one id, present once.
    assert!(
        err.contains("4 ids missing (\"3\", \"e\", \"g\", \"h\")"),
        "{err}"
    );
    let o = gradpath(&[
        "merge",
        &out,
        "--output",
        &merged,
        "--input",
        &inp,
        "--partial",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(lines(Path::new(&merged)).len(), 4);
}

#[test]
fn shards_from_slurm_and_kubernetes_environments() {
    let dir = TempDir::new("env");
    let input = dir.join("in.jsonl");
    write_input(&input, 16);
    let inp = input.display().to_string();
    let tmpl = dir.join("part-{shard}.jsonl").display().to_string();
    let mut a = with_model(ig_args(&inp, &tmpl));
    let k = a.iter().position(|x| x == "96").unwrap();
    a[k] = "8".into();
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    // Slurm: --array=1-3 → task 2 is shard 1 of 3.
    let o = command(&refs)
        .env("SLURM_ARRAY_TASK_ID", "2")
        .env("SLURM_ARRAY_TASK_MIN", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "3")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let got: HashSet<String> = by_id(&dir.join("part-1.jsonl")).into_keys().collect();
    let want: HashSet<String> = (0..16)
        .map(|i| format!("ex-{i}"))
        .filter(|id| Shard::of(id, 3) == 1)
        .collect();
    assert_eq!(got, want);
    // Kubernetes: completion index 0 of --num-shards 2 (GRADPATH_NUM_SHARDS works too).
    let mut b = a.clone();
    b.extend(["--num-shards".into(), "2".into()]);
    let refs: Vec<&str> = b.iter().map(String::as_str).collect();
    let o = command(&refs)
        .env("JOB_COMPLETION_INDEX", "0")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let got: HashSet<String> = by_id(&dir.join("part-0.jsonl")).into_keys().collect();
    let want: HashSet<String> = (0..16)
        .map(|i| format!("ex-{i}"))
        .filter(|id| Shard::of(id, 2) == 0)
        .collect();
    assert_eq!(got, want);
    // A completion index without the number of shards is an error with a hint.
    let o = command(&a.iter().map(String::as_str).collect::<Vec<_>>())
        .env("JOB_COMPLETION_INDEX", "0")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("--shard:") && err.contains("JOB_COMPLETION_INDEX"),
        "{err}"
    );
}

#[test]
fn report_page_for_ig_conductance_and_attattr() {
    let dir = TempDir::new("report");
    let input = dir.join("in.jsonl");
    write_input(&input, 10);
    let inp = input.display().to_string();
    for (m, needles) in [
        (
            "ig",
            vec![
                "Top tokens by mean",
                "Completeness deltas over 10 examples",
                "href=\"#ex-9\"",
            ],
        ),
        (
            "conductance",
            vec!["Conductance per layer over 10 examples", "<polygon"],
        ),
        (
            "attattr",
            vec!["Mean head importance over 10 examples", "Flagged:"],
        ),
    ] {
        let out = dir.join(&format!("{m}.jsonl")).display().to_string();
        let html = dir.join(&format!("{m}.html")).display().to_string();
        let a = with_model(vec![
            "batch", "--method", m, "--model", MODEL_MARK, "--input", &inp, "--output", &out,
            "--quiet",
        ]);
        run_ok(&a);
        let o = gradpath(&["report", "--input", &out, "--html", &html, "--quiet"]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let page = std::fs::read_to_string(&html).unwrap();
        for n in needles {
            assert!(page.contains(n), "{m}: no {n:?} in the page");
        }
        assert!(
            page.contains("id=\"ex-0\"") && !page.contains("<script"),
            "{m}"
        );
    }
}

#[test]
fn repeated_kills_and_resumes_write_each_id_once() {
    let dir = TempDir::new("kills");
    let input = dir.join("in.jsonl");
    write_input(&input, 40);
    let inp = input.display().to_string();
    let clean = dir.join("clean.jsonl").display().to_string();
    let out = dir.join("out.jsonl").display().to_string();
    run_ok(&with_model(ig_args(&inp, &clean)));
    let mut a = with_model(ig_args(&inp, &out));
    a.push("--resume".into());
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let count = || lines_or_torn(Path::new(&out));
    let mut kills = 0;
    for _ in 0..4 {
        let before = count();
        let mut c = command(&refs)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        let mut finished = false;
        while count() < before + 2 {
            if c.try_wait().unwrap().is_some() {
                finished = true;
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(120));
            std::thread::sleep(Duration::from_millis(1));
        }
        if finished {
            break;
        }
        c.kill().unwrap();
        c.wait().unwrap();
        kills += 1;
    }
    assert!(
        kills >= 2,
        "only {kills} kills landed before the run finished"
    );
    run_ok(&a);
    eprintln!(
        "{kills} kills and resumes, then a last resume: {} lines",
        count()
    );
    assert_eq!(by_id(Path::new(&out)), by_id(Path::new(&clean)));
}

// ---------------------------------------------------------------------------------------------
// lig, neuron, attention: the methods whose reports are not token-level IG.

/// The batch flags of each new method, the same flags of its one-text command, the keys of the
/// wall-clock time (left out of comparisons) and of the options fingerprint.
struct NewMethod {
    name: &'static str,
    flags: Vec<&'static str>,
    time_key: &'static str,
    config_key: &'static str,
}

fn new_methods() -> Vec<NewMethod> {
    vec![
        NewMethod {
            name: "lig",
            flags: vec![
                "--steps",
                "16",
                "--baseline-layer",
                "itb_zero_ratio",
                "--words",
            ],
            time_key: "seconds",
            config_key: "batch_config",
        },
        NewMethod {
            name: "neuron",
            flags: vec![
                "--boundary",
                "blocks.0.hook_resid_post",
                "--neuron",
                "1,3",
                "--steps",
                "8",
                "--words",
            ],
            time_key: "timing",
            config_key: "config",
        },
        NewMethod {
            name: "attention",
            flags: vec!["--mask-head", "1:2"],
            time_key: "timing",
            config_key: "config",
        },
    ]
}

fn batch_args(m: &NewMethod, input: &str, output: &str) -> Vec<String> {
    let mut a = with_model(vec![
        "batch", "--method", m.name, "--model", MODEL_MARK, "--input", input, "--output", output,
        "--quiet",
    ]);
    a.extend(m.flags.iter().map(|s| s.to_string()));
    a
}

/// Lines by id (each id once), without the wall-clock time and the shard label.
fn by_id_untimed(path: &Path, time_key: &str) -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    for mut v in lines(path) {
        let o = v.as_object_mut().unwrap();
        o.remove(time_key);
        o.remove("shard");
        let id = o["id"].as_str().unwrap().to_string();
        assert!(m.insert(id.clone(), v).is_none(), "{id} twice");
    }
    m
}

/// `a` and `b` hold the same keys, strings and numbers (numbers compared as f64, exactly).
fn assert_same_json(a: &Value, b: &Value, place: &str) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let kx: Vec<&String> = x.keys().collect();
            let ky: Vec<&String> = y.keys().collect();
            assert_eq!(kx, ky, "keys differ at {place:?}");
            for (k, v) in x {
                assert_same_json(v, &y[k], &format!("{place}/{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "lengths differ at {place:?}");
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                assert_same_json(u, v, &format!("{place}/{i}"));
            }
        }
        (Value::Number(x), Value::Number(y)) => {
            assert_eq!(x.as_f64(), y.as_f64(), "numbers differ at {place:?}");
        }
        _ => assert_eq!(a, b, "values differ at {place:?}"),
    }
}

#[test]
fn lig_neuron_and_attention_lines_equal_the_one_text_commands() {
    let dir = TempDir::new("new-methods");
    let input = dir.join("in.jsonl");
    write_input(&input, 4);
    let inp = input.display().to_string();
    let texts: BTreeMap<String, String> = lines(&input)
        .into_iter()
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_string(),
                v["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for m in new_methods() {
        let out = dir.join(&format!("{}.jsonl", m.name));
        run_ok(&batch_args(&m, &inp, &out.display().to_string()));
        let got = by_id_untimed(&out, m.time_key);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            texts.keys().collect::<Vec<_>>(),
            "{}",
            m.name
        );
        let mut fingerprints = HashSet::new();
        for (id, line) in got {
            // The batch fields: id, line, shard (removed above) and the options fingerprint.
            let mut line = line.as_object().unwrap().clone();
            assert_eq!(line.remove("id").unwrap(), Value::String(id.clone()));
            let n = line.remove("line").unwrap().as_u64().unwrap() as usize;
            assert_eq!(format!("ex-{}", n - 1), id);
            let fp = line.remove(m.config_key).unwrap();
            let fp = fp.as_str().unwrap();
            assert!(
                fp.len() == 16 && fp.chars().all(|c| c.is_ascii_hexdigit()),
                "{fp}"
            );
            fingerprints.insert(fp.to_string());
            // The one-text command on the same text with the same flags.
            let json = dir.join(&format!("{}-{id}.json", m.name));
            let mut a = with_model(vec![
                m.name,
                "--model",
                MODEL_MARK,
                "--text",
                &texts[&id],
                "--json",
                &json.display().to_string(),
                "--quiet",
            ]);
            a.extend(m.flags.iter().map(|s| s.to_string()));
            run_ok(&a);
            let mut single: Value =
                serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
            assert!(single.as_object_mut().unwrap().remove(m.time_key).is_some());
            assert_same_json(&Value::Object(line), &single, &format!("{} {id}", m.name));
        }
        assert_eq!(fingerprints.len(), 1, "{}", m.name);
    }
    // What the lines hold, beyond equality: LIG's own `config` object stays; completeness per
    // column; the masked head's maps are zero; neuron attributions are not all zero.
    let lig = lines(&dir.join("lig.jsonl"));
    for v in &lig {
        assert_eq!(v["config"]["baseline_layer"], "itb_zero_ratio");
        assert_eq!(v["config"]["num_steps"], 16);
        assert!(v["words"].is_array());
        let t = v["tokens"].as_array().unwrap().len();
        for l in ["0", "1"] {
            let z = &v["layers"][l]["z2z"];
            assert_eq!(z["matrix"].as_array().unwrap().len(), t);
            let cols = z["completeness"].as_array().unwrap();
            assert_eq!(cols.len(), t);
            for c in cols {
                assert!(c["relative_delta"].as_f64().unwrap() < 1e-3, "{c}");
            }
            assert!(v["layers"][l]["words"]["z2z"].is_array());
        }
    }
    for v in lines(&dir.join("attention.jsonl")) {
        assert_eq!(v["masked_heads"], serde_json::json!([[1, 2]]));
        let masked = &v["attention"][1][2];
        assert!(masked
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap())
            .all(|p| p.as_f64() == Some(0.0)));
        for row in v["attention"][0][0].as_array().unwrap() {
            let s: f64 = row
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_f64().unwrap())
                .sum();
            assert!((s - 1.0).abs() < 1e-5, "{s}");
        }
    }
    for v in lines(&dir.join("neuron.jsonl")) {
        assert_eq!(v["method"], "neuron_conductance");
        assert!(v["attributions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x.as_f64() != Some(0.0)));
        assert!(v["word_attributions"].is_array());
    }
}

#[test]
fn lig_neuron_and_attention_resume_after_a_kill_each_id_once() {
    let dir = TempDir::new("new-resume");
    let input = dir.join("in.jsonl");
    write_input(&input, 8);
    let inp = input.display().to_string();
    for m in new_methods() {
        let clean = dir.join(&format!("{}-clean.jsonl", m.name));
        run_ok(&batch_args(&m, &inp, &clean.display().to_string()));
        let full = std::fs::read_to_string(&clean).unwrap();
        let ls: Vec<&str> = full.lines().collect();
        assert_eq!(ls.len(), 8, "{}", m.name);
        // A process killed during its fourth write: three lines and half of the fourth.
        let out = dir.join(&format!("{}.jsonl", m.name));
        let mut torn = String::new();
        for l in &ls[..3] {
            torn.push_str(l);
            torn.push('\n');
        }
        torn.push_str(&ls[3][..ls[3].len() / 2]);
        std::fs::write(&out, &torn).unwrap();
        let mut a = batch_args(&m, &inp, &out.display().to_string());
        a.push("--resume".into());
        a.retain(|x| x != "--quiet");
        let o = run_ok(&a);
        let err = text(&o.stderr);
        assert!(
            err.contains("3 already done") && err.contains("torn last line"),
            "{}: {err}",
            m.name
        );
        // Each id exactly once, each line the clean run's.
        let got = by_id_untimed(&out, m.time_key);
        assert_eq!(got.len(), 8);
        assert_eq!(got, by_id_untimed(&clean, m.time_key), "{}", m.name);
        // A second resume writes nothing.
        let before = std::fs::read(&out).unwrap();
        run_ok(&a);
        assert_eq!(std::fs::read(&out).unwrap(), before, "{}", m.name);
        // Resuming with other options is refused (the fingerprint, under its key).
        let mut b = batch_args(&m, &inp, &out.display().to_string());
        b.push("--resume".into());
        match m.name {
            "attention" => b.extend(["--mask-head".into(), "0:1".into()]),
            _ => {
                let k = b.iter().position(|x| x == "--steps").unwrap();
                b[k + 1] = "4".into();
            }
        }
        let r: Vec<&str> = b.iter().map(String::as_str).collect();
        let o = gradpath(&r);
        assert_eq!(o.status.code(), Some(1), "{}", m.name);
        assert!(text(&o.stderr).contains("other options"), "{}", m.name);
        assert_eq!(std::fs::read(&out).unwrap(), before, "{}", m.name);
        // Two shards merge into the clean run; a shard run with other options is refused.
        let part = |i: usize, options: &[String]| {
            let p = dir
                .join(&format!("{}-part-{i}.jsonl", m.name))
                .display()
                .to_string();
            let mut a = options.to_vec();
            let k = a
                .iter()
                .position(|x| *x == out.display().to_string())
                .unwrap();
            a[k] = p.clone();
            a.retain(|x| x != "--resume");
            a.extend(["--shard".into(), format!("{i}/2"), "--overwrite".into()]);
            run_ok(&a);
            p
        };
        let p0 = part(0, &a);
        let odd = part(1, &b);
        let merged = dir.join(&format!("{}-merged.jsonl", m.name));
        let ms = merged.display().to_string();
        let o = gradpath(&["merge", &p0, &odd, "--output", &ms, "--input", &inp]);
        assert_eq!(o.status.code(), Some(1), "{}", m.name);
        assert!(
            text(&o.stderr).contains("other options"),
            "{}: {}",
            m.name,
            text(&o.stderr)
        );
        let p1 = part(1, &a);
        let o = gradpath(&["merge", &p0, &p1, "--output", &ms, "--input", &inp]);
        assert!(o.status.success(), "{}: {}", m.name, text(&o.stderr));
        assert_eq!(
            by_id_untimed(&merged, m.time_key),
            by_id_untimed(&clean, m.time_key),
            "{}",
            m.name
        );
    }
}

/// −Σ p ln p of each row of one head's map, averaged over the rows.
fn mean_row_entropy(map: &Value) -> f64 {
    let rows = map.as_array().unwrap();
    rows.iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_f64().unwrap())
                .filter(|p| *p > 0.0)
                .map(|p| -p * p.ln())
                .sum::<f64>()
        })
        .sum::<f64>()
        / rows.len() as f64
}

#[test]
fn report_pages_for_lig_neuron_and_attention() {
    let dir = TempDir::new("new-report");
    let input = dir.join("in.jsonl");
    write_input(&input, 6);
    let inp = input.display().to_string();
    for m in new_methods() {
        let out = dir.join(&format!("{}.jsonl", m.name));
        let html = dir.join(&format!("{}.html", m.name));
        let summary = dir.join(&format!("{}.json", m.name));
        run_ok(&batch_args(&m, &inp, &out.display().to_string()));
        let o = gradpath(&[
            "report",
            "--input",
            &out.display().to_string(),
            "--html",
            &html.display().to_string(),
            "--json",
            &summary.display().to_string(),
            "--rough",
            "1e-7",
            "--quiet",
        ]);
        assert!(o.status.success(), "{}: {}", m.name, text(&o.stderr));
        let page = std::fs::read_to_string(&html).unwrap();
        assert!(
            page.contains("id=\"ex-5\"") && !page.contains("<script"),
            "{}",
            m.name
        );
        let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
        assert_eq!(s["examples_total"], 6);
        let ls = lines(&out);
        match m.name {
            "lig" => {
                assert_eq!(s["method"], "layer_wise_integrated_gradients");
                assert!(page.contains("LIG completeness per layer"));
                // Per layer: the mean over examples of each example's mean column delta, and
                // every column above --rough listed (up to 200) with its example.
                let layers = s["lig"]["layers"].as_array().unwrap();
                assert_eq!(layers.len(), 2);
                let mut above = 0;
                for (l, got) in layers.iter().enumerate() {
                    assert_eq!(got["layer"], l);
                    assert_eq!(got["examples"], 6);
                    let per_example: Vec<Vec<f64>> = ls
                        .iter()
                        .map(|v| {
                            v["layers"][l.to_string()]["z2z"]["completeness"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|c| c["relative_delta"].as_f64().unwrap().abs())
                                .collect()
                        })
                        .collect();
                    let columns: usize = per_example.iter().map(Vec::len).sum();
                    assert_eq!(got["columns"], columns);
                    let mean = per_example
                        .iter()
                        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
                        .sum::<f64>()
                        / 6.0;
                    let m2 = got["mean"].as_f64().unwrap();
                    assert!((m2 - mean).abs() <= 1e-12 * mean.abs(), "{m2} vs {mean}");
                    let max = per_example.iter().flatten().fold(0.0f64, |a, b| a.max(*b));
                    assert_eq!(got["max"].as_f64().unwrap(), max);
                    let n = per_example.iter().flatten().filter(|d| **d > 1e-7).count();
                    assert_eq!(got["rough"], n);
                    above += n;
                }
                assert!(
                    above > 0,
                    "--rough 1e-7 flags no column: the check is empty"
                );
                assert_eq!(s["lig"]["rough_total"], above);
                let listed = s["lig"]["rough_columns"].as_array().unwrap();
                assert_eq!(listed.len(), above.min(200));
                assert!(page.contains("Rough columns:"));
                // Each example's delta is its worst column; the histogram holds them all.
                assert_eq!(s["deltas"]["values"].as_array().unwrap().len(), 6);
            }
            "neuron" => {
                assert_eq!(s["method"], "neuron_conductance");
                assert!(page.contains("Neuron conductance of blocks.0.hook_resid_post"));
                assert!(page.contains("Top words by mean"));
                let totals: Vec<f64> = ls.iter().map(|v| v["total"].as_f64().unwrap()).collect();
                let mean = totals.iter().sum::<f64>() / 6.0;
                let got = s["neuron"]["total"]["mean"].as_f64().unwrap();
                assert!((got - mean).abs() <= 1e-12 * mean.abs(), "{got} vs {mean}");
                assert_eq!(s["neuron"]["neuron"], serde_json::json!([1, 3]));
                assert!(s["deltas"].is_null());
                assert!(s["notes"][0]
                    .as_str()
                    .unwrap()
                    .contains("no completeness delta"));
                assert!(
                    s["tokens"]["positive"].as_array().unwrap().len()
                        + s["tokens"]["negative"].as_array().unwrap().len()
                        > 0
                );
            }
            "attention" => {
                assert_eq!(s["method"], "attention");
                assert!(page.contains("Mean attention entropy per head over 6 examples"));
                let a = &s["attention"];
                assert_eq!(
                    (a["n_layers"].clone(), a["n_heads"].clone()),
                    (2.into(), 4.into())
                );
                let grid = a["mean"].as_array().unwrap();
                assert_eq!(grid.len(), 8);
                for l in 0..2 {
                    for h in 0..4 {
                        let want = ls
                            .iter()
                            .map(|v| mean_row_entropy(&v["attention"][l][h]))
                            .sum::<f64>()
                            / 6.0;
                        let got = grid[l * 4 + h].as_f64().unwrap();
                        assert!((got - want).abs() <= 1e-12, "{l} {h}: {got} vs {want}");
                        if (l, h) == (1, 2) {
                            assert_eq!(got, 0.0, "the masked head");
                        } else {
                            assert!(got > 0.0);
                        }
                    }
                }
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn lig_neuron_and_attention_flags_are_checked() {
    let dir = TempDir::new("new-flags");
    let input = dir.join("in.jsonl");
    write_input(&input, 2);
    let inp = input.display().to_string();
    let out = dir.join("out.jsonl").display().to_string();
    for (extra, needle) in [
        (
            vec!["--method", "ig", "--neuron", "1,3"],
            "--neuron: does not apply to --method ig",
        ),
        (
            vec!["--method", "ig", "--mask-head", "0:1"],
            "--mask-head: does not apply",
        ),
        (
            vec!["--method", "saliency", "--granularity", "layer"],
            "does not apply to --method saliency",
        ),
        (
            vec!["--method", "neuron", "--neuron", "1,3"],
            "--boundary: is required",
        ),
        (
            vec![
                "--method",
                "neuron",
                "--boundary",
                "blocks.0.hook_resid_post",
            ],
            "--neuron: is required",
        ),
        (
            vec!["--method", "lig", "--target", "1"],
            "explains no target",
        ),
        (
            vec!["--method", "attention", "--similar-to", "x"],
            "explains no target",
        ),
        (
            vec!["--method", "lig", "--baseline", "zero"],
            "--baseline-layer",
        ),
        (
            vec!["--method", "lig", "--words", "--aggregate", "mean"],
            "sum the sub-words",
        ),
        (
            vec!["--method", "attention", "--words"],
            "words apply to token-level methods",
        ),
    ] {
        let mut a = with_model(vec![
            "batch", "--model", MODEL_MARK, "--input", &inp, "--output", &out, "--quiet",
        ]);
        a.extend(extra.iter().map(|s| s.to_string()));
        let r: Vec<&str> = a.iter().map(String::as_str).collect();
        let o = gradpath(&r);
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains(needle),
            "{extra:?}: {}",
            text(&o.stderr)
        );
        assert!(!Path::new(&out).exists(), "{extra:?}");
    }
    // `--layers all` works for lig (and the layer-list methods), as for `gradpath lig`.
    let a = with_model(vec![
        "batch",
        "--method",
        "lig",
        "--model",
        MODEL_MARK,
        "--input",
        &inp,
        "--output",
        &out,
        "--layers",
        "all",
        "--granularity",
        "layer",
        "--steps",
        "4",
        "--quiet",
    ]);
    run_ok(&a);
    for v in lines(Path::new(&out)) {
        assert_eq!(v["config"]["layers"], serde_json::json!([0, 1]));
        assert_eq!(v["config"]["granularity"], serde_json::json!(["layer"]));
        assert!(v["layers"]["0"].get("targets").is_none());
    }
}
