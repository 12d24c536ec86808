//! A process-wide pool of host buffers, one per element type.
//!
//! Why: on CPU, memory traffic decides speed as much as GEMM does. A fresh `Vec` of a few MB is
//! fresh pages from the kernel (page faults + zeroing) every time; a transformer forward+backward
//! allocates hundreds of such activation and gradient buffers of a handful of distinct sizes. Buffers
//! dropped by [`crate::tensor::Storage`] come back here and are handed out again for the next tensor
//! of the same or a nearby length, so a steady-state sweep touches warm memory.
//!
//! Rules: only buffers of at least [`MIN_POOLED`] elements are pooled; the pools of all element types
//! together hold at most `GRADPATH_POOL_MB` MiB (default 2048); [`take`] returns a buffer whose
//! contents are arbitrary (the caller overwrites every element), [`take_zeroed`] one that is zero.
//! A request is served by the smallest free buffer whose capacity is between its length and
//! twice that (best fit, [`SLACK_FACTOR`]), so the shorter last chunk of a batched sweep (e.g. 12
//! rows after chunks of 13) reuses the earlier chunks' buffers instead of faulting in fresh pages,
//! and so does a training batch padded to fewer tokens than the one before. (Measured, `gradpath
//! train` on MiniLM, 1,024 polarity snippets, batch 32, Intel Xeon, 2 threads: 25 % slack and a
//! 256 MiB pool 23.7 s, peak RSS 1247 MiB; twice and 768 MiB 22.0 s, 1446 MiB.)
//!
//! Shapes that change from call to call (training batches padded to their longest sentence) would
//! otherwise fill the pool with lengths that never come back and then drop every new buffer, the
//! large parameter gradients included. So: a fresh buffer gets a capacity rounded up to a size class
//! ([`class_capacity`], at most 1/8 larger), which lets nearby lengths share buffers; and a buffer
//! returned to a full pool evicts the buffers returned longest ago (of its element type) until it
//! fits, so the pool keeps what the current work uses.
//!
//! A fresh zeroed buffer is written, not `calloc`ed: `calloc`'s untouched pages map the shared zero
//! page on a first read, and the write that usually follows (`+=` into a gradient) then takes a
//! copy-on-write fault with a TLB shoot-down to every other core, per page.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Buffers shorter than this go straight to the allocator.
pub const MIN_POOLED: usize = 1024;

/// A free buffer serves a request of `len` elements when its capacity is at most
/// `SLACK_FACTOR · len` (the smallest such buffer: best fit).
pub const SLACK_FACTOR: usize = 2;

/// Element types that have a pool.
pub trait Pooled: Copy + Default + Send + Sync + 'static {
    fn pool() -> &'static Pool<Self>;
}

/// Free lists keyed by capacity (a buffer keeps the length it was returned with), each buffer
/// with the stamp of its return; `by_age` maps every stamp to its capacity, oldest first.
struct Free<T> {
    lists: BTreeMap<usize, Vec<(u64, Vec<T>)>>,
    by_age: BTreeMap<u64, usize>,
    next_stamp: u64,
}

impl<T> Free<T> {
    /// Removes the buffer returned longest ago. Within one capacity the stamps grow with the
    /// position in the list (returns push, takes pop the newest), so it is the list's first.
    fn evict_oldest(&mut self) -> Option<Vec<T>> {
        let (_, cap) = self.by_age.pop_first()?;
        let list = self.lists.get_mut(&cap)?;
        let (_, v) = list.remove(0);
        if list.is_empty() {
            self.lists.remove(&cap);
        }
        Some(v)
    }
}

/// The free buffers of one element type.
pub struct Pool<T> {
    free: Mutex<Free<T>>,
    /// Bytes held by every pool sharing the limit ([`HELD_TOTAL`] outside tests).
    total: &'static AtomicUsize,
    /// The byte limit on `total` (`None`: `GRADPATH_POOL_MB`).
    limit: Option<usize>,
    held_bytes: AtomicUsize,
    hits: AtomicUsize,
    misses: AtomicUsize,
}

impl<T: Pooled> Pool<T> {
    fn new() -> Self {
        Self::with_limit(&HELD_TOTAL, None)
    }

