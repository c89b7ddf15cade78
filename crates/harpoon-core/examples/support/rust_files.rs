//! The corpus both throughput examples read: `.rs` files under a directory.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, depth first in name order (so runs read the
/// same files in the same order).
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Paths and texts of the `.rs` files under `root` until `max_mb` megabytes
/// are read, skipping empty files and those over the service's
/// `max_fragment_bytes` (it refuses them, so they are not what it scores).
pub fn load(root: &Path, max_mb: f64) -> Vec<(PathBuf, String)> {
    let limit = harpoon_core::FusionSettings::default().max_fragment_bytes;
    let mut files = Vec::new();
    collect(root, &mut files);
    let mut corpus = Vec::new();
    let mut bytes = 0usize;
    for path in files {
        let Ok(body) = std::fs::read_to_string(&path) else {
            continue;
        };
        if body.is_empty() || body.len() > limit {
            continue;
        }
        bytes += body.len();
        corpus.push((path, body));
        if bytes as f64 >= max_mb * 1e6 {
            break;
        }
    }
    corpus
}
