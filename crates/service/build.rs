//! Records the git commit for `/health?detailed=true`, when built inside a checkout.

use std::{path::Path, process::Command};

fn main() {
    let git_dir = Path::new("../../.git");
    // Only watch paths that exist: a missing one would rebuild on every build.
    for watched in ["HEAD", "refs/heads"] {
        let path = git_dir.join(watched);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!("cargo:rerun-if-env-changed=HARPOON_GIT_SHA");
    if std::env::var_os("HARPOON_GIT_SHA").is_some() {
        return;
    }
    let sha = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    if let Some(sha) = sha {
        println!("cargo:rustc-env=HARPOON_GIT_SHA={sha}");
    }
}
