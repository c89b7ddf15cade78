//! Training the router: logistic regression over the features, Platt
//! calibration and a threshold fitted on held-back rows, k-fold cross-validated
//! metrics, and a length-only baseline. Deterministic for a given seed.

use super::conversation::Conversation;
use super::features::{self, STRUCTURAL_COUNT, Structural};
use super::model::{Platt, RouterModel, TrainingFacts, Weights, gram_scale, sigmoid};
use rand::{SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use std::{collections::BTreeMap, path::Path};

/// One labelled prompt, or one labelled conversation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// The prompt (empty for a conversation).
    #[serde(default)]
    pub text: String,
    /// The conversation instead of `text`; the label is for its last user turn.
    #[serde(default)]
    pub messages: Vec<Turn>,
    /// `simple` or `complex`.
    pub label: Label,
    /// Dataset it came from, for per-source accuracy.
    #[serde(default)]
    pub source: String,
    /// Kind of task within the source, for the per-category report.
    #[serde(default)]
    pub category: String,
}

/// One message of a labelled conversation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// Its text.
    pub content: String,
}

/// A labelled example's texts as the router reads them.
#[derive(Debug, Clone, Default)]
pub struct Texts<'a> {
    system: Vec<&'a str>,
    earlier: Vec<&'a str>,
    last: &'a str,
}

impl Texts<'_> {
    /// The conversation these texts make.
    pub fn conversation(&self) -> Conversation<'_> {
        Conversation {
            system: &self.system,
            earlier: &self.earlier,
            last: self.last,
        }
    }
}

impl Example {
    /// A labelled single prompt.
    pub fn prompt(text: impl Into<String>, label: Label, source: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            label,
            source: source.into(),
            ..Self::default()
        }
    }

    /// Its texts: the prompt alone, or the conversation's system messages,
    /// its user turns before the last user turn, and that turn.
    pub fn texts(&self) -> Texts<'_> {
        if self.messages.is_empty() {
            return Texts {
                last: &self.text,
                ..Texts::default()
            };
        }
        let mut texts = Texts::default();
        let mut users: Vec<&str> = Vec::new();
        for m in &self.messages {
            match m.role.as_str() {
                "system" | "developer" => texts.system.push(&m.content),
                "user" => users.push(&m.content),
                _ => {}
            }
        }
        texts.last = users.pop().unwrap_or_default();
        texts.earlier = users;
        texts
    }

    /// Whether it is a conversation (has `messages`).
    pub fn is_conversation(&self) -> bool {
        !self.messages.is_empty()
    }

    /// What is wrong with it, if anything: exactly one of `text` and
    /// `messages`, and a conversation needs a user turn.
    fn problem(&self) -> Option<&'static str> {
        match (self.text.is_empty(), self.messages.is_empty()) {
            (false, false) => Some("both `text` and `messages`; give one"),
            (true, true) => Some("neither `text` nor `messages`"),
            (true, false) if !self.messages.iter().any(|m| m.role == "user") => {
                Some("`messages` has no user turn")
            }
            _ => None,
        }
    }
}

/// The two classes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    /// The small tier can serve it.
    #[default]
    Simple,
    /// It needs the large tier.
    Complex,
}

/// Why training data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line is not a labelled example.
    #[error("{path}:{line}: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Reads JSON lines of `{"text","label","source","category"}`, or the same
/// with `messages` (a list of `{"role","content"}`) instead of `text`.
pub fn load_jsonl(path: &Path) -> Result<Vec<Example>, DataError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Read {
        path: name.clone(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let parse = |reason: String| DataError::Parse {
                path: name.clone(),
                line: i + 1,
                reason,
            };
            let example: Example = serde_json::from_str(l).map_err(|e| parse(e.to_string()))?;
            match example.problem() {
                Some(why) => Err(parse(why.to_owned())),
                None => Ok(example),
            }
        })
        .collect()
}

/// Hyper-parameters.
#[derive(Debug, Clone, Copy)]
pub struct TrainConfig {
    /// Seed for shuffles, splits and augmentation.
    pub seed: u64,
    /// Passes over the data.
    pub epochs: usize,
    /// Adagrad step size.
    pub learning_rate: f32,
    /// L2 penalty per update.
    pub l2: f32,
    /// Share of rows held back for calibration and the threshold.
    pub holdout: f64,
    /// Folds for cross-validation.
    pub folds: usize,
    /// Share of training rows copied with a neutral wrapper added.
    pub wrapper_augmentation: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed: 20_261_124,
            epochs: 10,
            learning_rate: 0.2,
            l2: 1e-3,
            holdout: 0.2,
            folds: 5,
            wrapper_augmentation: 0.3,
        }
    }
}

