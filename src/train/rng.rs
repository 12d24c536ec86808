//! A small seeded random number generator (SplitMix64) for dropout masks, shuffling and head
//! initialisation. It is not PyTorch's generator: runs are reproducible for a seed within gradpath,
//! not bit-identical to a PyTorch run with the same seed.
//!
//! Independent streams are derived from a seed and a path of integers ([`Rng::derive`]), so a
//! dropout mask depends only on (seed, step, site) and not on the order in which threads draw.

/// SplitMix64 (Steele, Lea & Flood 2014; the seeding generator of xoshiro).
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A draw as a uniform in [0, 1): its top 53 bits.
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: mix(seed) }
    }

    /// A stream for `seed` and a path of integers (e.g. `[stream kind, step, site]`): different
    /// paths give unrelated streams.
    pub fn derive(seed: u64, path: &[u64]) -> Rng {
        let mut s = mix(seed);
        for &p in path {
            s = mix(s ^ mix(p.wrapping_add(GOLDEN)));
        }
        Rng { state: s }
    }

    /// The next `out.len()` uniforms in [0, 1), as many calls of [`Rng::uniform`] would give
    /// them (the same numbers, and the stream advanced past them), computed in parallel: draw k
    /// of SplitMix64 is `mix(state + (k + 1)·GOLDEN)`, independent of the others.
    pub fn fill_with<T: Send>(&mut self, out: &mut [T], f: impl Fn(f64) -> T + Sync) {
        use rayon::prelude::*;
        const CHUNK: usize = 1 << 14;
        let s0 = self.state;
        let draw = |k: usize| unit(mix(s0.wrapping_add((k as u64 + 1).wrapping_mul(GOLDEN))));
        out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, o)| {
            let base = c * CHUNK;
            o.iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = f(draw(base + i)));
        });
        self.state = s0.wrapping_add((out.len() as u64).wrapping_mul(GOLDEN));
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in [0, 1), 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        unit(self.next_u64())
    }

    /// Standard normal (Box–Muller; one of the pair is used).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]: ln is finite
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Uniform integer in `0..n` (`n > 0`; Lemire's multiply-shift, bias < n / 2⁶⁴).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod fill_tests {
    use super::*;

    #[test]
    fn fill_with_gives_the_draws_of_uniform_and_advances_the_stream() {
        for n in [0, 1, 5, (1 << 14) + 3, 40_000] {
            let (mut a, mut b) = (Rng::derive(7, &[1, 2, 3]), Rng::derive(7, &[1, 2, 3]));
            let want: Vec<f64> = (0..n).map(|_| a.uniform()).collect();
            let mut got = vec![0.0; n];
            b.fill_with(&mut got, |u| u);
            assert_eq!(got, want, "n = {n}");
            assert_eq!(
                a.next_u64(),
                b.next_u64(),
                "n = {n}: the stream continues alike"
            );
        }
    }
}
