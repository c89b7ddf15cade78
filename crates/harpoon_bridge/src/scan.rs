//! Reading a checked-out repository: its text files (for harmony) and its
//! manifests (for cables). Synchronous; callers run it on the blocking pool.

use std::collections::BTreeMap;
use std::path::Path;

/// Largest file read, in bytes.
const MAX_FILE_BYTES: u64 = 256 * 1024;
/// Most files read per repository.
const MAX_FILES: usize = 4000;
/// Directories never read: vendored, generated or tool state.
const SKIP_DIRS: &[&str] = &[
    ".git",
    "node_modules",
    "target",
    "vendor",
    "dist",
    "build",
    ".venv",
    "venv",
    "__pycache__",
    ".harpoon",
];

/// The readable text of a repository.
#[derive(Debug, Default, Clone)]
pub struct Scan {
    /// Relative paths of every file seen (text or not), sorted.
    pub paths: Vec<String>,
    /// UTF-8 text files by relative path.
    pub texts: BTreeMap<String, String>,
}

impl Scan {
    /// The README, if there is one at the root.
    pub fn readme(&self) -> Option<&str> {
        self.texts
            .iter()
            .find(|(p, _)| !p.contains('/') && p.to_ascii_lowercase().starts_with("readme"))
            .map(|(_, t)| t.as_str())
    }
}

/// Reads the tree under `root`.
pub fn scan(root: &Path) -> std::io::Result<Scan> {
    let mut out = Scan::default();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.filter_map(Result::ok).collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for e in entries {
            if out.paths.len() >= MAX_FILES {
                break;
            }
            let Ok(kind) = e.file_type() else { continue };
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if kind.is_dir() {
                if !SKIP_DIRS.contains(&name.as_str()) {
                    stack.push(path);
                }
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            let rel = rel.to_string_lossy().replace('\\', "/");
            out.paths.push(rel.clone());
            if e.metadata().is_ok_and(|m| m.len() <= MAX_FILE_BYTES)
                && let Ok(bytes) = std::fs::read(&path)
                && !bytes.contains(&0)
                && let Ok(text) = String::from_utf8(bytes)
            {
                out.texts.insert(rel, text);
            }
        }
    }
    out.paths.sort();
    Ok(out)
}

/// One dependency read from a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    /// Package name as written.
    pub name: String,
    /// 1 for runtime, 0.5 for dev/build dependencies.
    pub strength: f64,
    /// `Cargo.toml [dependencies]` and the like.
    pub source: String,
}

/// What a repository calls itself and what it depends on.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    /// Package or module names it publishes.
    pub names: Vec<String>,
    /// Its dependencies.
    pub dependencies: Vec<Dependency>,
}

/// Lower-case with `_` as `-`, so `my_lib` and `My-Lib` match.
pub fn normalise(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

/// Reads Cargo.toml, package.json, go.mod, pyproject.toml and requirements
/// files anywhere in the scan (monorepos have several).
pub fn manifests(scan: &Scan) -> Manifests {
    let mut m = Manifests::default();
    for (path, text) in &scan.texts {
        let file = path.rsplit('/').next().unwrap_or(path);
        match file {
            "Cargo.toml" => cargo(path, text, &mut m),
            "package.json" => package_json(path, text, &mut m),
            "go.mod" => go_mod(path, text, &mut m),
            "pyproject.toml" => pyproject(path, text, &mut m),
            f if f.starts_with("requirements") && f.ends_with(".txt") => {
                let strength = if f.contains("dev") || f.contains("test") {
                    0.5
                } else {
                    1.0
                };
                for line in text.lines() {
                    let line = line.split('#').next().unwrap_or("").trim();
                    if line.is_empty() || line.starts_with('-') {
                        continue;
                    }
                    push(&mut m, requirement_name(line), strength, path);
                }
            }
            _ => {}
        }
    }
    m
}

fn push(m: &mut Manifests, name: &str, strength: f64, source: &str) {
    if !name.is_empty() {
        m.dependencies.push(Dependency {
            name: name.to_owned(),
            strength,
            source: source.to_owned(),
        });
    }
}

/// The package name at the start of a PEP 508 requirement (`foo[x]>=1; …`).
fn requirement_name(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .unwrap_or(s.len());
    &s[..end]
}

/// `key = …` → `key` (unquoted).
fn toml_key(line: &str) -> Option<&str> {
    let (k, _) = line.split_once('=')?;
    let k = k.trim().trim_matches('"').trim_matches('\'');
    (!k.is_empty() && !k.contains(' ')).then_some(k)
}

/// `name = "x"` → `x`.
fn toml_string_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let (k, v) = line.split_once('=')?;
    (k.trim() == key).then(|| v.trim().trim_matches('"').trim_matches('\''))
}

fn cargo(path: &str, text: &str, m: &mut Manifests) {
    let mut section = String::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.starts_with('[') {
            section = line.trim_matches(|c| c == '[' || c == ']').to_owned();
            // `[dependencies.foo]` declares `foo` by its header.
            for kind in ["dependencies.", "dev-dependencies.", "build-dependencies."] {
                if let Some(name) = section
                    .split(kind)
                    .nth(1)
                    .filter(|_| section.contains(kind))
                {
                    let strength = if kind == "dependencies." { 1.0 } else { 0.5 };
                    push(m, name, strength, &format!("{path} [{section}]"));
                }
            }
            continue;
        }
        if section == "package" {
            if let Some(name) = toml_string_value(line, "name") {
                m.names.push(name.to_owned());
            }
            continue;
        }
        let strength =
            if section.ends_with("dev-dependencies") || section.ends_with("build-dependencies") {
                0.5
            } else if section.ends_with("dependencies") {
                1.0
            } else {
                continue;
            };
        if let Some(key) = toml_key(line) {
            // `foo.workspace = true` names `foo`.
            let name = key.split('.').next().unwrap_or(key);
            push(m, name, strength, &format!("{path} [{section}]"));
        }
    }
}

