//! Envelopes: the fragments good enough to use, chained by content hashes, and
//! the trail of how each got there.

use crate::{Fragment, FragmentRef, Hygiene, fragment_hash};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The link before the first one.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A fragment taken into the envelope.
#[derive(Debug, Clone, Serialize)]
pub struct Absorbed {
    /// The fragment as absorbed (after any refinement).
    pub fragment: Fragment,
    /// Anchor of the absorbed body.
    pub anchor: String,
    /// Anchor of the body as submitted.
    pub original_anchor: String,
    /// Refinements it went through.
    pub refinements: u32,
    /// Its hygiene report.
    pub hygiene: Hygiene,
}

/// Why a fragment stayed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingReason {
    /// The refiner had nothing more to offer while it was below the threshold.
    RefinerExhausted,
    /// The refinement rounds ran out while it was below the threshold.
    MaxIterations,
    /// Refinement made it worse; the better version is kept here.
    RefinementRegressed,
    /// The refiner failed (e.g. its model could not answer); the message says why.
    RefinerFailed,
}

/// A fragment below the threshold when the cycle ended.
#[derive(Debug, Clone, Serialize)]
pub struct Pending {
    /// The best version reached.
    pub fragment: Fragment,
    /// Its anchor.
    pub anchor: String,
    /// Its hygiene report.
    pub hygiene: Hygiene,
    /// Why it is pending.
    pub reason: PendingReason,
    /// The same, in words.
    pub message: String,
}

/// A fragment whose body was already in the cycle.
#[derive(Debug, Clone, Serialize)]
pub struct Duplicate {
    /// The repeat.
    pub fragment: FragmentRef,
    /// The shared anchor.
    pub anchor: String,
    /// The first fragment with that body.
    pub duplicate_of: FragmentRef,
}

/// Two fragments whose SimHash fingerprints are within the configured distance.
#[derive(Debug, Clone, Serialize)]
pub struct NearDuplicate {
    /// The earlier fragment.
    pub first: FragmentRef,
    /// The later fragment.
    pub second: FragmentRef,
    /// Differing fingerprint bits (of 64).
    pub distance: u32,
}

/// What happened to a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Taken into the envelope: `anchor_prev`/`anchor_next` are the chain links around it.
    Absorbed,
    /// Refined: `anchor_prev`/`anchor_next` are the body's anchors before and after.
    Refined,
    /// Still below the threshold after refinement; goes round again.
    Requeued,
    /// Left out: `anchor_prev` is its last anchor, `anchor_next` is absent.
    Rejected,
}

/// One step of the cycle.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// To which fragment.
    pub fragment: FragmentRef,
    /// Refinement round (0 before any refinement).
    pub iteration: u32,
    /// Before (see [`EventKind`]).
    pub anchor_prev: Option<String>,
    /// After (see [`EventKind`]).
    pub anchor_next: Option<String>,
    /// Hygiene score at that point.
    pub score: f64,
}

/// The result of an envelope cycle.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope {
    /// Fragments at or above the threshold, in chain order.
    pub absorbed: Vec<Absorbed>,
    /// Fragments left below it.
    pub pending: Vec<Pending>,
    /// Exact repeats, absorbed once.
    pub duplicates: Vec<Duplicate>,
    /// Near-repeats (reported, not dropped).
    pub near_duplicates: Vec<NearDuplicate>,
    /// Every step, in order.
    pub events: Vec<Event>,
    /// Chain links: `link[i] = sha256(link[i-1] ":" anchor[i])`, from [`GENESIS`].
    pub chain: Vec<String>,
    /// SHA-256 over the whole chain.
    pub envelope_hash: String,
    /// Mean hygiene of the absorbed fragments (0 when none).
    pub hygiene_score: f64,
    /// Refinement rounds used.
    pub iterations: u32,
    /// Threshold applied.
    pub hygiene_threshold: f64,
    /// Round limit applied.
    pub max_iterations: u32,
}

