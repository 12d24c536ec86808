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
