//! Router classification cost at three prompt sizes, and of a conversation
//! (`make bench`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use orchestrator::router::{Classifier, Conversation, RouterModel};
use std::hint::black_box;

/// English prose with a question at the end, cut to `bytes`.
fn prompt(bytes: usize) -> String {
    let sentence = "The committee reviewed the quarterly figures, noted a 12% rise in \
                    shipping costs, and asked the team to propose three options. ";
    let mut text = String::from("Read the notes below and answer the question. ");
    while text.len() < bytes {
        text.push_str(sentence);
    }
    text.truncate(bytes.saturating_sub(40));
    text.push_str(" What did the committee ask for?");
    text
}

fn classify(c: &mut Criterion) {
    let model = RouterModel::embedded().expect("embedded router model");
    let classifier = Classifier::new(model, None, "gemma", "qwen");
    let mut group = c.benchmark_group("classify");
    for (name, bytes) in [("100B", 100), ("1KB", 1024), ("10KB", 10 * 1024)] {
        let text = prompt(bytes);
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::from_parameter(name), &text, |b, text| {
            b.iter(|| classifier.classify(black_box(text)));
        });
    }
    // A chat of four user turns (two hard, two short follow-ups) and a system
    // prompt: the last turn, 100 B, plus the three earlier turns read as
    // context (the 1 KB one cut to its first 768 and last 256 bytes), against
    // the same last turn alone, in the same run.
    let last = prompt(100);
    let earlier = [
        prompt(1024),
        "ok and for 3?".to_owned(),
        "Now prove that the same bound holds for every n, step by step.".to_owned(),
    ];
    let earlier: Vec<&str> = earlier.iter().map(String::as_str).collect();
    let system = ["You are a helpful assistant."];
    let conversation = Conversation {
        system: &system,
        earlier: &earlier,
        last: &last,
    };
    group.bench_function("conversation-4-turns", |b| {
        b.iter(|| classifier.classify_conversation(black_box(&conversation)));
    });
    group.finish();
}

criterion_group!(benches, classify);
criterion_main!(benches);
