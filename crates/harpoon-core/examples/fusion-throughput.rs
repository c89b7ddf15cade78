//! Scores real third-party Rust code (the crates unpacked under
//! `~/.cargo/registry/src`) and reports MB/s and fragments/s on 1 and 2
//! threads, cold (parse included) and cached.
//!
//! `cargo run --release -p harpoon-core --example fusion-throughput -- [--root DIR] [--max-mb N] [--threads 1,2]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use harpoon_core::{Fragment, FusionSettings, HarpoonEngine};
use std::{path::PathBuf, time::Instant};

#[path = "support/rust_files.rs"]
mod rust_files;
use rust_files::load;

fn main() {
    let mut args = std::env::args().skip(1);
    let home = std::env::var("HOME").unwrap_or_default();
    let mut root = PathBuf::from(home).join(".cargo/registry/src");
    let mut max_mb = 64.0f64;
    let mut threads = vec![1usize, 2];
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--root" => root = PathBuf::from(args.next().expect("--root DIR")),
            "--max-mb" => max_mb = args.next().expect("--max-mb N").parse().expect("a number"),
            "--threads" => {
                threads = args
                    .next()
                    .expect("--threads 1,2")
                    .split(',')
                    .map(|t| t.parse().expect("thread counts"))
                    .collect()
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let fragments: Vec<Fragment> = load(&root, max_mb)
        .into_iter()
        .enumerate()
        .map(|(i, (path, body))| Fragment {
            path: path.display().to_string(),
            idx: u32::try_from(i).unwrap_or(u32::MAX),
            lines: String::new(),
            body,
        })
        .collect();
    let bytes: usize = fragments.iter().map(|f| f.body.len()).sum();
    let mb = bytes as f64 / 1e6;
    println!(
        "corpus: {} Rust files, {mb:.1} MB from {} ({} cores available)",
        fragments.len(),
        root.display(),
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    // The floor under any tree-sitter scorer: parsing alone, one thread.
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_rust::LANGUAGE.into())
        .expect("the Rust grammar loads");
    let start = Instant::now();
    for f in &fragments {
        std::hint::black_box(parser.parse(&f.body, None));
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "tree-sitter parse alone, 1 thread: {secs:.2} s, {:.1} MB/s",
        mb / secs
    );
    let mut one = None;
    for &t in &threads {
        let engine = HarpoonEngine::new(&FusionSettings {
            thread_count: Some(t),
            cache_entries: 0,
            ..FusionSettings::default()
        });
        // Warm-up: grammars, thread-local parsers, page cache.
        engine.score_all(&fragments[..fragments.len().min(50)]);
        let start = Instant::now();
        let reports = engine.score_all(&fragments);
        let secs = start.elapsed().as_secs_f64();
        let mean = reports.iter().map(|h| h.score).sum::<f64>() / reports.len().max(1) as f64;
        let rate = mb / secs;
        let speedup = one.map_or(String::new(), |o: f64| {
            format!(", {:.2}x one thread", rate / o)
        });
        one.get_or_insert(rate);
        println!(
            "cold, {t} thread(s): {secs:.2} s, {rate:.1} MB/s, {:.0} fragments/s, mean hygiene {mean:.3}{speedup}",
            fragments.len() as f64 / secs
        );
    }
    let engine = HarpoonEngine::new(&FusionSettings {
        thread_count: Some(1),
        cache_entries: fragments.len() + 1,
        ..FusionSettings::default()
    });
    let start = Instant::now();
    engine.score_all(&fragments);
    let cold = start.elapsed().as_secs_f64();
    let start = Instant::now();
    engine.score_all(&fragments);
    let warm = start.elapsed().as_secs_f64();
    println!(
        "cached re-score, 1 thread: {warm:.3} s, {:.0} MB/s, {:.1}x faster than cold ({cold:.2} s)",
        mb / warm,
        cold / warm
    );
}
