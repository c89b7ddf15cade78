//! Redaction of log lines: the last stop before a formatted event leaves the
//! process.
//!
//! Harpoon promises that logs never carry what users typed or any secret. Call
//! sites cannot be trusted to remember that (a `?request` or a header dump is
//! one keystroke away), so the promise is kept here, once, over the finished
//! text: [`RedactingWriter`] wraps whatever `MakeWriter` the fmt layer writes
//! to and passes every event through [`redact`], which swaps sensitive
//! substrings for typed placeholders such as `[email]` or `[api-key]`. The
//! placeholder keeps the line useful for debugging ("a card number was here")
//! without keeping the value.
//!
//! The patterns lean towards redacting: a lost IP address in a log is cheap, a
//! leaked key is not. Where a pattern would eat ordinary log content
//! (timestamps, versions, latencies, UUIDs, Rust paths), a validator after the
//! regex rejects it; the `regex` crate has no look-around, so the checks on
//! neighbouring characters live in code.

use regex::{Regex, RegexSet};
use std::borrow::Cow;
use std::io::{self, Write};
use std::net::Ipv6Addr;
use std::sync::LazyLock;
use tracing_subscriber::fmt::MakeWriter;

/// Returns `line` with every sensitive substring replaced by a placeholder.
///
/// Placeholders: `[email]`, `[phone]`, `[card]`, `[ipv4]`, `[ipv6]`,
/// `[api-key]`, `[secret]`, `[bearer]`, `[aws-key]` and `[jwt]`. For
/// `key=value` style secrets only the value is replaced, so the line still
/// says which field it was. Lines with nothing to redact come back borrowed.
///
/// ```
/// use service::redact::redact;
/// assert_eq!(redact("mail alice@example.com"), "mail [email]");
/// assert!(matches!(redact("status=200"), std::borrow::Cow::Borrowed(_)));
/// ```
pub fn redact(line: &str) -> Cow<'_, str> {
    let redactor = &*REDACTOR;
    // One pass over the line decides which rules can fire at all; most lines
    // match none and stay borrowed.
    let hits = redactor.set.matches(line);
    if !hits.matched_any() {
        return Cow::Borrowed(line);
    }
    let mut current = Cow::Borrowed(line);
    for (index, rule) in redactor.rules.iter().enumerate() {
        // Placeholders cannot create a new match, so a rule that missed the
        // original line cannot hit the partly redacted one either.
        if !hits.matched(index) {
            continue;
        }
        if let Some(replaced) = rule.apply(&current) {
            current = Cow::Owned(replaced);
        }
    }
    current
}

/// A [`MakeWriter`] that redacts every event before handing it to the wrapped
/// writer.
///
/// The fmt layer asks for one writer per event and writes the whole formatted
/// event into it, so each [`RedactingEventWriter`] buffers what it is given
/// and redacts whole lines: a secret split across two `write` calls is still
/// caught.
#[derive(Clone, Debug, Default)]
pub struct RedactingWriter<W> {
    inner: W,
}

impl<W> RedactingWriter<W> {
    /// Wraps `inner` (for example `std::io::stdout`).
    pub fn new(inner: W) -> Self {
        Self { inner }
    }
}

impl<'a, W> MakeWriter<'a> for RedactingWriter<W>
where
    W: MakeWriter<'a>,
{
    type Writer = RedactingEventWriter<W::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingEventWriter::new(self.inner.make_writer())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        // Forwarded so that level- or target-routing inner writers still work.
        RedactingEventWriter::new(self.inner.make_writer_for(meta))
    }
}

/// The writer [`RedactingWriter`] hands out for one event.
///
/// Bytes are buffered; [`Write::flush`] passes on the complete lines so far
/// (redacted) and dropping the writer passes on the rest, so every byte is
/// written exactly once. Bytes that are not UTF-8 are passed through as they
/// are, with the UTF-8 text around them redacted.
#[derive(Debug)]
pub struct RedactingEventWriter<W: Write> {
    inner: W,
    buffer: Vec<u8>,
}

