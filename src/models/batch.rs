//! The input of a forward pass: token ids in rows of equal length.

/// A batch of token ids `[batch, pos]` with type ids and a 0/1 attention mask.
#[derive(Debug, Clone)]
pub struct Batch {
    pub ids: Vec<usize>,
    pub type_ids: Vec<usize>,
    pub mask: Vec<u8>,
    pub batch: usize,
    pub pos: usize,
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
