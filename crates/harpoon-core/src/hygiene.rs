//! The hygiene score: individually reported signals, each with its value, its
//! severity in [0, 1] and what its weight took off the score.
//!
//! `score = clamp(1 − Σ weight × severity, 0, 1)`. The weights live in
//! [`WEIGHTS`] and nowhere else (docs/fusion.md repeats them; a test checks).

use crate::{
    language::Language,
    secrets,
    syntax::{self, Structure},
};
use serde::Serialize;
use std::collections::HashMap;

/// Lines longer than this many characters count as long.
pub const LONG_LINE: usize = 100;
/// Nesting deeper than this starts to cost.
pub const NESTING_OK: u32 = 3;
/// Functions longer than this many lines start to cost.
pub const FUNCTION_LINES_OK: usize = 60;
/// McCabe complexity above this starts to cost.
pub const COMPLEXITY_OK: u32 = 10;

/// Every signal with its weight, in report order. The one table of weights.
pub const WEIGHTS: [(&str, f64); 12] = [
    ("syntax_errors", 0.50),
    ("max_nesting_depth", 0.25),
    ("function_length", 0.10),
    ("cyclomatic_complexity", 0.20),
    ("long_lines", 0.05),
    ("trailing_whitespace", 0.05),
    ("mixed_indentation", 0.10),
    ("todo_markers", 0.05),
    ("commented_out_code", 0.10),
    ("debug_output", 0.15),
    ("hard_coded_secrets", 0.70),
    ("duplicated_lines", 0.10),
];

/// One signal of a hygiene report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Signal {
    /// Name, as in [`WEIGHTS`].
    pub name: &'static str,
    /// What was measured (a count, a depth, a length).
    pub value: f64,
    /// How bad that is, in [0, 1].
    pub severity: f64,
    /// The signal's weight.
    pub weight: f64,
    /// What it took off the score (`weight × severity`).
    pub contribution: f64,
    /// Where and what, for a reader (never a secret's value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A fragment's hygiene.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hygiene {
    /// In [0, 1]; 1 is clean.
    pub score: f64,
    /// The language it was read as.
    pub language: Language,
    /// Every signal, in the order of [`WEIGHTS`].
    pub signals: Vec<Signal>,
}

impl Hygiene {
    /// The signal called `name`.
    pub fn signal(&self, name: &str) -> Option<&Signal> {
        self.signals.iter().find(|s| s.name == name)
    }
}

fn ramp(value: f64, ok: f64, full: f64) -> f64 {
    ((value - ok) / (full - ok)).clamp(0.0, 1.0)
}

