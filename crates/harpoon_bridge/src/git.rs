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

/// How this bridge runs git: which transports it may use, which ssh, and
/// how long one step may take.
#[derive(Debug, Clone)]
pub struct GitEnv {
    allow_protocol: String,
    ssh_command: String,
    step_limit: Duration,
}

/// Options always added to the ssh command: never prompt, and give up on a
/// host that does not answer or stops answering.
const SSH_OPTIONS: &str =
    "-o BatchMode=yes -o ConnectTimeout=15 -o ServerAliveInterval=15 -o ServerAliveCountMax=4";

impl GitEnv {
    /// The environment `settings` allow: `file` only with local remotes on,
    /// `ssh` only with ssh remotes on.
    pub fn from_settings(settings: &crate::BridgeSettings) -> Self {
        let mut protocols = vec!["git", "http", "https"];
        if settings.allow_ssh_remotes {
            protocols.push("ssh");
        }
        if settings.allow_local_remotes {
            protocols.push("file");
        }
        let ssh = settings.ssh_command.as_deref().unwrap_or("ssh").trim();
        Self {
            allow_protocol: protocols.join(":"),
            ssh_command: format!("{ssh} {SSH_OPTIONS}"),
            step_limit: Duration::from_secs(settings.git_timeout_secs.max(1)),
        }
    }

    /// The same environment with another step limit.
    pub fn with_step_limit(mut self, limit: Duration) -> Self {
        self.step_limit = limit;
        self
    }

    /// The longest one git step may run.
    pub fn step_limit(&self) -> Duration {
        self.step_limit
    }
}

/// An HTTP remote slower than this many bytes a second …
const LOW_SPEED_LIMIT: &str = "1000";
/// … for this many seconds is dropped by git itself; the step limit catches
/// one that trickles just above it.
const LOW_SPEED_TIME: &str = "30";

/// Runs `git args…` in `dir`; returns trimmed stdout. A `cancel` that turns
/// true kills git and every process it started, and so does running past
/// the environment's step limit.
pub async fn git(
    env: &GitEnv,
    dir: &Path,
    args: &[&str],
    author: Option<&Author>,
    cancel: Option<&watch::Receiver<bool>>,
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
        .env("SSH_ASKPASS", "true")
        // A user's global config (hooks, signing, templates, credential
        // helpers) must not change what we commit or whose credentials a
        // tenant's remote is fetched with.
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        // Only plain transports: never `ext::` (runs commands) or other
        // helpers, and `file`/`ssh` only where the settings allow them, so a
        // local path or ssh remote stored before a setting changed still fails.
        .env("GIT_ALLOW_PROTOCOL", &env.allow_protocol)
        .env("GIT_SSH_COMMAND", &env.ssh_command)
        .env("GIT_HTTP_LOW_SPEED_LIMIT", LOW_SPEED_LIMIT)
        .env("GIT_HTTP_LOW_SPEED_TIME", LOW_SPEED_TIME)
        .kill_on_drop(true);
    // The service's own secrets (GitHub token, database and Redis URLs,
    // provider keys) are nothing git needs; anything a tenant's remote can
    // make run (an ssh ProxyCommand, a credential prompt) must not see them.
    for name in secret_env_names(std::env::vars_os().map(|(k, _)| k)) {
        cmd.env_remove(name);
    }
    // Its own process group, so a stop reaches git's helpers (remote-https,
    // ssh, upload-pack) too: killing git alone leaves them reading a remote.
    #[cfg(unix)]
    cmd.process_group(0);
    if let Some(a) = author {
        cmd.env("GIT_AUTHOR_NAME", &a.name)
            .env("GIT_AUTHOR_EMAIL", &a.email)
            .env("GIT_COMMITTER_NAME", &a.name)
            .env("GIT_COMMITTER_EMAIL", &a.email);
    }
    let step = args.first().copied().unwrap_or("");
    let mut rx = cancel.cloned();
    if rx.as_ref().is_some_and(|rx| *rx.borrow()) {
        return Err(GitStop::Cancelled);
    }
    let child = cmd
        .spawn()
        .map_err(|e| GitStop::Failed(format!("cannot run git: {e}")))?;
    let mut group = GroupKill(child.id());
    let stop = async {
        match rx.as_mut() {
            Some(rx) => cancelled(rx).await,
            None => std::future::pending().await,
        }
    };
    // Leaving early drops `group`, which kills the whole process group; a
    // caller that drops this future (a timeout, a gone client) does the same.
    let output = tokio::select! {
        out = child.wait_with_output() => out,
        () = stop => return Err(GitStop::Cancelled),
        () = tokio::time::sleep(env.step_limit) => {
            tracing::warn!(
                step,
                dir = %dir.display(),
                limit_s = env.step_limit.as_secs(),
                "git step ran past its limit; killed"
            );
            return Err(GitStop::Failed(format!(
                "git {step} ran past {} s; stopped",
                env.step_limit.as_secs()
            )));
        }
    }
    .map_err(|e| GitStop::Failed(format!("git {step}: {e}")))?;
    group.disarm();
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr = stderr.trim();
        tracing::info!(
            step,
            dir = %dir.display(),
            status = %output.status,
            stderr = %orchestrator::secret::strip_url_credentials(stderr),
            "git step failed"
        );
        Err(GitStop::Failed(format!(
            "git {step} failed ({}): {}",
            output.status,
            scrub_paths(last_chars(stderr, 600), dir)
        )))
    }
}

