//! The one safe wrapper around the `gemm` crate (pure Rust, AVX-512 with feature `x86-v4`).
//!
//! Operands are strided matrix views ([`Mat`]): element (i, j) sits at `offset + i·rs + j·cs`, so a
//! transposed operand is the same buffer with its strides swapped: no copies. Batches are described
//! by a closure giving each batch item's three offsets; items are run in parallel over rayon when
//! they are small, one after another (each GEMM parallel inside) when they are large.
//!
//! Every call increments a global counter ([`gemm_calls`]), which tests use to prove that the
//! reverse sweep skips GEMMs whose result nobody asked for.

use crate::tensor::Float;
use crate::{Error, Result};
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

static GEMM_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Number of [`gemm_batched`] calls since the process started (a batched call counts once).
pub fn gemm_calls() -> usize {
    GEMM_CALLS.load(Ordering::Relaxed)
}

/// A strided view of a matrix inside a flat buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mat {
    pub rows: usize,
    pub cols: usize,
    /// Row stride in elements.
    pub rs: usize,
    /// Column stride in elements.
    pub cs: usize,
}

impl Mat {
    /// A contiguous row-major `rows × cols` matrix.
    pub fn row_major(rows: usize, cols: usize) -> Mat {
        Mat {
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
    /// A row-major matrix whose rows are `ld` elements apart.
    pub fn strided(rows: usize, cols: usize, ld: usize) -> Mat {
        Mat {
            rows,
            cols,
            rs: ld,
            cs: 1,
        }
    }
    /// The transpose: same buffer, strides swapped.
    pub fn t(self) -> Mat {
        Mat {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }
    /// Transposes when `flag` is set.
    pub fn t_if(self, flag: bool) -> Mat {
        if flag {
            self.t()
        } else {
            self
        }
    }
    /// One past the largest element index the view touches from `offset`.
    fn extent(&self, offset: usize) -> usize {
        if self.rows == 0 || self.cols == 0 {
            offset
        } else {
            offset + (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }
}

/// How batch items may be scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Every batch item writes its own elements of `dst`.
    Disjoint,
    /// Consecutive groups of this many items write the same elements (accumulating); groups are
    /// disjoint from each other.
    Groups(usize),
}

#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: the pointer is only dereferenced by `gemm` calls on element sets that the caller
// guarantees disjoint between concurrently running items (see `Overlap`).
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

/// `dst_i = beta·dst_i + alpha · a_i · b_i` for `i in 0..batch` (`beta` is 1 when `accumulate`,
/// else 0), with `offsets(i) = [dst, a, b]` element offsets of item `i`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_batched<T: Float>(
    batch: usize,
    dst: &mut [T],
    d: Mat,
    a: &[T],
    am: Mat,
    b: &[T],
    bm: Mat,
    offsets: impl Fn(usize) -> [usize; 3] + Sync,
    overlap: Overlap,
    accumulate: bool,
    alpha: T,
) -> Result<()> {
    if am.rows != d.rows || bm.cols != d.cols || am.cols != bm.rows {
        return Err(Error::Shape {
            op: "gemm",
            detail: format!(
                "({}×{}) · ({}×{}) does not give ({}×{})",
                am.rows, am.cols, bm.rows, bm.cols, d.rows, d.cols
            ),
        });
    }
    // Bounds: every item's three views must lie inside their buffers.
    for i in 0..batch {
        let [od, oa, ob] = offsets(i);
        if d.extent(od) > dst.len() || am.extent(oa) > a.len() || bm.extent(ob) > b.len() {
            return Err(Error::Shape {
                op: "gemm",
                detail: format!("batch item {i} reads or writes outside its buffer"),
            });
        }
    }
    GEMM_CALLS.fetch_add(1, Ordering::Relaxed);
    let (m, n, k) = (d.rows, d.cols, am.cols);
    if m == 0 || n == 0 {
        return Ok(());
    }
    let dptr = SendPtr(dst.as_mut_ptr());
    let run = |i: usize, par: gemm::Parallelism| {
        let [od, oa, ob] = offsets(i);
        let dp = dptr;
        // SAFETY: bounds of all three views were checked above; `dst` is exclusively borrowed by
        // this function and concurrently running items write disjoint elements (caller contract,
        // enforced by `Overlap`).
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dp.0.add(od),
                d.cs as isize,
                d.rs as isize,
                accumulate,
                a.as_ptr().add(oa),
                am.cs as isize,
                am.rs as isize,
                b.as_ptr().add(ob),
                bm.cs as isize,
                bm.rs as isize,
                T::one(),
                alpha,
                false,
                false,
                false,
                par,
            )
        }
    };
    let flops = 2.0 * (m * n * k) as f64;
    let group = match overlap {
        Overlap::Disjoint => 1,
        Overlap::Groups(g) => g.max(1),
    };
    let n_groups = batch.div_ceil(group);
    let threads = rayon::current_num_threads();
    if n_groups > 1 && threads > 1 && flops < 4.0e7 {
        // Many small products: one thread per group of items.
        (0..n_groups).into_par_iter().for_each(|g| {
            for i in g * group..((g + 1) * group).min(batch) {
                run(i, gemm::Parallelism::None);
            }
        });
    } else {
        let par = if threads > 1 && flops >= 2.0e6 {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        for i in 0..batch {
            run(i, par);
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
/// Single `dst = alpha · a · b` (or `+=` when `accumulate`) on contiguous buffers with views.
pub fn gemm<T: Float>(
    dst: &mut [T],
    d: Mat,
    a: &[T],
    am: Mat,
    b: &[T],
    bm: Mat,
    accumulate: bool,
    alpha: T,
) -> Result<()> {
    gemm_batched(
        1,
        dst,
        d,
        a,
        am,
        b,
        bm,
        |_| [0, 0, 0],
        Overlap::Disjoint,
        accumulate,
        alpha,
    )
}

/// Obviously-correct reference: the test oracle for the wrapper.
pub fn gemm_naive<T: Float>(d: &mut [T], dm: Mat, a: &[T], am: Mat, b: &[T], bm: Mat) {
    for i in 0..dm.rows {
        for j in 0..dm.cols {
            let mut acc = T::zero();
            for p in 0..am.cols {
                acc += a[i * am.rs + p * am.cs] * b[p * bm.rs + j * bm.cs];
            }
            d[i * dm.rs + j * dm.cs] = acc;
        }
    }
}