/// Scores `body` as `language`.
pub fn score(language: Language, path: &str, body: &str) -> Hygiene {
    let structure = syntax::analyse(language, path, body);
    let lines = scan_lines(language, body, &structure);
    let mut raw: Vec<(f64, f64, Option<String>)> = Vec::with_capacity(WEIGHTS.len());

    // syntax_errors
    let n = f64::from(structure.syntax_errors);
    raw.push((
        n,
        if n == 0.0 {
            0.0
        } else {
            (0.6 + 0.2 * (n - 1.0)).min(1.0)
        },
        structure
            .first_error_line
            .map(|l| format!("first error on line {l}")),
    ));
    // max_nesting_depth
    let depth = f64::from(structure.max_nesting);
    let code = !language.is_data();
    raw.push((
        depth,
        if code {
            ramp(depth, f64::from(NESTING_OK), f64::from(NESTING_OK) + 4.0)
        } else {
            0.0
        },
        (!code).then(|| "containers; not scored for data".to_owned()),
    ));
    // function_length
    let longest = structure.functions.iter().max_by_key(|f| f.lines);
    raw.push((
        longest.map_or(0.0, |f| f.lines as f64),
        longest.map_or(0.0, |f| {
            ramp(f.lines as f64, FUNCTION_LINES_OK as f64, 200.0)
        }),
        longest.map(|f| {
            format!(
                "longest of {} functions starts on line {}",
                structure.functions.len(),
                f.line
            )
        }),
    ));
    // cyclomatic_complexity (per function; top-level code counts as one)
    let worst = structure.functions.iter().max_by_key(|f| f.complexity);
    let top = 1 + structure.top_level_complexity;
    let (cc, where_) = match worst {
        Some(f) if f.complexity >= top => (f.complexity, format!("function on line {}", f.line)),
        _ => (top, "top-level code".to_owned()),
    };
    let cc = if code && language != Language::Text {
        cc
    } else {
        0
    };
    raw.push((
        f64::from(cc),
        ramp(f64::from(cc), f64::from(COMPLEXITY_OK), 25.0),
        (cc > 0).then_some(where_),
    ));
    let total = lines.total.max(1) as f64;
    // long_lines
    raw.push((
        lines.long as f64,
        ramp(lines.long as f64 / total, 0.0, 0.2),
        lines
            .first_long
            .map(|l| format!("first on line {l}, over {LONG_LINE} characters")),
    ));
    // trailing_whitespace
    raw.push((
        lines.trailing as f64,
        ramp(lines.trailing as f64 / total, 0.0, 0.25),
        lines.first_trailing.map(|l| format!("first on line {l}")),
    ));
    // mixed_indentation: lines indented against the dominant style
    let minority = lines.tab_indented.min(lines.space_indented);
    let indented = (lines.tab_indented + lines.space_indented).max(1) as f64;
    raw.push((
        minority as f64,
        if minority == 0 {
            0.0
        } else {
            (0.5 + 2.0 * minority as f64 / indented).min(1.0)
        },
        (minority > 0).then(|| {
            format!(
                "{} lines start with tabs, {} with spaces",
                lines.tab_indented, lines.space_indented
            )
        }),
    ));
    // todo_markers
    raw.push((
        lines.todos as f64,
        (lines.todos as f64 / 4.0).min(1.0),
        lines.first_todo.map(|l| format!("first on line {l}")),
    ));
    // commented_out_code
    raw.push((
        lines.commented_code as f64,
        (lines.commented_code as f64 / 6.0).min(1.0),
        lines
            .first_commented_code
            .map(|l| format!("first on line {l}")),
    ));
    // debug_output
    raw.push((
        lines.debug as f64,
        (lines.debug as f64 / 3.0).min(1.0),
        lines.first_debug.map(|l| format!("first on line {l}")),
    ));
    // hard_coded_secrets
    let known = secrets::known_formats(body);
    let mut entropic = 0usize;
    let mut first_entropic = None;
    for (range, line) in &structure.strings {
        let Some(literal) = body.get(range.clone()) else {
            continue;
        };
        let content = secrets::literal_content(literal);
        let before = body.get(..range.start).unwrap_or("");
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let named = secrets::secret_name(&before[line_start..]);
        // A known-format key on the same line is already counted.
        if secrets::high_entropy(content, named) && !known.iter().any(|k| k.line == *line) {
            entropic += 1;
            first_entropic.get_or_insert(*line);
        }
    }
    for (key, value) in &structure.data_strings {
        if secrets::high_entropy(value, secrets::secret_name(key)) && known.is_empty() {
            entropic += 1;
        }
    }
    let found = known.len() + entropic;
    let mut detail: Vec<String> = known
        .iter()
        .map(|k| format!("{} on line {}", k.kind, k.line))
        .collect();
    if entropic > 0 {
        detail.push(match first_entropic {
            Some(l) => format!("{entropic} high-entropy string literal(s), first on line {l}"),
            None => format!("{entropic} high-entropy value(s)"),
        });
    }
    raw.push((
        found as f64,
        if !known.is_empty() {
            1.0
        } else {
            (0.5 * entropic as f64).min(1.0)
        },
        (!detail.is_empty()).then(|| detail.join("; ")),
    ));
    // duplicated_lines
    let significant = lines.significant.max(1) as f64;
    raw.push((
        lines.duplicated as f64,
        ramp(lines.duplicated as f64 / significant, 0.05, 0.25),
        lines
            .first_duplicate
            .map(|l| format!("first repeat on line {l}")),
    ));

    let signals: Vec<Signal> = WEIGHTS
        .iter()
        .zip(raw)
        .map(|(&(name, weight), (value, severity, detail))| Signal {
            name,
            value,
            severity,
            weight,
            contribution: weight * severity,
            detail,
        })
        .collect();
    let score = (1.0 - signals.iter().map(|s| s.contribution).sum::<f64>()).clamp(0.0, 1.0);
    Hygiene {
        score,
        language,
        signals,
    }
}

/// A fast, non-keyed hasher for the duplicate-line map: lines come from one
/// fragment, so flooding resistance buys nothing and SipHash costs a lot.
#[derive(Clone, Copy, Default)]
struct BuildFx;

#[derive(Default)]
struct Fx(u64);

impl std::hash::BuildHasher for BuildFx {
    type Hasher = Fx;
    fn build_hasher(&self) -> Fx {
        Fx(0)
    }
}

impl std::hash::Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(K);
        }
    }
}

#[derive(Debug, Default)]
struct LineStats {
    total: usize,
    long: usize,
    first_long: Option<usize>,
    trailing: usize,
    first_trailing: Option<usize>,
    tab_indented: usize,
    space_indented: usize,
    todos: usize,
    first_todo: Option<usize>,
    commented_code: usize,
    first_commented_code: Option<usize>,
    debug: usize,
    first_debug: Option<usize>,
    significant: usize,
    duplicated: usize,
    first_duplicate: Option<usize>,
}

/// Comment text of a line in a language without a tree (`#` comments).
fn hash_comment(line: &str) -> Option<&str> {
    line.trim_start().strip_prefix('#')
}