/// Neutral text users wrap prompts in; added to both classes alike so it
/// carries no signal.
const WRAPPERS: &[(&str, &str)] = &[
    ("Please answer: ", ""),
    ("Quick question: ", ""),
    ("Hey, ", ""),
    ("Can you help me with this? ", ""),
    ("", " Thanks!"),
    ("", "\n\nI need this for work."),
    ("Answer the following.\n\n", ""),
    ("Hi! ", " Thank you."),
];

/// An earlier turn as a single prompt: what [`Weights::turn_logit`] reads.
#[derive(Debug, Clone)]
struct TurnFeatures {
    grams: Vec<u32>,
    scale: f32,
    structural: Structural,
    weight: f32,
}

/// A featurised row.
#[derive(Debug, Clone)]
pub struct Row {
    grams: Vec<u32>,
    scale: f32,
    /// The earlier turns' context n-grams, each with its factor (the turn's
    /// weight times `1/sqrt(n)` of that turn).
    context: Vec<(u32, f32)>,
    /// The earlier turns' single-prompt features, with their weights, for the
    /// context-complexity signal (computed with the weights of the moment).
    turns: Vec<TurnFeatures>,
    structural: Structural,
    complex: bool,
}

impl Row {
    /// Features of `text` with its label.
    pub fn new(text: &str, complex: bool) -> Self {
        Self::of(&Conversation::single(text), complex)
    }

    /// Features of a conversation's last turn and earlier turns, with its label;
    /// the same terms as [`Weights::conversation_logit`] adds up.
    pub fn of(conversation: &Conversation<'_>, complex: bool) -> Self {
        let mut grams = Vec::new();
        let n = features::hashed_grams(conversation.last, &mut |i| grams.push(i));
        let mut context = Vec::new();
        let mut turns = Vec::new();
        for (turn, weight) in conversation.context() {
            let excerpt = features::context_excerpt(turn);
            let mut grams = Vec::new();
            let n = features::hashed_grams(&excerpt, &mut |i| grams.push(i));
            turns.push(TurnFeatures {
                grams,
                scale: gram_scale(n),
                structural: features::structural(&excerpt),
                weight,
            });
            let start = context.len();
            let n = features::context_grams(turn, &mut |i| context.push((i, 0.0)));
            let factor = gram_scale(n) * weight;
            for entry in &mut context[start..] {
                entry.1 = factor;
            }
        }
        Self {
            grams,
            scale: gram_scale(n),
            context,
            turns,
            structural: features::structural(conversation.last),
            complex,
        }
    }

    /// The length-only baseline's view of `text`: one signal, no n-grams.
    fn length_only(text: &str, complex: bool) -> Self {
        let mut structural = [0.0; STRUCTURAL_COUNT];
        structural[0] = features::structural(text).0[0];
        Self {
            grams: Vec::new(),
            scale: 0.0,
            context: Vec::new(),
            turns: Vec::new(),
            structural: Structural(structural),
            complex,
        }
    }

    fn logit(&self, w: &Weights) -> f32 {
        self.logit_with(w, self.context_complexity(w))
    }

    /// The logit given the context-complexity signal `x`.
    fn logit_with(&self, w: &Weights, x: f32) -> f32 {
        let hashed: f32 = self.grams.iter().map(|&i| w.hashed[i as usize]).sum();
        let context: f32 = self
            .context
            .iter()
            .map(|&(i, f)| w.hashed[i as usize] * f)
            .sum();
        w.combine(hashed, self.scale, &self.structural) + context + w.context * x
    }

    /// As [`Weights::context_complexity`], from the stored turn features.
    fn context_complexity(&self, w: &Weights) -> f32 {
        self.turns
            .iter()
            .map(|t| {
                let hashed: f32 = t.grams.iter().map(|&i| w.hashed[i as usize]).sum();
                t.weight * sigmoid(w.combine(hashed, t.scale, &t.structural))
            })
            .fold(0.0, f32::max)
    }
}

