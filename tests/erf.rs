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

/// The exponent of `fast_exp_f32` is built with float operations and one float→int conversion
/// (so AVX without AVX2 vectorises it). It must give the bits the integer construction gave: the
/// same polynomial with 2^n as `((n/2 + 127) << 23)` and `((n − n/2 + 127) << 23)`, checked on
/// every 61st f32 bit pattern of [−100, 100] (3.6 million values, the subnormal results and both
/// clamps included), and at ±∞ and NaN.
#[test]
fn fast_exp_f32_equals_the_integer_exponent_construction() {
    use gradpath::tensor::fast_exp_f32;
    fn with_shifts(x: f32) -> f32 {
        let underflow = x < -87.336_54;
        let x = x.clamp(-87.336_54, 88.722_83);
        let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
        let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
        let z = r * r;
        let mut p = 1.987_569_1e-4_f32;
        p = p * r + 1.398_199_9e-3;
        p = p * r + 8.333_452e-3;
        p = p * r + 4.166_579_6e-2;
        p = p * r + 1.666_666_5e-1;
        p = p * r + 0.5;
        let e = p * z + r + 1.0;
        let n = (n + 12_582_912.0).to_bits() as i32 - 0x4B40_0000;
        let (n1, n2) = (n / 2, n - n / 2);
        let y = e
            * f32::from_bits(((n1 + 127) as u32) << 23)
            * f32::from_bits(((n2 + 127) as u32) << 23);
        if underflow {
            0.0
        } else {
            y
        }
    }
    let mut checked = 0usize;
    for sign in [0u32, 0x8000_0000] {
        let top = 100.0f32.to_bits();
        for b in (0..=top).step_by(61).chain([top]) {
            let x = f32::from_bits(b | sign);
            assert_eq!(
                fast_exp_f32(x).to_bits(),
                with_shifts(x).to_bits(),
                "x = {x:e}"
            );
            checked += 1;
        }
    }
    assert!(checked > 3_000_000, "{checked}");
    for x in [f32::INFINITY, f32::NEG_INFINITY, 88.722_83, -87.336_54, 0.0] {
        assert_eq!(fast_exp_f32(x).to_bits(), with_shifts(x).to_bits(), "{x}");
    }
    assert!(fast_exp_f32(f32::NAN).is_nan());
}
