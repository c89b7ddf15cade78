//! `ModelHandle::prepare` (the prompt tokenized with the model's own
//! tokenizer) by prompt size: how long a request holds its serving thread
//! before generation, which decides when preparing moves to the blocking pool.
//! Run: `cargo bench -p orchestrator --bench prepare` (after `make setup`,
//! which makes the tiny test models whose tokenizer is used here).

#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use orchestrator::generation::{Message, Role};
use orchestrator::registry::{ModelHandle, Params};

/// `prepare` by prompt size, 1 KiB to 1 MiB.
fn prepare(c: &mut Criterion) {
    let repo = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/test-models/qwen3"
    );
    let settings = orchestrator::ModelSettings {
        repo: repo.into(),
        context_limit: 4_000_000,
        ..Default::default()
    };
    let model = ModelHandle::new("bench", settings, Err("not run".into()));
    assert!(
        model
            .count_prompt_tokens(&[Message::new(Role::User, "x")])
            .is_some(),
        "no tokenizer.json under {repo}: run `make setup`"
    );
    let sentence = "The quick brown fox jumps over the lazy dog, then checks the logs. ";
    let mut group = c.benchmark_group("prepare");
    group.sample_size(10);
    for kib in [1usize, 16, 64, 256, 1024] {
        let text: String = sentence.repeat(kib * 1024 / sentence.len() + 1);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{kib}KiB")),
            &text,
            |b, text| {
                b.iter(|| {
                    model
                        .prepare(Params {
                            messages: vec![Message::new(Role::User, text.as_str())],
                            max_tokens: Some(16),
                            ..Params::default()
                        })
                        .map(|g| g.prompt_tokens)
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, prepare);
criterion_main!(benches);
