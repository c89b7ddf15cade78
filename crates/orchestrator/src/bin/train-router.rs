//! Trains the router with a fixed seed, prints cross-validated metrics, and
//! writes the artefact that the crate embeds (`assets/router.bin`).
//!
//! `cargo run -p orchestrator --release --bin train-router` (from the
//! repository root, with `../shared` beside it); `make router` does the same.

use clap::Parser;
use orchestrator::router::train::{self, Evaluation, Example, Label, TrainConfig};
use std::{collections::BTreeMap, path::PathBuf, process::ExitCode, time::Instant};

/// Train the prompt router.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Labelled JSON lines (`{"text","label","source","category"}`, or `messages`
    /// instead of `text` for a conversation); repeat for several files.
    #[arg(long = "data", default_values = ["../shared/data/router/train.jsonl", "data/router/extra.jsonl", "data/router/conversations.jsonl"])]
    data: Vec<PathBuf>,
    /// Sources whose accuracy is also reported by category; repeat for several.
    #[arg(long = "categories-of", default_values = ["harpoon-multiturn", "harpoon-weak-spots"])]
    categories_of: Vec<String>,
    /// Where to write the artefact.
    #[arg(long, default_value = "crates/orchestrator/assets/router.bin")]
    out: PathBuf,
    /// RNG seed for shuffles, splits and augmentation.
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    seed: u64,
    /// Cross-validation folds.
    #[arg(long, default_value_t = TrainConfig::default().folds)]
    folds: usize,
    /// Passes over the data.
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    epochs: usize,
    /// Adagrad step size.
    #[arg(long, default_value_t = TrainConfig::default().learning_rate)]
    learning_rate: f32,
    /// L2 penalty per update.
    #[arg(long, default_value_t = TrainConfig::default().l2)]
    l2: f32,
    /// Instead of writing, check that training reproduces `--out` byte for byte.
    #[arg(long)]
    check: bool,
    /// Labelled JSON lines kept out of training, to score the final model on
    /// (e.g. another distribution); repeat for several files.
    #[arg(long = "eval")]
    eval: Vec<PathBuf>,
    /// Leave every row of this source out of training and score the model on
    /// them: how it does on a kind of prompt it never saw.
    #[arg(long)]
    holdout_source: Option<String>,
}

fn load(paths: &[PathBuf], announce: bool) -> Result<Vec<Example>, train::DataError> {
    let mut examples = Vec::new();
    for path in paths {
        let rows = train::load_jsonl(path)?;
        if announce {
            println!("data: {} rows from {}", rows.len(), path.display());
        }
        examples.extend(rows);
    }
    Ok(examples)
}

fn print_per_source(e: &Evaluation) {
    for (source, (right, total)) in &e.per_source {
        println!(
            "  {source:<20} {:.4}  ({right}/{total})",
            *right as f64 / *total as f64
        );
    }
}

fn print_per_category(e: &Evaluation, sources: &[String]) {
    for ((source, category), (right, total)) in &e.per_category {
        if sources.contains(source) {
            let name = format!("{source}/{category}");
            println!(
                "  {name:<44} {:.4}  ({right}/{total})",
                *right as f64 / *total as f64
            );
        }
    }
}

fn print_held_out(name: &str, e: &Evaluation, rows: usize, sources: &[String]) {
    // AUROC needs both labels; a one-label source has only accuracy.
    let auroc = if e.auroc.is_nan() {
        "n/a (one label)".to_owned()
    } else {
        format!("{:.4}", e.auroc)
    };
    println!(
        "\nheld-out {name} ({rows} rows): AUROC {auroc}  accuracy {:.4}  ECE {:.4}",
        e.accuracy, e.ece
    );
    print_per_source(e);
    print_per_category(e, sources);
}

fn main() -> ExitCode {
    let args = Args::parse();
    let started = Instant::now();
    let (mut examples, evals) = match (load(&args.data, true), load(&args.eval, false)) {
        (Ok(d), Ok(e)) => (d, e),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let held_out: Vec<Example> = match &args.holdout_source {
        Some(source) => {
            let (out, keep) = examples.into_iter().partition(|e| &e.source == source);
            examples = keep;
            out
        }
        None => Vec::new(),
    };
    if args.holdout_source.is_some() && held_out.is_empty() {
        eprintln!("error: no rows have that source");
        return ExitCode::from(2);
    }
    let mut counts: BTreeMap<(&str, &str), (usize, usize)> = BTreeMap::new();
    for e in &examples {
        let label = if e.label == Label::Complex {
            "complex"
        } else {
            "simple"
        };
        let entry = counts.entry((e.source.as_str(), label)).or_default();
        entry.0 += 1;
        entry.1 += usize::from(e.is_conversation());
    }
    for ((source, label), (n, conversations)) in &counts {
        let note = if *conversations > 0 {
            format!("  ({conversations} conversations)")
        } else {
            String::new()
        };
        println!("  {source:<20} {label:<8} {n:>6}{note}");
    }

    let config = TrainConfig {
        seed: args.seed,
        folds: args.folds,
        epochs: args.epochs,
        learning_rate: args.learning_rate,
        l2: args.l2,
        ..TrainConfig::default()
    };
    let (model, report) = train::train(&examples, &config);
    let elapsed = started.elapsed();

    println!(
        "\n{}-fold cross-validation (out-of-fold, calibrated):",
        config.folds
    );
    for (name, e) in [
        ("linear", &report.cv),
        ("length-only baseline", &report.length_baseline),
    ] {
        println!(
            "  {name:<22} AUROC {:.4}  accuracy {:.4}  ECE {:.4}",
            e.auroc, e.accuracy, e.ece
        );
    }
    println!("\nper-source accuracy (linear, out-of-fold):");
    print_per_source(&report.cv);
    println!(
        "\nper-category accuracy of {} (linear, out-of-fold):",
        args.categories_of.join(", ")
    );
    print_per_category(&report.cv, &args.categories_of);
    if let Some(source) = &args.holdout_source {
        let e = train::evaluate(&model, model.threshold, &held_out);
        print_held_out(source, &e, held_out.len(), &args.categories_of);
    }
    if !evals.is_empty() {
        let e = train::evaluate(&model, model.threshold, &evals);
        print_held_out("--eval files", &e, evals.len(), &args.categories_of);
    }

    let bytes = model.to_bytes();
    println!(
        "\nthreshold {:.4}  platt a {:.4} b {:.4}  artefact {} bytes  training {:.1} s",
        model.threshold,
        model.platt.a,
        model.platt.b,
        bytes.len(),
        elapsed.as_secs_f64()
    );
    if args.check {
        return match std::fs::read(&args.out) {
            Ok(existing) if existing == bytes => {
                println!("check: {} is reproduced byte for byte", args.out.display());
                ExitCode::SUCCESS
            }
            Ok(_) => {
                eprintln!(
                    "check: training does not reproduce {}; run `make router` and commit it",
                    args.out.display()
                );
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("check: {}: {e}", args.out.display());
                ExitCode::FAILURE
            }
        };
    }
    if let Err(e) = std::fs::write(&args.out, &bytes) {
        eprintln!("error: {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {}", args.out.display());
    ExitCode::SUCCESS
}
