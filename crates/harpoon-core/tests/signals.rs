//! Every signal, with a fixture that must trigger it and one that must not, in
//! each tree-sitter language; then the data languages and the golden ranking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use harpoon_core::{Fragment, FusionSettings, HarpoonEngine, Hygiene, Language, WEIGHTS};

#[derive(Clone, Copy, Debug)]
enum L {
    Rust,
    Python,
    Js,
    Ts,
    Go,
}

const ALL: [L; 5] = [L::Rust, L::Python, L::Js, L::Ts, L::Go];

impl L {
    fn path(self) -> &'static str {
        match self {
            L::Rust => "src/lib.rs",
            L::Python => "pkg/mod.py",
            L::Js => "web/app.js",
            L::Ts => "web/app.ts",
            L::Go => "cmd/main.go",
        }
    }
    fn language(self) -> Language {
        match self {
            L::Rust => Language::Rust,
            L::Python => Language::Python,
            L::Js => Language::Javascript,
            L::Ts => Language::Typescript,
            L::Go => Language::Go,
        }
    }
    fn indent(self, depth: usize) -> String {
        match self {
            L::Go => "\t".repeat(depth),
            _ => "    ".repeat(depth),
        }
    }
    fn stmt(self, i: usize) -> String {
        match self {
            L::Rust => format!("let v{i} = x + {i};"),
            L::Python => format!("v{i} = x + {i}"),
            L::Js | L::Ts => format!("const v{i} = x + {i};"),
            L::Go => format!("v{i} := x + {i}"),
        }
    }
    fn if_open(self, i: usize) -> String {
        match self {
            L::Rust | L::Go => format!("if x > {i} {{"),
            L::Python => format!("if x > {i}:"),
            L::Js | L::Ts => format!("if (x > {i}) {{"),
        }
    }
    fn close(self) -> Option<&'static str> {
        match self {
            L::Python => None,
            _ => Some("}"),
        }
    }
    fn comment(self, text: &str) -> String {
        match self {
            L::Python => format!("# {text}"),
            _ => format!("// {text}"),
        }
    }
    fn debug(self) -> &'static str {
        match self {
            L::Rust => "println!(\"{}\", x);",
            L::Python => "print(x)",
            L::Js | L::Ts => "console.log(x);",
            L::Go => "fmt.Println(x)",
        }
    }
    fn not_debug(self) -> &'static str {
        match self {
            L::Rust => "let printed = report.print_summary(x);",
            L::Python => "printed = report.print_summary(x)",
            L::Js | L::Ts => "const printed = report.printSummary(x);",
            L::Go => "printed := report.PrintSummary(x)",
        }
    }
    fn assign_str(self, name: &str, value: &str) -> String {
        match self {
            L::Rust => format!("let {name} = \"{value}\";"),
            L::Python => format!("{name} = \"{value}\""),
            L::Js | L::Ts => format!("const {name} = \"{value}\";"),
            L::Go => format!("{name} := \"{value}\""),
        }
    }
    /// A function around `body` (lines with their depth inside the function).
    fn function(self, body: &[(usize, String)]) -> String {
        let (head, ret) = match self {
            L::Rust => ("fn compute(x: i32) -> i32 {", "x"),
            L::Python => ("def compute(x):", "return x"),
            L::Js => ("function compute(x) {", "return x;"),
            L::Ts => ("function compute(x: number): number {", "return x;"),
            L::Go => ("func compute(x int) int {", "return x"),
        };
        let mut out = format!("{head}\n");
        for (depth, line) in body {
            out.push_str(&format!("{}{line}\n", self.indent(depth + 1)));
        }
        out.push_str(&format!("{}{ret}\n", self.indent(1)));
        if let Some(c) = self.close() {
            out.push_str(c);
            out.push('\n');
        }
        out
    }
    fn truncated(self) -> &'static str {
        match self {
            L::Rust => "fn compute(x: i32) -> i32 {\n    let y = (x + ;\n    if y > 2 {\n",
            L::Python => "def compute(x):\n    y = (x +\n    if y > 2\n",
            L::Js => "function compute(x) {\n    const y = (x + ;\n    if (y > 2 {\n",
            L::Ts => {
                "function compute(x: number): number {\n    const y = (x + ;\n    if (y > 2 {\n"
            }
            L::Go => "func compute(x int) int {\n\ty := (x + \n\tif y > 2 {\n",
        }
    }
    /// A valid part of a file that is not a valid file on its own.
    fn partial(self) -> &'static str {
        match self {
            L::Rust => "let y = x + 1;\nif y > 2 {\n    return y;\n}\ny * 2",
            L::Python => "    def area(self):\n        return self.w * self.h\n",
            L::Js => "render() {\n    return this.name;\n}\n",
            L::Ts => "render(): string {\n    return this.name;\n}\n",
            L::Go => "case 1:\n\treturn x\ndefault:\n\treturn 0\n",
        }
    }
}