impl<W: Write> RedactingEventWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            buffer: Vec::new(),
        }
    }

    /// Redacts and writes out the first `len` buffered bytes.
    fn emit(&mut self, len: usize) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        // Taken out of the buffer before writing: if the inner writer fails
        // half-way, nothing is written a second time by a later flush or drop.
        let pending: Vec<u8> = self.buffer.drain(..len).collect();
        for chunk in pending.utf8_chunks() {
            if !chunk.valid().is_empty() {
                self.inner.write_all(redact(chunk.valid()).as_bytes())?;
            }
            if !chunk.invalid().is_empty() {
                self.inner.write_all(chunk.invalid())?;
            }
        }
        Ok(())
    }
}

impl<W: Write> Write for RedactingEventWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Only whole lines: redacting half a line could let a secret that
        // straddles the cut through in two harmless-looking pieces.
        let complete = self
            .buffer
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        self.emit(complete)?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingEventWriter<W> {
    fn drop(&mut self) {
        // Drop cannot report errors, and a log line that fails to write has
        // nowhere better to go.
        let _ = self.emit(self.buffer.len());
    }
}

/// Decides whether a regex match is really sensitive and which byte range to
/// replace: `(haystack, start of the whole match, target start, target end)`.
type Accept = fn(&str, usize, usize, usize) -> Option<(usize, usize)>;

struct Rule {
    regex: Regex,
    /// Capture groups holding the text to replace, first participating wins;
    /// `0` is the whole match.
    groups: &'static [usize],
    accept: Accept,
    placeholder: &'static str,
}

impl Rule {
    /// Replaces every accepted match, or `None` when nothing was accepted.
    fn apply(&self, text: &str) -> Option<String> {
        let mut out: Option<String> = None;
        let mut copied = 0;
        let mut pos = 0;
        while pos <= text.len() {
            let Some(caps) = self.regex.captures_at(text, pos) else {
                break;
            };
            let Some(whole) = caps.get(0) else {
                break;
            };
            let target = self
                .groups
                .iter()
                .find_map(|&g| caps.get(g))
                .unwrap_or(whole);
            let next_start = next_char(text, whole.start());
            match (self.accept)(text, whole.start(), target.start(), target.end()) {
                Some((start, end)) if start >= copied && end >= start => {
                    let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
                    buf.push_str(text.get(copied..start).unwrap_or_default());
                    buf.push_str(self.placeholder);
                    copied = end;
                    pos = whole.end().max(end).max(next_start);
                }
                // A rejected candidate may hide a real one that starts inside
                // it (a long digit run before a card number), so the search
                // resumes one character later rather than after it.
                _ => pos = next_start,
            }
        }
        let mut buf = out?;
        buf.push_str(text.get(copied..).unwrap_or_default());
        Some(buf)
    }
}

fn next_char(text: &str, from: usize) -> usize {
    let mut next = from + 1;
    while next < text.len() && !text.is_char_boundary(next) {
        next += 1;
    }
    next
}

struct Redactor {
    set: RegexSet,
    rules: Vec<Rule>,
}

static REDACTOR: LazyLock<Redactor> = LazyLock::new(Redactor::build);

/// Every placeholder [`redact`] writes.
const PLACEHOLDERS: &[&str] = &[
    "[email]",
    "[phone]",
    "[card]",
    "[ipv4]",
    "[ipv6]",
    "[api-key]",
    "[secret]",
    "[bearer]",
    "[aws-key]",
    "[jwt]",
];

/// ANSI styling the fmt layer puts around field names when colours are on.
const ANSI: &str = r"(?:\x1b\[[0-9;]*m)*";

/// Key names whose values are API keys or tokens.
const API_KEY_NAMES: &str = r"(?i:api[_\-]?key|apikey|api[_\-]?token|access[_\-]?token|refresh[_\-]?token|auth[_\-]?token|id[_\-]?token|session[_\-]?token|secret[_\-]?key|private[_\-]?key|client[_\-]?secret)";

/// Key names whose values are other secrets.
const SECRET_NAMES: &str = r"(?i:password|passwd|secret)";

/// Key names for AWS secret access keys.
const AWS_SECRET_NAMES: &str = r"(?i:aws[_\-]?secret(?:[_\-]?access)?(?:[_\-]?key)?)";