/// The names among `names` that hold the service's secrets rather than
/// anything git, ssh or curl read (`HOME`, `PATH`, proxies, `SSH_AUTH_SOCK`).
fn secret_env_names(names: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    names
        .filter(|name| {
            let upper = name.to_string_lossy().to_ascii_uppercase();
            ["TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "APIKEY"]
                .iter()
                .any(|w| upper.contains(w))
                || ["DATABASE_URL", "REDIS_URL"].contains(&upper.as_str())
                || upper.starts_with("HARPOON")
                || upper.starts_with("HOSTED_AI")
                || upper.starts_with("MCP_")
                || upper.starts_with("AWS_")
        })
        .collect()
}

/// Kills a child's process group when dropped, unless disarmed after the
/// child was waited for (its id could then belong to someone else).
struct GroupKill(Option<u32>);

impl GroupKill {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self
            .0
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            // Already gone is fine; kill_on_drop still covers git itself.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

/// `text` (git's stderr) with server paths taken out: a path inside `dir`
/// becomes relative to it, any other absolute path `<server path>`. Tenants
/// see which file of their repository a step failed on, never where the
/// server keeps its clones, workdirs or temporary files.
pub fn scrub_paths(text: &str, dir: &Path) -> String {
    let dir = dir.to_string_lossy();
    let dir = dir.trim_end_matches('/');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('/') {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        // Only a path that starts a word: `a/b` and `https://h/x` stay.
        let starts_word = out
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '`' | '(' | '=' | '<'));
        let file_url = out.ends_with("file://");
        let end = from
            .find(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '`' | ')' | ','))
            .unwrap_or(from.len());
        let (path, tail) = from.split_at(end);
        if !(starts_word || file_url) {
            out.push('/');
            rest = &from[1..];
            continue;
        }
        // A trailing `:` or `.` is the sentence's, not the path's.
        let path_end = path.trim_end_matches([':', '.']).len();
        let (path, punct) = path.split_at(path_end);
        match path.strip_prefix(dir) {
            Some("") => out.push('.'),
            Some(inner) if inner.starts_with('/') => out.push_str(&inner[1..]),
            _ => out.push_str("<server path>"),
        }
        out.push_str(punct);
        rest = tail;
    }
    out.push_str(rest);
    out
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
    env: &GitEnv,
    url: &str,
    branch: &str,
    dir: &Path,
    cancel: Option<&watch::Receiver<bool>>,
) -> Result<(), GitStop> {
    if dir.join(".git").is_dir() {
        git(env, dir, &["fetch", "--prune", "origin"], None, cancel).await?;
        Ok(())
    } else {
        clone_fresh(env, url, branch, dir, cancel).await
    }
}

