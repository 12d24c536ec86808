//! LIG (set-to-set layer-wise IG, `src/attribution/lig.rs`).

use gradpath::attribution::lig::*;
use gradpath::attribution::probe::Subject;
use gradpath::integrate::Rule;
use gradpath::models::{self, Model};
use gradpath::DType;
use std::path::Path;

fn load(name: &str) -> Box<dyn Model> {
    models::load(Path::new(&format!("tests/fixtures/models/{name}")), DType::F64).unwrap()
}

const IDS: [usize; 6] = [2, 11, 25, 7, 40, 3];

#[test]
fn explore() {
    for fam in ["tiny-bert", "tiny-gpt2", "tiny-llama"] {
        let m = load(fam);
        let lig = Lig::new(Subject::new(m.as_ref(), &IDS, &[0; 6])).unwrap();
        for n in [8, 32, 128] {
            let cfg = LigConfig::new(Rule::GaussLegendre, n).unwrap();
            for b in [LayerBaseline::Zero, LayerBaseline::Itb] {
                let r = lig.layer_map(1, b, &cfg).unwrap();
                println!("{fam} layer n={n} {b:?} maxrel {:.3e} norms {:?}", r.max_relative_delta(), &r.target_norm[..2]);
            }
            for b in [AttBaseline::Zero, AttBaseline::Itb] {
                let r = lig.att_map(1, b, &[], &cfg).unwrap();
                let w = r.iter().map(|m| m.max_relative_delta()).fold(0.0, f64::max);
                println!("{fam} att n={n} {b:?} maxrel {w:.3e}");
            }
            for b in [MlpBaseline::Zero, MlpBaseline::AttItbA0] {
                let r = lig.mlp_map(1, b, &[], &cfg).unwrap();
                let w = r.relative_delta().into_iter().fold(0.0, f64::max);
                println!("{fam} mlp n={n} {b:?} maxrel {w:.3e}");
            }
        }
    }
}
