//! Structure of a fragment: syntax errors, nesting, functions and their
//! complexity, comments and string literals. Code goes through tree-sitter,
//! data through its serde parser.
//!
//! Fragments are often parts of files (a method, a block, an indented body), so
//! a parse with errors is retried inside a few enclosing contexts and the
//! reading with the fewest errors counts: only what no context can explain is a
//! syntax error.

use crate::language::Language;
use std::{cell::RefCell, ops::Range, sync::OnceLock};
use tree_sitter::{Node, Parser, Tree};

/// A function found in the fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionStat {
    /// First line (1-based, in the fragment).
    pub line: usize,
    /// Lines it spans.
    pub lines: usize,
    /// McCabe complexity: 1 + decision points.
    pub complexity: u32,
}

/// What parsing found.
#[derive(Debug, Clone, Default)]
pub struct Structure {
    /// Error and missing nodes (code), or 1 when a data parser refused the text.
    pub syntax_errors: u32,
    /// First line with an error (1-based), if any.
    pub first_error_line: Option<usize>,
    /// Deepest nesting of control structures (or of containers in data).
    pub max_nesting: u32,
    /// Functions, in source order.
    pub functions: Vec<FunctionStat>,
    /// Decision points outside any function (a script, a bare block).
    pub top_level_complexity: u32,
    /// Byte ranges of comments in the body, with their first line (1-based).
    pub comments: Vec<(Range<usize>, usize)>,
    /// Byte ranges of string literals long enough to hold a secret, with their line.
    pub strings: Vec<(Range<usize>, usize)>,
    /// String values of data files with the key they sit under.
    pub data_strings: Vec<(String, String)>,
}

// Node classes, as bit flags indexed by tree-sitter kind id.
const FUNC: u8 = 1;
const NEST: u8 = 2;
const DECIDE: u8 = 4;
const BINOP: u8 = 8;
const ELSE: u8 = 16;
const IF: u8 = 32;
const COMMENT: u8 = 64;
const STRING: u8 = 128;

/// Strings shorter than this cannot hold a credential worth reporting.
pub const MIN_SECRET_LEN: usize = 16;

struct Grammar {
    language: tree_sitter::Language,
    flags: Vec<u8>,
    operator_field: Option<std::num::NonZeroU16>,
    logical_ops: Vec<u16>,
    wrappers: &'static [Wrapper],
}

/// An enclosing context a partial fragment may belong to.
struct Wrapper {
    head: &'static str,
    tail: &'static str,
    /// Indent the body (Python blocks).
    indent: bool,
    /// Nesting the wrapper itself adds.
    nest: u32,
}

const RUST_WRAPPERS: &[Wrapper] = &[
    Wrapper {
        head: "fn __fragment() {\n",
        tail: "\n}\n",
        indent: false,
        nest: 0,
    },
    Wrapper {
        head: "impl __Fragment {\n",
        tail: "\n}\n",
        indent: false,
        nest: 0,
    },
    Wrapper {
        head: "fn __fragment() { match __x {\n",
        tail: "\n} }\n",
        indent: false,
        nest: 1,
    },
];
const PYTHON_WRAPPERS: &[Wrapper] = &[
    Wrapper {
        head: "def __fragment():\n",
        tail: "\n",
        indent: true,
        nest: 0,
    },
    Wrapper {
        head: "class __Fragment:\n",
        tail: "\n",
        indent: true,
        nest: 0,
    },
];
const JS_WRAPPERS: &[Wrapper] = &[
    Wrapper {
        head: "function __fragment() {\n",
        tail: "\n}\n",
        indent: false,
        nest: 0,
    },
    Wrapper {
        head: "class __Fragment {\n",
        tail: "\n}\n",
        indent: false,
        nest: 0,
    },
    Wrapper {
        head: "switch (__x) {\n",
        tail: "\n}\n",
        indent: false,
        nest: 1,
    },
];
const GO_WRAPPERS: &[Wrapper] = &[
    Wrapper {
        head: "package p\n",
        tail: "\n",
        indent: false,
        nest: 0,
    },
    Wrapper {
        head: "package p\nfunc __fragment() {\n",
        tail: "\n}\n",
        indent: false,
        nest: 0,
    },
    Wrapper {
        head: "package p\nfunc __fragment() {\nswitch {\n",
        tail: "\n}\n}\n",
        indent: false,
        nest: 1,
    },
];

