//! The rule-reasoning task of seed 000 (RuleTaker-style, generated): a context of facts
//! ("Anne is big.") and rules ("If someone is big then they are green."), and a query ("Anne is
//! green."), labelled `true` when the query follows from the context by closed-world forward
//! chaining and `false` otherwise.
//!
//! **Depth.** For a true query, the number of rule applications its shortest proof needs (0: the
//! query is a fact). A false query of depth d is a near miss built the same way: a chain of d rules
//! leads to the queried attribute, but its starting fact is about another entity, so nothing proves
//! the query. Both entities have a fact in every example (the one the chain does not start from
//! gets a random adjective), so whether the query's name occurs in the context says nothing about
//! the label. Each example also has 2–4 distractor facts and 1–3 distractor rules; an example is
//! kept only when forward chaining over the whole context gives its intended label and (true) its
//! intended depth.
//!
//! **Without distractors** ([`Distractors::None`]) an example is only its two anchor facts and
//! its chain of rules ("Harry is tall. Gary is sad." / "Harry is sad." is false): material for
//! a curriculum, since MiniLM trained on the task directly stays at chance. Alone as a first
//! stage it did not carry over to the task (61 % held-out); mixed with depth-0 examples that have
//! distractors, then followed by those alone and by the task, it did (95 % held-out;
//! docs/FINETUNE.md, `scripts/train-rules-curriculum.sh`).
//!
//! **Balance.** Labels alternate (true, false, ...) and depths cycle 0..=D, so every depth has
//! both labels in equal numbers (up to one when n is not a multiple of 2(D + 1)).
//!
//! **Vocabulary.** Eight names and sixteen adjectives, each one word piece of the MiniLM (BERT
//! uncased) vocabulary, so the tokenizer splits every sentence into the same pattern of tokens.
//! The context is `text`, the query `text_pair`: encoded as `[CLS] context [SEP] query [SEP]`.

use super::rng::Rng;
use crate::{Error, Result};
use std::collections::{BTreeSet, HashMap};

/// Stream kind of the generator in [`Rng::derive`].
pub const RULES_STREAM: u64 = 4;

pub const NAMES: &[&str] = &[
    "Anne", "Bob", "Charlie", "Dave", "Erin", "Fiona", "Gary", "Harry",
];
pub const ADJECTIVES: &[&str] = &[
    "big", "blue", "cold", "green", "kind", "nice", "red", "rough", "round", "smart", "young",
    "quiet", "white", "happy", "sad", "tall",
];

/// One generated example (JSONL record).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RuleExample {
    pub id: String,
    /// Facts and rules.
    pub text: String,
    /// The query.
    pub text_pair: String,
    /// "true" or "false".
    pub label: String,
    pub depth: usize,
}

/// Closed-world forward chaining: the depth at which each (entity, adjective) becomes known
/// (0 for the facts), for rules `premise → conclusion` that hold for everyone.
pub fn chain(facts: &[(usize, usize)], rules: &[(usize, usize)]) -> HashMap<(usize, usize), usize> {
    let mut known: HashMap<(usize, usize), usize> = facts.iter().map(|&f| (f, 0)).collect();
    let mut frontier: Vec<(usize, usize)> = known.keys().copied().collect();
    let mut level = 0;
    while !frontier.is_empty() {
        level += 1;
        let mut next = Vec::new();
        for &(e, a) in &frontier {
            for &(p, c) in rules {
                if p == a && !known.contains_key(&(e, c)) {
                    known.insert((e, c), level);
                    next.push((e, c));
                }
            }
        }
        frontier = next;
    }
    known
}

/// Distinct indices below `n`, `k` of them.
fn distinct(rng: &mut Rng, n: usize, k: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut v);
    v.truncate(k);
    v
}

/// Whether examples carry distractor facts and rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distractors {
    /// 2–4 facts and 1–3 rules besides the ones the query needs (the task).
    Some,
    /// Only the anchor facts and the chain (a curriculum's first stage).
    None,
}

