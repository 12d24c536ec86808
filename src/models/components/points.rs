//! The static hook-point list: what each component adds, in forward order, per-row shapes for
//! `pos` tokens (no forward pass; checked against the forward's boundaries by
//! `tests::hook_points_match_the_forward` in `models`).

use super::*;
use crate::models::{HookName, HookPoint, Site};

fn push(out: &mut Vec<HookPoint>, name: HookName, shape: &[usize]) {
    out.push(HookPoint {
        name,
        shape: shape.to_vec(),
    });
}

fn site(out: &mut Vec<HookPoint>, l: usize, s: Site, shape: &[usize]) {
    push(out, HookName::block(l, s), shape);
}

impl SelfAttention {
    pub(crate) fn hook_points(&self, l: usize, pos: usize, d: usize, out: &mut Vec<HookPoint>) {
        let (h, kv, dh) = (self.n_heads, self.n_kv_heads, self.d_head);
        site(out, l, Site::Q, &[pos, h, dh]);
        site(out, l, Site::K, &[pos, kv, dh]);
        site(out, l, Site::V, &[pos, kv, dh]);
        if self.rotary.is_some() {
            site(out, l, Site::RotQ, &[pos, h, dh]);
            site(out, l, Site::RotK, &[pos, kv, dh]);
        }
        site(out, l, Site::AttnScores, &[h, pos, pos]);
        site(out, l, Site::Pattern, &[h, pos, pos]);
        site(out, l, Site::Z, &[pos, h, dh]);
        site(out, l, Site::AttnOut, &[pos, d]);
    }
}

impl PostLnBlock {
    pub(crate) fn hook_points(&self, l: usize, pos: usize, d: usize, out: &mut Vec<HookPoint>) {
        let m = self.mlp.up.d_out();
        site(out, l, Site::ResidPre, &[pos, d]);
        self.attn.hook_points(l, pos, d, out);
        site(out, l, Site::ResidMid, &[pos, d]);
        site(out, l, Site::MlpPre, &[pos, m]);
        site(out, l, Site::MlpPost, &[pos, m]);
        site(out, l, Site::MlpOut, &[pos, d]);
        site(out, l, Site::ResidPost, &[pos, d]);
    }
}

impl PreLnBlock {
    pub(crate) fn hook_points(&self, l: usize, pos: usize, d: usize, out: &mut Vec<HookPoint>) {
        site(out, l, Site::ResidPre, &[pos, d]);
        site(out, l, Site::Ln1Normalized, &[pos, d]);
        self.attn.hook_points(l, pos, d, out);
        site(out, l, Site::ResidMid, &[pos, d]);
        site(out, l, Site::Ln2Normalized, &[pos, d]);
        match &self.mlp {
            FeedForward::Plain(m) => {
                let dm = m.up.d_out();
                site(out, l, Site::MlpPre, &[pos, dm]);
                site(out, l, Site::MlpPost, &[pos, dm]);
            }
            FeedForward::Gated(m) => {
                let dm = m.gate.d_out();
                site(out, l, Site::MlpPre, &[pos, dm]);
                site(out, l, Site::MlpPreLinear, &[pos, dm]);
                site(out, l, Site::MlpPost, &[pos, dm]);
            }
        }
        site(out, l, Site::MlpOut, &[pos, d]);
        site(out, l, Site::ResidPost, &[pos, d]);
    }
}

impl ClassifierHead {
    pub(crate) fn hook_points(&self, d: usize, out: &mut Vec<HookPoint>) {
        push(out, HookName::PoolerOut, &[d]);
        push(out, HookName::Logits, &[self.n_labels()]);
    }
}

pub(crate) fn embed(out: &mut Vec<HookPoint>, name: HookName, pos: usize, d: usize) {
    push(out, name, &[pos, d]);
}