struct KindSpec {
    func: &'static [&'static str],
    nest: &'static [&'static str],
    decide: &'static [&'static str],
    binop: &'static [&'static str],
    else_: &'static [&'static str],
    if_: &'static [&'static str],
    comment: &'static [&'static str],
    string: &'static [&'static str],
    logical: &'static [&'static str],
}

const RUST_KINDS: KindSpec = KindSpec {
    func: &["function_item"],
    nest: &[
        "if_expression",
        "for_expression",
        "while_expression",
        "loop_expression",
        "match_expression",
        "closure_expression",
    ],
    decide: &[
        "if_expression",
        "for_expression",
        "while_expression",
        "match_arm",
    ],
    binop: &["binary_expression"],
    else_: &["else_clause"],
    if_: &["if_expression"],
    comment: &["line_comment", "block_comment"],
    string: &["string_literal", "raw_string_literal"],
    logical: &["&&", "||"],
};
const PYTHON_KINDS: KindSpec = KindSpec {
    func: &["function_definition"],
    nest: &[
        "if_statement",
        "for_statement",
        "while_statement",
        "try_statement",
        "with_statement",
        "match_statement",
    ],
    decide: &[
        "if_statement",
        "elif_clause",
        "for_statement",
        "while_statement",
        "except_clause",
        "conditional_expression",
        "boolean_operator",
        "case_clause",
        "if_clause",
    ],
    binop: &[],
    else_: &[],
    if_: &["if_statement"],
    comment: &["comment"],
    string: &["string"],
    logical: &[],
};
const JS_KINDS: KindSpec = KindSpec {
    func: &[
        "function_declaration",
        "function_expression",
        "function",
        "arrow_function",
        "method_definition",
        "generator_function_declaration",
        "generator_function",
    ],
    nest: &[
        "if_statement",
        "for_statement",
        "for_in_statement",
        "while_statement",
        "do_statement",
        "switch_statement",
        "try_statement",
    ],
    decide: &[
        "if_statement",
        "for_statement",
        "for_in_statement",
        "while_statement",
        "do_statement",
        "switch_case",
        "catch_clause",
        "ternary_expression",
    ],
    binop: &["binary_expression"],
    else_: &["else_clause"],
    if_: &["if_statement"],
    comment: &["comment"],
    string: &["string", "template_string"],
    logical: &["&&", "||", "??"],
};
const GO_KINDS: KindSpec = KindSpec {
    func: &["function_declaration", "method_declaration", "func_literal"],
    nest: &[
        "if_statement",
        "for_statement",
        "expression_switch_statement",
        "type_switch_statement",
        "select_statement",
    ],
    decide: &[
        "if_statement",
        "for_statement",
        "expression_case",
        "type_case",
        "communication_case",
    ],
    binop: &["binary_expression"],
    else_: &[],
    if_: &["if_statement"],
    comment: &["comment"],
    string: &["interpreted_string_literal", "raw_string_literal"],
    logical: &["&&", "||"],
};

impl Grammar {
    fn new(language: tree_sitter::Language, spec: &KindSpec, wrappers: &'static [Wrapper]) -> Self {
        let mut flags = vec![0u8; language.node_kind_count() + 1];
        let mut mark = |kinds: &[&str], flag: u8| {
            for kind in kinds {
                let id = language.id_for_node_kind(kind, true);
                if id != 0
                    && let Some(f) = flags.get_mut(usize::from(id))
                {
                    *f |= flag;
                }
            }
        };
        mark(spec.func, FUNC);
        mark(spec.nest, NEST);
        mark(spec.decide, DECIDE);
        mark(spec.binop, BINOP);
        mark(spec.else_, ELSE);
        mark(spec.if_, IF);
        mark(spec.comment, COMMENT);
        mark(spec.string, STRING);
        let logical_ops = spec
            .logical
            .iter()
            .map(|op| language.id_for_node_kind(op, false))
            .filter(|id| *id != 0)
            .collect();
        Self {
            operator_field: language.field_id_for_name("operator"),
            language,
            flags,
            logical_ops,
            wrappers,
        }
    }