/// Logistic regression with Adagrad; rows are visited in a seeded order.
pub fn fit(rows: &[Row], config: &TrainConfig, rng: &mut ChaCha8Rng) -> Weights {
    let mut w = Weights::zeros();
    let mut g_hashed = vec![1e-8f32; w.hashed.len()];
    let mut g_dense = [1e-8f32; STRUCTURAL_COUNT];
    let mut g_bias = 1e-8f32;
    let mut g_context = 1e-8f32;
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let lr = config.learning_rate;
    for _ in 0..config.epochs {
        order.shuffle(rng);
        for &r in &order {
            let row = &rows[r];
            let y = if row.complex { 1.0 } else { 0.0 };
            let x = row.context_complexity(&w);
            let err = sigmoid(row.logit_with(&w, x)) - y;
            for &i in &row.grams {
                let i = i as usize;
                let grad = err * row.scale + config.l2 * w.hashed[i];
                g_hashed[i] += grad * grad;
                w.hashed[i] -= lr * grad / g_hashed[i].sqrt();
            }
            for &(i, factor) in &row.context {
                let i = i as usize;
                let grad = err * factor + config.l2 * w.hashed[i];
                g_hashed[i] += grad * grad;
                w.hashed[i] -= lr * grad / g_hashed[i].sqrt();
            }
            for (k, &x) in row.structural.0.iter().enumerate() {
                if x != 0.0 {
                    let grad = err * x + config.l2 * w.structural[k];
                    g_dense[k] += grad * grad;
                    w.structural[k] -= lr * grad / g_dense[k].sqrt();
                }
            }
            g_bias += err * err;
            w.bias -= lr * err / g_bias.sqrt();
            // The signal reads the weights; its gradient through them is left
            // out (they are trained by every single prompt), only its own
            // weight learns from the conversations.
            if !row.turns.is_empty() {
                let grad = err * x + config.l2 * w.context;
                g_context += grad * grad;
                w.context -= lr * grad / g_context.sqrt();
            }
        }
    }
    w
}

/// Fits Platt scaling to logits and labels by Newton's method, with Platt's
/// smoothed targets so separable data does not drive the slope to infinity.
pub fn fit_platt(logits: &[f32], labels: &[bool]) -> Platt {
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    let negatives = labels.len() as f64 - positives;
    let hi = (positives + 1.0) / (positives + 2.0);
    let lo = 1.0 / (negatives + 2.0);
    let (mut a, mut b) = (1.0f64, 0.0f64);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
        for (&s, &l) in logits.iter().zip(labels) {
            let s = f64::from(s);
            let t = if l { hi } else { lo };
            let p = 1.0 / (1.0 + (-(a * s + b)).exp());
            let d = p - t;
            let v = p * (1.0 - p);
            ga += d * s;
            gb += d;
            haa += v * s * s;
            hab += v * s;
            hbb += v;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-12 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        a -= da;
        b -= db;
        if da.abs() < 1e-9 && db.abs() < 1e-9 {
            break;
        }
    }
    Platt {
        a: a as f32,
        b: b as f32,
    }
}

/// Area under the ROC curve (Mann–Whitney, ties averaged).
pub fn auroc(scores: &[f32], labels: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0f64;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += idx[i..=j].iter().filter(|&&k| labels[k]).count() as f64 * rank;
        i = j + 1;
    }
    let p = labels.iter().filter(|&&l| l).count() as f64;
    let n = labels.len() as f64 - p;
    if p == 0.0 || n == 0.0 {
        return f64::NAN;
    }
    (rank_sum - p * (p + 1.0) / 2.0) / (p * n)
}

/// Expected calibration error over `bins` equal-width probability bins.
pub fn expected_calibration_error(probs: &[f32], labels: &[bool], bins: usize) -> f64 {
    let mut sum_p = vec![0.0f64; bins];
    let mut sum_y = vec![0.0f64; bins];
    let mut count = vec![0usize; bins];
    for (&p, &l) in probs.iter().zip(labels) {
        let b = ((p as f64 * bins as f64) as usize).min(bins - 1);
        sum_p[b] += f64::from(p);
        sum_y[b] += if l { 1.0 } else { 0.0 };
        count[b] += 1;
    }
    let n = probs.len().max(1) as f64;
    (0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| (sum_p[b] - sum_y[b]).abs() / n)
        .sum()
}

