//! The fast f32 erf used by exact GELU in f32, against f64 `libm::erf` on a dense grid.

use gradpath::tensor::fast_erf_f32;

#[test]
fn fast_erf_f32_is_accurate() {
    let mut worst: f64 = 0.0;
    let mut x = -10.0f64;
    while x <= 10.0 {
        let got = fast_erf_f32(x as f32) as f64;
        let want = libm::erf((x as f32) as f64);
        worst = worst.max((got - want).abs());
        x += 1e-4;
    }
    assert!(worst < 1e-6, "max abs error {worst:e}");
    assert_eq!(fast_erf_f32(0.0), 0.0);
    // Saturation: erf(±∞) = ±1 to within one f32 ulp of 1.
    assert!(
        (fast_erf_f32(f32::INFINITY) - 1.0).abs() <= 1.2e-7
            && (fast_erf_f32(-50.0) + 1.0).abs() <= 1.2e-7
    );
    assert!(fast_erf_f32(f32::NAN).is_nan());
    eprintln!("fast erf max abs error on [-10, 10]: {worst:.3e}");
}

#[test]
fn fast_exp_and_tanh_f32_are_accurate() {
    use gradpath::tensor::{fast_exp_f32, fast_tanh_f32};
    let (mut worst_exp, mut worst_tanh): (f64, f64) = (0.0, 0.0);
    let mut x = -87.0f64;
    while x <= 88.0 {
        let xf = x as f32;
        let want = (xf as f64).exp();
        worst_exp = worst_exp.max(((fast_exp_f32(xf) as f64) - want).abs() / want);
        x += 1e-3;
    }
    let mut u = -12.0f64;
    while u <= 12.0 {
        let uf = u as f32;
        worst_tanh = worst_tanh.max(((fast_tanh_f32(uf) as f64) - (uf as f64).tanh()).abs());
        u += 1e-4;
    }
    eprintln!(
        "fast exp max relative error {worst_exp:.3e}; fast tanh max abs error {worst_tanh:.3e}"
    );
    assert!(worst_exp < 3e-7, "exp: {worst_exp:e}");
    assert!(worst_tanh < 3e-7, "tanh: {worst_tanh:e}");
    assert_eq!(fast_exp_f32(f32::NEG_INFINITY), 0.0);
    assert_eq!(fast_exp_f32(0.0), 1.0);
    assert!(fast_exp_f32(f32::NAN).is_nan());
    assert!(fast_exp_f32(100.0) > 1e38);
}