    fn flags(&self, kind_id: u16) -> u8 {
        self.flags.get(usize::from(kind_id)).copied().unwrap_or(0)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum GrammarId {
    Rust,
    Python,
    Javascript,
    Typescript,
    Tsx,
    Go,
}

fn grammar(id: GrammarId) -> &'static Grammar {
    static GRAMMARS: [OnceLock<Grammar>; 6] = [const { OnceLock::new() }; 6];
    GRAMMARS[id as usize].get_or_init(|| match id {
        GrammarId::Rust => Grammar::new(
            tree_sitter_rust::LANGUAGE.into(),
            &RUST_KINDS,
            RUST_WRAPPERS,
        ),
        GrammarId::Python => Grammar::new(
            tree_sitter_python::LANGUAGE.into(),
            &PYTHON_KINDS,
            PYTHON_WRAPPERS,
        ),
        GrammarId::Javascript => Grammar::new(
            tree_sitter_javascript::LANGUAGE.into(),
            &JS_KINDS,
            JS_WRAPPERS,
        ),
        GrammarId::Typescript => Grammar::new(
            tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            &JS_KINDS,
            JS_WRAPPERS,
        ),
        GrammarId::Tsx => Grammar::new(
            tree_sitter_typescript::LANGUAGE_TSX.into(),
            &JS_KINDS,
            JS_WRAPPERS,
        ),
        GrammarId::Go => Grammar::new(tree_sitter_go::LANGUAGE.into(), &GO_KINDS, GO_WRAPPERS),
    })
}

thread_local! {
    // Parsers are not Sync and cost allocations to set up: one per thread and grammar.
    static PARSERS: RefCell<[Option<Parser>; 6]> = const { RefCell::new([None, None, None, None, None, None]) };
}

fn parse(id: GrammarId, text: &str) -> Option<Tree> {
    PARSERS.with(|cell| {
        let mut parsers = cell.borrow_mut();
        let slot = &mut parsers[id as usize];
        if slot.is_none() {
            let mut parser = Parser::new();
            parser.set_language(&grammar(id).language).ok()?;
            *slot = Some(parser);
        }
        let parser = slot.as_mut()?;
        let tree = parser.parse(text, None);
        if tree.is_none() {
            parser.reset();
        }
        tree
    })
}

/// Analyses the body as `language` (the path picks TSX over TypeScript).
pub fn analyse(language: Language, path: &str, body: &str) -> Structure {
    let id = match language {
        Language::Rust => GrammarId::Rust,
        Language::Python => GrammarId::Python,
        Language::Javascript => GrammarId::Javascript,
        Language::Typescript if path.ends_with(".tsx") => GrammarId::Tsx,
        Language::Typescript => GrammarId::Typescript,
        Language::Go => GrammarId::Go,
        Language::Json | Language::Yaml | Language::Toml => return analyse_data(language, body),
        Language::Text => return Structure::default(),
    };
    analyse_code(id, body)
}

fn analyse_code(id: GrammarId, body: &str) -> Structure {
    let g = grammar(id);
    // Python blocks cut from a class or function keep their indentation.
    let dedented;
    let source: &str = if id == GrammarId::Python {
        dedented = dedent(body);
        &dedented
    } else {
        body
    };
    let Some(tree) = parse(id, source) else {
        return Structure {
            syntax_errors: 1,
            first_error_line: Some(1),
            ..Structure::default()
        };
    };
    let mut best = walk(g, tree.root_node(), 0, 0);
    if best.syntax_errors == 0 {
        if id != GrammarId::Python || source.len() == body.len() {
            return best;
        }
        // Ranges refer to the dedented text; redo them on the body itself.
        return remap_ranges(best, body);
    }
    for wrapper in g.wrappers {
        let mut text = String::with_capacity(source.len() + 64);
        text.push_str(wrapper.head);
        if wrapper.indent {
            for line in source.lines() {
                text.push_str("    ");
                text.push_str(line);
                text.push('\n');
            }
        } else {
            text.push_str(source);
        }
        text.push_str(wrapper.tail);
        let Some(tree) = parse(id, &text) else {
            continue;
        };
        let head_lines = wrapper.head.matches('\n').count();
        let mut s = walk(g, tree.root_node(), wrapper.head.len(), head_lines);
        s.max_nesting = s.max_nesting.saturating_sub(wrapper.nest);
        if s.syntax_errors < best.syntax_errors {
            // Comment and string ranges point into the wrapped text; the line
            // scan finds them again on the body.
            s.comments.clear();
            s.strings.clear();
            best = s;
            if best.syntax_errors == 0 {
                break;
            }
        }
    }
    let shifted = id == GrammarId::Python && source.len() != body.len();
    if shifted || (best.comments.is_empty() && best.strings.is_empty()) {
        best = remap_ranges(best, body);
    }
    best
}

/// Comment and string ranges found again with a lexical scan of the body,
/// for readings where the tree's offsets do not match it.
fn remap_ranges(mut s: Structure, body: &str) -> Structure {
    s.comments.clear();
    s.strings.clear();
    let bytes = body.as_bytes();
    let mut i = 0;
    let mut line = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b'#' | b'/' if bytes[i] == b'#' || bytes.get(i + 1) == Some(&b'/') => {
                let end = body[i..].find('\n').map_or(body.len(), |n| i + n);
                s.comments.push((i..end, line));
                i = end;
            }
            q @ (b'"' | b'\'' | b'`') => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != q && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let end = (i + 1).min(bytes.len());
                if end - start >= MIN_SECRET_LEN {
                    s.strings.push((start..end, line));
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    s
}

/// Removes the indentation every non-blank line shares.
fn dedent(body: &str) -> String {
    let common = body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);
    if common == 0 {
        return body.to_owned();
    }
    let mut out = String::with_capacity(body.len());
    for line in body.split_inclusive('\n') {
        out.push_str(
            line.get(common..)
                .unwrap_or_else(|| line.trim_start_matches([' ', '\t'])),
        );
    }
    out
}

#[derive(Clone, Copy)]
struct Frame {
    nest: u32,
    func: Option<usize>,
    flags: u8,
}

/// One pass over the tree. `offset` is where the fragment starts in the parsed text
/// (after a wrapper's head), `line_offset` the wrapper's lines.
fn walk(g: &Grammar, root: Node<'_>, offset: usize, line_offset: usize) -> Structure {
    let mut s = Structure::default();
    let check_errors = root.has_error();
    let mut cursor = root.walk();
    let mut stack: Vec<Frame> = Vec::with_capacity(64);
    let mut parent = Frame {
        nest: 0,
        func: None,
        flags: 0,
    };
    loop {
        let node = cursor.node();
        let flags = g.flags(node.kind_id());
        let mut frame = Frame {
            nest: parent.nest,
            func: parent.func,
            flags,
        };
        if check_errors && (node.is_error() || node.is_missing()) {
            s.syntax_errors += 1;
            if s.first_error_line.is_none() {
                let row = node.start_position().row;
                s.first_error_line = Some(row.saturating_sub(line_offset) + 1);
            }
        }
        if flags != 0 {
            if flags & NEST != 0 {
                let else_if = flags & IF != 0 && parent.flags & (ELSE | IF) != 0;
                if !else_if {
                    frame.nest += 1;
                    s.max_nesting = s.max_nesting.max(frame.nest);
                }
            }
            if flags & FUNC != 0 {
                // A wrapper's own function is the fragment's top level, not a function of it.
                if offset == 0 || node.start_byte() >= offset {
                    let start = node.start_position().row;
                    let end = node.end_position().row;
                    s.functions.push(FunctionStat {
                        line: start.saturating_sub(line_offset) + 1,
                        lines: end - start + 1,
                        complexity: 1,
                    });
                    frame.func = Some(s.functions.len() - 1);
                }
            }
            let mut decision = flags & DECIDE != 0;
            if flags & BINOP != 0
                && let Some(op) = g
                    .operator_field
                    .and_then(|f| node.child_by_field_id(f.get()))
            {
                decision = g.logical_ops.contains(&op.kind_id());
            }
            if decision {
                match frame.func.and_then(|f| s.functions.get_mut(f)) {
                    Some(f) => f.complexity += 1,
                    None => s.top_level_complexity += 1,
                }
            }
            if node.start_byte() >= offset {
                let range = (node.start_byte() - offset)..(node.end_byte() - offset);
                let line = node.start_position().row.saturating_sub(line_offset) + 1;
                if flags & COMMENT != 0 {
                    s.comments.push((range, line));
                } else if flags & STRING != 0 && range.len() >= MIN_SECRET_LEN {
                    s.strings.push((range, line));
                }
            }
        }
        if flags & (COMMENT | STRING) == 0 && cursor.goto_first_child() {
            stack.push(parent);
            parent = frame;
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return s;
            }
            parent = stack.pop().unwrap_or(Frame {
                nest: 0,
                func: None,
                flags: 0,
            });
        }
    }
}

