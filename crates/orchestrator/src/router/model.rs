//! The trained linear model, its calibration, and its on-disk artefact.
//!
//! Artefact layout (little-endian): magic `HRPROUTE`, format version, feature
//! version, hash bits, structural count; bias, Platt `a` and `b`, threshold,
//! the context-complexity weight;
//! structural weights; hashed weights; a length-prefixed JSON block of training
//! facts; and a SHA-256 of everything before it. Writing is deterministic, so
//! the same training run gives the same bytes.

use super::conversation::Conversation;
use super::features::{
    self, FEATURE_VERSION, GramKind, GramSink, HASH_BITS, HASH_DIM, STRUCTURAL_COUNT,
    STRUCTURAL_NAMES, Structural,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"HRPROUTE";
/// 2 added the weight of the context-complexity signal after the threshold.
const FORMAT_VERSION: u32 = 2;
/// Name of the context-complexity signal in explanations.
pub const CONTEXT_COMPLEXITY: &str = "context_complexity";
const CHECKSUM_LEN: usize = 32;

/// Why an artefact cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ArtefactError {
    /// The file could not be read.
    #[error("router model {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes are not a valid artefact.
    #[error("router model {origin}: {reason}")]
    Invalid {
        /// The file, or `<embedded>`.
        origin: String,
        /// What is wrong.
        reason: String,
    },
}

/// Facts about how an artefact was trained, stored inside it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingFacts {
    /// RNG seed.
    pub seed: u64,
    /// Rows used (before the calibration split).
    pub rows: usize,
    /// Cross-validated AUROC.
    pub cv_auroc: f64,
    /// Cross-validated accuracy at the chosen threshold.
    pub cv_accuracy: f64,
    /// Cross-validated expected calibration error (10 bins).
    pub cv_ece: f64,
}

/// Platt scaling: `p = sigmoid(a * logit + b)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Platt {
    /// Slope.
    pub a: f32,
    /// Intercept.
    pub b: f32,
}

impl Platt {
    /// Calibrated probability of a raw logit.
    pub fn probability(&self, logit: f32) -> f32 {
        sigmoid(self.a * logit + self.b)
    }
}

/// Logistic function.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Weights of the linear model.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// One weight per hashed bucket ([`HASH_DIM`]).
    pub hashed: Vec<f32>,
    /// One weight per structural signal.
    pub structural: [f32; STRUCTURAL_COUNT],
    /// Intercept.
    pub bias: f32,
    /// Weight of the context-complexity signal (see
    /// [`Weights::context_complexity`]).
    pub context: f32,
}

impl Weights {
    /// All zeros.
    pub fn zeros() -> Self {
        Self {
            hashed: vec![0.0; HASH_DIM],
            structural: [0.0; STRUCTURAL_COUNT],
            bias: 0.0,
            context: 0.0,
        }
    }

    /// The single-prompt logit of an earlier turn's excerpt: its main-namespace
    /// n-grams, its structural signals and the bias, as if it were asked alone.
    pub(crate) fn turn_logit(&self, excerpt: &str) -> f32 {
        let mut sum = 0.0f32;
        let n = features::hashed_grams(excerpt, &mut |i: u32| sum += self.hashed[i as usize]);
        self.combine(sum, gram_scale(n), &features::structural(excerpt))
    }

    /// The context-complexity signal: the largest of each earlier turn's
    /// weight times how hard that turn looks on its own (the sigmoid of its
    /// single-prompt logit). It carries what the model learnt from every
    /// single prompt into the conversation, so the follow-up of a kind of hard
    /// question never seen as an opener is still lifted.
    pub fn context_complexity(&self, conversation: &Conversation<'_>) -> f32 {
        conversation
            .context()
            .map(|(turn, weight)| {
                weight * sigmoid(self.turn_logit(&features::context_excerpt(turn)))
            })
            .fold(0.0, f32::max)
    }

