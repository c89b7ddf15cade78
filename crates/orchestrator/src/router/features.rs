//! What the classifier sees in a prompt: hashed word unigrams and bigrams,
//! character 4-grams at the start and end of each longer word, and named
//! structural signals.
//!
//! Everything is case-insensitive (ASCII lower-casing) and digits are folded
//! to `0`, so "WRITE A PROOF" and "write a proof", or "15% of 80" and
//! "12% of 60", look alike. Character n-grams are taken only as word affixes
//! ("summ…", "…rize"): n-grams across the whole text memorised the surface
//! style of each training source and transferred worse to other data (see
//! `docs/routing.md`). Work is one pass over at most
//! [`HEAD_BYTES`] + [`TAIL_BYTES`] of the prompt, so a 1 MiB body costs no more
//! than a 12 KiB one; `log_chars` still sees the full length.
//!
//! In a conversation, the earlier user turns add [`context_grams`]: the same
//! n-grams hashed into their own namespace (so "prove" said earlier and
//! "prove" said now are separate weights), read from at most
//! [`CONTEXT_TURNS`] turns of at most [`CONTEXT_HEAD_BYTES`] +
//! [`CONTEXT_TAIL_BYTES`] each, so a long chat costs a bounded amount.

use std::borrow::Cow;

/// Bits of the hashed feature space.
pub const HASH_BITS: u32 = 18;
/// Size of the hashed feature space.
pub const HASH_DIM: usize = 1 << HASH_BITS;
/// Bytes read from the start of a long prompt.
pub const HEAD_BYTES: usize = 8 * 1024;
/// Bytes read from the end of a long prompt (instructions often close a passage).
pub const TAIL_BYTES: usize = 4 * 1024;
/// Changes whenever extraction changes; artefacts record it and a mismatch
/// refuses to load, since old weights would mean nothing.
pub const FEATURE_VERSION: u32 = 3;
/// Earlier user turns of a conversation that are read (the most recent ones).
pub const CONTEXT_TURNS: usize = 3;
/// Bytes read from the start of each earlier turn.
pub const CONTEXT_HEAD_BYTES: usize = 768;
/// Bytes read from the end of each earlier turn.
pub const CONTEXT_TAIL_BYTES: usize = 256;
/// Weight of an earlier turn relative to the one after it: the turn just
/// before the last counts 1, the one before that 0.5, then 0.25.
pub const CONTEXT_DECAY: f32 = 0.5;

/// Names of the structural signals, in weight order.
pub const STRUCTURAL_NAMES: [&str; STRUCTURAL_COUNT] = [
    "log_chars",
    "log_words",
    "log_lines",
    "code_fences",
    "code_symbols",
    "code_keywords",
    "math_symbols",
    "latex",
    "numbers",
    "questions",
    "constraints",
    "enumeration",
    "sequencing",
    "long_output",
    "requested_words",
    "short_output",
    "reasoning_verbs",
    "simple_task_verbs",
    "sentences",
    "mean_word_len",
];
/// Number of structural signals.
pub const STRUCTURAL_COUNT: usize = 20;

/// Structural signal values, each scaled to roughly [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Structural(pub [f32; STRUCTURAL_COUNT]);

impl Structural {
    /// `(name, value)` pairs.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, f32)> + '_ {
        STRUCTURAL_NAMES.iter().copied().zip(self.0.iter().copied())
    }
}

/// Kind of a hashed n-gram, for explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GramKind {
    /// One word or symbol.
    Word,
    /// Two consecutive words or symbols.
    WordPair,
    /// The first four characters of a word of five or more.
    Prefix,
    /// The last four characters of a word of five or more.
    Suffix,
}

/// Receives every hashed n-gram of a prompt.
pub trait GramSink {
    /// One n-gram: its bucket, its kind and its normalised bytes (for `WordPair`,
    /// only the second word).
    fn gram(&mut self, index: u32, kind: GramKind, bytes: &[u8]);
}

impl<F: FnMut(u32)> GramSink for F {
    fn gram(&mut self, index: u32, _kind: GramKind, _bytes: &[u8]) {
        self(index);
    }
}

const SEED_WORD: u64 = 0x9E37_79B9_7F4A_7C15;
const SEED_PAIR: u64 = 0xC2B2_AE3D_27D4_EB4F;
const SEED_PREFIX: u64 = 0x1656_67B1_9E37_79F9;
const SEED_SUFFIX: u64 = 0x85EB_CA77_C2B2_AE63;
/// XORed into every seed for the n-grams of earlier turns.
const NAMESPACE_CONTEXT: u64 = 0x3C6E_F372_FE94_F82B;