/// Share of predictions (`prob >= threshold`) that match the labels.
pub fn accuracy(probs: &[f32], labels: &[bool], threshold: f32) -> f64 {
    let right = probs
        .iter()
        .zip(labels)
        .filter(|(p, l)| (**p >= threshold) == **l)
        .count();
    right as f64 / probs.len().max(1) as f64
}

/// The threshold that maximises accuracy; among equals, the one nearest 0.5.
pub fn best_threshold(probs: &[f32], labels: &[bool]) -> f32 {
    let mut sorted: Vec<f32> = probs.to_vec();
    sorted.sort_by(f32::total_cmp);
    sorted.dedup();
    let mut candidates = vec![0.5f32];
    candidates.extend(sorted.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    candidates
        .into_iter()
        .map(|t| (accuracy(probs, labels, t), t))
        .max_by(|(a1, t1), (a2, t2)| {
            a1.total_cmp(a2)
                .then_with(|| (t2 - 0.5).abs().total_cmp(&(t1 - 0.5).abs()))
        })
        .map_or(0.5, |(_, t)| t)
}

/// The threshold that sends `share` of `probs` to the large tier (RouteLLM's
/// `calibrate_threshold`: the `1 - share` quantile, linearly interpolated).
pub fn threshold_for_share(probs: &[f32], share: f64) -> f32 {
    if probs.is_empty() {
        return 0.5;
    }
    let mut sorted: Vec<f64> = probs.iter().map(|&p| f64::from(p)).collect();
    sorted.sort_by(f64::total_cmp);
    let q = (1.0 - share.clamp(0.0, 1.0)) * (sorted.len() - 1) as f64;
    let (lo, hi) = (q.floor() as usize, q.ceil() as usize);
    (sorted[lo] + (sorted[hi] - sorted[lo]) * (q - lo as f64)) as f32
}

/// Metrics of one evaluation.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// Area under the ROC curve.
    pub auroc: f64,
    /// Accuracy at the fitted threshold(s).
    pub accuracy: f64,
    /// Expected calibration error, 10 bins.
    pub ece: f64,
    /// Correct and total rows by source.
    pub per_source: BTreeMap<String, (usize, usize)>,
    /// Correct and total rows by source and category.
    pub per_category: BTreeMap<(String, String), (usize, usize)>,
}

impl Evaluation {
    /// Counts one prediction of `example` in the per-source and per-category tallies.
    fn tally(&mut self, example: &Example, right: bool) {
        let source = self.per_source.entry(example.source.clone()).or_default();
        source.0 += usize::from(right);
        source.1 += 1;
        let category = self
            .per_category
            .entry((example.source.clone(), example.category.clone()))
            .or_default();
        category.0 += usize::from(right);
        category.1 += 1;
    }
}

/// Everything `train-router` reports.
#[derive(Debug, Clone)]
pub struct TrainReport {
    /// k-fold cross-validation of the full model.
    pub cv: Evaluation,
    /// The same protocol with prompt length as the only feature.
    pub length_baseline: Evaluation,
}

fn augment(examples: &[&Example], config: &TrainConfig, rng: &mut ChaCha8Rng) -> Vec<Row> {
    use rand::Rng;
    let mut rows: Vec<Row> = examples.iter().map(|e| full_view(e)).collect();
    for e in examples {
        if rng.random_bool(config.wrapper_augmentation) {
            let (pre, post) = WRAPPERS[rng.random_range(0..WRAPPERS.len())];
            let texts = e.texts();
            let wrapped = format!("{pre}{}{post}", texts.last);
            let conversation = Conversation {
                last: &wrapped,
                ..texts.conversation()
            };
            rows.push(Row::of(&conversation, e.label == Label::Complex));
        }
    }
    rows
}

/// The model's view of an example: its conversation (or prompt) in full.
fn full_view(e: &Example) -> Row {
    Row::of(&e.texts().conversation(), e.label == Label::Complex)
}

/// The baseline's view: the length of the last turn.
fn length_view(e: &Example) -> Row {
    Row::length_only(e.texts().last, e.label == Label::Complex)
}

