//! Hard-coded credentials: known key formats anywhere in the text, and
//! high-entropy string literals.

use std::sync::OnceLock;

/// One credential found (never the credential itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What it looks like, e.g. `aws_access_key_id`.
    pub kind: &'static str,
    /// Line (1-based).
    pub line: usize,
}

/// Known formats, each a named group. ASCII word boundaries keep the regex on
/// its fast engines.
const KNOWN: &str = r#"(?x)
    (?P<aws_access_key_id>(?-u:\b)(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}(?-u:\b))
  | (?P<aws_secret_access_key>(?i:aws_?secret_?access_?key)["']?\s*[:=]\s*["']?[A-Za-z0-9/+=]{40})
  | (?P<github_token>(?-u:\b)(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}(?-u:\b)|(?-u:\b)github_pat_[A-Za-z0-9_]{60,})
  | (?P<slack_token>(?-u:\b)xox[baprs]-[A-Za-z0-9-]{10,})
  | (?P<private_key>-----BEGIN\x20(?:RSA\x20|EC\x20|DSA\x20|OPENSSH\x20|PGP\x20|ENCRYPTED\x20)?PRIVATE\x20KEY-----)
  | (?P<google_api_key>(?-u:\b)AIza[0-9A-Za-z_-]{35})
  | (?P<stripe_key>(?-u:\b)[sr]k_live_[0-9A-Za-z]{24,})
  | (?P<model_api_key>(?-u:\b)sk-(?:proj|ant-api03)-[A-Za-z0-9_-]{32,})
"#;

fn known() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    // The pattern is a constant checked by the tests; it cannot fail at run time.
    #[allow(clippy::expect_used)]
    RE.get_or_init(|| regex::Regex::new(KNOWN).expect("the secret patterns compile"))
}

/// Line of byte offset `at` (1-based).
pub fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Known credential formats anywhere in `text`.
pub fn known_formats(text: &str) -> Vec<Finding> {
    let re = known();
    let mut found = Vec::new();
    for caps in re.captures_iter(text) {
        let name = re
            .capture_names()
            .flatten()
            .find(|n| caps.name(n).is_some())
            .unwrap_or("credential");
        let at = caps.get(0).map_or(0, |m| m.start());
        // Names are from the constant pattern; map them onto 'static strs.
        let kind = KIND_NAMES
            .iter()
            .copied()
            .find(|k| *k == name)
            .unwrap_or("credential");
        found.push(Finding {
            kind,
            line: line_of(text, at),
        });
    }
    found
}

const KIND_NAMES: [&str; 8] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "github_token",
    "slack_token",
    "private_key",
    "google_api_key",
    "stripe_key",
    "model_api_key",
];

/// Whether a name (key, variable) says it holds a credential.
pub fn secret_name(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    [
        "secret",
        "token",
        "password",
        "passwd",
        "api_key",
        "apikey",
        "private_key",
        "credential",
        "auth",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// Shannon entropy in bits per byte.
pub fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Whether a string literal's content looks like a generated credential.
/// `named` says the surrounding line or key names a secret, which lowers the bar.
pub fn high_entropy(content: &str, named: bool) -> bool {
    let len = content.len();
    if !(16..=512).contains(&len) {
        return false;
    }
    if !content
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-' | b'.'))
    {
        return false;
    }
    let digits = content.bytes().any(|b| b.is_ascii_digit());
    let upper = content.bytes().any(|b| b.is_ascii_uppercase());
    let lower = content.bytes().any(|b| b.is_ascii_lowercase());
    let hex = content.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    let e = entropy(content);
    if named {
        return digits && e >= 3.0;
    }
    // Hex digests (hashes, ids) are everywhere in code; only a name makes them secrets.
    !hex && len >= 24 && digits && upper && lower && e >= 4.2
}

/// The content of a string literal: what lies between its first and last quote.
pub fn literal_content(literal: &str) -> &str {
    let start = literal.find(['"', '\'', '`']).map_or(0, |i| i + 1);
    let end = literal.rfind(['"', '\'', '`']).unwrap_or(literal.len());
    literal
        .get(start..end.max(start))
        .unwrap_or("")
        .trim_matches('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_formats_are_found_with_their_line() {
        let text = "let a = 1;\nlet key = \"AKIAIOSFODNN7EXAMPLE\";\n";
        assert_eq!(
            known_formats(text),
            vec![Finding {
                kind: "aws_access_key_id",
                line: 2
            }]
        );
        let gh = format!("token: ghp_{}", "a1B2".repeat(9));
        assert_eq!(known_formats(&gh)[0].kind, "github_token");
        assert_eq!(
            known_formats("-----BEGIN RSA PRIVATE KEY-----")[0].kind,
            "private_key"
        );
        assert!(known_formats("let x = \"AKIA-not-a-key\";").is_empty());
        assert!(
            known_formats("AKIAIOSFODNN7EXAMPLEX").is_empty(),
            "too long for a key id"
        );
    }

    #[test]
    fn entropy_separates_keys_from_words_and_hashes() {
        assert!(high_entropy(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            false
        ));
        assert!(!high_entropy("HttpRequestHandlerFactory", false));
        assert!(!high_entropy("this is a sentence of some length", false));
        let sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert!(!high_entropy(sha, false));
        assert!(high_entropy(sha, true));
        assert_eq!(literal_content("r#\"abc\"#"), "abc");
        assert_eq!(literal_content("'x'"), "x");
    }
}