/// Bucket of a 64-bit key in one namespace (a multiplicative hash: fast and
/// well spread for the few hundred thousand buckets used here).
#[inline]
fn bucket(key: u64, seed: u64) -> u32 {
    let mixed = (key ^ seed).wrapping_mul(0x2545_F491_4F6C_DD1D);
    let mixed = (mixed ^ (mixed >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (mixed >> (64 - HASH_BITS)) as u32
}

#[inline]
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// Lower-cased ASCII, digits as `0`, whitespace runs as one space.
#[inline]
fn normalise(byte: u8) -> u8 {
    match byte {
        b'0'..=b'9' => b'0',
        b if b.is_ascii_whitespace() => b' ',
        b => b.to_ascii_lowercase(),
    }
}

#[inline]
fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte >= 0x80
}

/// The parts of `text` that are read: all of it, or its head and tail.
/// Surrounding whitespace is not part of a prompt.
fn window(text: &str) -> (&[u8], &[u8]) {
    window_of(text, HEAD_BYTES, TAIL_BYTES)
}

/// The first `head` and last `tail` bytes of the trimmed `text`, or all of it.
fn window_of(text: &str, head: usize, tail: usize) -> (&[u8], &[u8]) {
    let bytes = text.trim().as_bytes();
    if bytes.len() <= head + tail {
        (bytes, &[])
    } else {
        (&bytes[..head], &bytes[bytes.len() - tail..])
    }
}

/// Calls `sink` for every hashed n-gram and returns how many there were.
pub fn hashed_grams(text: &str, sink: &mut impl GramSink) -> u32 {
    let (head, tail) = window(text);
    grams_in(head, tail, 0, sink)
}

/// The part of an earlier turn that is read: all of it, or its first
/// [`CONTEXT_HEAD_BYTES`] and last [`CONTEXT_TAIL_BYTES`] joined by a line
/// break (cut at character boundaries).
pub fn context_excerpt(text: &str) -> Cow<'_, str> {
    let text = text.trim();
    if text.len() <= CONTEXT_HEAD_BYTES + CONTEXT_TAIL_BYTES {
        return Cow::Borrowed(text);
    }
    let mut head = CONTEXT_HEAD_BYTES;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - CONTEXT_TAIL_BYTES;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    Cow::Owned(format!("{}\n{}", &text[..head], &text[tail..]))
}

/// The n-grams of an earlier turn of a conversation, in the context
/// namespace, from its first [`CONTEXT_HEAD_BYTES`] and last
/// [`CONTEXT_TAIL_BYTES`]; returns how many there were.
pub fn context_grams(text: &str, sink: &mut impl GramSink) -> u32 {
    let (head, tail) = window_of(text, CONTEXT_HEAD_BYTES, CONTEXT_TAIL_BYTES);
    grams_in(head, tail, NAMESPACE_CONTEXT, sink)
}

/// The n-grams of `head` then `tail`, each seed XORed with `namespace`.
fn grams_in(head: &[u8], tail: &[u8], namespace: u64, sink: &mut impl GramSink) -> u32 {
    let (seed_word, seed_pair) = (SEED_WORD ^ namespace, SEED_PAIR ^ namespace);
    let (seed_prefix, seed_suffix) = (SEED_PREFIX ^ namespace, SEED_SUFFIX ^ namespace);
    let mut count = 0u32;
    // Words (digit runs fold to one `0`) and single symbols, with pairs.
    let mut word = [0u8; 32];
    let mut previous: Option<u64> = None;
    for part in [head, tail] {
        let mut i = 0;
        while i < part.len() {
            let b = part[i];
            if b.is_ascii_whitespace() {
                i += 1;
                continue;
            }
            let mut len = 0;
            if is_word_byte(b) {
                while i < part.len() && is_word_byte(part[i]) {
                    let n = normalise(part[i]);
                    let folded_digit = n == b'0' && len > 0 && word[len - 1] == b'0';
                    if !folded_digit && len < word.len() {
                        word[len] = n;
                        len += 1;
                    }
                    i += 1;
                }
            } else {
                word[0] = b;
                len = 1;
                i += 1;
            }
            let token = &word[..len];
            let h = fnv1a(token);
            if len >= 5 {
                let (prefix, suffix) = (&token[..4], &token[len - 4..]);
                sink.gram(bucket(fnv1a(prefix), seed_prefix), GramKind::Prefix, prefix);
                sink.gram(bucket(fnv1a(suffix), seed_suffix), GramKind::Suffix, suffix);
                count += 2;
            }
            sink.gram(bucket(h, seed_word), GramKind::Word, token);
            count += 1;
            if let Some(p) = previous {
                sink.gram(
                    bucket(p.rotate_left(17) ^ h, seed_pair),
                    GramKind::WordPair,
                    token,
                );
                count += 1;
            }
            previous = Some(h);
        }
    }
    count
}

