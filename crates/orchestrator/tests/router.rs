//! The embedded router artefact: loads, classifies clear cases, survives
//! wrappers and casing, and round-trips byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use orchestrator::router::{
    Category, Classifier, Conversation, RouterModel,
    model::EMBEDDED,
    train::{self, Example, Label, TrainConfig},
};

fn classifier() -> Classifier {
    Classifier::new(RouterModel::embedded().unwrap(), None, "gemma", "qwen")
}

const SIMPLE: &[&str] = &[
    "hi there",
    "What is the capital of France?",
    "thanks, that's all for today",
    "Translate 'good morning' into Spanish.",
    "Fix the grammar in this sentence: she dont like apples.",
    "Summarize this in one sentence: The meeting was moved from Monday to Wednesday because the room was booked.",
    "Is this review positive or negative? \"The battery died after two days.\"",
    "how many ounces are in a pound",
];

// A known weakness, documented in docs/routing.md rather than asserted here:
// rate-and-distance word problems phrased as "when and where" questions score
// near the threshold, because "km" and "when/where" questions are simple in
// the training data.
const COMPLEX: &[&str] = &[
    "Prove that there are infinitely many primes, then show step by step that the sum of their reciprocals diverges.",
    "Write a Rust function that parses an arithmetic expression with operator precedence and returns an AST, with unit tests.",
    "Solve the system 3x + 2y = 16 and 5x - 4y = 2 by elimination, showing each step, then verify the solution.",
    "Design a distributed rate limiter for an API gateway handling 50,000 requests per second across three regions. Discuss consistency, failure modes and trade-offs.",
    "Write a 1500-word essay comparing the economic policies of two countries, with an introduction, three sections and a conclusion.",
];

#[test]
fn embedded_artefact_loads_and_classifies_clear_cases() {
    let c = classifier();
    for text in SIMPLE {
        let r = c.classify(text);
        assert_eq!(r.category, Category::Simple, "{text}: {}", r.complexity);
        assert_eq!(r.model, "gemma");
    }
    for text in COMPLEX {
        let r = c.classify(text);
        assert_eq!(r.category, Category::Complex, "{text}: {}", r.complexity);
        assert_eq!(r.model, "qwen");
    }
}

/// Hard first turns whose short follow-ups are classified in
/// `a_follow_up_stays_with_the_conversation`.
const HARD_OPENERS: &[&str] = &[
    "A bag holds 4 red and 6 green balls. I draw 3 without replacement. What is the probability that exactly two are green? Show the working.",
    "Prove that the product of any three consecutive integers is divisible by 6.",
    "Write a Rust function that finds the shortest path in a weighted graph with Dijkstra's algorithm, and explain its complexity.",
];
/// Simple first turns: their follow-ups stay small.
const SIMPLE_OPENERS: &[&str] = &[
    "What's 2+2?",
    "Translate 'thank you' into French.",
    "What is the capital of Italy?",
];
const FOLLOW_UPS: &[&str] = &["ok and for 3?", "and for 5?", "what about the next one?"];

#[test]
fn a_follow_up_stays_with_the_conversation() {
    let c = classifier();
    for follow_up in FOLLOW_UPS {
        // Alone, a follow-up is small talk.
        let alone = c.classify(follow_up);
        assert_eq!(
            alone.category,
            Category::Simple,
            "{follow_up}: {}",
            alone.complexity
        );
        for opener in HARD_OPENERS {
            let earlier = [*opener];
            let turn = Conversation {
                system: &[],
                earlier: &earlier,
                last: follow_up,
            };
            let r = c.classify_conversation(&turn);
            assert_eq!(
                r.category,
                Category::Complex,
                "{opener} → {follow_up}: {}",
                r.complexity
            );
            assert_eq!(r.model, "qwen");
        }
        for opener in SIMPLE_OPENERS {
            let earlier = [*opener];
            let turn = Conversation {
                system: &[],
                earlier: &earlier,
                last: follow_up,
            };
            let r = c.classify_conversation(&turn);
            assert_eq!(
                r.category,
                Category::Simple,
                "{opener} → {follow_up}: {}",
                r.complexity
            );
        }
    }
    // The last turn still decides on its own when it is a fresh question.
    let earlier = [HARD_OPENERS[1]];
    let switch = Conversation {
        system: &[],
        earlier: &earlier,
        last: "thanks! unrelated: what's the capital of Spain?",
    };
    let r = c.classify_conversation(&switch);
    assert_eq!(r.category, Category::Simple, "{}", r.complexity);
    let earlier = [SIMPLE_OPENERS[0]];
    let hard = Conversation {
        system: &[],
        earlier: &earlier,
        last: COMPLEX[0],
    };
    assert_eq!(c.classify_conversation(&hard).category, Category::Complex);
    // Explanations name the earlier turn's n-grams apart.
    let earlier = [HARD_OPENERS[1]];
    let turn = Conversation {
        system: &[],
        earlier: &earlier,
        last: "ok and for 3?",
    };
    let explained = c.explain_conversation(&turn, 8);
    assert!(
        explained.iter().any(|s| s.signal.starts_with("context:")),
        "{explained:?}"
    );
}