fn clean_body(l: L) -> Vec<(usize, String)> {
    vec![(0, l.stmt(1)), (0, l.stmt(2))]
}

fn score(l: L, body: &str) -> Hygiene {
    let engine = HarpoonEngine::new(&FusionSettings {
        cache_entries: 0,
        ..FusionSettings::default()
    });
    let h = engine.score(&Fragment::new(l.path(), body));
    assert_eq!(h.language, l.language());
    h
}

fn severity(h: &Hygiene, name: &str) -> f64 {
    h.signal(name).unwrap().severity
}

fn assert_signal(l: L, name: &str, positive: &str, negative: &str) {
    let p = score(l, positive);
    let n = score(l, negative);
    assert!(
        severity(&p, name) > 0.0,
        "{l:?} {name}: positive fixture not caught\n{positive}\n{p:#?}"
    );
    assert_eq!(
        severity(&n, name),
        0.0,
        "{l:?} {name}: negative fixture flagged\n{negative}\n{n:#?}"
    );
    assert!(
        p.score < n.score || name == "syntax_errors",
        "{l:?} {name}: the positive should score lower"
    );
}

#[test]
fn clean_functions_score_one_in_every_language() {
    for l in ALL {
        let h = score(l, &l.function(&clean_body(l)));
        assert_eq!(h.score, 1.0, "{l:?}: {h:#?}");
        assert_eq!(h.signals.len(), WEIGHTS.len());
    }
}

#[test]
fn syntax_errors() {
    for l in ALL {
        assert_signal(
            l,
            "syntax_errors",
            l.truncated(),
            &l.function(&clean_body(l)),
        );
    }
}

#[test]
fn partial_fragments_are_not_syntax_errors() {
    for l in ALL {
        let h = score(l, l.partial());
        assert_eq!(severity(&h, "syntax_errors"), 0.0, "{l:?}: {h:#?}");
    }
}

#[test]
fn nesting_depth() {
    for l in ALL {
        let mut deep = Vec::new();
        for k in 0..6 {
            deep.push((k, l.if_open(k)));
        }
        deep.push((6, l.stmt(0)));
        if let Some(c) = l.close() {
            for k in (0..6).rev() {
                deep.push((k, c.to_owned()));
            }
        }
        // if / else-if chains are one level, not many.
        let mut flat = Vec::new();
        for k in 0..6 {
            flat.push((0, l.if_open(k)));
            flat.push((1, l.stmt(k)));
            if let Some(c) = l.close() {
                flat.push((0, c.to_owned()));
            }
        }
        let deep = l.function(&deep);
        let flat = l.function(&flat);
        assert_signal(l, "max_nesting_depth", &deep, &flat);
        assert_eq!(
            score(l, &deep).signal("max_nesting_depth").unwrap().value,
            6.0,
            "{l:?}"
        );
    }
}

#[test]
fn function_length() {
    for l in ALL {
        let long: Vec<_> = (0..150).map(|i| (0, l.stmt(i))).collect();
        let short: Vec<_> = (0..40).map(|i| (0, l.stmt(i))).collect();
        assert_signal(
            l,
            "function_length",
            &l.function(&long),
            &l.function(&short),
        );
    }
}

#[test]
fn cyclomatic_complexity() {
    for l in ALL {
        let branches = |n: usize| {
            let mut b = Vec::new();
            for k in 0..n {
                b.push((0, l.if_open(k)));
                b.push((1, l.stmt(k)));
                if let Some(c) = l.close() {
                    b.push((0, c.to_owned()));
                }
            }
            l.function(&b)
        };
        assert_signal(l, "cyclomatic_complexity", &branches(20), &branches(5));
        assert_eq!(
            score(l, &branches(5))
                .signal("cyclomatic_complexity")
                .unwrap()
                .value,
            6.0,
            "{l:?}"
        );
    }
}

