//! Router classification cost at three prompt sizes (`make bench`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use orchestrator::router::{Classifier, RouterModel};
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
    group.finish();
}

criterion_group!(benches, classify);
criterion_main!(benches);