#[test]
fn casing_punctuation_and_wrappers_do_not_flip_clear_cases() {
    let c = classifier();
    let variants = |t: &str| {
        vec![
            t.to_uppercase(),
            t.to_lowercase(),
            format!("Please answer: {t}"),
            format!("{t} Thanks!"),
            format!("Hey, quick one. {t}"),
            t.trim_end_matches(['.', '?', '!']).to_owned(),
        ]
    };
    for (texts, expected) in [(SIMPLE, Category::Simple), (COMPLEX, Category::Complex)] {
        for text in texts {
            for v in variants(text) {
                let r = c.classify(&v);
                assert_eq!(r.category, expected, "{v:?}: {}", r.complexity);
            }
        }
    }
}

#[test]
fn trailing_whitespace_does_not_change_the_score() {
    let model = RouterModel::embedded().unwrap();
    for text in SIMPLE.iter().chain(COMPLEX) {
        assert_eq!(
            model.complexity(text),
            model.complexity(&format!("{text}\n"))
        );
    }
}

#[test]
fn complexity_is_a_probability_and_explanations_name_signals() {
    let c = classifier();
    for text in SIMPLE.iter().chain(COMPLEX) {
        let p = c.classify(text).complexity;
        assert!((0.0..=1.0).contains(&p), "{p}");
    }
    let explained = c.explain(COMPLEX[0], 8);
    assert_eq!(explained.len(), 8);
    assert!(
        explained
            .windows(2)
            .all(|w| w[0].weight.abs() >= w[1].weight.abs())
    );
    assert!(explained.iter().any(|s| s.signal.contains("prove")
        || s.signal.contains("proof")
        || s.signal.contains("prime")));
}

#[test]
fn embedded_artefact_round_trips_byte_for_byte_and_is_small() {
    let model = RouterModel::embedded().unwrap();
    assert_eq!(model.to_bytes(), EMBEDDED);
    assert!(
        EMBEDDED.len() < 4 * 1024 * 1024,
        "artefact is {} bytes",
        EMBEDDED.len()
    );
    assert!(
        model.facts.cv_auroc >= 0.97,
        "trained AUROC {}",
        model.facts.cv_auroc
    );
}

fn tiny_corpus() -> Vec<Example> {
    let simple = [
        "hello",
        "what time is it",
        "thanks a lot",
        "translate cat to french",
        "what is the capital of peru",
        "good morning",
    ];
    let complex = [
        "prove that sqrt 2 is irrational",
        "write a python function to merge intervals with tests",
        "design a cache with eviction and analyse its complexity",
        "solve the system of equations step by step",
        "write an essay on the causes of the war",
        "implement quicksort in rust and explain why it is fast",
    ];
    let mut rows = Vec::new();
    for (i, t) in simple.iter().enumerate() {
        rows.push(Example::prompt(format!("{t} {i}"), Label::Simple, "s"));
    }
    for (i, t) in complex.iter().enumerate() {
        rows.push(Example::prompt(format!("{t} {i}"), Label::Complex, "c"));
    }
    (0..4).flat_map(|_| rows.iter().cloned()).collect()
}

#[test]
fn training_is_deterministic_and_round_trips_through_save_and_load() {
    let config = TrainConfig {
        folds: 2,
        epochs: 3,
        ..TrainConfig::default()
    };
    let data = tiny_corpus();
    let (a, _) = train::train(&data, &config);
    let (b, _) = train::train(&data, &config);
    let bytes = a.to_bytes();
    assert_eq!(bytes, b.to_bytes(), "same seed, same bytes");

    let dir = std::env::temp_dir().join(format!("harpoon-router-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("router.bin");
    std::fs::write(&path, &bytes).unwrap();
    let loaded = RouterModel::load(&path).unwrap();
    assert_eq!(loaded, a);
    assert_eq!(loaded.to_bytes(), bytes);

    let other = TrainConfig { seed: 7, ..config };
    assert_ne!(
        train::train(&data, &other).0.to_bytes(),
        bytes,
        "the seed matters"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn corrupt_truncated_or_incompatible_artefacts_are_refused_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("harpoon-router-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty.bin", Vec::new()),
        ("truncated.bin", EMBEDDED[..EMBEDDED.len() / 2].to_vec()),
        ("flipped.bin", {
            let mut b = EMBEDDED.to_vec();
            b[100] ^= 0xFF;
            b
        }),
        ("text.bin", b"definitely not a model".to_vec()),
    ];
    for (name, bytes) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = RouterModel::load(&path).unwrap_err().to_string();
        assert!(err.contains(name), "{err}");
    }
    let missing = RouterModel::load(&dir.join("missing.bin"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("missing.bin"), "{missing}");

    // A valid checksum over an unknown feature version is refused as incompatible.
    let mut bytes = EMBEDDED[..EMBEDDED.len() - 32].to_vec();
    bytes[12] = 99; // feature version field
    use sha2::Digest;
    let sum = sha2::Sha256::digest(&bytes);
    bytes.extend_from_slice(&sum);
    let err = RouterModel::from_bytes(&bytes, "future.bin")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("incompatible") && err.contains("future.bin"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
