//! Bounds and character rules for every caller string the bridge stores or
//! puts into a commit, a branch or a pull request. A title is one short line
//! with no control or format characters (an ESC sequence, a bidi override or
//! a line break in it would reach terminals, GitHub and commit messages);
//! prose may hold line breaks and tabs only; names follow the rules of the
//! system that will read them (GitHub's, git's `check-ref-format`).

use crate::BridgeError;
use serde_json::Value;

/// Longest title (covenant, pull request).
pub const TITLE_MAX: usize = 200;
/// Longest description or pull-request body, in characters.
pub const TEXT_MAX: usize = 20_000;
/// Longest key aspect or success criterion, in characters.
pub const ITEM_MAX: usize = 500;
/// Most key aspects or success criteria.
pub const ITEMS_MAX: usize = 50;
/// Most metadata fields.
pub const METADATA_KEYS_MAX: usize = 32;
/// Longest metadata key (any object key inside a value too).
pub const METADATA_KEY_MAX: usize = 64;
/// Largest metadata as JSON, in bytes.
pub const METADATA_BYTES_MAX: usize = 16 * 1024;
/// Longest branch name, in bytes.
pub const BRANCH_MAX: usize = 200;
/// Longest part of an `org/app` name, in characters.
pub const NAME_PART_MAX: usize = 100;

/// Unicode format characters (category Cf) and the line and paragraph
/// separators: invisible, or reordering (bidi), or breaking lines where a
/// reader expects none.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{0600}'..='\u{0605}'
        | '\u{061C}'
        | '\u{06DD}'
        | '\u{070F}'
        | '\u{0890}'..='\u{0891}'
        | '\u{08E2}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{110BD}'
        | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}'
        | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0001}'
        | '\u{E0020}'..='\u{E007F}')
}

/// Bidi controls: the "Trojan Source" characters that make text read in
/// another order than it is stored.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{061C}' | '\u{200E}' | '\u{200F}')
}

/// Why `value` is not one line of at most `max` characters, if it is not.
fn line_problem(value: &str, max: usize) -> Option<String> {
    if value.chars().count() > max {
        return Some(format!("must be at most {max} characters"));
    }
    if value.contains(['\n', '\r']) || value.contains(['\u{2028}', '\u{2029}', '\u{85}']) {
        return Some("must be a single line".into());
    }
    if value.chars().any(|c| c.is_control() || is_format(c)) {
        return Some("must not contain control or invisible format characters".into());
    }
    None
}

/// One non-blank line of at most `max` characters without control or
/// format characters; 422 on `field` otherwise.
pub fn single_line(field: &str, value: &str, max: usize) -> Result<(), BridgeError> {
    if value.trim().is_empty() {
        return Err(BridgeError::invalid(
            field,
            "must not be empty or whitespace",
        ));
    }
    match line_problem(value, max) {
        Some(m) => Err(BridgeError::invalid(field, m)),
        None => Ok(()),
    }
}

/// Why `value` is not prose of at most `max` characters, if it is not.
fn text_problem(value: &str, max: usize) -> Option<String> {
    if value.chars().count() > max {
        return Some(format!("must be at most {max} characters"));
    }
    if value
        .chars()
        .any(|c| (c.is_control() && c != '\n' && c != '\t') || is_bidi_control(c))
    {
        return Some(
            "must not contain control characters other than line feeds and tabs, nor bidi controls"
                .into(),
        );
    }
    None
}

/// Prose of at most `max` characters: line feeds and tabs are the only
/// control characters, and no bidi controls; 422 on `field` otherwise.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), BridgeError> {
    match text_problem(value, max) {
        Some(m) => Err(BridgeError::invalid(field, m)),
        None => Ok(()),
    }
}

/// Bounded metadata: at most [`METADATA_KEYS_MAX`] fields, keys (at any
/// depth) one line of at most [`METADATA_KEY_MAX`] characters, strings
/// prose, all of it at most [`METADATA_BYTES_MAX`] bytes as JSON.
pub fn metadata(map: &serde_json::Map<String, Value>) -> Result<(), BridgeError> {
    if map.len() > METADATA_KEYS_MAX {
        return Err(BridgeError::invalid(
            "metadata",
            format!("must have at most {METADATA_KEYS_MAX} fields"),
        ));
    }
    let size = serde_json::to_vec(map).map_or(usize::MAX, |v| v.len());
    if size > METADATA_BYTES_MAX {
        return Err(BridgeError::invalid(
            "metadata",
            format!("must be at most {METADATA_BYTES_MAX} bytes as JSON"),
        ));
    }
    for (k, v) in map {
        metadata_key(k)?;
        metadata_value(k, v)?;
    }
    Ok(())
}

