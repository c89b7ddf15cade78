//! `service models …`: fetching a configured model's weights ahead of use.

use crate::settings::Settings;
use serde_json::{Value, json};

/// Model commands.
#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// Downloads a configured model's weights from the Hugging Face hub into
    /// the local cache (`$HF_HUB_CACHE`, `$HF_HOME/hub` or
    /// `~/.cache/huggingface/hub`), where the mlx engine finds them offline.
    Pull {
        /// The model's configured name (`gemma`, `qwen`, …).
        name: String,
    },
}

/// Why a model command failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    /// No model has that name.
    #[error("no model is configured as {0:?} (models.NAME in the configuration)")]
    Unknown(String),
    /// The model's weights are a local directory already.
    #[error("models.{name}.repo is the local directory {repo}: nothing to download")]
    Local {
        /// The model.
        name: String,
        /// Its directory.
        repo: String,
    },
    /// The download failed, or this build cannot download.
    #[error("{0}")]
    Failed(String),
}

/// Runs one command and returns what to print.
pub fn run(settings: &Settings, command: ModelsCommand) -> Result<Value, ModelsError> {
    let ModelsCommand::Pull { name } = command;
    let model = settings
        .models
        .0
        .get(&name)
        .ok_or_else(|| ModelsError::Unknown(name.clone()))?;
    let repo = model.repo.clone();
    if std::path::Path::new(&repo).is_dir() {
        return Err(ModelsError::Local { name, repo });
    }
    let snapshot = pull(&repo)?;
    Ok(json!({"model": name, "repo": repo, "path": snapshot.display().to_string()}))
}

#[cfg(feature = "pymlx")]
fn pull(repo: &str) -> Result<std::path::PathBuf, ModelsError> {
    orchestrator::engine::mlx::pull(repo).map_err(|e| ModelsError::Failed(e.to_string()))
}

#[cfg(not(feature = "pymlx"))]
fn pull(repo: &str) -> Result<std::path::PathBuf, ModelsError> {
    Err(ModelsError::Failed(format!(
        "this build has no embedded Python to download {repo} with; use the binary `make run` \
         builds (feature pymlx), or `.venv/bin/hf download {repo}` after `make setup`"
    )))
}