/// Clones `url` at `branch` into `dir`, replacing whatever is there. git
/// clones into a sibling `.<name>.partial` first, renamed into place only
/// once complete: a clone killed at its deadline (its whole process group,
/// so git cannot clean up) otherwise leaves a `.git` without the branch,
/// which every later fetch and checkout of that directory trips over. The
/// caller owns `dir` (a mirror's lock, a strike's own work directory), so
/// nothing else uses the partial directory at the same time.
pub async fn clone_fresh(
    env: &GitEnv,
    url: &str,
    branch: &str,
    dir: &Path,
    cancel: Option<&watch::Receiver<bool>>,
) -> Result<(), GitStop> {
    let workspace = |e: std::io::Error| GitStop::Failed(format!("workspace: {e}"));
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(GitStop::Failed("workspace: no parent directory".into()));
    };
    tokio::fs::create_dir_all(parent).await.map_err(workspace)?;
    let partial = parent.join(format!(".{}.partial", name.to_string_lossy()));
    // Left by a clone whose caller went away, or by a stopped process.
    remove_if_present(&partial).await.map_err(workspace)?;
    let target = partial.to_string_lossy().into_owned();
    let cloned = git(
        env,
        parent,
        &["clone", "--no-tags", "--branch", branch, "--", url, &target],
        None,
        cancel,
    )
    .await;
    if let Err(e) = cloned {
        let _ = remove_if_present(&partial).await;
        return Err(e);
    }
    remove_if_present(dir).await.map_err(workspace)?;
    tokio::fs::rename(&partial, dir).await.map_err(workspace)
}

