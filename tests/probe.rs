//! The probe pass: per-row specs (replace, patch, head masks) give the same F as separate runs;
//! a forward stopped after a boundary gives the same values and gradients as a full one; a vector
//! objective scalarised by a cotangent gives the gradient of that scalar; captures of untouched
//! boundaries carry gradients.

use gradpath::attribution::probe::{
    self, Capture, Chunking, Objective, Path, Request, RowSpec, Rows, Subject,
};
use gradpath::attribution::{Target, TargetKind};
use gradpath::models::{self, HookName, Model, Site};
use gradpath::{DType, Result, Tensor, Var};
use std::path::Path as FsPath;

fn tiny() -> Box<dyn Model> {
    models::load(FsPath::new("tests/fixtures/models/tiny-bert"), DType::F64).unwrap()
}

const IDS: [usize; 5] = [2, 11, 25, 7, 3];
const TYPES: [usize; 5] = [0; 5];
const TARGET: Target = Target::Class {
    class: 1,
    kind: TargetKind::Prob,
};

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// One chunk's capture `i` (value or gradient) of a single probe run, on the host.
fn run1(s: &Subject, req: &Request, grad: bool, i: usize) -> (Vec<f64>, Vec<f64>) {
    let mut out = Vec::new();
    let f = probe::run(s, req, &mut |_, _| {}, &mut |c| {
        let t = if grad { &c.grads[i] } else { &c.values[i] };
        out.extend(t.as_ref().unwrap().to_vec_f64()?);
        Ok(())
    })
    .unwrap();
    (f, out)
}

#[test]
fn per_row_specs_match_separate_runs() {
    let m = tiny();
    let s = Subject::new(m.as_ref(), &IDS, &TYPES);
    let pattern = HookName::block(0, Site::Pattern);
    let a = {
        let req = Request::new(Rows::Count(1), Objective::Target(&TARGET))
            .capture(Capture::value(pattern));
        run1(&s, &req, false, 0).1
    };
    let shape = s.shape_of(pattern).unwrap();
    let half: Vec<f64> = a.iter().map(|v| 0.5 * v).collect();
    let resid = HookName::block(1, Site::ResidMid);
    let rshape = s.shape_of(resid).unwrap();
    let n: usize = rshape.iter().product();
    let keep: Vec<f64> = (0..n).map(|i| if i % 3 == 0 { 0.0 } else { 1.0 }).collect();
    let vals: Vec<f64> = (0..n).map(|i| 0.01 * (i % 7) as f64).collect();
    let specs = vec![
        RowSpec::new().replace(
            pattern,
            Tensor::from_f64(&half, &shape, DType::F64).unwrap(),
        ),
        RowSpec::new(),
        RowSpec::new().mask_heads(1, vec![1.0, 0.0, 1.0, 0.5]),
        RowSpec::new().patch(
            resid,
            Tensor::from_f64(&keep, &rshape, DType::F64).unwrap(),
            Tensor::from_f64(&vals, &rshape, DType::F64).unwrap(),
        ),
    ];
    let together = probe::values(
        &s,
        Rows::Specs(&specs),
        Objective::Target(&TARGET),
        Chunking::Rows(4),
    )
    .unwrap();
    for (k, spec) in specs.iter().enumerate() {
        let alone = probe::values(
            &s,
            Rows::Specs(std::slice::from_ref(spec)),
            Objective::Target(&TARGET),
            Chunking::Rows(1),
        )
        .unwrap();
        assert!(
            (together[k] - alone[0]).abs() < 1e-13,
            "row {k}: {} vs {}",
            together[k],
            alone[0]
        );
    }
    // The rows really differ from the plain input.
    for k in [0, 2, 3] {
        assert!(
            (together[k] - together[1]).abs() > 1e-6,
            "row {k} changed nothing"
        );
    }
}