/// Containers nested deeper than this are refused unparsed: recursive parsers
/// (and the walk below) would otherwise risk the stack on hostile input.
pub const MAX_DATA_DEPTH: usize = 128;

/// Deepest `[`/`{` nesting, counted without regard to strings: an upper bound.
fn bracket_depth(body: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for b in body.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn analyse_data(language: Language, body: &str) -> Structure {
    let mut s = Structure::default();
    if bracket_depth(body) > MAX_DATA_DEPTH {
        s.syntax_errors = 1;
        s.first_error_line = Some(1);
        return s;
    }
    let result: Result<serde_json::Value, (String, Option<usize>)> = match language {
        Language::Json => serde_json::from_str(body).map_err(|e| (e.to_string(), Some(e.line()))),
        Language::Yaml => serde_yaml_ng::from_str::<serde_yaml_ng::Value>(body)
            .map_err(|e| (e.to_string(), e.location().map(|l| l.line())))
            .and_then(|v| serde_json::to_value(v).map_err(|e| (e.to_string(), None))),
        _ => body
            .parse::<toml::Table>()
            .map_err(|e| {
                let line = e
                    .span()
                    .map(|span| body[..span.start.min(body.len())].matches('\n').count() + 1);
                (e.to_string(), line)
            })
            .and_then(|v| serde_json::to_value(v).map_err(|e| (e.to_string(), None))),
    };
    match result {
        Ok(value) => {
            s.max_nesting = data_depth(&value, "", &mut s.data_strings);
        }
        Err((_, line)) => {
            s.syntax_errors = 1;
            s.first_error_line = Some(line.unwrap_or(1));
        }
    }
    s
}

fn data_depth(value: &serde_json::Value, key: &str, strings: &mut Vec<(String, String)>) -> u32 {
    match value {
        serde_json::Value::Array(items) => {
            1 + items
                .iter()
                .map(|v| data_depth(v, key, strings))
                .max()
                .unwrap_or(0)
        }
        serde_json::Value::Object(map) => {
            1 + map
                .iter()
                .map(|(k, v)| data_depth(v, k, strings))
                .max()
                .unwrap_or(0)
        }
        serde_json::Value::String(text) if text.len() >= MIN_SECRET_LEN => {
            strings.push((key.to_owned(), text.clone()));
            0
        }
        _ => 0,
    }
}
