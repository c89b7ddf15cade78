//! The `service` binary: parses the command line, loads configuration, serves.

use clap::Parser;
use orchestrator::router::Classifier;
use service::{mcp::transport::StdioError, server::ServeError, settings::Settings};
use std::{collections::HashMap, path::PathBuf, process::ExitCode};

/// Harpoon: an LLM gateway that routes each request to the model tier it needs.
#[derive(Debug, Parser)]
#[command(name = "service", version, about)]
struct Cli {
    /// YAML configuration file (default: ~/.orchestrator/config.yaml when present).
    #[arg(long, env = "HARPOON_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the effective configuration (secrets redacted) and exit: 0 if valid, 2 if not.
    #[arg(long)]
    check_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Manage tenants, API keys and usage (prints JSON).
    #[command(subcommand)]
    Admin(service::admin_cli::AdminCommand),
    /// Fetch models' weights ahead of use (prints JSON).
    #[command(subcommand)]
    Models(service::models_cli::ModelsCommand),
    /// Serve MCP on stdin/stdout for an IDE that launches a process (logs go to stderr).
    Mcp {
        /// Speak MCP over stdin/stdout (the only transport this command offers).
        #[arg(long, required = true)]
        stdio: bool,
        /// Tenant (id or name) to act as; default `auth.local_tenant`.
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// Builds the async runtime, reporting failure on stderr.
fn runtime(mut builder: tokio::runtime::Builder) -> Option<tokio::runtime::Runtime> {
    builder
        .enable_all()
        .build()
        .map_err(|e| eprintln!("error: cannot start the async runtime: {e}"))
        .ok()
}

/// Exit code for a configuration that cannot be used.
const EXIT_BAD_CONFIG: u8 = 2;

fn admin(settings: &Settings, command: service::admin_cli::AdminCommand) -> ExitCode {
    let Some(runtime) = runtime(tokio::runtime::Builder::new_current_thread()) else {
        return ExitCode::FAILURE;
    };
    print_outcome(runtime.block_on(service::admin_cli::run(settings, command)))
}

/// A command's JSON on stdout (success), or its error on stderr (failure).
fn print_outcome(outcome: Result<serde_json::Value, impl std::fmt::Display>) -> ExitCode {
    match outcome {
        Ok(value) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `service mcp --stdio`: stdout carries the protocol, so logs and errors go
/// to stderr only.
fn mcp_stdio(settings: Settings, tenant: Option<String>) -> ExitCode {
    if let Err(e) = service::telemetry::init_logging_stderr(&settings.service) {
        eprintln!("error: logging: {e}");
        return ExitCode::FAILURE;
    }
    let Some(runtime) = runtime(tokio::runtime::Builder::new_multi_thread()) else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(service::mcp::transport::serve_stdio(settings, tenant)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                StdioError::Open(e) if e.is_configuration() => ExitCode::from(EXIT_BAD_CONFIG),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let loaded = match Settings::load(cli.config.as_deref(), &env) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    if cli.check_config {
        // Load the router artefact too: a corrupt one is a configuration error.
        // Engines are not started here: checking must not load model weights.
        let router = &loaded.settings.router;
        if let Err(e) = Classifier::from_settings(router, &loaded.settings.models) {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
        println!("{}", loaded.settings.to_redacted_json());
        match &loaded.file {
            Some(file) => eprintln!("configuration is valid (file: {})", file.display()),
            None => eprintln!("configuration is valid (no file; defaults and environment)"),
        }
        return ExitCode::SUCCESS;
    }
    match cli.command {
        Some(Command::Admin(command)) => return admin(&loaded.settings, command),
        Some(Command::Models(command)) => {
            return print_outcome(service::models_cli::run(&loaded.settings, command));
        }
        Some(Command::Mcp { stdio: _, tenant }) => return mcp_stdio(loaded.settings, tenant),
        None => {}
    }
    let traces = match service::telemetry::init_logging(
        &loaded.settings.service,
        &loaded.settings.telemetry,
    ) {
        Ok(traces) => traces,
        Err(e) => {
            eprintln!("error: logging: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(file) = &loaded.file {
        tracing::info!(file = %file.display(), "configuration loaded");
    }
    let Some(runtime) = runtime(tokio::runtime::Builder::new_multi_thread()) else {
        return ExitCode::FAILURE;
    };
    let served = runtime.block_on(service::server::serve(loaded.settings));
    // Outside the runtime: the exporter's last flush blocks.
    if let Some(traces) = traces {
        traces.shutdown();
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "service stopped");
            eprintln!("error: {e}");
            match e {
                ServeError::Open(e) if e.is_configuration() => ExitCode::from(EXIT_BAD_CONFIG),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