fn metadata_key(key: &str) -> Result<(), BridgeError> {
    let shown: String = key.chars().take(40).collect();
    if key.is_empty() {
        return Err(BridgeError::invalid("metadata", "a key must not be empty"));
    }
    match line_problem(key, METADATA_KEY_MAX) {
        Some(m) => Err(BridgeError::invalid(
            "metadata",
            format!("the key {shown:?} {m}"),
        )),
        None => Ok(()),
    }
}

/// Walks a value; its depth is bounded by serde_json's recursion limit
/// and its size by [`METADATA_BYTES_MAX`], checked before.
fn metadata_value(key: &str, v: &Value) -> Result<(), BridgeError> {
    match v {
        Value::String(s) => match text_problem(s, METADATA_BYTES_MAX) {
            Some(m) => Err(BridgeError::invalid(format!("metadata.{key}"), m)),
            None => Ok(()),
        },
        Value::Array(items) => items.iter().try_for_each(|i| metadata_value(key, i)),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            metadata_key(k)?;
            metadata_value(key, v)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

/// `org/app`: two parts of letters, digits, `-`, `_` and `.`, neither
/// starting with `.`, each at most [`NAME_PART_MAX`] characters.
pub fn repo_name(name: &str) -> bool {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.len() <= NAME_PART_MAX
            && !p.starts_with('.')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    matches!(name.split_once('/'), Some((org, app)) if ok_part(org) && ok_part(app))
}

/// A GitHub `owner/repo`: the owner 1 to 39 letters, digits and `-`, not
/// starting or ending with `-`; the repository 1 to 100 letters, digits,
/// `.`, `-` and `_`, not `.` or `..`.
pub fn github_repo(name: &str) -> bool {
    let Some((owner, repo)) = name.split_once('/') else {
        return false;
    };
    let owner_ok = (1..=39).contains(&owner.len())
        && !owner.starts_with('-')
        && !owner.ends_with('-')
        && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let repo_ok = (1..=100).contains(&repo.len())
        && repo != "."
        && repo != ".."
        && repo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    owner_ok && repo_ok
}

/// Why `name` is not a branch name `git check-ref-format --branch` accepts
/// (refs.c `check_refname_component` on `refs/heads/<name>`, plus the
/// `--branch` rules: not `HEAD`, not starting with `-`), or is longer than
/// [`BRANCH_MAX`] bytes or holds format characters (stricter than git).
pub fn branch_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("must not be empty");
    }
    if name.len() > BRANCH_MAX {
        return Some("is too long");
    }
    if name.starts_with('-') {
        return Some("must not start with `-`");
    }
    if name == "HEAD" || name == "@" {
        return Some("is reserved by git");
    }
    if name.ends_with('.') || name.ends_with('/') || name.starts_with('/') {
        return Some("must not start with `/` or end with `/` or `.`");
    }
    if name.contains("..") || name.contains("@{") || name.contains("//") {
        return Some("must not contain `..`, `@{` or `//`");
    }
    if name.chars().any(|c| {
        c.is_control()
            || is_format(c)
            || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    }) {
        return Some("must not contain spaces, control characters or any of ~ ^ : ? * [ \\");
    }
    for component in name.split('/') {
        if component.starts_with('.') {
            return Some("no part may start with `.`");
        }
        if component.ends_with(".lock") {
            return Some("no part may end with `.lock`");
        }
    }
    None
}

/// `text` made one line of at most [`TITLE_MAX`] characters for a commit
/// message: control and format characters become spaces, runs of spaces
/// one. Stored rows older than the checks, and a model's title, pass
/// through here, so no caller text can start a line (a forged trailer) or
/// carry an escape sequence into a commit.
pub fn commit_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(TITLE_MAX * 4));
    let mut count = 0;
    let mut space = false;
    for c in text.trim().chars() {
        let c = if c.is_control() || is_format(c) || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if space {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        if count == TITLE_MAX {
            break;
        }
        out.push(c);
        count += 1;
    }
    out.trim_end().to_owned()
}

