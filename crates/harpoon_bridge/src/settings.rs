//! The `bridge` settings section.

use orchestrator::{InvalidSetting, Secret};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The `bridge` section: where strikes work, who commits, how many at once,
/// and which GitHub to open pull requests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeSettings {
    /// Directory of the clones; unset means `<storage.data_dir>/bridge`.
    pub workspace_dir: Option<PathBuf>,
    /// Commit author name.
    pub author_name: String,
    /// Commit author e-mail.
    pub author_email: String,
    /// Repositories worked on at once, across all strikes.
    pub parallelism: usize,
    /// Of those, the most one tenant's strikes hold at once; unset means half
    /// of `parallelism` (at least 1). A freed slot goes to the waiting tenant
    /// holding the fewest, so one tenant's slow remotes cannot stall the
    /// others' strikes.
    pub tenant_parallelism: Option<usize>,
    /// GitHub REST API root (GitHub Enterprise: `https://host/api/v3`).
    pub github_api_url: String,
    /// Token for pull requests (env `GITHUB_TOKEN`).
    pub github_token: Option<Secret>,
    /// Seconds between pull-request state refreshes; 0 turns the monitor off.
    pub pr_monitor_secs: u64,
    /// Model attempts per repository on the generate path before it fails.
    pub generate_attempts: u32,
    /// Accept `file://` URLs and local paths as repositories. Off by default:
    /// on a shared deployment they would let a tenant read and push to any
    /// repository on the server's disk.
    pub allow_local_remotes: bool,
    /// Accept network remotes whose host is (or resolves to) a loopback,
    /// private, link-local or otherwise internal address. Off by default: a
    /// tenant could otherwise make the server probe its internal network
    /// (cloud metadata endpoints included) through `git ls-remote`.
    pub allow_private_remotes: bool,
    /// Accept ssh remotes (`ssh://`, `git@host:path`). Off by default: git
    /// runs ssh with the service user's keys (`~/.ssh`, or `ssh_command`), so
    /// a tenant could read and push to any repository those keys reach.
    pub allow_ssh_remotes: bool,
    /// The ssh command git runs for ssh remotes, e.g. `ssh -i /run/keys/deploy
    /// -o IdentitiesOnly=yes -F /dev/null`; unset means plain `ssh`, with the
    /// service user's `~/.ssh`. Batch mode and timeouts are always added.
    pub ssh_command: Option<String>,
    /// Longest one git step (clone, fetch, push, ls-remote) may run, in
    /// seconds, however slowly the remote keeps sending; then git and its
    /// helpers are killed.
    pub git_timeout_secs: u64,
}

impl Default for BridgeSettings {
    fn default() -> Self {
        Self {
            workspace_dir: None,
            author_name: "Harpoon".into(),
            author_email: "harpoon@localhost".into(),
            parallelism: 4,
            tenant_parallelism: None,
            github_api_url: "https://api.github.com".into(),
            github_token: None,
            pr_monitor_secs: 300,
            generate_attempts: 3,
            allow_local_remotes: false,
            allow_private_remotes: false,
            allow_ssh_remotes: false,
            ssh_command: None,
            git_timeout_secs: 300,
        }
    }
}

impl BridgeSettings {
    /// The most strike slots one tenant holds at once: `tenant_parallelism`,
    /// or half of `parallelism` (at least 1).
    pub fn effective_tenant_parallelism(&self) -> usize {
        self.tenant_parallelism
            .unwrap_or(self.parallelism / 2)
            .clamp(1, self.parallelism.max(1))
    }

    /// Checks ranges and shapes, naming the dotted key.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.author_name.trim().is_empty() {
            return Err(InvalidSetting::new(
                "bridge.author_name",
                "must not be empty",
            ));
        }
        if !self.author_email.contains('@') {
            return Err(InvalidSetting::new(
                "bridge.author_email",
                format!("{:?} is not an e-mail address", self.author_email),
            ));
        }
        if !(1..=64).contains(&self.parallelism) {
            return Err(InvalidSetting::new(
                "bridge.parallelism",
                format!("{} is out of range 1..=64", self.parallelism),
            ));
        }
        if let Some(n) = self.tenant_parallelism
            && !(1..=self.parallelism).contains(&n)
        {
            return Err(InvalidSetting::new(
                "bridge.tenant_parallelism",
                format!(
                    "{n} is out of range 1..={} (bridge.parallelism)",
                    self.parallelism
                ),
            ));
        }
        let url_ok = url_like(&self.github_api_url);
        if !url_ok {
            return Err(InvalidSetting::new(
                "bridge.github_api_url",
                format!("{:?} is not an http(s) URL", self.github_api_url),
            ));
        }
        if self
            .github_token
            .as_ref()
            .is_some_and(|t| t.expose().trim().is_empty())
        {
            return Err(InvalidSetting::new(
                "bridge.github_token",
                "must not be empty (leave it unset to push branches without pull requests)",
            ));
        }
        if !(1..=10).contains(&self.generate_attempts) {
            return Err(InvalidSetting::new(
                "bridge.generate_attempts",
                format!("{} is out of range 1..=10", self.generate_attempts),
            ));
        }
        if !(1..=3600).contains(&self.git_timeout_secs) {
            return Err(InvalidSetting::new(
                "bridge.git_timeout_secs",
                format!("{} is out of range 1..=3600", self.git_timeout_secs),
            ));
        }
        if self
            .ssh_command
            .as_deref()
            .is_some_and(|c| c.trim().is_empty())
        {
            return Err(InvalidSetting::new(
                "bridge.ssh_command",
                "must not be empty (leave it unset for plain ssh)",
            ));
        }
        Ok(())
    }
}

fn url_like(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://")) && s.len() > "https://".len()
}

#[cfg(test)]
mod tests {
    use super::BridgeSettings;

    #[test]
    fn a_tenants_share_of_strike_slots_defaults_to_half_and_stays_in_range() {
        let mut s = BridgeSettings::default();
        assert_eq!(s.effective_tenant_parallelism(), 2);
        s.parallelism = 1;
        assert_eq!(s.effective_tenant_parallelism(), 1);
        s.parallelism = 4;
        s.tenant_parallelism = Some(5);
        assert!(s.validate().is_err());
        s.tenant_parallelism = Some(0);
        assert!(s.validate().is_err());
        s.tenant_parallelism = Some(3);
        assert!(s.validate().is_ok());
        assert_eq!(s.effective_tenant_parallelism(), 3);
    }
}