#[test]
fn long_lines() {
    for l in ALL {
        let long = format!(
            "{} + {}",
            l.stmt(1).trim_end_matches(';'),
            "x + ".repeat(30) + "1"
        );
        let long = if matches!(l, L::Rust | L::Js | L::Ts) {
            format!("{long};")
        } else {
            long
        };
        let mut body = clean_body(l);
        body.push((0, long));
        assert_signal(
            l,
            "long_lines",
            &l.function(&body),
            &l.function(&clean_body(l)),
        );
    }
}

#[test]
fn trailing_whitespace() {
    for l in ALL {
        let clean = l.function(&clean_body(l));
        let dirty = clean.replacen('\n', "   \n", 2);
        assert_signal(l, "trailing_whitespace", &dirty, &clean);
    }
}

#[test]
fn mixed_indentation() {
    for l in ALL {
        let clean = l.function(&clean_body(l));
        let other = match l {
            L::Go => "    ",
            _ => "\t",
        };
        let mixed = l.function(&[(0, l.stmt(1)), (0, l.stmt(2)), (0, l.stmt(3))]);
        let mixed = mixed.replacen(&l.indent(1), other, 1);
        assert_signal(l, "mixed_indentation", &mixed, &clean);
    }
}

#[test]
fn todo_markers() {
    for l in ALL {
        let mut body = clean_body(l);
        body.insert(0, (0, l.comment("TODO: handle overflow")));
        let mut neg = clean_body(l);
        neg.insert(
            0,
            (
                0,
                l.comment("overflow cannot happen: x is bounded (see todo_list)"),
            ),
        );
        assert_signal(l, "todo_markers", &l.function(&body), &l.function(&neg));
    }
}

#[test]
fn commented_out_code() {
    for l in ALL {
        let mut body = clean_body(l);
        body.push((0, l.comment(&l.stmt(7))));
        body.push((0, l.comment(&l.stmt(8))));
        let mut neg = clean_body(l);
        neg.push((
            0,
            l.comment("The sum cannot overflow because inputs are small."),
        ));
        assert_signal(
            l,
            "commented_out_code",
            &l.function(&body),
            &l.function(&neg),
        );
    }
}

#[test]
fn debug_output() {
    for l in ALL {
        let mut body = clean_body(l);
        body.push((0, l.debug().to_owned()));
        let mut neg = clean_body(l);
        neg.push((0, l.not_debug().to_owned()));
        assert_signal(l, "debug_output", &l.function(&body), &l.function(&neg));
    }
}