fn capped(count: u32, scale: f32) -> f32 {
    (count as f32 / scale).min(1.0)
}

fn log_scaled(count: usize, scale: f32) -> f32 {
    ((1.0 + count as f32).ln() / scale).min(1.5)
}

/// Cue words counted by the structural signals.
#[derive(Clone, Copy)]
enum Cue {
    CodeKeyword,
    Constraint,
    Sequencing,
    LongOutput,
    ShortOutput,
    Reasoning,
    SimpleTask,
}
const CUE_COUNT: usize = 7;

/// Which cue a lower-cased word is, given the word before it.
fn cue(w: &[u8], before: &[u8]) -> Option<Cue> {
    Some(match w {
        b"def" | b"fn" | b"function" | b"class" | b"return" | b"import" | b"include"
        | b"public" | b"private" | b"void" | b"const" | b"let" | b"var" | b"struct" | b"impl"
        | b"async" | b"await" | b"lambda" | b"elif" | b"println" | b"printf" | b"console"
        | b"select" | b"null" | b"int" | b"string" | b"bool" => Cue::CodeKeyword,
        b"must" | b"should" | b"exactly" | b"without" | b"ensure" | b"constraint"
        | b"constraints" | b"require" | b"requirements" | b"each" | b"every" => Cue::Constraint,
        b"least" | b"most" if before == b"at" => Cue::Constraint,
        b"first" | b"then" | b"next" | b"finally" | b"second" | b"third" | b"step" | b"steps"
        | b"afterwards" => Cue::Sequencing,
        b"essay" | b"report" | b"detailed" | b"comprehensive" | b"thorough" | b"article"
        | b"proposal" | b"plan" | b"paragraphs" | b"chapter" | b"sections" | b"outline"
        | b"story" | b"guide" | b"tutorial" => Cue::LongOutput,
        b"briefly" | b"brief" | b"short" | b"concise" | b"tl" => Cue::ShortOutput,
        b"sentence" | b"word" if before == b"one" || before == b"single" => Cue::ShortOutput,
        b"prove" | b"proof" | b"derive" | b"why" | b"analyze" | b"analyse" | b"compare"
        | b"evaluate" | b"justify" | b"design" | b"implement" | b"optimize" | b"optimise"
        | b"algorithm" | b"complexity" | b"tradeoffs" | b"reasoning" | b"calculate" | b"solve"
        | b"debug" | b"refactor" => Cue::Reasoning,
        b"summarize" | b"summarise" | b"summary" | b"translate" | b"extract" | b"classify"
        | b"categorize" | b"categorise" | b"fix" | b"correct" | b"rewrite" | b"paraphrase"
        | b"spell" | b"define" | b"definition" | b"synonym" | b"antonym" | b"convert"
        | b"sentiment" | b"headline" | b"title" | b"keywords" => Cue::SimpleTask,
        _ => return None,
    })
}

