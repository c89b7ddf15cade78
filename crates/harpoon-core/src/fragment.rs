//! Code fragments and their content anchors.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// A piece of code: a whole file, a function, a block, or what a model just wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fragment {
    /// Path of the file it comes from; its extension decides the language when known.
    #[serde(default)]
    pub path: String,
    /// Position of the fragment in its file or request.
    #[serde(default)]
    pub idx: u32,
    /// Line range in the file, e.g. `10-42` (free text, reported back unchanged).
    #[serde(default)]
    pub lines: String,
    /// The code itself.
    pub body: String,
}

impl Fragment {
    /// A fragment with only a path and a body.
    pub fn new(path: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            idx: 0,
            lines: String::new(),
            body: body.into(),
        }
    }

    /// Where the fragment came from, without its body.
    pub fn reference(&self) -> FragmentRef {
        FragmentRef {
            path: self.path.clone(),
            idx: self.idx,
            lines: self.lines.clone(),
        }
    }
}

/// Names a fragment without carrying its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FragmentRef {
    /// Path of the file.
    pub path: String,
    /// Position in the file or request.
    pub idx: u32,
    /// Line range in the file.
    pub lines: String,
}

/// The body with `\r\n` and lone `\r` turned into `\n`, so the same code hashes
/// the same whichever platform it was saved on.
pub fn normalise_line_endings(body: &str) -> Cow<'_, str> {
    if !body.as_bytes().contains(&b'\r') {
        return Cow::Borrowed(body);
    }
    Cow::Owned(body.replace("\r\n", "\n").replace('\r', "\n"))
}

/// SHA-256 of the body with line endings normalised.
pub fn anchor_bytes(body: &str) -> [u8; 32] {
    Sha256::digest(normalise_line_endings(body).as_bytes()).into()
}

/// Hex SHA-256 of the body with line endings normalised: the fragment's anchor.
pub fn fragment_hash(body: &str) -> String {
    hex::encode(anchor_bytes(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_do_not_change_the_anchor() {
        assert_eq!(fragment_hash("a\r\nb\r\n"), fragment_hash("a\nb\n"));
        assert_eq!(fragment_hash("a\rb"), fragment_hash("a\nb"));
        assert_ne!(fragment_hash("a\nb"), fragment_hash("a\nb\n"));
        // Known vector: SHA-256 of "abc".
        assert_eq!(
            fragment_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