#[test]
fn hard_coded_secrets() {
    for l in ALL {
        let mut known = clean_body(l);
        known.push((0, l.assign_str("region_key", "AKIAIOSFODNN7EXAMPLE")));
        let mut entropic = clean_body(l);
        entropic.push((
            0,
            l.assign_str("signing", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ));
        let mut neg = clean_body(l);
        neg.push((
            0,
            l.assign_str(
                "digest",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
        ));
        neg.push((0, l.assign_str("greeting", "Hello there, General Kenobi")));
        assert_signal(
            l,
            "hard_coded_secrets",
            &l.function(&known),
            &l.function(&neg),
        );
        assert_signal(
            l,
            "hard_coded_secrets",
            &l.function(&entropic),
            &l.function(&neg),
        );
        let detail = score(l, &l.function(&known))
            .signal("hard_coded_secrets")
            .unwrap()
            .detail
            .clone()
            .unwrap();
        assert!(
            detail.contains("aws_access_key_id") && !detail.contains("AKIA"),
            "{detail}"
        );
    }
}

#[test]
fn duplicated_lines() {
    for l in ALL {
        let repeated: Vec<_> = (0..8).map(|i| (0, l.stmt(i % 2 + 10))).collect();
        let distinct: Vec<_> = (0..8).map(|i| (0, l.stmt(i + 10))).collect();
        assert_signal(
            l,
            "duplicated_lines",
            &l.function(&repeated),
            &l.function(&distinct),
        );
    }
}

fn data(path: &str, body: &str) -> Hygiene {
    HarpoonEngine::new(&FusionSettings::default()).score(&Fragment::new(path, body))
}

#[test]
fn data_languages_use_their_parsers() {
    for (path, good, bad) in [
        (
            "a.json",
            "{\"a\": [1, 2], \"b\": {\"c\": true}}",
            "{\"a\": [1, 2,}",
        ),
        (
            "a.yaml",
            "a:\n  - 1\n  - 2\nb: {c: true}\n",
            "a: [1, 2\nb: : :\n",
        ),
        ("a.toml", "[a]\nb = 1\nc = \"x\"\n", "[a\nb = = 1\n"),
    ] {
        assert_eq!(severity(&data(path, good), "syntax_errors"), 0.0, "{path}");
        assert!(severity(&data(path, bad), "syntax_errors") > 0.0, "{path}");
    }
    let yaml = data(
        "ci.yaml",
        "deploy:\n  api_token: \"9f8e7d6c5b4a39281706f5e4d3c2b1a0\"\n  region: eu-west-1\n",
    );
    assert!(severity(&yaml, "hard_coded_secrets") > 0.0, "{yaml:#?}");
    let yaml = data(
        "ci.yaml",
        "deploy:\n  image: ghcr.io/acme/app:latest\n  region: eu-west-1\n",
    );
    assert_eq!(severity(&yaml, "hard_coded_secrets"), 0.0);
    let toml = data("a.toml", "# TODO: pin this\nversion = \"1\"\n");
    assert!(severity(&toml, "todo_markers") > 0.0);
}

/// A reviewer's order. The clean function is ready; the deeply nested one works
/// but is hard to follow; truncated code is unusable, yet the compiler rejects
/// it at once; the hard-coded AWS key compiles and ships, and once committed it
/// must be rotated — so it ranks last.
#[test]
fn golden_ranking() {
    let clean = r#"/// Sum of the prices of the items in stock.
pub fn stock_value(items: &[Item]) -> u64 {
    items
        .iter()
        .filter(|item| item.in_stock)
        .map(|item| item.price * u64::from(item.quantity))
        .sum()
}
"#;
    let nested = r#"pub fn stock_value(items: &[Item]) -> u64 {
    let mut total = 0;
    for item in items {
        if item.in_stock {
            if item.quantity > 0 {
                if let Some(price) = item.price {
                    if price > 0 {
                        while total < u64::MAX / 2 {
                            total += price * u64::from(item.quantity);
                            break;
                        }
                    }
                }
            }
        }
    }
    total
}
"#;
    let aws = r#"pub fn client() -> S3Client {
    let credentials = Credentials::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    S3Client::new(credentials, Region::EuWest1)
}
"#;
    let truncated = r#"pub fn stock_value(items: &[Item]) -> u64 {
    items
        .iter()
        .filter(|item| item.in_stock
        .map(|item| item.price * u64::from(item.quan
"#;
    let engine = HarpoonEngine::new(&FusionSettings::default());
    let scores: Vec<f64> = [clean, nested, truncated, aws]
        .iter()
        .map(|b| engine.score(&Fragment::new("src/stock.rs", *b)).score)
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] > w[1]),
        "clean > nested > truncated > aws key, got {scores:?}"
    );
    assert_eq!(scores[0], 1.0);
    assert!(
        scores[3] < 0.5,
        "a leaked key must never pass a default threshold"
    );
}

#[test]
fn weights_table_is_documented() {
    let doc = include_str!("../../../docs/fusion.md");
    for (name, weight) in WEIGHTS {
        let row = format!("| `{name}` | {weight:.2} |");
        assert!(doc.contains(&row), "docs/fusion.md lacks the row {row}");
    }
}

#[test]
fn hostile_nesting_is_a_syntax_error_not_a_crash() {
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    for path in ["a.json", "a.yaml", "a.toml"] {
        let body = if path.ends_with("toml") {
            format!("a = {deep}")
        } else {
            deep.clone()
        };
        assert!(
            severity(&data(path, &body), "syntax_errors") > 0.0,
            "{path}"
        );
    }
    // Code is walked without recursion, so deep code only costs nesting.
    let rust = format!("fn f() {{ {} }}", "{".repeat(20_000) + &"}".repeat(20_000));
    let h = data("a.rs", &rust);
    assert_eq!(severity(&h, "syntax_errors"), 0.0);
}
