//! Refiners turn a fragment below the threshold into a better one. The default
//! makes only safe, mechanical fixes; a model-backed refiner can be plugged in.

use crate::{Fragment, Hygiene, hygiene::is_debug_line, language::Language};

/// Why a refiner could not propose anything (a model that could not answer,
/// an answer with no code in it); the fragment stays pending with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RefineError(pub String);

/// Proposes a better body for a fragment that scored below the threshold.
pub trait Refiner: Send + Sync {
    /// A new body, `Ok(None)` when it has nothing to offer, or why it failed.
    fn refine(
        &self,
        fragment: &Fragment,
        language: Language,
        hygiene: &Hygiene,
    ) -> Result<Option<String>, RefineError>;

    /// Name shown in pending messages.
    fn name(&self) -> &str;

    /// Whether `refine` waits on I/O (a model) rather than computing: the
    /// cycle then calls it outside the scoring pool, one fragment at a time.
    fn waits(&self) -> bool {
        false
    }
}

/// Trailing whitespace removed, indentation brought to the fragment's dominant
/// style, whole-line debug output removed. Nothing that changes what the code does.
#[derive(Debug, Clone, Copy, Default)]
pub struct MechanicalRefiner;

impl Refiner for MechanicalRefiner {
    fn refine(
        &self,
        fragment: &Fragment,
        language: Language,
        _hygiene: &Hygiene,
    ) -> Result<Option<String>, RefineError> {
        let refined = mechanical_fix(language, &fragment.body);
        Ok((refined != fragment.body).then_some(refined))
    }

    fn name(&self) -> &str {
        "mechanical"
    }
}

/// The mechanical fixes, applied to `body`.
pub fn mechanical_fix(language: Language, body: &str) -> String {
    let lines: Vec<&str> = body.lines().collect();
    let tabs = lines.iter().filter(|l| l.starts_with('\t')).count();
    let spaces = lines
        .iter()
        .filter(|l| l.starts_with(' ') && !l.trim_start().starts_with('*'))
        .count();
    let unit = indent_unit(&lines);
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim_end_matches([' ', '\t']);
        let t = line.trim_start();
        if is_debug_line(language, t) && single_statement(t) {
            if language == Language::Python {
                // An emptied block is a syntax error in Python; `pass` keeps it a block.
                let opens_block = out
                    .iter()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .is_some_and(|l| l.trim_end().ends_with(':'));
                let next_deeper = lines[i + 1..]
                    .iter()
                    .find(|l| !l.trim().is_empty())
                    .is_some_and(|l| indent_width(l, unit) >= indent_width(line, unit));
                if opens_block && !next_deeper {
                    out.push(format!("{}pass", &line[..line.len() - t.len()]));
                }
            }
            continue;
        }
        let lead = &line[..line.len() - t.len()];
        let fixed_lead = if tabs > 0 && spaces > 0 {
            let width = indent_width(lead, unit);
            if tabs > spaces {
                format!("{}{}", "\t".repeat(width / unit), " ".repeat(width % unit))
            } else {
                " ".repeat(width)
            }
        } else {
            lead.to_owned()
        };
        out.push(format!("{fixed_lead}{t}"));
    }
    let mut joined = out.join("\n");
    if body.ends_with('\n') {
        joined.push('\n');
    }
    joined
}

/// The fragment's indentation step in spaces (a tab counts as one step).
fn indent_unit(lines: &[&str]) -> usize {
    let mut unit = 0usize;
    for l in lines {
        let n = l.len() - l.trim_start_matches(' ').len();
        if n > 0 && !l.starts_with('\t') && !l.trim_start().starts_with('*') {
            unit = if unit == 0 { n } else { gcd(unit, n) };
        }
    }
    if unit < 2 { 4 } else { unit }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn indent_width(line: &str, unit: usize) -> usize {
    line.chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .map(|c| if c == '\t' { unit } else { 1 })
        .sum()
}

/// A debug call that is the whole line: balanced parentheses, ends the statement.
fn single_statement(t: &str) -> bool {
    let open = t.matches('(').count();
    let close = t.matches(')').count();
    open == close && (t.ends_with(';') || t.ends_with(')') || t.starts_with("debugger"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixes_whitespace_indentation_and_debug_lines() {
        let body =
            "fn f(x: u32) -> u32 {   \n    let y = x + 1;\n\tprintln!(\"y = {y}\");\n    y\n}\n";
        assert_eq!(
            mechanical_fix(Language::Rust, body),
            "fn f(x: u32) -> u32 {\n    let y = x + 1;\n    y\n}\n"
        );
        // Dominant tabs win; a debug line that is not a whole statement stays.
        let go = "func f() {\n\tx := 1\n\ty := 2\n    z := 3\n\tfmt.Println(x,\n\t\ty)\n}";
        assert_eq!(
            mechanical_fix(Language::Go, go),
            "func f() {\n\tx := 1\n\ty := 2\n\tz := 3\n\tfmt.Println(x,\n\t\ty)\n}"
        );
    }

    #[test]
    fn python_blocks_keep_a_statement() {
        let py = "if x:\n    print(x)\ny = 1\n";
        assert_eq!(
            mechanical_fix(Language::Python, py),
            "if x:\n    pass\ny = 1\n"
        );
        let py = "if x:\n    print(x)\n    y = 1\n";
        assert_eq!(mechanical_fix(Language::Python, py), "if x:\n    y = 1\n");
    }
}