/// A caller's string as an error message quotes it: debug-escaped and cut
/// to 60 characters, so a 200 KB name is not echoed back whole.
pub fn shown(value: &str) -> String {
    let cut: String = value.chars().take(60).collect();
    if cut.len() < value.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_one_clean_line() {
        for bad in [
            "Fix\n\nSigned-off-by: Linus <l@x>",
            "T\u{1b}[2J\r\nCo-authored-by: Other <o@x>",
            "bell\u{7}",
            "nul\u{0}",
            "cr\rx",
            "tab\tx",
            "rtl \u{202e}gnp.exe",
            "zero\u{200b}width",
            "sep\u{2028}x",
        ] {
            assert!(single_line("title", bad, TITLE_MAX).is_err(), "{bad:?}");
        }
        assert!(single_line("title", &"x".repeat(201), TITLE_MAX).is_err());
        assert!(single_line("title", "Session cookies → JWT (ünïcode ok)", TITLE_MAX).is_ok());
    }

    #[test]
    fn prose_keeps_line_feeds_and_tabs_only() {
        assert!(text("description", "a\n\tb", TEXT_MAX).is_ok());
        for bad in ["a\r\nb", "esc\u{1b}[31m", "nul\u{0}", "\u{202e}x"] {
            assert!(text("description", bad, TEXT_MAX).is_err(), "{bad:?}");
        }
        assert!(text("description", &"x".repeat(TEXT_MAX + 1), TEXT_MAX).is_err());
    }

    #[test]
    fn commit_lines_cannot_break_or_escape() {
        let line = commit_line("T\u{1b}[2J\r\nCo-authored-by: Other <o@x>");
        assert!(!line.contains(['\n', '\r', '\u{1b}']), "{line:?}");
        assert!(line.starts_with("T [2J Co-authored-by"), "{line:?}");
        assert_eq!(commit_line(&"y".repeat(500)).chars().count(), TITLE_MAX);
    }

    #[test]
    fn github_names_follow_githubs_rules() {
        for ok in ["octo-org/app", "a/b.c_d-e", "A1/.github"] {
            assert!(github_repo(ok), "{ok}");
        }
        let long_owner = format!("{}/x", "o".repeat(40));
        let long_repo = format!("o/{}", "r".repeat(101));
        for bad in [
            "noslash",
            "a/b/c",
            "-a/b",
            "a-/b",
            "a_b/c",
            "a/..",
            "a/.",
            "a/b c",
            "a/b\n",
            long_owner.as_str(),
            long_repo.as_str(),
        ] {
            assert!(!github_repo(bad), "{bad:?}");
        }
    }

    #[test]
    fn branch_names_agree_with_git_check_ref_format() {
        let names = [
            "main",
            "release/1.2",
            "feature/ünï",
            "*",
            "a*b",
            "-x",
            "HEAD",
            "a@{b",
            "a..b",
            ".hidden",
            "a/.b",
            "a.lock",
            "a/b.lock/c",
            "a/",
            "/a",
            "a//b",
            "a.",
            "a b",
            "a~1",
            "a^",
            "a:b",
            "a?",
            "a[b",
            "a\\b",
            "a\u{7f}",
            "a\tb",
            "x@y",
            "@foo",
            "a.b",
            "v1.0-rc.1",
        ];
        for name in names {
            let git = std::process::Command::new("git")
                .args(["check-ref-format", "--branch", name])
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .current_dir(std::env::temp_dir())
                .output()
                .map(|o| o.status.success());
            let ours = branch_problem(name).is_none();
            if let Ok(git) = git {
                assert_eq!(ours, git, "{name:?}: ours {ours}, git {git}");
            }
        }
        assert!(branch_problem(&"b".repeat(BRANCH_MAX + 1)).is_some());
        // Stricter than git: `--branch` expands `@` to the current branch,
        // and git's revision syntax reads a branch named `@` as HEAD.
        assert!(branch_problem("@").is_some());
    }
}
