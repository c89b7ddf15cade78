//! Runs the hosted·ai emulator by hand: `hostedai-emulator --upstream 127.0.0.1:8000`.

use clap::Parser;
use hostedai_emulator::{Config, Emulator};
use std::net::SocketAddr;

/// A local stand-in for the hosted·ai user-panel API.
#[derive(Parser)]
struct Args {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:8700")]
    listen: SocketAddr,
    /// JSON file with the full configuration (pools, teams, delays, faults).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// OpenAI-compatible server that pod services forward to.
    #[arg(long)]
    upstream: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let args = Args::parse();
    if !args.listen.ip().is_loopback() {
        return Err("the emulator listens on loopback addresses only".into());
    }
    let mut config: Config = match &args.config {
        Some(path) => serde_json::from_str(&std::fs::read_to_string(path)?)?,
        None => Config::default(),
    };
    if args.upstream.is_some() {
        config.upstream = args.upstream;
    }
    let emulator = Emulator::start_on(config, args.listen).await?;
    tracing::info!(base_url = %emulator.base_url(), "hosted·ai emulator listening");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
