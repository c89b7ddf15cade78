//! Prints the router threshold that sends a target share of representative
//! prompts to the large tier (RouteLLM's `calibrate_threshold` idea).

use clap::Parser;
use orchestrator::router::{RouterModel, train::threshold_for_share};
use std::{path::PathBuf, process::ExitCode};

/// Calibrate the router threshold to a share of large-tier traffic.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Prompts: JSON lines with a `text` field, or plain text with one prompt per line.
    #[arg(long)]
    prompts: PathBuf,
    /// Share of prompts that should go to the large tier, in [0, 1].
    #[arg(long)]
    large_share: f64,
    /// Artefact to calibrate (default: the embedded one).
    #[arg(long)]
    model: Option<PathBuf>,
}

fn prompt_of(line: &str) -> String {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v.get("text").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_else(|| line.to_owned())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !(0.0..=1.0).contains(&args.large_share) {
        eprintln!("error: --large-share must be in [0, 1]");
        return ExitCode::from(2);
    }
    let model = match &args.model {
        Some(path) => RouterModel::load(path),
        None => RouterModel::embedded(),
    };
    let model = match model {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(&args.prompts) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", args.prompts.display());
            return ExitCode::from(2);
        }
    };
    let scores: Vec<f32> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| model.complexity(&prompt_of(l)))
        .collect();
    if scores.is_empty() {
        eprintln!("error: {} holds no prompts", args.prompts.display());
        return ExitCode::from(2);
    }
    let threshold = threshold_for_share(&scores, args.large_share);
    let share = scores.iter().filter(|&&s| s >= threshold).count() as f64 / scores.len() as f64;
    println!("prompts: {}", scores.len());
    println!("trained threshold: {:.4}", model.threshold);
    println!(
        "threshold for {:.1}% large-tier traffic: {threshold:.4} (gives {:.1}%)",
        args.large_share * 100.0,
        share * 100.0
    );
    println!("set it with router.threshold: {threshold:.4} (or HARPOON__ROUTER__THRESHOLD)");
    ExitCode::SUCCESS
}