/// How an envelope fails verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// An absorbed body no longer hashes to its anchor.
    #[error("absorbed fragment {0}: body does not match its anchor")]
    Body(usize),
    /// A link does not follow from the one before and the anchor.
    #[error("chain link {0} does not follow from its predecessor")]
    Link(usize),
    /// Chain and absorbed fragments differ in length.
    #[error("the chain has {chain} links for {absorbed} absorbed fragments")]
    Length {
        /// Links.
        chain: usize,
        /// Absorbed fragments.
        absorbed: usize,
    },
    /// The envelope hash is not the hash of the chain.
    #[error("envelope hash does not match the chain")]
    EnvelopeHash,
    /// The absorbed events do not retrace the chain.
    #[error("absorbed event {0} does not match the chain")]
    Event(usize),
}

/// The link after `prev` for `anchor`.
pub fn next_link(prev: &str, anchor: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b":");
    h.update(anchor.as_bytes());
    hex::encode(h.finalize())
}

/// Hash over a whole chain.
pub fn chain_hash(chain: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(b"harpoon-envelope-v1");
    for link in chain {
        h.update(b"\n");
        h.update(link.as_bytes());
    }
    hex::encode(h.finalize())
}

impl Envelope {
    /// Checks bodies against anchors, every link, the envelope hash and the
    /// absorbed events; any edit after the cycle fails one of them.
    pub fn verify(&self) -> Result<(), ChainError> {
        if self.chain.len() != self.absorbed.len() {
            return Err(ChainError::Length {
                chain: self.chain.len(),
                absorbed: self.absorbed.len(),
            });
        }
        let mut prev = GENESIS.to_owned();
        for (i, (a, link)) in self.absorbed.iter().zip(&self.chain).enumerate() {
            if fragment_hash(&a.fragment.body) != a.anchor {
                return Err(ChainError::Body(i));
            }
            let expected = next_link(&prev, &a.anchor);
            if &expected != link {
                return Err(ChainError::Link(i));
            }
            prev = expected;
        }
        if chain_hash(&self.chain) != self.envelope_hash {
            return Err(ChainError::EnvelopeHash);
        }
        let absorbed_events: Vec<&Event> = self
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Absorbed)
            .collect();
        if absorbed_events.len() != self.chain.len() {
            return Err(ChainError::Event(
                absorbed_events.len().min(self.chain.len()),
            ));
        }
        let mut prev = GENESIS;
        for (i, (e, link)) in absorbed_events.iter().zip(&self.chain).enumerate() {
            if e.anchor_prev.as_deref() != Some(prev)
                || e.anchor_next.as_deref() != Some(link.as_str())
            {
                return Err(ChainError::Event(i));
            }
            prev = link;
        }
        Ok(())
    }
}

/// 64-bit SimHash over the identifier and number tokens of `body`.
pub fn simhash(body: &str) -> u64 {
    let mut weights = [0i32; 64];
    for token in body
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|t| !t.is_empty())
    {
        // FNV-1a: stable across runs and platforms, unlike the std hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in token.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for (bit, w) in weights.iter_mut().enumerate() {
            *w += if h >> bit & 1 == 1 { 1 } else { -1 };
        }
    }
    weights.iter().enumerate().fold(
        0u64,
        |acc, (bit, w)| if *w > 0 { acc | 1 << bit } else { acc },
    )
}

/// Differing bits between two fingerprints.
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simhash_is_close_for_small_edits_and_far_for_other_code() {
        let a =
            "fn total(items: &[Item]) -> u64 { items.iter().map(|i| i.price * i.quantity).sum() }";
        let b = "fn total(items: &[Item]) -> u64 { items.iter().map(|i| i.price * i.qty).sum() }";
        let c = "def parse_config(path):\n    with open(path) as f:\n        return yaml.safe_load(f)\n";
        assert!(
            hamming(simhash(a), simhash(b)) <= 8,
            "{}",
            hamming(simhash(a), simhash(b))
        );
        assert!(
            hamming(simhash(a), simhash(c)) > 12,
            "{}",
            hamming(simhash(a), simhash(c))
        );
        assert_eq!(simhash(a), simhash(a));
    }
}