fn scan_lines(language: Language, body: &str, structure: &Structure) -> LineStats {
    let mut st = LineStats::default();
    let mut seen: HashMap<&str, u32, BuildFx> = HashMap::with_capacity_and_hasher(64, BuildFx);
    for (i, line) in body.lines().enumerate() {
        let n = i + 1;
        st.total += 1;
        if line.len() > LONG_LINE && line.chars().count() > LONG_LINE {
            st.long += 1;
            st.first_long.get_or_insert(n);
        }
        if line.ends_with([' ', '\t']) {
            st.trailing += 1;
            st.first_trailing.get_or_insert(n);
        }
        match line.as_bytes().first() {
            Some(b'\t') => st.tab_indented += 1,
            // A lone space before `*` continues a block comment; it is not indentation.
            Some(b' ') if !line.trim_start().starts_with('*') => st.space_indented += 1,
            _ => {}
        }
        let t = line.trim();
        if is_debug_line(language, t) {
            st.debug += 1;
            st.first_debug.get_or_insert(n);
        }
        if t.len() >= 12 && t.bytes().any(|b| b.is_ascii_alphanumeric()) {
            st.significant += 1;
            let count = seen.entry(t).or_insert(0);
            *count += 1;
            if *count > 1 {
                st.duplicated += 1;
                st.first_duplicate.get_or_insert(n);
            }
        }
    }
    // Comments: from the tree, or `#` lines where there is none.
    let count_comment = |text: &str, line: usize, st: &mut LineStats| {
        for (k, l) in text.lines().enumerate() {
            let stripped = strip_comment_marker(l);
            if has_marker(stripped) {
                st.todos += 1;
                st.first_todo.get_or_insert(line + k);
            }
            if looks_like_code(stripped) {
                st.commented_code += 1;
                st.first_commented_code.get_or_insert(line + k);
            }
        }
    };
    if language.is_data() || language == Language::Text {
        for (i, line) in body.lines().enumerate() {
            if let Some(c) = hash_comment(line) {
                count_comment(c, i + 1, &mut st);
            }
        }
    } else {
        for (range, line) in &structure.comments {
            let Some(text) = body.get(range.clone()) else {
                continue;
            };
            // Doc comments hold examples on purpose; they are not dead code.
            let doc = text.starts_with("///") || text.starts_with("//!") || text.starts_with("/**");
            let line = *line;
            if doc {
                for (k, l) in text.lines().enumerate() {
                    if has_marker(l) {
                        st.todos += 1;
                        st.first_todo.get_or_insert(line + k);
                    }
                }
            } else {
                count_comment(text, line, &mut st);
            }
        }
    }
    st
}

fn strip_comment_marker(line: &str) -> &str {
    let t = line.trim();
    let t = t.strip_prefix("/*").unwrap_or(t);
    let t = t.strip_suffix("*/").unwrap_or(t);
    t.trim_start_matches(['/', '#', '*']).trim()
}

/// `TODO`, `FIXME` or `XXX` as a word.
fn has_marker(text: &str) -> bool {
    ["TODO", "FIXME", "XXX"].iter().any(|m| {
        text.match_indices(m).any(|(i, _)| {
            let before = text[..i].chars().next_back();
            let after = text[i + m.len()..].chars().next();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    })
}

/// Whether a comment line reads as code rather than prose.
pub fn looks_like_code(text: &str) -> bool {
    let t = text.trim();
    if t.len() < 3 {
        return false;
    }
    const STARTS: [&str; 16] = [
        "let ",
        "fn ",
        "def ",
        "return ",
        "return;",
        "import ",
        "from ",
        "var ",
        "const ",
        "function ",
        "if (",
        "for (",
        "while (",
        "print(",
        "console.",
        "use ",
    ];
    if STARTS.iter().any(|s| t.starts_with(s)) && !t.ends_with('.') {
        return true;
    }
    if t.ends_with(';') || t.ends_with('{') || t == "}" || t == "};" {
        return true;
    }
    // `name = value` and `call(args)` with nothing prose-like around them.
    let ident_call = t.ends_with(')')
        && t.find('(').is_some_and(|p| {
            p > 0
                && t[..p]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.:!".contains(&b))
        });
    let assignment = t
        .split_once(" = ")
        .or_else(|| t.split_once(" := "))
        .is_some_and(|(lhs, _)| {
            !lhs.is_empty()
                && lhs
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.[]".contains(&b))
        });
    ident_call || assignment
}

/// Whether a trimmed line is leftover debug output in `language`.
pub fn is_debug_line(language: Language, t: &str) -> bool {
    match language {
        Language::Rust => {
            if !t.contains("!(") || t.starts_with("//") {
                return false;
            }
            t.contains("dbg!(")
                || ["println!(", "eprintln!(", "print!(", "eprint!("]
                    .iter()
                    .any(|p| t.starts_with(p))
        }
        Language::Python => {
            t.starts_with("print(") || t.starts_with("pprint(") || t.starts_with("breakpoint()")
        }
        Language::Javascript | Language::Typescript => {
            t.starts_with("console.log(")
                || t.starts_with("console.debug(")
                || t.starts_with("console.dir(")
                || t == "debugger;"
                || t == "debugger"
        }
        Language::Go => {
            t.starts_with("fmt.Println(")
                || t.starts_with("println(")
                || t.starts_with("spew.Dump(")
        }
        _ => false,
    }
}
