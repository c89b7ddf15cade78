//! Criterion benchmarks of fusion: a cold score (parse included), a cached
//! re-score, and an envelope cycle, over this crate's own sources.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use harpoon_core::{Fragment, FusionSettings, HarpoonEngine};
use std::hint::black_box;

const SOURCES: [(&str, &str); 4] = [
    ("engine.rs", include_str!("../src/engine.rs")),
    ("hygiene.rs", include_str!("../src/hygiene.rs")),
    ("syntax.rs", include_str!("../src/syntax.rs")),
    ("envelope.rs", include_str!("../src/envelope.rs")),
];

fn fragments() -> Vec<Fragment> {
    SOURCES.iter().map(|(p, b)| Fragment::new(*p, *b)).collect()
}

fn bench(c: &mut Criterion) {
    let fragments = fragments();
    let bytes: usize = fragments.iter().map(|f| f.body.len()).sum();
    let mut group = c.benchmark_group("fusion");
    group.throughput(Throughput::Bytes(bytes as u64));

    let cold = HarpoonEngine::new(&FusionSettings {
        thread_count: Some(1),
        cache_entries: 0,
        ..FusionSettings::default()
    });
    group.bench_function("score_cold_1_thread", |b| {
        b.iter(|| {
            for f in &fragments {
                black_box(cold.score(black_box(f)));
            }
        })
    });

    let warm = HarpoonEngine::new(&FusionSettings {
        thread_count: Some(1),
        ..FusionSettings::default()
    });
    for f in &fragments {
        warm.score(f);
    }
    group.bench_function("score_cached", |b| {
        b.iter(|| {
            for f in &fragments {
                black_box(warm.score(black_box(f)));
            }
        })
    });

    group.bench_function("envelope_cycle_cold", |b| {
        b.iter(|| black_box(cold.envelope_cycle(fragments.clone(), Some(0.8), None)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