impl Redactor {
    fn build() -> Self {
        // Between a key and its value: an optional closing quote (escaped in
        // JSON-in-JSON), colour codes, `=` or `:`, and Debug's `Some(`.
        let sep = format!(r#"{ANSI}\\?["']?{ANSI}\s*[:=]\s*{ANSI}(?:Some\()?"#);
        // The value, quoted (groups 1, 2) or bare (group 3). Quoted values
        // keep their quotes so JSON lines stay JSON.
        let value = r#"(?:\\?"([^"\\]+)|'([^']+)'|([^\s"'\\,;&(){}\[\]<>]+))"#;
        let assignment = |names: &str| format!(r"[A-Za-z0-9_.\-]*{names}{sep}{value}");

        // Order matters: credentials first (a JWT inside a bearer header is
        // one `[bearer]`, not a `[jwt]`), the broad numeric patterns last.
        let specs: Vec<(String, &'static [usize], Accept, &'static str)> = vec![
            (
                format!(
                    r#"(?i:(?:proxy-)?authorization){sep}(?:\\?["'])?(?:[A-Za-z]+[ \t]+)?([A-Za-z0-9\-._~+/]+=*)"#
                ),
                &[1],
                accept_at_token_start,
                "[bearer]",
            ),
            (
                r"(?i:bearer)[ \t]+([A-Za-z0-9\-._~+/]+=*)".to_owned(),
                &[1],
                accept_bearer,
                "[bearer]",
            ),
            (
                r"eyJ[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*".to_owned(),
                &[0],
                accept_at_token_start,
                "[jwt]",
            ),
            (
                r"(?:AKIA|ASIA)[A-Z0-9]{16}(?-u:\b)".to_owned(),
                &[0],
                accept_at_token_start,
                "[aws-key]",
            ),
            (
                assignment(AWS_SECRET_NAMES),
                &[1, 2, 3],
                accept_value,
                "[aws-key]",
            ),
            (
                concat!(
                    r"(?:sk-[A-Za-z0-9_\-]{20,}",
                    r"|[rs]k_(?:live|test)_[A-Za-z0-9]{16,}",
                    r"|gh[pousr]_[A-Za-z0-9]{20,}",
                    r"|github_pat_[A-Za-z0-9_]{20,}",
                    r"|xox[abeoprs]-[A-Za-z0-9\-]{10,}",
                    r"|hk_[A-Za-z0-9_]{20,}",
                    r"|hf_[A-Za-z0-9]{30,}",
                    r"|AIza[A-Za-z0-9_\-]{35})"
                )
                .to_owned(),
                &[0],
                accept_at_token_start,
                "[api-key]",
            ),
            (
                assignment(API_KEY_NAMES),
                &[1, 2, 3],
                accept_value,
                "[api-key]",
            ),
            (
                assignment(SECRET_NAMES),
                &[1, 2, 3],
                accept_value,
                "[secret]",
            ),
            (
                // Credentials in URLs (`https://user:pass@host`); before the
                // email rule, which would take `pass@host` for an address.
                r"://([^/\s:@]+:[^/\s@]+)@".to_owned(),
                &[1],
                accept_always,
                "[secret]",
            ),
            (
                r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}".to_owned(),
                &[0],
                accept_email,
                "[email]",
            ),
            (
                // The leading character is consumed instead of asserted (no
                // look-behind): an address must not continue a word or a Rust
                // path. Uncompressed form, then any form with `::`.
                concat!(
                    r"(?:^|[^0-9A-Za-z_:.]|\\[nrt])(",
                    r"(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}",
                    r"|(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4})*)?::",
                    r"(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4})*)?(?:\.[0-9]{1,3}){0,3})"
                )
                .to_owned(),
                &[1],
                accept_ipv6,
                "[ipv6]",
            ),
            (
                r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?-u:\b)".to_owned(),
                &[0],
                accept_ipv4,
                "[ipv4]",
            ),
            (
                r"[0-9](?:[ \-]?[0-9]){12,18}(?-u:\b)".to_owned(),
                &[0],
                accept_card,
                "[card]",
            ),
            (
                concat!(
                    // International: `+`, country code, groups.
                    r"\+[0-9]{1,3}(?:[ .\-]?\([0-9]{1,5}\))?(?:[ .\-]?[0-9]{1,5}){1,6}(?-u:\b)",
                    // North American: (555) 123-4567, 555-123-4567, 1-555-123-4567.
                    r"|(?:1[ .\-])?(?:\([0-9]{3}\)[ .\-]?|[0-9]{3}[ .\-])[0-9]{3}[ .\-][0-9]{4}(?-u:\b)",
                    // National with a trunk 0: 020 7946 0958, (030) 1234567.
                    r"|(?:\(0[0-9]{1,4}\)[ .\-]?|0[0-9]{1,4}[ .\-])[0-9]{2,8}(?:[ .\-][0-9]{2,8}){0,4}(?-u:\b)"
                )
                .to_owned(),
                &[0],
                accept_phone,
                "[phone]",
            ),
        ];

