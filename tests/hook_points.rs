//! The static hook-point registry (`Model::hook_points`) lists exactly the boundaries a forward
//! passes, with the same per-row shapes, for every tiny model family, and every name round-trips
//! through `HookName`.

use gradpath::models::{self, Batch, HookName, Hooks};
use gradpath::DType;
use std::path::Path;

#[test]
fn hook_points_match_the_forward() {
    for name in [
        "tiny-bert",
        "tiny-bert-embed",
        "tiny-distilbert",
        "tiny-roberta",
        "tiny-gpt2",
        "tiny-llama",
        "tiny-mistral",
        "tiny-qwen2",
    ] {
        let dir = Path::new("tests/fixtures/models").join(name);
        let m = models::load(&dir, DType::F64).unwrap();
        for pos in [1usize, 5] {
            let ids: Vec<usize> = (0..pos).map(|i| 3 + i).collect();
            let types = vec![0; pos];
            let mut hooks = Hooks::new().capture_all();
            m.forward(&Batch::repeat(&ids, &types, 2), &mut hooks)
                .unwrap();
            let seen: Vec<(String, Vec<usize>)> = hooks
                .seen()
                .iter()
                .map(|(n, s)| (n.clone(), s[1..].to_vec()))
                .collect();
            let listed: Vec<(String, Vec<usize>)> = m
                .hook_points(pos)
                .into_iter()
                .map(|p| (p.name.to_string(), p.shape))
                .collect();
            assert_eq!(listed, seen, "{name} at {pos} tokens");
            for (n, _) in &seen {
                let h: HookName = n.parse().unwrap();
                assert_eq!(&h.to_string(), n);
            }
            let layers = seen
                .iter()
                .filter(|(n, _)| n.ends_with(".hook_resid_post"))
                .count();
            assert_eq!(m.n_layers(), layers, "{name}");
            let pattern = &seen
                .iter()
                .find(|(n, _)| n.ends_with("attn.hook_pattern"))
                .unwrap()
                .1;
            assert_eq!(m.n_heads(), pattern[0], "{name}");
            let q = &seen
                .iter()
                .find(|(n, _)| n.ends_with("attn.hook_q"))
                .unwrap()
                .1;
            assert_eq!(m.d_head(), q[2], "{name}");
        }
    }
}

/// A classifier whose head reads only the first token computes its last block for position 0
/// alone when nothing asks for that block's boundaries, with the same logits; asking for any of
/// them (or capturing its pattern) gives every position again. A replaced pattern skips q, k and
/// the scores of its layer.
#[test]
fn classifier_last_block_narrows_only_when_nobody_looks() {
    use gradpath::{Tape, Var};
    for name in ["tiny-bert", "tiny-distilbert", "tiny-roberta"] {
        let dir = Path::new("tests/fixtures/models").join(name);
        let m = models::load(&dir, DType::F64).unwrap();
        let last = m.n_layers() - 1;
        let pos = 6;
        let ids: Vec<usize> = (0..pos).map(|i| 3 + i).collect();
        let x = Batch::repeat(&ids, &vec![0; pos], 2);
        let shape = |hooks: &Hooks, site: &str| {
            let n = format!("blocks.{last}.{site}");
            hooks
                .seen()
                .iter()
                .find(|(s, _)| *s == n)
                .map(|(_, s)| s.clone())
        };
        let logits = |out: models::ModelOutput| out.logits.unwrap().value().to_vec_f64().unwrap();

        let mut full = Hooks::new().capture_all();
        let want = logits(m.forward(&x, &mut full).unwrap());
        assert_eq!(shape(&full, "hook_resid_post").unwrap()[1], pos, "{name}");

        let mut plain = Hooks::new();
        let got = logits(m.forward(&x, &mut plain).unwrap());
        assert_eq!(
            shape(&plain, "hook_resid_post").unwrap()[1],
            1,
            "{name}: narrowed"
        );
        assert_eq!(shape(&plain, "hook_attn_out").unwrap()[1], 1, "{name}");
        assert_eq!(
            shape(&plain, "attn.hook_k").unwrap()[1],
            pos,
            "{name}: keys stay full"
        );
        for (a, b) in want.iter().zip(&got) {
            assert!(
                (a - b).abs() <= 1e-12 * a.abs().max(1.0),
                "{name}: {a} vs {b}"
            );
        }

        // Capturing the last block's pattern (without replacing it) needs every query row.
        let p = format!("blocks.{last}.attn.hook_pattern");
        let mut cap = Hooks::new().capture(&[p.as_str()]);
        m.forward(&x, &mut cap).unwrap();
        assert_eq!(cap.get(&p).unwrap().shape()[2], pos, "{name}");

        // Replacing it (as ATTATTR does) narrows after the replacement and skips q/k/scores;
        // the gradient reaches every entry of the replacement (zero off the first query row).
        let a = cap.get(&p).unwrap().value().clone();
        let tape = Tape::new();
        let leaf: Var = tape.var(a.clone());
        let mut rep = Hooks::new().replace(&p, leaf.clone());
        let out = m.forward(&x, &mut rep).unwrap();
        assert_eq!(shape(&rep, "hook_resid_post").unwrap()[1], 1, "{name}");
        assert!(shape(&rep, "attn.hook_q").is_none(), "{name}: q skipped");
        assert!(shape(&rep, "attn.hook_attn_scores").is_none(), "{name}");
        let logit = out.logits.unwrap();
        for (a, b) in want.iter().zip(&logit.value().to_vec_f64().unwrap()) {
            assert!(
                (a - b).abs() <= 1e-12 * a.abs().max(1.0),
                "{name}: {a} vs {b}"
            );
        }
        let seed = gradpath::Tensor::from_f64(
            &vec![1.0; logit.value().numel()],
            logit.shape(),
            DType::F64,
        )
        .unwrap();
        let g = tape
            .grad(&[&logit], &[seed], &[&leaf])
            .unwrap()
            .remove(0)
            .unwrap();
        let g = g.to_vec_f64().unwrap();
        let (h, t) = (a.shape()[1], pos);
        for b in 0..2 {
            for hh in 0..h {
                for i in 1..t {
                    for j in 0..t {
                        assert_eq!(g[((b * h + hh) * t + i) * t + j], 0.0, "{name}");
                    }
                }
            }
        }
        assert!(g.iter().any(|v| *v != 0.0), "{name}: row 0 gets a gradient");
    }
}