    fn with_limit(total: &'static AtomicUsize, limit: Option<usize>) -> Self {
        Self {
            total,
            limit,
            free: Mutex::new(Free {
                lists: BTreeMap::new(),
                by_age: BTreeMap::new(),
                next_stamp: 0,
            }),
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
            // Best fit: the smallest capacity in [len, SLACK_FACTOR·len] (lists are never
            // left empty, so the first key in range has a buffer); the newest of that capacity
            // (the warmest in cache).
            let cap = free
                .lists
                .range(len..=len.saturating_mul(SLACK_FACTOR))
                .next()
                .map(|(&cap, _)| cap);
            cap.and_then(|cap| {
                let list = free.lists.get_mut(&cap)?;
                let (stamp, v) = list.pop()?;
                if list.is_empty() {
                    free.lists.remove(&cap);
                }
                free.by_age.remove(&stamp);
                Some(v)
            })
        };
        match v {
            Some(mut v) => {
                let bytes = v.capacity() * std::mem::size_of::<T>();
                self.held_bytes.fetch_sub(bytes, Ordering::Relaxed);
                self.total.fetch_sub(bytes, Ordering::Relaxed);
                self.hits.fetch_add(1, Ordering::Relaxed);
                // A buffer keeps the length it was returned with (its initialised part); only
                // the part of a longer request beyond it is written here (the caller overwrites
                // it anyway), so no return pays for a tail that nobody reads.
                if v.len() < len {
                    v.resize(len, T::default());
                } else {
                    v.truncate(len);
                }
                Some(v)
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    fn give(&self, v: Vec<T>) {
        let (limit, total) = (self.limit.unwrap_or_else(limit_bytes), self.total);
        let cap = v.capacity();
        if v.len() < MIN_POOLED || cap > v.len().saturating_mul(SLACK_FACTOR) {
            return;
        }
        // Listed by capacity, kept at its length (see `take`).
        let bytes = cap * std::mem::size_of::<T>();
        if bytes > limit {
            return;
        }
        let Ok(mut free) = self.free.lock() else {
            return;
        };
        // Reserve first, then push: concurrent returns cannot overshoot the shared limit. While
        // it does not fit, evict this pool's oldest buffer (dropped after the lock is released).
        let mut evicted = Vec::new();
        while total.fetch_add(bytes, Ordering::Relaxed) + bytes > limit {
            total.fetch_sub(bytes, Ordering::Relaxed);
            match free.evict_oldest() {
                Some(old) => {
                    let b = old.capacity() * std::mem::size_of::<T>();
                    self.held_bytes.fetch_sub(b, Ordering::Relaxed);
                    total.fetch_sub(b, Ordering::Relaxed);
                    evicted.push(old);
                }
                // Nothing of this type left to evict (the other type's pool holds the rest).
                None => return,
            }
        }
        let stamp = free.next_stamp;
        free.next_stamp += 1;
        free.by_age.insert(stamp, cap);
        free.lists.entry(cap).or_default().push((stamp, v));
        self.held_bytes.fetch_add(bytes, Ordering::Relaxed);
        drop(free);
        drop(evicted);
    }

    /// [`take`] on this pool: a pooled buffer, else a fresh one with its class capacity.
    fn take_or_new(&self, len: usize) -> Vec<T> {
        self.take(len).unwrap_or_else(|| {
            let mut v = vec![T::default(); class_capacity(len)];
            v.truncate(len);
            v
        })
    }

    /// [`take_zeroed`] on this pool.
    fn take_zeroed_or_new(&self, len: usize) -> Vec<T> {
        match self.take(len) {
            Some(mut v) => {
                v.fill(T::default());
                v
            }
            None => fresh_written(len),
        }
    }

    /// Drops every pooled buffer.
    pub fn clear(&self) {
        if let Ok(mut free) = self.free.lock() {
            free.lists.clear();
            free.by_age.clear();
            let held = self.held_bytes.swap(0, Ordering::Relaxed);
            self.total.fetch_sub(held, Ordering::Relaxed);
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

/// The capacity a fresh pooled buffer of `len` elements gets: `len` rounded up to the next of eight
/// steps per power of two (at most 1/8 more), so that nearby lengths share buffers.
pub fn class_capacity(len: usize) -> usize {
    if len < MIN_POOLED {
        return len;
    }
    let step = 1usize << (usize::BITS - 1 - len.leading_zeros()).saturating_sub(3);
    len.div_ceil(step) * step
}

/// A fresh buffer of `len` zeros with its class capacity, every element written (see the module
/// docs on `calloc`).
fn fresh_written<T: Pooled>(len: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(class_capacity(len));
    v.resize(len, T::default());
    v
}

/// A buffer of `len` elements with arbitrary contents: the caller must write every element.
/// A fresh one comes from `calloc` (its pages are first touched by the caller's writes).
pub fn take<T: Pooled>(len: usize) -> Vec<T> {
    T::pool().take_or_new(len)
}

/// A buffer of `len` zeros (reused if possible: zeroing warm memory is cheap, page faults are not).
pub fn take_zeroed<T: Pooled>(len: usize) -> Vec<T> {
    T::pool().take_zeroed_or_new(len)
}

/// Returns a buffer to the pool (called when a storage is dropped).
pub fn give<T: Pooled>(v: Vec<T>) {
    T::pool().give(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_capacity_is_at_most_an_eighth_larger_and_shared_by_nearby_lengths() {
        for len in (MIN_POOLED..200_000).step_by(37) {
            let c = class_capacity(len);
            assert!(c >= len && c <= len + len / 8, "len {len} class {c}");
        }
        // Lengths of batches padded to 57 and 58 tokens share a class.
        assert_eq!(
            class_capacity(32 * 12 * 57 * 57),
            class_capacity(32 * 12 * 58 * 58)
        );
        assert_eq!(class_capacity(100), 100);
    }

    #[test]
    fn a_full_pool_evicts_the_oldest_buffers_not_the_newcomer() {
        // Lengths n, 3n, 9n (more than twice apart: none serves another's request); the limit
        // holds the last two, not all three.
        let n = 2048;
        let limit = 12 * n * 4;
        let total: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
        let pool = Pool::<f32>::with_limit(total, Some(limit));
        let second = vec![1.0f32; 3 * n];
        let second_ptr = second.as_ptr();
        pool.give(vec![0.0f32; n]);
        pool.give(second);
        assert_eq!(pool.stats().2, 4 * n * 4);
        // The third does not fit beside both: the oldest (the first) goes.
        pool.give(vec![2.0; 9 * n]);
        assert_eq!(total.load(Ordering::Relaxed), pool.stats().2);
        assert_eq!(pool.stats().2, limit);
        assert!(pool.take(n).is_none(), "the oldest buffer was evicted");
        let back = pool.take(3 * n).expect("the second stays");
        assert_eq!(back.as_ptr(), second_ptr);
        assert!(pool.take(9 * n).is_some(), "the newcomer was kept");
        assert_eq!(pool.stats().2, 0);
        // A buffer larger than the whole limit is not kept.
        pool.give(vec![0.0; 13 * n]);
        assert_eq!(pool.stats().2, 0);
    }

    /// A pool of its own: the process-wide pools are shared with every test running beside this
    /// one, which may take or return buffers of nearby lengths between two steps.
    #[test]
    fn a_shorter_request_is_served_from_a_larger_buffer() {
        let total: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
        let pool = Pool::<f64>::with_limit(total, Some(1 << 30));
        let big = 40_000 + 17;
        let v: Vec<f64> = vec![1.0; big];
        let ptr = v.as_ptr();
        pool.give(v);
        // 10 % shorter: the same allocation comes back, at the requested length.
        let w = pool.take_or_new(big - big / 10);
        assert_eq!(w.len(), big - big / 10);
        assert_eq!(
            w.as_ptr(),
            ptr,
            "best fit within twice the length should reuse the buffer"
        );
        // Returned at its shorter length, it serves the full length again, zeroed.
        pool.give(w);
        let z = pool.take_zeroed_or_new(big);
        assert_eq!(z.len(), big);
        assert_eq!(z.as_ptr(), ptr);
        assert!(z.iter().all(|&x| x == 0.0));
        // Far shorter requests do not take it (at most twice the length).
        pool.give(z);
        let small = pool.take_or_new(big / 3);
        assert_ne!(small.as_ptr(), ptr);
        assert_eq!(small.len(), big / 3);
        assert_eq!(pool.stats().2, big * 8, "the large buffer is still held");
    }

    #[test]
    fn a_fresh_zeroed_buffer_is_zero_with_its_class_capacity() {
        // A private, empty pool: the process-wide one may hold a larger buffer another test
        // returned, which would serve this request with its own capacity.
        let total: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
        let pool = Pool::<f64>::with_limit(total, Some(1 << 30));
        let len = 123_457;
        let v = pool.take_zeroed_or_new(len);
        assert_eq!(v.len(), len);
        assert!(v.capacity() >= len && v.capacity() <= class_capacity(len));
        assert!(v.iter().all(|&x| x == 0.0));
    }
}
