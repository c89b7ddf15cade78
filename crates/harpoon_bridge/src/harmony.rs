//! Harmony review: which repositories take part in a covenant and which one
//! leads. Relevance is BM25 of each repository's text (README twice, paths,
//! source) against the covenant's words; place in the cable graph is the
//! weighted share of cables pointing at a repository. Pure functions.

use crate::scan::{Manifests, Scan, normalise};
use crate::types::{Cable, CableKind, Covenant, HarmonyChoice, Role};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// BM25 term-frequency saturation.
const K1: f64 = 1.2;
/// BM25 length normalisation.
const B: f64 = 0.75;
/// Weight of relevance in the combined score; the rest is graph centrality.
const RELEVANCE_WEIGHT: f64 = 0.7;
/// Repositories below this share of the best relevance are left out.
pub const MIN_RELEVANCE: f64 = 0.25;
/// Characters of one source file that count (long generated files would drown the rest).
const MAX_FILE_CHARS: usize = 20_000;

const STOP_WORDS: &[&str] = &[
    "the", "and", "for", "with", "that", "this", "from", "into", "are", "was", "were", "will",
    "all", "any", "can", "each", "its", "our", "not", "but", "has", "have", "had", "use", "uses",
    "used", "via", "per", "must", "should", "every", "one", "new", "now", "then", "than", "when",
    "where", "which", "who", "how", "what", "there", "their", "them", "they", "you", "your", "is",
    "in", "on", "of", "to", "be", "by", "as", "at", "it", "or", "an", "no", "so", "if", "we",
];

/// Lower-case words of two or more letters, stop words and numbers dropped.
pub fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 2 && !w.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_lowercase)
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
}

/// The words a review searches for.
pub fn query_terms(c: &Covenant) -> Vec<String> {
    let mut text = vec![
        c.title.as_str(),
        c.description.as_str(),
        c.reality_state.description.as_str(),
        c.target_state.description.as_str(),
    ];
    text.extend(c.reality_state.key_aspects.iter().map(String::as_str));
    text.extend(c.target_state.success_criteria.iter().map(String::as_str));
    let set: BTreeSet<String> = text.iter().flat_map(|t| tokens(t)).collect();
    set.into_iter().collect()
}

/// Term frequencies of one repository and its length in terms.
#[derive(Debug, Default, Clone)]
pub struct Document {
    tf: HashMap<String, u32>,
    len: usize,
}

impl Document {
    /// README twice (it says what the repository is for), then paths and source.
    pub fn of(scan: &Scan) -> Self {
        let mut d = Self::default();
        if let Some(readme) = scan.readme() {
            for _ in 0..2 {
                d.add(readme);
            }
        }
        for p in &scan.paths {
            d.add(p);
        }
        for (path, text) in &scan.texts {
            if Some(text.as_str()) == scan.readme() && !path.contains('/') {
                continue;
            }
            let end = text
                .char_indices()
                .nth(MAX_FILE_CHARS)
                .map_or(text.len(), |(i, _)| i);
            d.add(&text[..end]);
        }
        d
    }

    fn add(&mut self, text: &str) {
        for t in tokens(text) {
            *self.tf.entry(t).or_default() += 1;
            self.len += 1;
        }
    }
}

/// BM25 of each document against `terms`, with the terms that contributed
/// most (best first, at most five).
pub fn bm25(docs: &[Document], terms: &[String]) -> Vec<(f64, Vec<String>)> {
    let n = docs.len() as f64;
    let avg = (docs.iter().map(|d| d.len).sum::<usize>() as f64 / n.max(1.0)).max(1.0);
    let idf: HashMap<&str, f64> = terms
        .iter()
        .map(|t| {
            let df = docs.iter().filter(|d| d.tf.contains_key(t)).count() as f64;
            (t.as_str(), (1.0 + (n - df + 0.5) / (df + 0.5)).ln())
        })
        .collect();
    docs.iter()
        .map(|d| {
            let mut parts: Vec<(f64, &str)> = terms
                .iter()
                .filter_map(|t| {
                    let tf = f64::from(*d.tf.get(t)?);
                    let norm = tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * d.len as f64 / avg));
                    Some((idf[t.as_str()] * norm, t.as_str()))
                })
                .collect();
            parts.sort_by(|a, b| b.0.total_cmp(&a.0));
            let score = parts.iter().map(|p| p.0).sum();
            (
                score,
                parts.iter().take(5).map(|p| p.1.to_owned()).collect(),
            )
        })
        .collect()
}

