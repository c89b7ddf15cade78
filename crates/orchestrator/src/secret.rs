//! A string that must never reach logs, debug output or printed configuration.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Text shown in place of a secret wherever one is displayed or serialized.
pub const REDACTED: &str = "<redacted>";

/// A secret value (API key, token). `Debug`, `Display` and `Serialize` all print
/// [`REDACTED`]; only [`Secret::expose`] gives the value, so leaking one takes
/// an explicit call that shows up in review.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that must send it (an auth header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

/// `text` with the user-information part (`user:password@`) of every URL in
/// it removed, for anything shown to people: logs, status pages, errors.
/// The last `@` of an authority ends it, as a password may itself hold one.
pub fn strip_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#' | '\'' | '"') || c.is_whitespace())
            .unwrap_or(tail.len());
        let host_start = tail[..authority_end].rfind('@').map_or(0, |i| i + 1);
        out.push_str(&tail[host_start..authority_end]);
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_are_removed_and_the_rest_kept() {
        for (text, shown) in [
            (
                "served by http://bob:s3cr@t@10.0.0.5:8000/v1",
                "served by http://10.0.0.5:8000/v1",
            ),
            (
                "a https://h/x?u=a@b and ftp://u@h",
                "a https://h/x?u=a@b and ftp://h",
            ),
            (
                "fatal: unable to access 'https://bob:s3cret@host/x.git/': no",
                "fatal: unable to access 'https://host/x.git/': no",
            ),
            ("ssh://git@h/x and more", "ssh://h/x and more"),
            ("weights from ./m", "weights from ./m"),
        ] {
            assert_eq!(strip_url_credentials(text), shown);
        }
    }

    #[test]
    fn never_displays_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), format!("{REDACTED} {REDACTED}"));
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            format!("\"{REDACTED}\"")
        );
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn deserializes_the_plain_value() {
        let s: Secret = serde_json::from_str("\"k-123\"").unwrap();
        assert_eq!(s.expose(), "k-123");
    }
}
