//! The `git` command line, run as child processes (never on an async thread's
//! time: tokio waits for them), killed when a strike is cancelled.

use crate::error::BridgeError;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;
use tokio::sync::watch;

/// Who commits.
#[derive(Debug, Clone)]
pub struct Author {
    /// Name.
    pub name: String,
    /// E-mail.
    pub email: String,
}

/// Why a git step stopped.
#[derive(Debug)]
pub enum GitStop {
    /// Cancelled while it ran; the child was killed.
    Cancelled,
    /// It failed, with git's own words.
    Failed(String),
}

impl From<GitStop> for BridgeError {
    fn from(s: GitStop) -> Self {
        match s {
            GitStop::Cancelled => BridgeError::Git("cancelled".into()),
            GitStop::Failed(m) => BridgeError::Git(m),
        }
    }
}

/// Longest one git command may run. Strikes and harmony reviews talk to
/// tenant-chosen remotes; one that stalls must fail its repository, not hold
/// the bridge's workers (and the mirror lock) forever.
const STEP_LIMIT: Duration = Duration::from_secs(600);

/// Runs `git args…` in `dir`; returns trimmed stdout. A `cancel` that turns
/// true kills the child, and so does running past ten minutes.
pub async fn git(
    dir: &Path,
    args: &[&str],
    author: Option<&Author>,
    cancel: Option<&watch::Receiver<bool>>,
) -> Result<String, GitStop> {
    git_within(dir, args, author, cancel, STEP_LIMIT).await
}

async fn git_within(
    dir: &Path,
    args: &[&str],
    author: Option<&Author>,
    cancel: Option<&watch::Receiver<bool>>,
    limit: Duration,
) -> Result<String, GitStop> {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Never prompt for credentials: a prompt would hang a background strike.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        // A user's global config (hooks, signing, templates) must not change what we commit.
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        // Only plain transports: never `ext::` (runs commands) or other helpers.
        .env("GIT_ALLOW_PROTOCOL", "file:git:http:https:ssh")
        .env(
            "GIT_SSH_COMMAND",
            "ssh -o BatchMode=yes -o ConnectTimeout=15 -o ServerAliveInterval=15 -o ServerAliveCountMax=4",
        )
        // An HTTP remote that trickles (under 1 KB/s for a minute) is dropped.
        .env("GIT_HTTP_LOW_SPEED_LIMIT", "1000")
        .env("GIT_HTTP_LOW_SPEED_TIME", "60")
        .kill_on_drop(true);
    if let Some(a) = author {
        cmd.env("GIT_AUTHOR_NAME", &a.name)
            .env("GIT_AUTHOR_EMAIL", &a.email)
            .env("GIT_COMMITTER_NAME", &a.name)
            .env("GIT_COMMITTER_EMAIL", &a.email);
    }
    let child = cmd
        .spawn()
        .map_err(|e| GitStop::Failed(format!("cannot run git: {e}")))?;
    let mut rx = cancel.cloned();
    if rx.as_ref().is_some_and(|rx| *rx.borrow()) {
        return Err(GitStop::Cancelled);
    }
    let stop = async {
        match rx.as_mut() {
            Some(rx) => cancelled(rx).await,
            None => std::future::pending().await,
        }
    };
    // Dropping the child's future (cancel, limit) kills it: kill_on_drop.
    let output = tokio::select! {
        out = child.wait_with_output() => out,
        () = stop => return Err(GitStop::Cancelled),
        () = tokio::time::sleep(limit) => {
            return Err(GitStop::Failed(format!(
                "git {} ran past {} s; stopped",
                args.first().unwrap_or(&""),
                limit.as_secs()
            )));
        }
    }
    .map_err(|e| GitStop::Failed(format!("git {}: {e}", args.first().unwrap_or(&""))))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr = stderr.trim();
        Err(GitStop::Failed(format!(
            "git {} failed ({}): {}",
            args.first().unwrap_or(&""),
            output.status,
            last_chars(stderr, 600)
        )))
    }
}

/// Resolves once `rx` says cancel, and never otherwise. A closed channel (its
/// sender dropped) is not a request to cancel: treating it as one turned a
/// lost bookkeeping entry into a strike that cancelled itself mid-way.
pub(crate) async fn cancelled(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn last_chars(s: &str, n: usize) -> &str {
    let count = s.chars().count();
    if count <= n {
        return s;
    }
    let skip = s.char_indices().nth(count - n).map_or(0, |(i, _)| i);
    &s[skip..]
}

/// Clones `url` at `branch` into `dir`, or, when `dir` already holds a clone,
/// fetches and resets to the remote branch.
pub async fn clone_or_fetch(
    url: &str,
    branch: &str,
    dir: &Path,
    cancel: Option<&watch::Receiver<bool>>,
) -> Result<(), GitStop> {
    if dir.join(".git").is_dir() {
        git(dir, &["fetch", "--prune", "origin"], None, cancel).await?;
    } else {
        let parent = dir.parent().unwrap_or(dir);
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| GitStop::Failed(format!("workspace {}: {e}", parent.display())))?;
        // A half-made directory from a killed clone would make git refuse.
        if dir.exists() {
            let _ = tokio::fs::remove_dir_all(dir).await;
        }
        let target = dir.to_string_lossy().into_owned();
        git(
            parent,
            &["clone", "--no-tags", "--branch", branch, "--", url, &target],
            None,
            cancel,
        )
        .await?;
    }
    Ok(())
}

/// Whether `refs/heads/<branch>` exists on the remote, and its commit.
pub async fn remote_branch(
    dir: &Path,
    branch: &str,
    cancel: Option<&watch::Receiver<bool>>,
) -> Result<Option<String>, GitStop> {
    let out = git(
        dir,
        &[
            "ls-remote",
            "--heads",
            "origin",
            &format!("refs/heads/{branch}"),
        ],
        None,
        cancel,
    )
    .await?;
    Ok(out
        .lines()
        .find_map(|l| l.split_whitespace().next().map(str::to_owned)))
}

#[cfg(test)]
mod tests {
    use super::{GitStop, cancelled, git_within};
    use std::time::{Duration, Instant};
    use tokio::sync::watch;

    #[tokio::test]
    async fn a_git_step_past_its_limit_is_stopped_and_fails() {
        let dir = std::env::temp_dir();
        let started = Instant::now();
        let out = git_within(
            &dir,
            &["-c", "alias.stall=!sleep 30", "stall"],
            None,
            None,
            Duration::from_millis(300),
        )
        .await;
        assert!(
            matches!(&out, Err(GitStop::Failed(m)) if m.contains("ran past")),
            "{out:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "not waited out");
    }

    #[tokio::test]
    async fn a_closed_cancel_channel_is_not_a_cancel() {
        let (tx, mut rx) = watch::channel(false);
        drop(tx);
        let waited = tokio::time::timeout(Duration::from_millis(100), cancelled(&mut rx)).await;
        assert!(waited.is_err(), "a dropped sender must not read as cancel");
    }

    #[tokio::test]
    async fn a_true_cancel_is_seen_even_after_the_sender_is_gone() {
        let (tx, mut rx) = watch::channel(false);
        tx.send_replace(true);
        drop(tx);
        let waited = tokio::time::timeout(Duration::from_millis(100), cancelled(&mut rx)).await;
        assert!(waited.is_ok());
    }
}
