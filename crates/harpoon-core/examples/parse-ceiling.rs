//! How fast tree-sitter can parse the Rust sources under
//! `~/.cargo/registry/src` on one thread: the whole text, and the text with
//! line comments (and also indentation) left out through
//! `Parser::set_included_ranges`. The fusion scorer cannot beat the first
//! figure; the other two show whether feeding the parser fewer bytes helps.
//!
//! `cargo run --release -p harpoon-core --example parse-ceiling -- [--max-mb N]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, time::Instant};
use tree_sitter::{Node, Parser, Point, Range};

#[path = "support/rust_files.rs"]
mod rust_files;
use rust_files::load;

/// Byte spans of line comments, without their newline (so no two tokens
/// ever meet across a removed span).
fn line_comments(node: Node<'_>, text: &[u8], out: &mut Vec<(usize, usize)>) {
    if node.kind() == "line_comment" {
        let end = if text[node.end_byte() - 1] == b'\n' {
            node.end_byte() - 1
        } else {
            node.end_byte()
        };
        if end > node.start_byte() {
            out.push((node.start_byte(), end));
        }
        return;
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        line_comments(child, text, out);
    }
}

/// Spaces and tabs after each newline.
fn indentation(text: &[u8], out: &mut Vec<(usize, usize)>) {
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'\n' {
            let mut j = i + 1;
            while j < text.len() && (text[j] == b' ' || text[j] == b'\t') {
                j += 1;
            }
            if j > i + 1 {
                out.push((i + 1, j));
            }
            i = j;
        } else {
            i += 1;
        }
    }
}

fn point(text: &str, offset: usize) -> Point {
    let before = &text[..offset];
    Point {
        row: before.matches('\n').count(),
        column: offset - before.rfind('\n').map_or(0, |p| p + 1),
    }
}

/// The ranges left when `excluded` (sorted, possibly overlapping) is taken out.
fn included(text: &str, mut excluded: Vec<(usize, usize)>) -> Vec<Range> {
    excluded.sort_unstable();
    let mut ranges = Vec::new();
    let mut start = 0;
    for (s, e) in excluded {
        if s > start {
            ranges.push(Range {
                start_byte: start,
                end_byte: s,
                start_point: point(text, start),
                end_point: point(text, s),
            });
        }
        start = start.max(e);
    }
    if start < text.len() {
        ranges.push(Range {
            start_byte: start,
            end_byte: text.len(),
            start_point: point(text, start),
            end_point: point(text, text.len()),
        });
    }
    ranges
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut max_mb = 32.0f64;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--max-mb" => max_mb = args.next().expect("--max-mb N").parse().expect("a number"),
            other => panic!("unknown argument {other}"),
        }
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let bodies: Vec<String> = load(&Path::new(&home).join(".cargo/registry/src"), max_mb)
        .into_iter()
        .map(|(_, body)| body)
        .collect();
    let bytes: usize = bodies.iter().map(String::len).sum();
    let mb = bytes as f64 / 1e6;
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_rust::LANGUAGE.into())
        .expect("the Rust grammar loads");

    let (mut no_comments, mut no_comments_or_indent) = (Vec::new(), Vec::new());
    let (mut comment_bytes, mut both_bytes) = (0usize, 0usize);
    for body in &bodies {
        let tree = parser.parse(body, None).expect("a tree");
        let mut comments = Vec::new();
        line_comments(tree.root_node(), body.as_bytes(), &mut comments);
        let mut both = comments.clone();
        indentation(body.as_bytes(), &mut both);
        let a = included(body, comments);
        let b = included(body, both);
        comment_bytes += body.len() - a.iter().map(|r| r.end_byte - r.start_byte).sum::<usize>();
        both_bytes += body.len() - b.iter().map(|r| r.end_byte - r.start_byte).sum::<usize>();
        no_comments.push(a);
        no_comments_or_indent.push(b);
    }
    println!(
        "corpus: {} Rust files, {mb:.1} MB; line comments are {:.1} % of the bytes, with indentation {:.1} %",
        bodies.len(),
        100.0 * comment_bytes as f64 / bytes as f64,
        100.0 * both_bytes as f64 / bytes as f64
    );
    for round in 1..=2 {
        for (name, ranges) in [
            ("whole text", None),
            ("without line comments", Some(&no_comments)),
            (
                "without line comments or indentation",
                Some(&no_comments_or_indent),
            ),
        ] {
            let start = Instant::now();
            for (i, body) in bodies.iter().enumerate() {
                let r = ranges.map_or(&[][..], |r| r[i].as_slice());
                parser.set_included_ranges(r).expect("ordered ranges");
                std::hint::black_box(parser.parse(body, None));
            }
            let secs = start.elapsed().as_secs_f64();
            println!("round {round}, {name}: {:.1} MB/s", mb / secs);
        }
    }
}
