//! Which language a fragment is written in: the path's extension first, the
//! content second.

use serde::{Deserialize, Serialize};

/// Languages the scorer knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// Rust (tree-sitter).
    Rust,
    /// Python (tree-sitter).
    Python,
    /// JavaScript, JSX included (tree-sitter).
    Javascript,
    /// TypeScript, TSX included (tree-sitter).
    Typescript,
    /// Go (tree-sitter).
    Go,
    /// JSON (serde_json).
    Json,
    /// YAML (serde_yaml_ng).
    Yaml,
    /// TOML (toml).
    Toml,
    /// Anything else: only the line-based signals apply.
    Text,
}

impl Language {
    /// The snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Javascript => "javascript",
            Language::Typescript => "typescript",
            Language::Go => "go",
            Language::Json => "json",
            Language::Yaml => "yaml",
            Language::Toml => "toml",
            Language::Text => "text",
        }
    }

    /// Whether the language is data rather than code (no functions, no control flow).
    pub fn is_data(self) -> bool {
        matches!(self, Language::Json | Language::Yaml | Language::Toml)
    }

    /// The language an extension names, if any.
    pub fn from_extension(ext: &str) -> Option<Language> {
        Some(match ext.to_ascii_lowercase().as_str() {
            "rs" => Language::Rust,
            "py" | "pyi" | "pyw" => Language::Python,
            "js" | "mjs" | "cjs" | "jsx" => Language::Javascript,
            "ts" | "mts" | "cts" | "tsx" => Language::Typescript,
            "go" => Language::Go,
            "json" | "jsonc" => Language::Json,
            "yaml" | "yml" => Language::Yaml,
            "toml" => Language::Toml,
            _ => return None,
        })
    }
}

/// The extension of the last path component, if it has one.
fn extension(path: &str) -> Option<&str> {
    let name = path.rsplit(['/', '\\']).next()?;
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty()).then_some(ext)
}

/// The fragment's language: from the path's extension when it names one,
/// otherwise guessed from the content.
pub fn detect(path: &str, body: &str) -> Language {
    extension(path)
        .and_then(Language::from_extension)
        .unwrap_or_else(|| from_content(body))
}

/// Guesses the language of code without a telling path, by counting lines that
/// only one language would write.
pub fn from_content(body: &str) -> Language {
    let trimmed = body.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && serde_json::from_str::<serde_json::Value>(body).is_ok()
    {
        return Language::Json;
    }
    // Order matters on ties: the earlier language wins.
    const CANDIDATES: [Language; 7] = [
        Language::Rust,
        Language::Go,
        Language::Python,
        Language::Typescript,
        Language::Javascript,
        Language::Toml,
        Language::Yaml,
    ];
    let mut votes = [0u32; CANDIDATES.len()];
    for line in body.lines().take(200) {
        let t = line.trim();
        let mut vote = |lang: Language| {
            if let Some(i) = CANDIDATES.iter().position(|l| *l == lang) {
                votes[i] += 1;
            }
        };
        if t.starts_with("fn ")
            || t.starts_with("pub fn ")
            || t.starts_with("pub(crate) ")
            || t.starts_with("impl ")
            || t.starts_with("impl<")
            || t.starts_with("let mut ")
            || t.starts_with("#[")
            || t.starts_with("use ") && t.contains("::")
            || t.contains("println!(")
            || t.contains("-> ") && t.ends_with('{') && !t.starts_with("func ")
        {
            vote(Language::Rust);
        }
        if t.starts_with("func ") || t.starts_with("package ") || t.contains(" := ") {
            vote(Language::Go);
        }
        if t.starts_with("def ")
            || t.starts_with("elif ")
            || t.starts_with("from ") && t.contains(" import ")
            || t.starts_with("import ") && !t.contains(" from ") && !t.ends_with(';')
            || t.starts_with("class ") && t.ends_with(':')
            || t.starts_with("print(")
            || t.ends_with(':') && (t.starts_with("if ") || t.starts_with("for "))
        {
            vote(Language::Python);
        }
        let js = t.starts_with("const ")
            || t.starts_with("function ")
            || t.starts_with("export ")
            || t.contains("=> ")
            || t.contains("console.log(")
            || t.starts_with("import ") && t.contains(" from ");
        if js {
            vote(Language::Javascript);
        }
        if t.starts_with("interface ")
            || t.starts_with("type ") && t.contains(" = ")
            || t.contains(": string")
            || t.contains(": number")
            || t.contains(": boolean")
        {
            vote(Language::Typescript);
            if js {
                vote(Language::Typescript);
            }
        }
        if t.starts_with('[') && t.ends_with(']') && !t.contains(',') {
            vote(Language::Toml);
        }
        if t == "---" || t.starts_with("- ") {
            vote(Language::Yaml);
        }
    }
    let (best, count) = votes
        .iter()
        .enumerate()
        .fold((0, 0), |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc });
    if count == 0 {
        return Language::Text;
    }
    CANDIDATES[best]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_wins_over_content() {
        // TypeScript with import lines a naive guess would take for Python.
        let ts = "import os\nimport { a } from './a';\n";
        assert_eq!(detect("src/app.ts", ts), Language::Typescript);
        assert_eq!(detect("x.RS", "def f(): pass"), Language::Rust);
        assert_eq!(detect("conf.yml", "a: 1"), Language::Yaml);
    }

    #[test]
    fn content_decides_without_an_extension() {
        assert_eq!(
            detect("", "fn main() {\n    let mut x = 1;\n}\n"),
            Language::Rust
        );
        assert_eq!(
            detect("snippet", "def f(x):\n    return x\n"),
            Language::Python
        );
        assert_eq!(
            detect("", "package main\nfunc main() {\n\tx := 1\n}\n"),
            Language::Go
        );
        assert_eq!(
            detect(
                "",
                "interface A { x: number }\nconst f = (a: string) => a;\n"
            ),
            Language::Typescript
        );
        assert_eq!(
            detect("", "const f = (a) => a;\nconsole.log(f(1));\n"),
            Language::Javascript
        );
        assert_eq!(detect("", "{\"a\": [1, 2]}"), Language::Json);
        assert_eq!(detect("", "[package]\nname = \"x\"\n"), Language::Toml);
        assert_eq!(detect("", "just some words"), Language::Text);
        assert_eq!(detect(".hidden", "just some words"), Language::Text);
    }
}