    /// Raw score of a prompt (hashed grams scaled by `1/sqrt(n)`, plus
    /// structural signals, plus bias) and the structural signals themselves.
    pub fn logit(&self, text: &str) -> (f32, Structural) {
        self.conversation_logit(&Conversation::single(text))
    }

    /// Raw score of a conversation: the last turn as [`Weights::logit`]
    /// scores a prompt, plus each earlier turn's context n-grams, scaled by
    /// `1/sqrt(n)` for that turn and by the turn's weight.
    pub fn conversation_logit(&self, conversation: &Conversation<'_>) -> (f32, Structural) {
        let mut sum = 0.0f32;
        let n = features::hashed_grams(conversation.last, &mut |i: u32| {
            sum += self.hashed[i as usize];
        });
        let structural = features::structural(conversation.last);
        let mut logit = self.combine(sum, gram_scale(n), &structural);
        if !conversation.earlier.is_empty() {
            logit += self.context * self.context_complexity(conversation);
        }
        for (turn, weight) in conversation.context() {
            let mut turn_sum = 0.0f32;
            let n = features::context_grams(turn, &mut |i: u32| {
                turn_sum += self.hashed[i as usize];
            });
            logit += turn_sum * gram_scale(n) * weight;
        }
        (logit, structural)
    }

    /// The logit from the summed hashed weights, their scale and the signals.
    pub(crate) fn combine(&self, hashed_sum: f32, scale: f32, structural: &Structural) -> f32 {
        let dense: f32 = structural
            .0
            .iter()
            .zip(&self.structural)
            .map(|(x, w)| x * w)
            .sum();
        self.bias + hashed_sum * scale + dense
    }
}

/// Weight of each of a prompt's `n` hashed n-grams: `1/sqrt(n)`, so long and
/// short prompts land on one scale.
pub(crate) fn gram_scale(n: u32) -> f32 {
    if n == 0 { 0.0 } else { 1.0 / (n as f32).sqrt() }
}

/// One term of an explanation: what it is and how much it moved the logit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contribution {
    /// A structural signal's name, or the n-gram as `word:…`, `pair:…`, `prefix:…`, `suffix:…`.
    pub signal: String,
    /// Signed contribution to the logit (positive pushes towards complex).
    pub weight: f32,
}

/// A trained, calibrated router model.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterModel {
    /// Linear weights.
    pub weights: Weights,
    /// Calibration of the logit into a probability of "complex".
    pub platt: Platt,
    /// Probability at or above which a prompt is complex (from training).
    pub threshold: f32,
    /// How it was trained.
    pub facts: TrainingFacts,
}

/// The artefact built into the binary, produced by `train-router`.
pub static EMBEDDED: &[u8] = include_bytes!("../../assets/router.bin");

impl RouterModel {
    /// Calibrated probability that `text` needs the large tier.
    pub fn complexity(&self, text: &str) -> f32 {
        self.score(text).0
    }

    /// Calibrated probability that `text` needs the large tier, with the
    /// structural signals computed on the way.
    pub fn score(&self, text: &str) -> (f32, Structural) {
        self.score_conversation(&Conversation::single(text))
    }

    /// Calibrated probability that the last turn of `conversation` needs the
    /// large tier, given the turns before it, with the last turn's signals.
    pub fn score_conversation(&self, conversation: &Conversation<'_>) -> (f32, Structural) {
        let (logit, structural) = self.weights.conversation_logit(conversation);
        (self.platt.probability(logit), structural)
    }

    /// The `top` largest contributions to the logit, by magnitude.
    pub fn explain(&self, text: &str, top: usize) -> Vec<Contribution> {
        self.explain_conversation(&Conversation::single(text), top)
    }