fn package_json(path: &str, text: &str, m: &mut Manifests) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    if let Some(name) = v.get("name").and_then(|n| n.as_str()) {
        m.names.push(name.to_owned());
    }
    for (field, strength) in [
        ("dependencies", 1.0),
        ("peerDependencies", 1.0),
        ("devDependencies", 0.5),
        ("optionalDependencies", 0.5),
    ] {
        if let Some(deps) = v.get(field).and_then(|d| d.as_object()) {
            for name in deps.keys() {
                push(m, name, strength, &format!("{path} {field}"));
            }
        }
    }
}

fn go_mod(path: &str, text: &str, m: &mut Manifests) {
    let mut in_require = false;
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("").trim();
        if let Some(module) = line.strip_prefix("module ") {
            m.names.push(module.trim().to_owned());
        } else if line.starts_with("require (") {
            in_require = true;
        } else if in_require && line == ")" {
            in_require = false;
        } else if let Some(req) = line.strip_prefix("require ").or(in_require.then_some(line))
            && let Some(module) = req.split_whitespace().next()
        {
            push(m, module, 1.0, &format!("{path} require"));
        }
    }
}

fn pyproject(path: &str, text: &str, m: &mut Manifests) {
    let mut section = String::new();
    let mut in_array: Option<f64> = None;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(strength) = in_array {
            for item in quoted(line) {
                push(
                    m,
                    requirement_name(item),
                    strength,
                    &format!("{path} [{section}]"),
                );
            }
            if line.contains(']') {
                in_array = None;
            }
            continue;
        }
        if line.starts_with('[') {
            section = line.trim_matches(|c| c == '[' || c == ']').to_owned();
            continue;
        }
        if (section == "project" || section == "tool.poetry")
            && let Some(name) = toml_string_value(line, "name")
        {
            m.names.push(name.to_owned());
            continue;
        }
        let array_key = line.split_once('=').map(|(k, _)| k.trim());
        let strength = match (section.as_str(), array_key) {
            ("project", Some("dependencies")) => Some(1.0),
            ("project.optional-dependencies", Some(_)) => Some(0.5),
            _ => None,
        };
        if let Some(strength) = strength {
            let rest = line.split_once('=').map_or("", |(_, v)| v);
            for item in quoted(rest) {
                push(
                    m,
                    requirement_name(item),
                    strength,
                    &format!("{path} [{section}]"),
                );
            }
            if rest.contains('[') && !rest.contains(']') {
                in_array = Some(strength);
            }
            continue;
        }
        if section == "tool.poetry.dependencies" || section.starts_with("tool.poetry.group.") {
            let strength = if section == "tool.poetry.dependencies" {
                1.0
            } else {
                0.5
            };
            if let Some(key) = toml_key(line).filter(|k| *k != "python") {
                push(m, key, strength, &format!("{path} [{section}]"));
            }
        }
    }
}

/// The double- or single-quoted strings of a line.
fn quoted(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find(['"', '\'']) {
        let q = rest[start..].chars().next().unwrap_or('"');
        let after = &rest[start + 1..];
        let Some(end) = after.find(q) else { break };
        out.push(&after[..end]);
        rest = &after[end + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn scan_of(files: &[(&str, &str)]) -> Scan {
        Scan {
            paths: files.iter().map(|(p, _)| (*p).to_owned()).collect(),
            texts: files
                .iter()
                .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn reads_every_manifest_kind() {
        let s = scan_of(&[
            (
                "Cargo.toml",
                "[package]\nname = \"api\"\n[dependencies]\nauth-core = { git = \"x\" }\nserde.workspace = true\n[dev-dependencies]\ntest_kit = \"1\"\n[dependencies.billing]\nversion = \"1\"\n",
            ),
            (
                "web/package.json",
                r#"{"name":"@acme/web","dependencies":{"auth-client":"1"},"devDependencies":{"jest":"1"}}"#,
            ),
            (
                "go.mod",
                "module github.com/acme/gw\n\nrequire (\n\tgithub.com/acme/authz v1.0.0 // indirect\n)\nrequire golang.org/x/net v0.1.0\n",
            ),
            (
                "pyproject.toml",
                "[project]\nname = \"ml\"\ndependencies = [\n  \"auth_py>=1\",\n  \"numpy\",\n]\n",
            ),
            ("requirements-dev.txt", "pytest==8 # tests\n-r base.txt\n"),
        ]);
        let m = manifests(&s);
        let names: Vec<_> = m
            .dependencies
            .iter()
            .map(|d| (d.name.as_str(), d.strength))
            .collect();
        for want in [
            ("auth-core", 1.0),
            ("serde", 1.0),
            ("test_kit", 0.5),
            ("billing", 1.0),
            ("auth-client", 1.0),
            ("jest", 0.5),
            ("github.com/acme/authz", 1.0),
            ("golang.org/x/net", 1.0),
            ("auth_py", 1.0),
            ("numpy", 1.0),
            ("pytest", 0.5),
        ] {
            assert!(names.contains(&want), "{want:?} missing from {names:?}");
        }
        for name in ["api", "@acme/web", "github.com/acme/gw", "ml"] {
            assert!(
                m.names.contains(&name.to_owned()),
                "{name} missing from {:?}",
                m.names
            );
        }
    }
}