/// One example with the intended label and depth, or None when the draw does not give them.
fn attempt(
    rng: &mut Rng,
    truth: bool,
    depth: usize,
    distractors: Distractors,
) -> Option<(Vec<String>, String)> {
    let ents = distinct(rng, NAMES.len(), 2);
    let (e, other) = (ents[0], ents[1]);
    let chain_adj = distinct(rng, ADJECTIVES.len(), depth + 1);
    // Both entities get an anchor fact whatever the label: the chain starts at `e` (true) or at
    // `other` (false), and the other one gets a random adjective. Without it the queried entity
    // appeared in a false example's context only through a distractor, and a model could answer
    // from whether the query's name occurs at all (measured: a MiniLM fine-tuned on that data
    // predicted exactly that rule, 85 % on dev).
    let start = if truth { e } else { other };
    let anchor = if truth { other } else { e };
    let mut facts = vec![(start, chain_adj[0]), (anchor, rng.below(ADJECTIVES.len()))];
    let mut rules: Vec<(usize, usize)> = chain_adj.windows(2).map(|w| (w[0], w[1])).collect();
    if distractors == Distractors::Some {
        for _ in 0..2 + rng.below(3) {
            facts.push((rng.below(NAMES.len()), rng.below(ADJECTIVES.len())));
        }
        for _ in 0..1 + rng.below(3) {
            let (p, c) = (rng.below(ADJECTIVES.len()), rng.below(ADJECTIVES.len()));
            if p != c {
                rules.push((p, c));
            }
        }
    }
    let query = (e, chain_adj[depth]);
    let known = chain(&facts, &rules);
    match (truth, known.get(&query)) {
        (true, Some(&d)) if d == depth => {}
        (false, None) => {}
        _ => return None,
    }
    let facts: BTreeSet<(usize, usize)> = facts.into_iter().collect();
    let rules: BTreeSet<(usize, usize)> = rules.into_iter().collect();
    let mut sentences: Vec<String> = facts
        .iter()
        .map(|&(e, a)| format!("{} is {}.", NAMES[e], ADJECTIVES[a]))
        .chain(rules.iter().map(|&(p, c)| {
            format!(
                "If someone is {} then they are {}.",
                ADJECTIVES[p], ADJECTIVES[c]
            )
        }))
        .collect();
    rng.shuffle(&mut sentences);
    Some((
        sentences,
        format!("{} is {}.", NAMES[query.0], ADJECTIVES[query.1]),
    ))
}

/// `n` examples with depths cycling over 0..=`max_depth` and alternating labels, deterministic for
/// `seed`, with distractors (the task).
pub fn generate(n: usize, max_depth: usize, seed: u64) -> Result<Vec<RuleExample>> {
    generate_with(n, max_depth, seed, Distractors::Some)
}

/// As [`generate`], with or without distractor facts and rules.
pub fn generate_with(
    n: usize,
    max_depth: usize,
    seed: u64,
    distractors: Distractors,
) -> Result<Vec<RuleExample>> {
    if n == 0 {
        return Err(Error::BadValue {
            name: "n",
            detail: "must be at least 1".into(),
        });
    }
    if max_depth + 1 > ADJECTIVES.len() {
        return Err(Error::BadValue {
            name: "depth",
            detail: format!(
                "at most {} (the adjectives available)",
                ADJECTIVES.len() - 1
            ),
        });
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let truth = i % 2 == 0;
        let depth = (i / 2) % (max_depth + 1);
        let mut rng = Rng::derive(seed, &[RULES_STREAM, i as u64]);
        let (context, query) = loop {
            if let Some(x) = attempt(&mut rng, truth, depth, distractors) {
                break x;
            }
        };
        out.push(RuleExample {
            id: format!("rules-{seed}-{i}"),
            text: context.join(" "),
            text_pair: query,
            label: if truth { "true" } else { "false" }.into(),
            depth,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(sentence: &str) -> &str {
        sentence.split_whitespace().next().unwrap_or("")
    }

    /// The label cannot be read from whether the query's name occurs in the context: it occurs in
    /// every example of both labels, and forward chaining gives every label and depth.
    #[test]
    fn the_query_entity_is_in_every_context() {
        let ex = generate(600, 2, 9).unwrap();
        for r in &ex {
            let name = entity(&r.text_pair);
            assert!(
                r.text.split(". ").any(|s| entity(s) == name),
                "{}: {name} missing from {:?}",
                r.id,
                r.text
            );
        }
        let trues = ex.iter().filter(|r| r.label == "true").count();
        assert_eq!(trues, 300);
        for d in 0..=2 {
            assert_eq!(ex.iter().filter(|r| r.depth == d).count(), 200);
        }
    }

    /// Without distractors a context is the two anchor facts and the chain's rules, and the
    /// labels still follow from forward chaining.
    #[test]
    fn without_distractors_only_the_anchors_and_the_chain_remain() {
        let ex = generate_with(60, 2, 4, Distractors::None).unwrap();
        for r in &ex {
            let sentences: Vec<&str> = r.text.split_inclusive('.').map(str::trim).collect();
            let facts = sentences.iter().filter(|s| !s.starts_with("If ")).count();
            let rules = sentences.len() - facts;
            assert_eq!(facts, 2, "{}: {:?}", r.id, r.text);
            assert_eq!(rules, r.depth, "{}: {:?}", r.id, r.text);
            let name = entity(&r.text_pair);
            assert!(r.text.split(". ").any(|s| entity(s) == name), "{}", r.id);
        }
        assert_eq!(ex.iter().filter(|r| r.label == "true").count(), 30);
        // the task's draws are unchanged by the option
        assert_eq!(
            generate(12, 2, 9).unwrap(),
            generate_with(12, 2, 9, Distractors::Some).unwrap()
        );
    }
}