        let set = match RegexSet::new(specs.iter().map(|(pattern, ..)| pattern)) {
            Ok(set) => set,
            Err(e) => panic!("redaction patterns do not compile: {e}"),
        };
        let rules = specs
            .into_iter()
            .map(|(pattern, groups, accept, placeholder)| {
                let regex = match Regex::new(&pattern) {
                    Ok(regex) => regex,
                    Err(e) => panic!("redaction pattern {placeholder} does not compile: {e}"),
                };
                Rule {
                    regex,
                    groups,
                    accept,
                    placeholder,
                }
            })
            .collect();
        Self { set, rules }
    }
}

/// The byte before `at`, reading the JSON/Debug escapes `\n`, `\r`, `\t` and
/// ANSI colour codes as the whitespace they stand for: a value right after an
/// escaped newline still starts a token.
fn prev_byte(hay: &[u8], at: usize) -> Option<u8> {
    let prev = *hay.get(at.checked_sub(1)?)?;
    if matches!(prev, b'n' | b'r' | b't') && at >= 2 && hay.get(at - 2) == Some(&b'\\') {
        return Some(b' ');
    }
    if prev == b'm' {
        let mut i = at - 1;
        while i > 0
            && hay
                .get(i - 1)
                .is_some_and(|b| b.is_ascii_digit() || *b == b';')
        {
            i -= 1;
        }
        if i >= 2 && hay.get(i - 1) == Some(&b'[') && hay.get(i - 2) == Some(&0x1b) {
            return Some(b' ');
        }
    }
    Some(prev)
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn starts_token(hay: &str, at: usize) -> bool {
    !prev_byte(hay.as_bytes(), at).is_some_and(is_word)
}

/// Whether a number at `start..end` stands alone rather than being part of a
/// decimal, version, time, port, UUID or hyphenated identifier.
fn number_stands_alone(hay: &str, start: usize, end: usize) -> bool {
    let b = hay.as_bytes();
    let before = |back: usize| start.checked_sub(back).and_then(|i| b.get(i).copied());
    match prev_byte(b, start) {
        Some(p) if is_word(p) => return false,
        Some(b'.' | b':') if before(2).is_some_and(|c| c.is_ascii_digit()) => return false,
        Some(b'-') if before(2).is_some_and(|c| c.is_ascii_alphanumeric()) => return false,
        _ => {}
    }
    match (b.get(end).copied(), b.get(end + 1).copied()) {
        (Some(n), _) if is_word(n) => false,
        (Some(b'.' | b':'), Some(d)) if d.is_ascii_digit() => false,
        (Some(b'-'), Some(d)) if d.is_ascii_alphanumeric() => false,
        _ => true,
    }
}

/// Like [`number_stands_alone`] for dotted quads, where only more dotted
/// numbers disqualify: a port after `:` or a hyphen before are normal.
fn quad_stands_alone(hay: &str, start: usize, end: usize) -> bool {
    let b = hay.as_bytes();
    match prev_byte(b, start) {
        Some(p) if is_word(p) => return false,
        Some(b'.') if start >= 2 && b.get(start - 2).is_some_and(u8::is_ascii_digit) => {
            return false;
        }
        _ => {}
    }
    match (b.get(end).copied(), b.get(end + 1).copied()) {
        (Some(n), _) if is_word(n) => false,
        (Some(b'.'), Some(d)) if d.is_ascii_digit() => false,
        _ => true,
    }
}

fn accept_always(_: &str, _: usize, start: usize, end: usize) -> Option<(usize, usize)> {
    Some((start, end))
}

/// Values of `key=value` secrets, unless an earlier rule already put a
/// placeholder there (`client_secret='[api-key]'` is not a new secret).
fn accept_value(hay: &str, _: usize, start: usize, end: usize) -> Option<(usize, usize)> {
    let value = hay.get(start..end)?;
    (!PLACEHOLDERS.contains(&value)).then_some((start, end))
}

fn accept_at_token_start(
    hay: &str,
    whole: usize,
    start: usize,
    end: usize,
) -> Option<(usize, usize)> {
    starts_token(hay, whole).then_some((start, end))
}

/// Bearer tokens, but not prose like "bearer authentication".
fn accept_bearer(hay: &str, whole: usize, start: usize, end: usize) -> Option<(usize, usize)> {
    let token = hay.get(start..end)?;
    let looks_random = token.bytes().any(|b| !b.is_ascii_alphabetic()) || token.len() >= 32;
    (starts_token(hay, whole) && token.len() >= 8 && looks_random).then_some((start, end))
}

fn accept_email(hay: &str, _: usize, start: usize, end: usize) -> Option<(usize, usize)> {
    // After an escaped newline the regex swallows the `n` of `\n` into the
    // local part; leave it, or the JSON escape would be broken.
    let escaped = start >= 1 && hay.as_bytes().get(start - 1) == Some(&b'\\');
    Some((if escaped { start + 1 } else { start }, end))
}

fn accept_ipv6(hay: &str, _: usize, start: usize, end: usize) -> Option<(usize, usize)> {
    let b = hay.as_bytes();
    match (b.get(end).copied(), b.get(end + 1).copied()) {
        (Some(n), _) if is_word(n) => return None,
        // More colon groups follow: a longer non-address or a Rust path.
        (Some(b':'), Some(n)) if n == b':' || n.is_ascii_hexdigit() => return None,
        _ => {}
    }
    let candidate = hay.get(start..end)?;
    // Addresses have digits; hex-only words around `::` are paths (`add::x`).
    if !candidate.bytes().any(|c| c.is_ascii_digit()) {
        return None;
    }
    candidate.parse::<Ipv6Addr>().ok()?;
    Some((start, end))
}

fn accept_ipv4(hay: &str, _: usize, start: usize, end: usize) -> Option<(usize, usize)> {
    if !quad_stands_alone(hay, start, end) {
        return None;
    }
    let octets_ok = hay
        .get(start..end)?
        .split('.')
        .all(|octet| octet.parse::<u16>().is_ok_and(|n| n <= 255));
    octets_ok.then_some((start, end))
}

fn accept_card(hay: &str, _: usize, start: usize, end: usize) -> Option<(usize, usize)> {
    // After a `+` it is an international phone number, left to that rule.
    let after_plus = prev_byte(hay.as_bytes(), start) == Some(b'+');
    if after_plus || !number_stands_alone(hay, start, end) {
        return None;
    }
    let text = hay.get(start..end)?;
    let digits: Vec<u8> = text
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    // Issuer ranges: 2-6 cover Mastercard, Amex, Diners, JCB, Visa,
    // Discover, UnionPay and Maestro; 1 is UATP, which is always 15 digits.
    // This keeps Unix timestamps (ms, us, ns all start with 1) out.
    let issuer_ok = match digits.first() {
        Some(2..=6) => true,
        Some(1) => digits.len() == 15,
        _ => false,
    };
    (issuer_ok && card_grouping_ok(text) && luhn(&digits)).then_some((start, end))
}

/// Separated card numbers are printed in fours (Amex and Diners as 4-6-5 and
/// 4-6-4); other groupings are lists of numbers, not cards.
fn card_grouping_ok(text: &str) -> bool {
    let groups: Vec<usize> = text.split([' ', '-']).map(str::len).collect();
    match groups.as_slice() {
        [_] | [4, 6, 5] | [4, 6, 4] => true,
        [init @ .., last] => init.iter().all(|&len| len == 4) && (1..=4).contains(last),
        [] => false,
    }
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn accept_phone(hay: &str, _: usize, start: usize, end: usize) -> Option<(usize, usize)> {
    if !number_stands_alone(hay, start, end) {
        return None;
    }
    let text = hay.get(start..end)?;
    let digits = text.bytes().filter(u8::is_ascii_digit).count();
    ((9..=15).contains(&digits) && !starts_with_date(text)).then_some((start, end))
}

/// `dd.mm.yyyy` (or with `-`, `/`, space) followed by more numbers reads like
/// a trunk-prefixed phone number, but is a date.
fn starts_with_date(text: &str) -> bool {
    let b = text.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let sep = b.get(2).copied();
    [0, 1, 3, 4, 6, 7, 8, 9].into_iter().all(digit)
        && matches!(sep, Some(b'.' | b'-' | b'/' | b' '))
        && b.get(5).copied() == sep
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn unchanged(line: &str) {
        let out = redact(line);
        assert!(
            matches!(out, Cow::Borrowed(_)) || out == line,
            "{line:?} became {out:?}"
        );
        assert_eq!(out, line);
    }

    fn becomes(line: &str, expected: &str) {
        assert_eq!(redact(line), expected, "redacting {line:?}");
    }

    #[test]
    fn plain_lines_are_borrowed() {
        let line = r#"2026-11-24T09:03:03.244739Z  INFO service::app: request done route="/v1/chat/completions" status=200 latency_ms=0.679"#;
        assert!(matches!(redact(line), Cow::Borrowed(_)));
        assert!(matches!(redact(""), Cow::Borrowed(_)));
    }

    #[test]
    fn emails() {
        becomes("user=alice@example.com", "user=[email]");
        becomes(
            r#"user="bob.smith+tag@mail.example.co.uk" ok"#,
            r#"user="[email]" ok"#,
        );
        becomes("contact: <a_b-c@sub.domain.io>", "contact: <[email]>");
        becomes(
            r#"url="https://user:pa55@db.example.com:5432/x""#,
            r#"url="https://[secret]@db.example.com:5432/x""#,
        );
        becomes(r#"{"msg":"hi\nbob@x.org"}"#, r#"{"msg":"hi\n[email]"}"#);
        unchanged("package@1.2.3 and user@localhost and @mention");
    }

    #[test]
    fn phones_positive() {
        becomes("call +1 555 123 4567 now", "call [phone] now");
        becomes("tel:+44 20 7946 0958", "tel:[phone]");
        becomes("phone=+4915112345678", "phone=[phone]");
        becomes("+1 (555) 123-4567", "[phone]");
        becomes("(555) 123-4567", "[phone]");
        becomes("555-123-4567", "[phone]");
        becomes("555.123.4567", "[phone]");
        becomes("1-555-123-4567", "[phone]");
        becomes("020 7946 0958", "[phone]");
        becomes("(030) 1234567", "[phone]");
        becomes("06 12 34 56 78", "[phone]");
    }

    #[test]
    fn phones_negative() {
        unchanged("on 05.11.2026 12 items, 01-02-2026 10:30");
        unchanged("count=42 took 1234 ms");
        unchanged("version 1.2.3 and 10.20.30 and v2.10.100");
        unchanged("at 2026-11-24T09:03:03.244739Z and 2026-11-24 09:03:03");
        unchanged("created=1732435383 id=5551234567");
        unchanged("latency_ms=0.679 elapsed=00:00:01.234 ttft=123.456789");
        unchanged("id=550e8400-e29b-41d4-a716-446655440000");
        unchanged("id=12345678-1234-1234-1234-123456789012");
        unchanged("HTTP/1.1 200 OK status=404 code=503");
        unchanged("offset +05:30 and +1.5 and +123");
    }

    #[test]
    fn cards() {
        becomes("card 4111 1111 1111 1111 ok", "card [card] ok");
        becomes("card=4111111111111111", "card=[card]");
        becomes("5555-5555-5555-4444", "[card]");
        becomes("amex 3782 822463 10005", "amex [card]");
        becomes("amex 378282246310005", "amex [card]");
        becomes("6011111111111117.", "[card].");
        becomes("x12 4111 1111 1111 1111 2024", "x12 [card] 2024");
        // Not Luhn.
        unchanged("card 4111 1111 1111 1112");
        unchanged("n=4111111111111112");
        // Luhn-valid but Unix timestamps (ms, us), or a list of numbers.
        unchanged("ts=1732435383244 us=1732435383244731");
        unchanged("sizes 4096 8192 12288 16384 24576");
        unchanged("pi=3.14159265358979323");
    }

    #[test]
    fn ipv4() {
        becomes("login from 10.1.2.3", "login from [ipv4]");
        becomes("listening on 127.0.0.1:8080", "listening on [ipv4]:8080");
        becomes("peer=255.255.255.255,", "peer=[ipv4],");
        becomes(r#""ip":"192.168.0.1""#, r#""ip":"[ipv4]""#);
        unchanged("bad 256.1.2.3 and 1.2.3.999");
        unchanged("version 1.2.3 and 1.2.3.4.5 and v1.2.3.4");
    }

    #[test]
    fn ipv6() {
        becomes(
            "from 2001:0db8:85a3:0000:0000:8a2e:0370:7334 ok",
            "from [ipv6] ok",
        );
        becomes("from 2001:db8::8a2e:370:7334", "from [ipv6]");
        becomes("bound [::1]:8080", "bound [[ipv6]]:8080");
        becomes("peer=fe80::1", "peer=[ipv6]");
        becomes("fe80::1: connection refused", "[ipv6]: connection refused");
        becomes("mapped ::ffff:192.168.1.1 here", "mapped [ipv6] here");
        unchanged("service::app: started at 09:03:03 and 12:30:45");
        unchanged("harpoon_core::db::add::fetch and a::b and Vec::new()");
        unchanged("mac 00:1a:2b:3c:4d:5e");
    }

    #[test]
    fn bearer_and_authorization() {
        becomes(
            "Authorization: Bearer abcDEF123456.xyz",
            "Authorization: Bearer [bearer]",
        );
        becomes(
            r#"headers={"authorization": "Basic dXNlcjpwYXNzd29yZA=="}"#,
            r#"headers={"authorization": "Basic [bearer]"}"#,
        );
        becomes("bearer tok_0123456789", "bearer [bearer]");
        becomes("authorization=raw0123456789", "authorization=[bearer]");
        unchanged("bearer token missing; use bearer authentication");
    }

    #[test]
    fn api_keys() {
        becomes("key=sk-proj-abcdefghijklmnopqrstuvwx123", "key=[api-key]");
        becomes("sk-abcdefghijklmnopqrstuvwxyz012345", "[api-key]");
        becomes(
            "token ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "token [api-key]",
        );
        becomes("gho_abcdefghijklmnopqrstuvwxyz0123456789", "[api-key]");
        becomes(
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
            "[api-key]",
        );
        becomes("slack xoxb-1234567890-abcdefghij", "slack [api-key]");
        becomes(
            r#"key="hk_live_9f2c0123456789abcdef0123456789ab""#,
            r#"key="[api-key]""#,
        );
        becomes("hk_test_ABCDEFGHIJKLMNOPQRSTUVWXYZ", "[api-key]");
        becomes("X-API-Key: abc123def456", "X-API-Key: [api-key]");
        becomes("api_key=abc123", "api_key=[api-key]");
        becomes(r#"{"api_key":"abc 123"}"#, r#"{"api_key":"[api-key]"}"#);
        becomes(
            r#"{\"api_key\":\"abc123\"}"#,
            r#"{\"api_key\":\"[api-key]\"}"#,
        );
        becomes(
            r#"Settings { api_key: Some("abc123") }"#,
            r#"Settings { api_key: Some("[api-key]") }"#,
        );
        becomes("OPENAI_API_KEY=xyz789", "OPENAI_API_KEY=[api-key]");
        becomes(
            "password=hunter2 client_secret='s3cr3t'",
            "password=[secret] client_secret='[api-key]'",
        );
        unchanged("task-abcdefghijklmnopqrstuvwxyz sk-short hk_short api_keys=3 max_tokens=512");
    }

    #[test]
    fn aws() {
        becomes("id AKIAIOSFODNN7EXAMPLE used", "id [aws-key] used");
        becomes("ASIAIOSFODNN7EXAMPLE", "[aws-key]");
        becomes(
            "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_access_key=[aws-key]",
        );
        unchanged("AKIAshort and XAKIAIOSFODNN7EXAMPLE");
    }

    #[test]
    fn jwts() {
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        becomes(&format!("token={jwt} next"), "token=[jwt] next");
        becomes(&format!("Bearer {jwt}"), "Bearer [bearer]");
        unchanged("eyJ alone and eyJabc");
    }

    #[test]
    fn every_placeholder_is_known() {
        for rule in &REDACTOR.rules {
            assert!(
                PLACEHOLDERS.contains(&rule.placeholder),
                "{}",
                rule.placeholder
            );
        }
        assert_eq!(REDACTOR.rules.len(), REDACTOR.set.len());
    }

    #[test]
    fn redaction_is_idempotent() {
        let line = "alice@example.com 10.1.2.3 fe80::1 4111111111111111 +1 555 123 4567 \
                    api_key=abc client_secret='x' hk_live_0123456789abcdef0123456789 \
                    Bearer abcdef123456";
        let once = redact(line).into_owned();
        assert_eq!(redact(&once), once);
        assert!(
            !once.contains("alice") && !once.contains("abcdef"),
            "{once}"
        );
    }

    #[test]
    fn non_ascii_text_is_kept() {
        becomes(
            "naïve café ☕ from 10.0.0.1 ✓",
            "naïve café ☕ from [ipv4] ✓",
        );
        unchanged("日本語のログ 123 😀");
    }

    /// A `MakeWriter` over a shared in-memory buffer.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

    impl Write for CaptureWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = CaptureWriter;

        fn make_writer(&'a self) -> Self::Writer {
            CaptureWriter(self.0.clone())
        }
    }

    impl Capture {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn log_event() {
        tracing::info!(
            user = "alice@example.com",
            key = "hk_live_0123456789abcdef0123456789abcdef",
            "login from 10.1.2.3"
        );
        tracing::info!(
            route = "/v1/chat/completions",
            status = 200,
            latency_ms = 0.679,
            "done"
        );
    }

    fn assert_redacted(out: &str) {
        for secret in [
            "alice",
            "example.com",
            "hk_live",
            "0123456789abcdef",
            "10.1.2.3",
        ] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        for placeholder in ["[email]", "[api-key]", "[ipv4]"] {
            assert!(out.contains(placeholder), "{placeholder} missing: {out}");
        }
    }

    #[test]
    fn fmt_subscriber_output_is_redacted() {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(RedactingWriter::new(capture.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, log_event);
        let out = capture.text();
        assert_redacted(&out);
        assert!(out.contains(r#"user="[email]""#), "{out}");
        assert!(out.contains("login from [ipv4]"), "{out}");
        assert!(
            out.contains(r#"route="/v1/chat/completions" status=200 latency_ms=0.679"#),
            "{out}"
        );
        assert_eq!(out.lines().count(), 2, "{out}");
    }

    #[test]
    fn fmt_subscriber_with_colours_is_redacted() {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(true)
            .with_writer(RedactingWriter::new(capture.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(api_key = 12345, password = %"hunter2", "x");
        });
        let out = capture.text();
        assert!(
            !out.contains("12345") && !out.contains("hunter2"),
            "{out:?}"
        );
    }

    #[test]
    fn json_subscriber_output_is_redacted_and_still_json() {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(RedactingWriter::new(capture.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, log_event);
        let out = capture.text();
        assert_redacted(&out);
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["user"], "[email]");
        assert_eq!(lines[0]["key"], "[api-key]");
        assert_eq!(lines[1]["route"], "/v1/chat/completions");
        assert_eq!(lines[1]["status"], 200);
        assert_eq!(lines[1]["latency_ms"], 0.679);
    }

    #[test]
    fn writer_writes_everything_once() {
        let capture = Capture::default();
        let make = RedactingWriter::new(capture.clone());
        {
            let mut writer = make.make_writer();
            writer.write_all(b"first alice@").unwrap();
            writer.write_all(b"example.com\nsecond ").unwrap();
            writer.flush().unwrap();
            // The complete line is out; the partial one waits for drop.
            assert_eq!(capture.text(), "first [email]\n");
            writer.write_all(b"10.0.0.1").unwrap();
            writer.flush().unwrap();
        }
        assert_eq!(capture.text(), "first [email]\nsecond [ipv4]");
        {
            let _unused = make.make_writer();
        }
        assert_eq!(capture.text(), "first [email]\nsecond [ipv4]");
    }

    #[test]
    fn writer_passes_non_utf8_through() {
        let capture = Capture::default();
        let make = RedactingWriter::new(capture.clone());
        {
            let mut writer = make.make_writer();
            writer.write_all(b"bytes \xff\xfe from 10.0.0.1\n").unwrap();
        }
        let raw = capture.0.lock().unwrap().clone();
        assert_eq!(raw, b"bytes \xff\xfe from [ipv4]\n");
    }
}