/// Removes a directory tree; one that is not there is fine.
pub async fn remove_if_present(dir: &Path) -> std::io::Result<()> {
    match tokio::fs::remove_dir_all(dir).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether the clone at `dir` is one of `url` that holds `origin/<branch>`
/// as a commit: a mirror left half-made (by a clone killed before this
/// build) or cloned from a URL the repository no longer has fails.
pub async fn clone_is_intact(env: &GitEnv, dir: &Path, url: &str, branch: &str) -> bool {
    if !dir.join(".git").is_dir() {
        return false;
    }
    let origin = git(
        env,
        dir,
        &["config", "--get", "remote.origin.url"],
        None,
        None,
    )
    .await;
    if origin.as_ref().ok().map(String::as_str) != Some(url) {
        return false;
    }
    let base = format!("refs/remotes/origin/{branch}^{{commit}}");
    git(
        env,
        dir,
        &["rev-parse", "--verify", "--quiet", &base],
        None,
        None,
    )
    .await
    .is_ok()
}

/// Every path the patch file `patch` would change in the clone at `dir`, as
/// git's own patch parser reads it: old and new names of renames and copies
/// (`--no-renames` lists a rename as a deletion and an addition), mode and
/// type changes, links. The patch is applied to the index only, listed, and
/// the index reset; the work tree is not touched. Fails as `git apply` would
/// when the patch does not apply.
pub async fn patch_paths(
    env: &GitEnv,
    dir: &Path,
    patch: &str,
    cancel: Option<&watch::Receiver<bool>>,
) -> Result<Vec<String>, GitStop> {
    let apply = ["apply", "--cached", "--whitespace=nowarn", patch];
    git(env, dir, &apply, None, cancel).await?;
    let list = [
        "diff",
        "--cached",
        "--name-only",
        "-z",
        "--no-renames",
        "--no-ext-diff",
    ];
    let listed = git(env, dir, &list, None, cancel).await;
    // Back to HEAD whatever the listing did, so the real apply starts clean.
    git(env, dir, &["reset", "--quiet"], None, cancel).await?;
    Ok(listed?
        .split('\0')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Whether `refs/heads/<branch>` exists on the remote, and its commit.
pub async fn remote_branch(
    env: &GitEnv,
    dir: &Path,
    branch: &str,
    cancel: Option<&watch::Receiver<bool>>,
) -> Result<Option<String>, GitStop> {
    let out = git(
        env,
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
    use super::{GitEnv, GitStop, cancelled, git, scrub_paths};
    use crate::BridgeSettings;
    use std::path::Path;
    use std::time::{Duration, Instant};
    use tokio::sync::watch;

    #[tokio::test]
    async fn a_git_step_past_its_limit_is_stopped_and_fails() {
        let dir = std::env::temp_dir();
        let env = GitEnv::from_settings(&BridgeSettings::default())
            .with_step_limit(Duration::from_millis(300));
        let started = Instant::now();
        let out = git(
            &env,
            &dir,
            &["-c", "alias.stall=!sleep 30", "stall"],
            None,
            None,
        )
        .await;
        assert!(
            matches!(&out, Err(GitStop::Failed(m)) if m.contains("ran past")),
            "{out:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "not waited out");
    }

    #[tokio::test]
    async fn a_stopped_step_kills_the_processes_git_started() {
        let tmp = tempfile::tempdir().unwrap();
        let marker = tmp.path().join("grandchild-ran");
        let env = GitEnv::from_settings(&BridgeSettings::default())
            .with_step_limit(Duration::from_millis(300));
        // git runs a shell (its own child) that would write the marker after
        // two seconds: killing only git would leave the shell to do it.
        let alias = format!("alias.stall=!sleep 2; touch '{}'", marker.display());
        let out = git(&env, tmp.path(), &["-c", &alias, "stall"], None, None).await;
        assert!(matches!(&out, Err(GitStop::Failed(_))), "{out:?}");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!marker.exists(), "git's child outlived the stop");
    }

    #[test]
    fn file_and_ssh_transports_only_where_the_settings_allow_them() {
        let mut s = BridgeSettings::default();
        assert_eq!(GitEnv::from_settings(&s).allow_protocol, "git:http:https");
        s.allow_ssh_remotes = true;
        s.allow_local_remotes = true;
        s.ssh_command = Some("ssh -i /run/keys/k".into());
        let env = GitEnv::from_settings(&s);
        assert_eq!(env.allow_protocol, "git:http:https:ssh:file");
        assert!(
            env.ssh_command
                .starts_with("ssh -i /run/keys/k -o BatchMode=yes")
        );
    }

    #[test]
    fn the_services_secrets_are_kept_from_git() {
        let names = [
            "GITHUB_TOKEN",
            "DATABASE_URL",
            "REDIS_URL",
            "HARPOON__BRIDGE__GITHUB_TOKEN",
            "HOSTED_AI_API_KEY",
            "MCP_API_KEY",
            "OPENAI_API_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "HOME",
            "PATH",
            "SSH_AUTH_SOCK",
            "HTTPS_PROXY",
            "NO_PROXY",
            "LANG",
        ]
        .map(std::ffi::OsString::from);
        let removed = super::secret_env_names(names.into_iter());
        let removed: Vec<_> = removed.iter().map(|n| n.to_string_lossy()).collect();
        assert_eq!(
            removed,
            [
                "GITHUB_TOKEN",
                "DATABASE_URL",
                "REDIS_URL",
                "HARPOON__BRIDGE__GITHUB_TOKEN",
                "HOSTED_AI_API_KEY",
                "MCP_API_KEY",
                "OPENAI_API_KEY",
                "AWS_SECRET_ACCESS_KEY"
            ]
        );
    }

    #[test]
    fn server_paths_are_scrubbed_from_git_messages() {
        let dir = Path::new("/srv/harpoon/bridge/t-1/strikes/run_1/org_a-12");
        let text = "error: patch failed: README.md:1\nfatal: could not open '/srv/harpoon/bridge/t-1/strikes/run_1/org_a-12/.git/harpoon.patch' for reading\n\
            fatal: '/srv/other/x.git' does not appear to be a git repository\n\
            see https://git-scm.com/docs and file:///tmp/victim.git and a/b/c; dir /srv/harpoon/bridge/t-1/strikes/run_1/org_a-12.";
        let out = scrub_paths(text, dir);
        assert!(!out.contains("/srv"), "{out}");
        assert!(!out.contains("/tmp"), "{out}");
        assert!(out.contains("'.git/harpoon.patch'"), "{out}");
        assert!(out.contains("'<server path>' does not appear"), "{out}");
        assert!(out.contains("https://git-scm.com/docs"), "{out}");
        assert!(out.contains("file://<server path>"), "{out}");
        assert!(out.contains("a/b/c"), "{out}");
        assert!(out.ends_with("dir .."), "{out}"); // the clone itself, then the full stop
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
