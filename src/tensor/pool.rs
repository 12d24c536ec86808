//! A process-wide pool of host buffers, one per element type.
//!
//! Why: on CPU, memory traffic decides speed as much as GEMM does. A fresh `Vec` of a few MB is
//! fresh pages from the kernel (page faults + zeroing) every time; a transformer forward+backward
//! allocates hundreds of such activation and gradient buffers of a handful of distinct sizes. Buffers
//! dropped by [`crate::tensor::Storage`] come back here and are handed out again for the next tensor
//! of the same length, so a steady-state sweep touches warm memory.
//!
//! Rules: only buffers of at least [`MIN_POOLED`] elements are pooled; the pools of all element types
//! together hold at most `GRADPATH_POOL_MB` MiB (default 2048) and drops anything beyond; [`take`] returns a buffer whose
//! contents are arbitrary (the caller overwrites every element), [`take_zeroed`] one that is zero.
//! A request is served by the smallest free buffer whose capacity is between its length and
//! 1.25 times that (best fit, [`SLACK_DIV`]), so the shorter last chunk of a batched sweep (e.g. 12 rows
//! after chunks of 13) reuses the earlier chunks' buffers instead of faulting in fresh pages.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Buffers shorter than this go straight to the allocator.
pub const MIN_POOLED: usize = 1024;

/// A free buffer serves a request of `len` elements when its capacity is at most
/// `len + len / SLACK_DIV` (25 % larger).
pub const SLACK_DIV: usize = 4;

/// Element types that have a pool.
pub trait Pooled: Copy + Default + Send + Sync + 'static {
    fn pool() -> &'static Pool<Self>;
}

/// Free lists keyed by capacity (every pooled buffer is full: length = capacity).
pub struct Pool<T> {
    free: Mutex<BTreeMap<usize, Vec<Vec<T>>>>,
    held_bytes: AtomicUsize,
    hits: AtomicUsize,
    misses: AtomicUsize,
}

impl<T: Pooled> Pool<T> {
    fn new() -> Self {
        Self {
            free: Mutex::new(BTreeMap::new()),
            held_bytes: AtomicUsize::new(0),
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
        }
    }

    fn take(&self, len: usize) -> Option<Vec<T>> {
        if len < MIN_POOLED {
            return None;
        }
        let v = {
            let mut free = self.free.lock().ok()?;
            // Best fit: the smallest capacity in [len, len + len/SLACK_DIV] (lists are never
            // left empty, so the first key in range has a buffer).
            let cap = free
                .range(len..=len + len / SLACK_DIV)
                .next()
                .map(|(&cap, _)| cap);
            cap.and_then(|cap| {
                let list = free.get_mut(&cap)?;
                let v = list.pop();
                if list.is_empty() {
                    free.remove(&cap);
                }
                v
            })
        };
        match v {
            Some(mut v) => {
                let bytes = v.capacity() * std::mem::size_of::<T>();
                self.held_bytes.fetch_sub(bytes, Ordering::Relaxed);
                HELD_TOTAL.fetch_sub(bytes, Ordering::Relaxed);
                self.hits.fetch_add(1, Ordering::Relaxed);
                // Keeps the capacity: the buffer returns to the pool at its full size.
                v.truncate(len);
                Some(v)
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    fn give(&self, mut v: Vec<T>) {
        let cap = v.capacity();
        if v.len() < MIN_POOLED || cap > v.len() + v.len() / SLACK_DIV {
            return;
        }
        // A buffer served to a shorter request: back to its full size (the tail is at most a
        // quarter of it).
        v.resize(cap, T::default());
        let len = cap;
        let bytes = len * std::mem::size_of::<T>();
        // Reserve first, then push: concurrent returns cannot overshoot the shared limit.
        if HELD_TOTAL.fetch_add(bytes, Ordering::Relaxed) + bytes > limit_bytes() {
            HELD_TOTAL.fetch_sub(bytes, Ordering::Relaxed);
            return;
        }
        match self.free.lock() {
            Ok(mut free) => {
                free.entry(len).or_default().push(v);
                self.held_bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            Err(_) => {
                HELD_TOTAL.fetch_sub(bytes, Ordering::Relaxed);
            }
        }
    }

    /// Drops every pooled buffer.
    pub fn clear(&self) {
        if let Ok(mut free) = self.free.lock() {
            free.clear();
            let held = self.held_bytes.swap(0, Ordering::Relaxed);
            HELD_TOTAL.fetch_sub(held, Ordering::Relaxed);
        }
    }

    /// (hits, misses, bytes held) since start.
    pub fn stats(&self) -> (usize, usize, usize) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
            self.held_bytes.load(Ordering::Relaxed),
        )
    }
}

/// Bytes held by the pools of all element types together (the limit is shared).
static HELD_TOTAL: AtomicUsize = AtomicUsize::new(0);

fn limit_bytes() -> usize {
    static LIMIT: OnceLock<usize> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::env::var("GRADPATH_POOL_MB")
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(2048)
            << 20
    })
}

macro_rules! impl_pooled {
    ($t:ty) => {
        impl Pooled for $t {
            fn pool() -> &'static Pool<$t> {
                static P: OnceLock<Pool<$t>> = OnceLock::new();
                P.get_or_init(Pool::new)
            }
        }
    };
}
impl_pooled!(f32);
impl_pooled!(f64);

/// A buffer of `len` elements with arbitrary contents: the caller must write every element.
pub fn take<T: Pooled>(len: usize) -> Vec<T> {
    T::pool()
        .take(len)
        .unwrap_or_else(|| vec![T::default(); len])
}

/// A buffer of `len` zeros (reused if possible: zeroing warm memory is cheap, page faults are not).
pub fn take_zeroed<T: Pooled>(len: usize) -> Vec<T> {
    match T::pool().take(len) {
        Some(mut v) => {
            v.fill(T::default());
            v
        }
        None => vec![T::default(); len],
    }
}

/// Returns a buffer to the pool (called when a storage is dropped).
pub fn give<T: Pooled>(v: Vec<T>) {
    T::pool().give(v)
}
