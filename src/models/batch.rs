//! The input of a forward pass: token ids in rows of equal length.
//!
//! **Token trees (causal language models).** A decoder ignores token types, so for decoders the
//! type ids may mark *branches*: type ids 0 and 1 (all a tokenizer gives) are the trunk, and each
//! type id `k ≥ `[`FIRST_BRANCH`] is a branch. A token sees the earlier tokens of the trunk and of
//! its own branch, never those of another branch, and its position (learned or rotary) is the
//! number of tokens it sees before it. So `prompt · answer · contrast`, with the answer and the
//! contrast in two branches, runs both continuations after one shared prompt in a single
//! sequence, each exactly as if it had been run alone. Without branches this is the plain causal
//! mask with positions `0..pos`.

/// A batch of token ids `[batch, pos]` with type ids and a 0/1 attention mask.
#[derive(Debug, Clone)]
pub struct Batch {
    pub ids: Vec<usize>,
    /// Token types (encoders), or trunk/branch marks (decoders: see the module docs).
    pub type_ids: Vec<usize>,
    pub mask: Vec<u8>,
    pub batch: usize,
    pub pos: usize,
}

/// The smallest type id that marks a branch of a token tree (decoders).
pub const FIRST_BRANCH: usize = 2;

/// Who sees whom in a causal sequence, and at which position.
#[derive(Debug, Clone, PartialEq)]
pub struct CausalLayout {
    /// `[pos, pos]`, row-major: `visible[i * pos + j]` when token i attends to token j.
    pub visible: Vec<bool>,
    /// The position of each token (`0..pos` without branches).
    pub positions: Vec<usize>,
    /// Whether the sequence has branches (otherwise: the plain causal mask).
    pub branched: bool,
}

impl CausalLayout {
    /// The layout of one sequence of type ids (see the module docs).
    pub fn of(type_ids: &[usize]) -> CausalLayout {
        let t = type_ids.len();
        let branch = |k: usize| (k >= FIRST_BRANCH).then_some(k);
        let mut visible = vec![false; t * t];
        let mut positions = vec![0; t];
        let mut branched = false;
        for i in 0..t {
            let mut seen = 0;
            for j in 0..=i {
                let sees = match (branch(type_ids[i]), branch(type_ids[j])) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                };
                if sees {
                    visible[i * t + j] = true;
                    seen += 1;
                } else {
                    branched = true;
                }
            }
            positions[i] = seen - 1;
        }
        CausalLayout {
            visible,
            positions,
            branched,
        }
    }
}

impl Batch {
    /// `rows` copies of one sequence (the path points of one attribution).
    pub fn repeat(ids: &[usize], type_ids: &[usize], rows: usize) -> Batch {
        Batch {
            ids: ids.repeat(rows),
            type_ids: type_ids.repeat(rows),
            mask: vec![1; ids.len() * rows],
            batch: rows,
            pos: ids.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_branches_is_the_causal_mask() {
        let l = CausalLayout::of(&[0, 0, 1, 1]);
        assert!(!l.branched);
        assert_eq!(l.positions, vec![0, 1, 2, 3]);
        for i in 0..4 {
            for j in 0..4 {
                assert_eq!(l.visible[i * 4 + j], j <= i);
            }
        }
    }

    #[test]
    fn two_branches_after_a_trunk() {
        // trunk a b, branch 2: c d, branch 3: e
        let l = CausalLayout::of(&[0, 0, 2, 2, 3]);
        assert!(l.branched);
        assert_eq!(l.positions, vec![0, 1, 2, 3, 2]);
        let row = |i: usize| (0..5).map(|j| l.visible[i * 5 + j]).collect::<Vec<_>>();
        assert_eq!(row(3), vec![true, true, true, true, false]);
        assert_eq!(row(4), vec![true, true, false, false, true]);
    }
}