    /// As [`RouterModel::explain`] for a conversation; the n-grams of earlier
    /// turns are labelled `context:word:…` and so on.
    pub fn explain_conversation(
        &self,
        conversation: &Conversation<'_>,
        top: usize,
    ) -> Vec<Contribution> {
        struct Collect<'a> {
            weights: &'a [f32],
            terms: std::collections::HashMap<u32, (String, f32)>,
            previous: Vec<u8>,
            current: Vec<u8>,
            /// Label prefix: empty for the last turn, `context:` for earlier ones.
            prefix: &'static str,
            /// Factor of this turn's n-grams (its weight; `1/sqrt(n)` comes after).
            factor: f32,
        }
        impl GramSink for Collect<'_> {
            fn gram(&mut self, index: u32, kind: GramKind, bytes: &[u8]) {
                if kind == GramKind::Word {
                    self.previous = std::mem::replace(&mut self.current, bytes.to_vec());
                }
                let text = String::from_utf8_lossy(bytes);
                let prefix = self.prefix;
                let label = match kind {
                    GramKind::Word => format!("{prefix}word:{text}"),
                    GramKind::WordPair => format!(
                        "{prefix}pair:{} {text}",
                        String::from_utf8_lossy(&self.previous)
                    ),
                    GramKind::Prefix => format!("{prefix}prefix:{text}"),
                    GramKind::Suffix => format!("{prefix}suffix:{text}"),
                };
                let entry = self.terms.entry(index).or_insert((label, 0.0));
                entry.1 += self.weights[index as usize] * self.factor;
            }
        }
        let mut collect = Collect {
            weights: &self.weights.hashed,
            terms: Default::default(),
            previous: Vec::new(),
            current: Vec::new(),
            prefix: "",
            factor: 1.0,
        };
        let mut grams = Vec::new();
        let scale = gram_scale(features::hashed_grams(conversation.last, &mut collect));
        grams.extend(collect.terms.drain().map(|(_, (s, w))| (s, w * scale)));
        collect.prefix = "context:";
        for (turn, weight) in conversation.context() {
            collect.factor = weight;
            collect.previous.clear();
            collect.current.clear();
            let scale = gram_scale(features::context_grams(turn, &mut collect));
            grams.extend(collect.terms.drain().map(|(_, (s, w))| (s, w * scale)));
        }
        // The same n-gram from several turns is one term of the explanation.
        let mut merged: std::collections::HashMap<String, f32> = Default::default();
        for (signal, weight) in grams {
            *merged.entry(signal).or_default() += weight;
        }
        if !conversation.earlier.is_empty() {
            let signal = self.weights.context_complexity(conversation);
            merged.insert(CONTEXT_COMPLEXITY.to_owned(), signal * self.weights.context);
        }
        let structural = features::structural(conversation.last);
        let mut terms: Vec<Contribution> = merged
            .into_iter()
            .map(|(signal, weight)| Contribution { signal, weight })
            .chain(
                structural
                    .named()
                    .zip(&self.weights.structural)
                    .filter(|((_, x), _)| *x != 0.0)
                    .map(|((name, x), w)| Contribution {
                        signal: name.to_owned(),
                        weight: x * w,
                    }),
            )
            .collect();
        terms.sort_by(|a, b| {
            b.weight
                .abs()
                .total_cmp(&a.weight.abs())
                .then_with(|| a.signal.cmp(&b.signal))
        });
        terms.truncate(top);
        terms
    }

    /// The artefact built into the binary.
    pub fn embedded() -> Result<Self, ArtefactError> {
        Self::from_bytes(EMBEDDED, "<embedded>")
    }

    /// Reads an artefact from a file.
    pub fn load(path: &Path) -> Result<Self, ArtefactError> {
        let bytes = std::fs::read(path).map_err(|source| ArtefactError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Serialises to the artefact format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let facts = serde_json::to_vec(&self.facts).unwrap_or_default();
        let mut out = Vec::with_capacity(64 + 4 * (HASH_DIM + STRUCTURAL_COUNT) + facts.len());
        out.extend_from_slice(MAGIC);
        for v in [
            FORMAT_VERSION,
            FEATURE_VERSION,
            HASH_BITS,
            STRUCTURAL_COUNT as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [
            self.weights.bias,
            self.platt.a,
            self.platt.b,
            self.threshold,
            self.weights.context,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in self.weights.structural.iter().chain(&self.weights.hashed) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(facts.len() as u32).to_le_bytes());
        out.extend_from_slice(&facts);
        let checksum = Sha256::digest(&out);
        out.extend_from_slice(&checksum);
        out
    }

    /// Parses the artefact format; `origin` names the source in errors.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self, ArtefactError> {
        let invalid = |reason: String| ArtefactError::Invalid {
            origin: origin.to_owned(),
            reason,
        };
        if bytes.len() < MAGIC.len() + CHECKSUM_LEN || &bytes[..MAGIC.len()] != MAGIC {
            return Err(invalid("not a router model (bad magic)".into()));
        }
        let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if Sha256::digest(body).as_slice() != checksum {
            return Err(invalid(
                "checksum mismatch: the file is corrupt or truncated".into(),
            ));
        }
        let mut reader = Reader {
            bytes: &body[MAGIC.len()..],
        };
        let mut u32_field = |name: &str| {
            reader
                .u32()
                .ok_or_else(|| invalid(format!("truncated at {name}")))
        };
        let format = u32_field("format version")?;
        let feature = u32_field("feature version")?;
        let bits = u32_field("hash bits")?;
        let structural = u32_field("structural count")?;
        if format != FORMAT_VERSION
            || feature != FEATURE_VERSION
            || bits != HASH_BITS
            || structural as usize != STRUCTURAL_COUNT
        {
            return Err(invalid(format!(
                "incompatible: format {format}, features v{feature} with {bits} hash bits and \
                 {structural} signals; this build reads format {FORMAT_VERSION}, features \
                 v{FEATURE_VERSION} with {HASH_BITS} bits and {STRUCTURAL_COUNT} signals \
                 (retrain with train-router)"
            )));
        }
        let mut f32_field = |name: &str| {
            reader
                .f32()
                .ok_or_else(|| invalid(format!("truncated at {name}")))
        };
        let bias = f32_field("bias")?;
        let a = f32_field("platt a")?;
        let b = f32_field("platt b")?;
        let threshold = f32_field("threshold")?;
        let context = f32_field("context weight")?;
        let mut structural_w = [0.0f32; STRUCTURAL_COUNT];
        for (w, name) in structural_w.iter_mut().zip(STRUCTURAL_NAMES) {
            *w = f32_field(name)?;
        }
        let mut hashed = Vec::with_capacity(HASH_DIM);
        for _ in 0..HASH_DIM {
            hashed.push(f32_field("hashed weights")?);
        }
        let facts_len = reader
            .u32()
            .ok_or_else(|| invalid("truncated at facts".into()))? as usize;
        let facts = reader
            .take(facts_len)
            .ok_or_else(|| invalid("truncated in facts".into()))?;
        let facts: TrainingFacts =
            serde_json::from_slice(facts).map_err(|e| invalid(format!("training facts: {e}")))?;
        if !reader.bytes.is_empty() {
            return Err(invalid(format!(
                "{} unexpected trailing bytes",
                reader.bytes.len()
            )));
        }
        let finite = hashed
            .iter()
            .chain(&structural_w)
            .chain([&bias, &a, &b, &threshold, &context])
            .all(|v| v.is_finite());
        if !finite || !(0.0..=1.0).contains(&threshold) {
            return Err(invalid(
                "non-finite weight or threshold outside [0, 1]".into(),
            ));
        }
        Ok(Self {
            weights: Weights {
                hashed,
                structural: structural_w,
                bias,
                context,
            },
            platt: Platt { a, b },
            threshold,
            facts,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    }

    fn f32(&mut self) -> Option<f32> {
        self.take(4)
            .and_then(|b| b.try_into().ok())
            .map(f32::from_le_bytes)
    }
}
