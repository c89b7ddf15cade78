//! Envelope cycles: termination, duplicates, refinement, the chain and tampering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use harpoon_core::{
    ChainError, EventKind, Fragment, FusionSettings, HarpoonEngine, PendingReason, RefineError,
    Refiner, fragment_hash, hygiene::Hygiene, language::Language,
};

fn engine() -> HarpoonEngine {
    HarpoonEngine::new(&FusionSettings::default())
}

fn frag(path: &str, idx: u32, body: &str) -> Fragment {
    Fragment {
        path: path.into(),
        idx,
        lines: format!("{}-{}", idx * 10 + 1, idx * 10 + 9),
        body: body.into(),
    }
}

const CLEAN: &str = "fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n";
const LEAKY: &str = "fn key() -> &'static str {\n    \"AKIAIOSFODNN7EXAMPLE\"\n}\n";

/// The seed looped forever on a fragment that stays below the threshold when
/// no cap was given; now the default cap applies and it ends up pending.
#[test]
fn seed_example_below_threshold_without_cap_terminates() {
    let e = engine();
    let env = e.envelope_cycle(vec![frag("a.rs", 0, LEAKY)], Some(0.8), None);
    assert!(env.absorbed.is_empty());
    assert_eq!(env.pending.len(), 1);
    assert_eq!(env.pending[0].reason, PendingReason::RefinerExhausted);
    assert!(env.iterations <= 10);
    assert_eq!(env.max_iterations, 10);
    assert_eq!(env.hygiene_score, 0.0);
    assert!(env.events.iter().any(|ev| ev.kind == EventKind::Rejected));
    env.verify().unwrap();
}

/// A refiner that always changes something but never helps: only the cap stops it.
struct Restless;

impl Refiner for Restless {
    fn refine(
        &self,
        fragment: &Fragment,
        _: Language,
        _: &Hygiene,
    ) -> Result<Option<String>, RefineError> {
        Ok(Some(format!(
            "{}// v{}\n",
            fragment.body,
            fragment.body.len()
        )))
    }
    fn name(&self) -> &str {
        "restless"
    }
}

/// A refiner whose backend cannot answer (a model that is down).
struct Broken;

impl Refiner for Broken {
    fn refine(
        &self,
        _: &Fragment,
        _: Language,
        _: &Hygiene,
    ) -> Result<Option<String>, RefineError> {
        Err(RefineError("model m: engine unavailable".into()))
    }
    fn name(&self) -> &str {
        "broken"
    }
}

#[test]
fn a_failing_refiner_leaves_the_fragment_pending_with_its_reason() {
    let e = engine();
    let env = e.envelope_cycle_with(
        vec![frag("a.rs", 0, LEAKY), frag("b.rs", 1, "fn ok() {}\n")],
        Some(0.8),
        None,
        &Broken,
    );
    assert_eq!(
        env.absorbed.len(),
        1,
        "the clean fragment is still absorbed"
    );
    assert_eq!(env.pending.len(), 1);
    assert_eq!(env.pending[0].reason, PendingReason::RefinerFailed);
    assert!(
        env.pending[0]
            .message
            .ends_with("the broken refiner failed: model m: engine unavailable"),
        "{}",
        env.pending[0].message
    );
    assert_eq!(env.iterations, 1, "a failure ends the fragment's cycle");
    env.verify().unwrap();
}

#[test]
fn a_refiner_that_never_converges_is_stopped_by_max_iterations() {
    let e = engine();
    let env = e.envelope_cycle_with(vec![frag("a.rs", 0, LEAKY)], Some(0.99), Some(4), &Restless);
    assert_eq!(env.iterations, 4);
    assert_eq!(env.pending.len(), 1);
    assert_eq!(env.pending[0].reason, PendingReason::MaxIterations);
    let refined = env
        .events
        .iter()
        .filter(|ev| ev.kind == EventKind::Refined)
        .count();
    let requeued = env
        .events
        .iter()
        .filter(|ev| ev.kind == EventKind::Requeued)
        .count();
    assert_eq!((refined, requeued), (4, 4));
    // Refined events chain the body's anchors.
    let refined: Vec<_> = env
        .events
        .iter()
        .filter(|ev| ev.kind == EventKind::Refined)
        .collect();
    for pair in refined.windows(2) {
        assert_eq!(pair[0].anchor_next, pair[1].anchor_prev);
    }
    assert_eq!(
        refined[0].anchor_prev.as_deref(),
        Some(fragment_hash(LEAKY).as_str())
    );
}