/// Trains on `examples` and calibrates on a held-back share: the model a
/// deployment uses. `length_only` picks the baseline's feature view.
fn train_calibrated(
    examples: &[&Example],
    config: &TrainConfig,
    rng: &mut ChaCha8Rng,
    length_only: bool,
) -> (Weights, Platt, f32) {
    let mut order: Vec<&Example> = examples.to_vec();
    order.shuffle(rng);
    let held = ((order.len() as f64) * config.holdout).round() as usize;
    let (calibration, training) = order.split_at(held);
    let rows = if length_only {
        training.iter().map(|e| length_view(e)).collect()
    } else {
        augment(training, config, rng)
    };
    let weights = fit(&rows, config, rng);
    let view = |e: &&Example| {
        if length_only {
            length_view(e)
        } else {
            full_view(e)
        }
    };
    let held_rows: Vec<Row> = calibration.iter().map(view).collect();
    let logits: Vec<f32> = held_rows.iter().map(|r| r.logit(&weights)).collect();
    let labels: Vec<bool> = held_rows.iter().map(|r| r.complex).collect();
    let platt = fit_platt(&logits, &labels);
    let probs: Vec<f32> = logits.iter().map(|&s| platt.probability(s)).collect();
    let threshold = best_threshold(&probs, &labels);
    (weights, platt, threshold)
}

/// Metrics of a trained model on labelled rows it has not seen.
pub fn evaluate(model: &RouterModel, threshold: f32, examples: &[Example]) -> Evaluation {
    let probs: Vec<f32> = examples
        .iter()
        .map(|e| model.score_conversation(&e.texts().conversation()).0)
        .collect();
    let labels: Vec<bool> = examples.iter().map(|e| e.label == Label::Complex).collect();
    let mut evaluation = Evaluation {
        auroc: auroc(&probs, &labels),
        accuracy: accuracy(&probs, &labels, threshold),
        ece: expected_calibration_error(&probs, &labels, 10),
        ..Evaluation::default()
    };
    for ((e, &p), &l) in examples.iter().zip(&probs).zip(&labels) {
        evaluation.tally(e, (p >= threshold) == l);
    }
    evaluation
}

/// Out-of-fold evaluation: each fold is scored by a model trained and
/// calibrated on the other folds.
pub fn cross_validate(examples: &[Example], config: &TrainConfig, length_only: bool) -> Evaluation {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0xC0FF_EE00);
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.shuffle(&mut rng);
    let mut probs = vec![0.0f32; examples.len()];
    let mut predicted = vec![false; examples.len()];
    for fold in 0..config.folds {
        let in_fold = |pos: &usize| pos % config.folds == fold;
        let test: Vec<usize> = order
            .iter()
            .enumerate()
            .filter(|(pos, _)| in_fold(pos))
            .map(|(_, &i)| i)
            .collect();
        let train_ex: Vec<&Example> = order
            .iter()
            .enumerate()
            .filter(|(pos, _)| !in_fold(pos))
            .map(|(_, &i)| &examples[i])
            .collect();
        let (w, platt, threshold) = train_calibrated(&train_ex, config, &mut rng, length_only);
        for &i in &test {
            let e = &examples[i];
            let row = if length_only {
                length_view(e)
            } else {
                full_view(e)
            };
            probs[i] = platt.probability(row.logit(&w));
            predicted[i] = probs[i] >= threshold;
        }
    }
    let labels: Vec<bool> = examples.iter().map(|e| e.label == Label::Complex).collect();
    let right = predicted
        .iter()
        .zip(&labels)
        .filter(|(p, l)| p == l)
        .count();
    let mut evaluation = Evaluation {
        auroc: auroc(&probs, &labels),
        accuracy: right as f64 / examples.len().max(1) as f64,
        ece: expected_calibration_error(&probs, &labels, 10),
        ..Evaluation::default()
    };
    for (i, e) in examples.iter().enumerate() {
        evaluation.tally(e, predicted[i] == labels[i]);
    }
    evaluation
}