/// Cables read from manifests: `a` depends on `b` when a dependency of `a`
/// names `b` (its repository name, last name segment, or a package or module
/// name `b` publishes).
pub fn infer_cables(repos: &[(String, Manifests)]) -> Vec<Cable> {
    let identities: Vec<BTreeSet<String>> = repos
        .iter()
        .map(|(name, m)| {
            let mut ids = BTreeSet::new();
            ids.insert(normalise(name));
            if let Some(last) = name.rsplit('/').next() {
                ids.insert(normalise(last));
            }
            for n in &m.names {
                ids.insert(normalise(n));
                if let Some(last) = n.rsplit('/').next() {
                    ids.insert(normalise(last));
                }
            }
            ids
        })
        .collect();
    let mut best: BTreeMap<(usize, usize), (f64, String)> = BTreeMap::new();
    for (a, (_, m)) in repos.iter().enumerate() {
        for dep in &m.dependencies {
            let full = normalise(&dep.name);
            let last = full.rsplit('/').next().unwrap_or(&full).to_owned();
            for (b, ids) in identities.iter().enumerate() {
                if a == b || !(ids.contains(&full) || ids.contains(&last)) {
                    continue;
                }
                let evidence = format!("{}: {}", dep.source, dep.name);
                let slot = best.entry((a, b)).or_insert((0.0, String::new()));
                if dep.strength > slot.0 {
                    *slot = (dep.strength, evidence);
                }
            }
        }
    }
    best.into_iter()
        .map(|((a, b), (strength, evidence))| Cable {
            from: repos[a].0.clone(),
            to: repos[b].0.clone(),
            kind: CableKind::DependsOn,
            strength,
            evidence,
        })
        .collect()
}

/// Ranks `names` (with their documents) for `terms` over the cable graph:
/// participants (anchor first, then agnos in order) and the excluded.
pub fn rank(
    names: &[String],
    docs: &[Document],
    terms: &[String],
    cables: &[Cable],
) -> (Vec<HarmonyChoice>, Vec<HarmonyChoice>) {
    let scores = bm25(docs, terms);
    let best = scores.iter().map(|s| s.0).fold(0.0, f64::max);
    let incoming: Vec<f64> = names
        .iter()
        .map(|n| {
            cables
                .iter()
                .filter(|c| &c.to == n)
                .map(|c| c.strength)
                .sum()
        })
        .collect();
    let most = incoming.iter().copied().fold(0.0, f64::max);
    let mut all: Vec<HarmonyChoice> = names
        .iter()
        .zip(scores)
        .zip(&incoming)
        .map(|((name, (relevance, matched)), inc)| {
            let relevance_norm = if best > 0.0 { relevance / best } else { 0.0 };
            let centrality = if most > 0.0 { inc / most } else { 0.0 };
            HarmonyChoice {
                repo: name.clone(),
                role: None,
                relevance,
                relevance_norm,
                centrality,
                score: RELEVANCE_WEIGHT * relevance_norm + (1.0 - RELEVANCE_WEIGHT) * centrality,
                matched_terms: matched,
            }
        })
        .collect();
    all.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.repo.cmp(&b.repo))
    });
    let (mut chosen, excluded): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|c| best > 0.0 && c.relevance_norm >= MIN_RELEVANCE);
    for (i, c) in chosen.iter_mut().enumerate() {
        c.role = Some(if i == 0 { Role::Anchor } else { Role::Agnos });
    }
    (chosen, excluded)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn doc(text: &str) -> Document {
        let mut d = Document::default();
        d.add(text);
        d
    }

    #[test]
    fn bm25_prefers_the_document_about_the_terms() {
        let docs = [
            doc("session cookie login jwt token refresh"),
            doc("invoice billing payment ledger"),
        ];
        let terms = vec!["jwt".to_owned(), "refresh".to_owned()];
        let s = bm25(&docs, &terms);
        assert!(s[0].0 > 0.0 && s[1].0 == 0.0, "{s:?}");
        assert_eq!(s[0].1.len(), 2);
    }

    #[test]
    fn centrality_breaks_a_tie_in_relevance() {
        let names = vec!["org/a".to_owned(), "org/b".to_owned()];
        let docs = [doc("jwt tokens"), doc("jwt tokens")];
        let cables = vec![Cable {
            from: "org/a".into(),
            to: "org/b".into(),
            kind: CableKind::DependsOn,
            strength: 1.0,
            evidence: String::new(),
        }];
        let (chosen, excluded) = rank(&names, &docs, &["jwt".to_owned()], &cables);
        assert!(excluded.is_empty());
        assert_eq!(chosen[0].repo, "org/b");
        assert_eq!(chosen[0].role, Some(Role::Anchor));
        assert_eq!(chosen[1].role, Some(Role::Agnos));
    }
}