#[test]
fn duplicate_bodies_are_absorbed_once() {
    let e = engine();
    let crlf = CLEAN.replace('\n', "\r\n");
    let env = e.envelope_cycle(
        vec![
            frag("a.rs", 0, CLEAN),
            frag("b.rs", 1, CLEAN),
            frag("c.rs", 2, &crlf),
        ],
        None,
        None,
    );
    assert_eq!(env.absorbed.len(), 1);
    assert_eq!(env.duplicates.len(), 2);
    for d in &env.duplicates {
        assert_eq!(d.duplicate_of.path, "a.rs");
        assert_eq!(d.anchor, fragment_hash(CLEAN));
    }
    assert_eq!(env.chain.len(), 1);
    env.verify().unwrap();
}

#[test]
fn mechanical_refinement_lifts_a_fragment_over_the_threshold() {
    let dirty = "fn add(a: u32, b: u32) -> u32 {   \n    dbg!(a);\n    println!(\"{b}\");   \n    eprintln!(\"adding\");\n    a + b\n}\n";
    let e = engine();
    let before = e.score(&frag("a.rs", 0, dirty)).score;
    assert!(before < 0.9, "{before}");
    let env = e.envelope_cycle(
        vec![frag("a.rs", 0, dirty), frag("b.rs", 1, LEAKY)],
        Some(0.9),
        None,
    );
    assert_eq!(env.absorbed.len(), 1);
    let a = &env.absorbed[0];
    assert_eq!(a.fragment.body, CLEAN);
    assert_eq!(a.refinements, 1);
    assert_eq!(a.original_anchor, fragment_hash(dirty));
    assert_eq!(a.anchor, fragment_hash(CLEAN));
    assert_eq!(a.hygiene.score, 1.0);
    assert_eq!(env.iterations, 1);
    assert_eq!(env.pending.len(), 1);
    let kinds: Vec<_> = env.events.iter().map(|ev| ev.kind).collect();
    assert!(kinds.contains(&EventKind::Refined) && kinds.contains(&EventKind::Absorbed));
    assert_eq!(env.hygiene_score, 1.0);
    env.verify().unwrap();
}

#[test]
fn zero_iterations_means_no_refinement() {
    let dirty = "fn add(a: u32) -> u32 {\n    dbg!(a);\n    dbg!(a);\n    dbg!(a);\n    a\n}\n";
    let env = engine().envelope_cycle(vec![frag("a.rs", 0, dirty)], Some(0.9), Some(0));
    assert_eq!(env.iterations, 0);
    assert_eq!(env.pending[0].reason, PendingReason::MaxIterations);
    assert!(!env.events.iter().any(|ev| ev.kind == EventKind::Refined));
}

fn three() -> harpoon_core::Envelope {
    engine().envelope_cycle(
        vec![
            frag("a.rs", 0, CLEAN),
            frag("b.py", 1, "def mul(a, b):\n    return a * b\n"),
            frag("c.go", 2, "func sub(a, b int) int {\n\treturn a - b\n}\n"),
        ],
        Some(0.5),
        None,
    )
}