#[test]
fn a_stopped_forward_matches_a_full_one() {
    let m = tiny();
    let s = Subject::new(m.as_ref(), &IDS, &TYPES);
    let at = HookName::block(0, Site::ResidPost);
    let reads = [at];
    // F = Σ resid_post², a function of block 0 only.
    let eval = |fw: &probe::Forward| -> Result<Var> {
        let y = fw.boundary(at)?;
        y.mul(y)?.sum(&[1, 2], false)
    };
    let mk = |full: bool| {
        Request::new(
            Rows::Count(2),
            Objective::Custom {
                reads: &reads,
                model_output: full,
                eval: &eval,
            },
        )
        .capture(Capture::grad(HookName::Embed))
    };
    let (f_stop, g_stop) = run1(&s, &mk(false), true, 0);
    let (f_full, g_full) = run1(&s, &mk(true), true, 0);
    assert_eq!(f_stop, f_full);
    assert!(rel(&g_stop, &g_full) < 1e-14);
    assert!(g_stop.iter().any(|v| *v != 0.0));
}

#[test]
fn a_vector_objective_with_a_cotangent_is_the_gradient_of_that_scalar() {
    let m = tiny();
    let s = Subject::new(m.as_ref(), &IDS, &TYPES);
    let at = HookName::block(1, Site::ResidMid);
    let reads = [at];
    let shape = s.shape_of(at).unwrap();
    let per: usize = shape.iter().product();
    let j = 37;
    let vector = |fw: &probe::Forward| -> Result<Var> { fw.boundary(at).cloned() };
    let seeds = |r: std::ops::Range<usize>, sh: &[usize]| -> Result<Tensor> {
        let mut v = vec![0.0; r.len() * per];
        for i in 0..r.len() {
            v[i * per + j] = 2.0;
        }
        Tensor::from_f64(&v, sh, DType::F64)
    };
    let req = Request::new(
        Rows::Count(1),
        Objective::Custom {
            reads: &reads,
            model_output: false,
            eval: &vector,
        },
    )
    .cotangent(&seeds)
    .capture(Capture::both(HookName::EmbedOut));
    let (f_vec, g_vec) = run1(&s, &req, true, 0);
    let scalar = |fw: &probe::Forward| -> Result<Var> {
        let y = fw.boundary(at)?;
        y.reshape(&[1, per])?
            .narrow(1, j, 1)?
            .reshape(&[1])?
            .scale(2.0)
    };
    let req = Request::new(
        Rows::Count(1),
        Objective::Custom {
            reads: &reads,
            model_output: false,
            eval: &scalar,
        },
    )
    .capture(Capture::grad(HookName::EmbedOut));
    let (f_sc, g_sc) = run1(&s, &req, true, 0);
    assert!((f_vec[0] - f_sc[0]).abs() < 1e-14);
    assert!(rel(&g_vec, &g_sc) < 1e-14);
}

#[test]
fn path_rows_and_fill_rows_agree() {
    let m = tiny();
    let s = Subject::new(m.as_ref(), &IDS, &TYPES);
    let x = m.word_embeddings(&IDS).unwrap();
    let b = m.word_embeddings(&[0; 5]).unwrap();
    let path = Path::straight(HookName::Embed, x.clone(), b.clone());
    let alphas = [0.0, 0.25, 1.0];
    let by_path = probe::values(
        &s,
        Rows::Path {
            path: &path,
            alphas: &alphas,
        },
        Objective::Target(&TARGET),
        Chunking::Rows(2),
    )
    .unwrap();
    let (xv, bv) = (x.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
    let fill = |k: usize, row: &mut [f64]| -> Result<()> {
        for ((o, x), b) in row.iter_mut().zip(&xv).zip(&bv) {
            *o = b + alphas[k] * (x - b);
        }
        Ok(())
    };
    let by_fill = probe::values(
        &s,
        Rows::Fill {
            n: 3,
            at: HookName::Embed,
            fill: &fill,
        },
        Objective::Target(&TARGET),
        Chunking::default(),
    )
    .unwrap();
    assert!(
        rel(&by_fill, &by_path) < 1e-15,
        "{by_fill:?} vs {by_path:?}"
    );
    let plain = probe::values(
        &s,
        Rows::Count(1),
        Objective::Target(&TARGET),
        Chunking::Rows(1),
    )
    .unwrap();
    assert!(
        (by_path[2] - plain[0]).abs() < 1e-15,
        "α = 1 is the input exactly"
    );
}
