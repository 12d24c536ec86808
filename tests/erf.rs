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
    assert!((fast_erf_f32(f32::INFINITY) - 1.0).abs() <= 1.2e-7 && (fast_erf_f32(-50.0) + 1.0).abs() <= 1.2e-7);
    assert!(fast_erf_f32(f32::NAN).is_nan());
    eprintln!("fast erf max abs error on [-10, 10]: {worst:.3e}");
}