/// The structural signals of `text`.
pub fn structural(text: &str) -> Structural {
    let (head, tail) = window(text);
    let mut code_symbols = 0u32;
    let mut math_symbols = 0u32;
    let mut latex = 0u32;
    let mut questions = 0u32;
    let mut sentences = 0u32;
    let mut lines = 1usize;
    let mut enumeration = 0u32;
    let mut fences = 0u32;
    let mut at_line_start = true;
    let bytes: Cow<[u8]> = if tail.is_empty() {
        Cow::Borrowed(head)
    } else {
        Cow::Owned([head, tail].concat())
    };
    for (i, &b) in bytes.iter().enumerate() {
        let next = bytes.get(i + 1).copied().unwrap_or(b' ');
        match b {
            b'{' | b'}' | b';' | b'[' | b']' | b'_' | b'|' | b'&' => code_symbols += 1,
            b'(' | b')' => code_symbols += 1,
            b'^' | b'=' | b'+' | b'*' | b'<' | b'>' | b'%' => math_symbols += 1,
            b'\\' if next.is_ascii_alphabetic() => latex += 1,
            b'$' => latex += 1,
            b'?' => questions += 1,
            b'.' | b'!' if next.is_ascii_whitespace() => sentences += 1,
            b'`' if bytes[i..].starts_with(b"```") => fences += 1,
            b'\n' => lines += 1,
            _ => {}
        }
        if b >= 0x80 && matches!(b, 0xE2) && bytes.get(i + 1) == Some(&0x88) {
            math_symbols += 1; // U+22xx: ∑ ∫ √ ≤ ≥ and friends.
        }
        if at_line_start && !b.is_ascii_whitespace() {
            let rest = &bytes[i..];
            let numbered = rest.len() > 2
                && rest[0].is_ascii_alphanumeric()
                && matches!(rest[1], b'.' | b')')
                && rest[2] == b' ';
            let bullet = rest.len() > 1 && matches!(rest[0], b'-' | b'*') && rest[1] == b' ';
            if numbered || bullet {
                enumeration += 1;
            }
            at_line_start = false;
        }
        if b == b'\n' {
            at_line_start = true;
        }
    }

    let mut words = 0usize;
    let mut numbers = 0usize;
    let mut cues = [0u32; CUE_COUNT];
    let mut requested_words = 0usize;
    let mut word_bytes = 0usize;
    // Every cue word is short; longer words are counted but never matched, so
    // a small stack buffer holds the lower-cased word and the one before it.
    let mut prev = [0u8; 16];
    let mut prev_len = 0usize;
    let mut prev_number: Option<usize> = None;
    for raw in bytes.split(|b| !is_word_byte(*b)).filter(|w| !w.is_empty()) {
        words += 1;
        word_bytes += raw.len();
        let mut buf = [0u8; 16];
        let len = raw.len().min(buf.len());
        for (d, s) in buf.iter_mut().zip(raw) {
            *d = s.to_ascii_lowercase();
        }
        let w = if raw.len() > buf.len() {
            &b"~"[..]
        } else {
            &buf[..len]
        };
        let before = &prev[..prev_len];
        let number = if raw[0].is_ascii_digit() {
            numbers += 1;
            std::str::from_utf8(raw).ok().and_then(|s| s.parse().ok())
        } else {
            None
        };
        if number.is_none() {
            if let (Some(n), b"words" | b"word") = (prev_number, w) {
                requested_words = n;
            }
            if let Some(c) = cue(w, before) {
                cues[c as usize] += 1;
            }
        }
        prev = buf;
        prev_len = len;
        prev_number = number;
    }
    let mean_word_len = if words == 0 {
        0.0
    } else {
        word_bytes as f32 / words as f32
    };
    let cue_share = |c: Cue, scale: f32| capped(cues[c as usize], scale);
    Structural([
        log_scaled(text.trim().len(), 8.0),
        log_scaled(words, 6.0),
        log_scaled(lines, 4.0),
        capped(fences, 2.0),
        (code_symbols as f32 / (bytes.len().max(1) as f32) * 10.0).min(1.0),
        cue_share(Cue::CodeKeyword, 5.0),
        capped(math_symbols, 10.0),
        capped(latex, 5.0),
        log_scaled(numbers, 3.0),
        capped(questions, 5.0),
        cue_share(Cue::Constraint, 5.0),
        capped(enumeration, 5.0),
        cue_share(Cue::Sequencing, 5.0),
        cue_share(Cue::LongOutput, 3.0),
        log_scaled(requested_words, 7.0),
        cue_share(Cue::ShortOutput, 2.0),
        cue_share(Cue::Reasoning, 5.0),
        cue_share(Cue::SimpleTask, 3.0),
        log_scaled(sentences as usize, 4.0),
        (mean_word_len / 10.0).min(1.0),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grams(text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        hashed_grams(text, &mut |i| out.push(i));
        out.sort_unstable();
        out
    }

    fn signal(text: &str, name: &str) -> f32 {
        let s = structural(text);
        s.named().find(|(n, _)| *n == name).map(|(_, v)| v).unwrap()
    }

    #[test]
    fn case_whitespace_and_digits_do_not_change_grams() {
        assert_eq!(grams("What is 15% of 80?"), grams("WHAT  is 23%   of\n47?"));
        assert_ne!(grams("what is 15% of 80?"), grams("what is 15% of 80!"));
    }

    #[test]
    fn emits_words_pairs_and_affixes_with_their_text() {
        let mut seen = Vec::new();
        struct Record<'a>(&'a mut Vec<(GramKind, String)>);
        impl GramSink for Record<'_> {
            fn gram(&mut self, _: u32, kind: GramKind, bytes: &[u8]) {
                self.0
                    .push((kind, String::from_utf8_lossy(bytes).into_owned()));
            }
        }
        let n = hashed_grams("Summarise it!", &mut Record(&mut seen));
        let expect = [
            (GramKind::Prefix, "summ"),
            (GramKind::Suffix, "rise"),
            (GramKind::Word, "summarise"),
            (GramKind::Word, "it"),
            (GramKind::WordPair, "it"),
            (GramKind::Word, "!"),
            (GramKind::WordPair, "!"),
        ];
        let expect: Vec<(GramKind, String)> =
            expect.iter().map(|(k, t)| (*k, (*t).to_owned())).collect();
        assert_eq!(seen, expect);
        assert_eq!(n as usize, seen.len());
    }

    #[test]
    fn counts_every_gram_and_stays_in_range() {
        let text = "Prove that sqrt(2) is irrational.";
        let mut n = 0;
        let total = hashed_grams(text, &mut |i: u32| {
            assert!((i as usize) < HASH_DIM);
            n += 1;
        });
        assert_eq!(total, n);
        assert!(total > 20);
        assert_eq!(hashed_grams("", &mut |_| {}), 0);
    }

    #[test]
    fn long_prompts_read_only_head_and_tail() {
        let long = "word ".repeat(100_000);
        let n = hashed_grams(&long, &mut |_| {});
        assert!(n <= 2 * (HEAD_BYTES + TAIL_BYTES) as u32 / 5 + 2, "{n}");
        assert!(signal(&long, "log_chars") > signal(&"word ".repeat(2_000), "log_chars"));
    }

    #[test]
    fn context_grams_have_their_own_buckets_and_a_bounded_window() {
        let mut context = Vec::new();
        let n = context_grams("Prove that sqrt(2) is irrational.", &mut |i| {
            context.push(i)
        });
        context.sort_unstable();
        assert_eq!(n as usize, context.len());
        let own = grams("Prove that sqrt(2) is irrational.");
        assert_eq!(own.len(), context.len());
        assert!(own.iter().all(|i| context.binary_search(i).is_err()));
        let long = "word ".repeat(10_000);
        assert!(context_excerpt(&long).len() <= CONTEXT_HEAD_BYTES + CONTEXT_TAIL_BYTES + 1);
        let accented = "é".repeat(5_000);
        assert!(
            context_excerpt(&accented)
                .chars()
                .all(|c| c == 'é' || c == '\n')
        );
        let n = context_grams(&long, &mut |_| {});
        assert!(
            n <= 2 * (CONTEXT_HEAD_BYTES + CONTEXT_TAIL_BYTES) as u32 / 5 + 2,
            "{n}"
        );
    }

    #[test]
    fn structural_signals_fire_on_their_cues() {
        assert!(signal("```rust\nfn main() { let x = 1; }\n```", "code_fences") > 0.0);
        assert!(signal("def f(x):\n    return x", "code_keywords") > 0.0);
        assert!(signal("Show that $\\frac{a}{b} \\le 1$", "latex") > 0.0);
        assert!(signal("x^2 + y^2 = z^2", "math_symbols") > 0.0);
        assert!(signal("Write a 1500 words essay", "requested_words") > 0.9);
        assert!(signal("Summarise this in one sentence.", "short_output") > 0.0);
        assert!(signal("Summarise this in one sentence.", "simple_task_verbs") > 0.0);
        assert!(signal("Prove the claim step by step", "reasoning_verbs") > 0.0);
        assert!(signal("1. do this\n2. then that\n- and more", "enumeration") > 0.5);
        assert!(signal("It must have at least 3 items", "constraints") > 0.3);
        for name in STRUCTURAL_NAMES {
            assert_eq!(
                signal("hello there", name) > 0.0,
                matches!(
                    name,
                    "log_chars" | "log_words" | "log_lines" | "mean_word_len"
                ),
                "{name}"
            );
        }
    }
}