/// Cross-validates, then trains the deployable model on every row (with a
/// held-back share for calibration and the threshold).
pub fn train(examples: &[Example], config: &TrainConfig) -> (RouterModel, TrainReport) {
    let cv = cross_validate(examples, config, false);
    let length_baseline = cross_validate(examples, config, true);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let all: Vec<&Example> = examples.iter().collect();
    let (weights, platt, threshold) = train_calibrated(&all, config, &mut rng, false);
    let model = RouterModel {
        weights,
        platt,
        threshold,
        facts: TrainingFacts {
            seed: config.seed,
            rows: examples.len(),
            cv_auroc: cv.auroc,
            cv_accuracy: cv.accuracy,
            cv_ece: cv.ece,
        },
    };
    (
        model,
        TrainReport {
            cv,
            length_baseline,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_prompts_and_conversations_and_refuses_neither_or_both() {
        let dir = std::env::temp_dir().join(format!("harpoon-train-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.jsonl");
        std::fs::write(
            &good,
            concat!(
                r#"{"text":"hi","label":"simple","source":"s"}"#,
                "\n",
                r#"{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"prove it"},"#,
                r#"{"role":"assistant","content":"..."},{"role":"user","content":"and for 3?"}],"#,
                r#""label":"complex","source":"m","category":"followup-of-hard"}"#,
                "\n"
            ),
        )
        .unwrap();
        let rows = load_jsonl(&good).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(!rows[0].is_conversation());
        let texts = rows[1].texts();
        let c = texts.conversation();
        assert_eq!(
            (c.system, c.earlier, c.last),
            (&["be brief"][..], &["prove it"][..], "and for 3?")
        );
        assert_eq!(rows[1].category, "followup-of-hard");
        for (name, line) in [
            (
                "both",
                r#"{"text":"x","messages":[{"role":"user","content":"y"}],"label":"simple"}"#,
            ),
            ("neither", r#"{"label":"simple"}"#),
            (
                "no-user",
                r#"{"messages":[{"role":"assistant","content":"y"}],"label":"simple"}"#,
            ),
        ] {
            let path = dir.join(format!("{name}.jsonl"));
            std::fs::write(&path, line).unwrap();
            let err = load_jsonl(&path).unwrap_err().to_string();
            assert!(err.contains(":1:"), "{name}: {err}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn auroc_matches_hand_computed_values() {
        assert_eq!(
            auroc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]),
            1.0
        );
        assert_eq!(
            auroc(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]),
            0.0
        );
        assert_eq!(auroc(&[0.5, 0.5], &[false, true]), 0.5);
        // One positive ranked below one of two negatives: 1 of 2 pairs wrong.
        assert_eq!(auroc(&[0.3, 0.6, 0.5], &[false, false, true]), 0.5);
    }

    #[test]
    fn calibration_error_is_zero_when_probabilities_match_frequencies() {
        let probs = [0.25, 0.25, 0.25, 0.25, 0.95, 0.95];
        let labels = [true, false, false, false, true, true];
        let ece = expected_calibration_error(&probs, &labels, 10);
        // Bin 0.2–0.3: 0.25 vs 0.25; bin 0.9–1.0: 0.95 vs 1.0 → 2/6 × 0.05.
        assert!((ece - 2.0 / 6.0 * 0.05).abs() < 1e-6, "{ece}");
    }

    #[test]
    fn platt_scaling_recovers_a_known_sigmoid() {
        // Labels drawn deterministically with P(y) = sigmoid(2s - 1).
        let mut logits = Vec::new();
        let mut labels = Vec::new();
        for i in 0..4000 {
            let s = (i % 400) as f32 / 100.0 - 2.0;
            let p = sigmoid(2.0 * s - 1.0);
            let u = ((i * 7919) % 1000) as f32 / 1000.0;
            logits.push(s);
            labels.push(u < p);
        }
        let platt = fit_platt(&logits, &labels);
        assert!((platt.a - 2.0).abs() < 0.2, "{platt:?}");
        assert!((platt.b + 1.0).abs() < 0.2, "{platt:?}");
    }

    #[test]
    fn thresholds_maximise_accuracy_and_hit_a_share() {
        let probs = [0.1, 0.2, 0.3, 0.6, 0.7, 0.9];
        let labels = [false, false, false, true, true, true];
        let t = best_threshold(&probs, &labels);
        assert!(t > 0.3 && t <= 0.6, "{t}");
        assert_eq!(accuracy(&probs, &labels, t), 1.0);

        let scores: Vec<f32> = (0..101).map(|i| i as f32 / 100.0).collect();
        let t = threshold_for_share(&scores, 0.3);
        assert!((t - 0.7).abs() < 1e-6, "{t}");
        let share = scores.iter().filter(|&&s| s >= t).count() as f64 / scores.len() as f64;
        assert!((share - 0.3).abs() < 0.02);
    }
}