#[test]
fn the_chain_verifies_and_detects_tampering() {
    let env = three();
    assert_eq!(env.absorbed.len(), 3);
    env.verify().unwrap();
    assert_eq!(env.envelope_hash, three().envelope_hash, "deterministic");

    let mut t = env.clone();
    t.absorbed[1].fragment.body.push_str("# injected\n");
    assert_eq!(t.verify(), Err(ChainError::Body(1)));

    let mut t = env.clone();
    t.absorbed.swap(0, 1);
    assert!(matches!(t.verify(), Err(ChainError::Link(0))));

    let mut t = env.clone();
    t.absorbed.remove(2);
    t.chain.remove(2);
    assert_eq!(t.verify(), Err(ChainError::EnvelopeHash));

    let mut t = env.clone();
    t.envelope_hash = fragment_hash("forged");
    assert_eq!(t.verify(), Err(ChainError::EnvelopeHash));

    let mut t = env.clone();
    let forged = "fn add(a: u32, b: u32) -> u32 {\n    a - b\n}\n";
    t.absorbed[0].fragment.body = forged.into();
    t.absorbed[0].anchor = fragment_hash(forged);
    assert_eq!(t.verify(), Err(ChainError::Link(0)));

    let mut t = env;
    t.chain.pop();
    assert!(matches!(t.verify(), Err(ChainError::Length { .. })));
}

#[test]
fn near_duplicates_are_reported() {
    let a = "fn total(items: &[Item]) -> u64 {\n    items.iter().map(|i| i.price * i.quantity).filter(|p| *p > 0).sum()\n}\n";
    let b = "fn total(items: &[Item]) -> u64 {\n    items.iter().map(|i| i.price * i.quantity).filter(|p| *p > 1).sum()\n}\n";
    let c =
        "def parse_config(path):\n    with open(path) as f:\n        return yaml.safe_load(f)\n";
    let env = engine().envelope_cycle(
        vec![frag("a.rs", 0, a), frag("b.rs", 1, b), frag("c.py", 2, c)],
        None,
        None,
    );
    assert_eq!(env.duplicates.len(), 0);
    assert_eq!(
        env.near_duplicates.len(),
        1,
        "{:?} {}",
        env.near_duplicates,
        harpoon_core::envelope::hamming(
            harpoon_core::envelope::simhash(a),
            harpoon_core::envelope::simhash(b)
        )
    );
    assert_eq!(env.near_duplicates[0].first.path, "a.rs");
    assert_eq!(env.near_duplicates[0].second.path, "b.rs");
}

#[test]
fn cache_and_thread_pool() {
    let e = HarpoonEngine::new(&FusionSettings {
        thread_count: Some(2),
        cache_entries: 2,
        ..FusionSettings::default()
    });
    assert_eq!(e.threads(), 2);
    let f = frag("a.rs", 0, CLEAN);
    let first = e.score(&f);
    assert_eq!(e.cached(), 1);
    assert_eq!(e.score(&f), first);
    assert_eq!(e.cached(), 1);
    // The same body read as another language is another entry; the cache stays bounded.
    e.score(&frag("a.py", 0, CLEAN));
    e.score(&frag("a.go", 0, CLEAN));
    assert_eq!(e.cached(), 2);
    let many: Vec<_> = (0..20)
        .map(|i| frag("x.rs", i, &format!("fn f{i}() {{}}\n")))
        .collect();
    let reports = e.score_all(&many);
    assert_eq!(reports.len(), 20);
    assert!(reports.iter().all(|h| h.score == 1.0));
}

#[test]
fn envelope_serialises_with_every_part() {
    let env = three();
    let v = serde_json::to_value(&env).unwrap();
    for key in [
        "absorbed",
        "pending",
        "duplicates",
        "near_duplicates",
        "events",
        "chain",
        "envelope_hash",
        "hygiene_score",
        "iterations",
    ] {
        assert!(v.get(key).is_some(), "{key}");
    }
    let signal = &v["absorbed"][0]["hygiene"]["signals"][0];
    for key in ["name", "value", "severity", "weight", "contribution"] {
        assert!(signal.get(key).is_some(), "{key}");
    }
    assert_eq!(v["absorbed"][0]["hygiene"]["language"], "rust");
}
