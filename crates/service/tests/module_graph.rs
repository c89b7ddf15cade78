//! No circle of imports between the modules of `service` (run by `make lint`).
//!
//! Every file under `src/` is a module; a path in it that names another
//! module of the crate (`crate::…`, `super::…`, a child, in `use` items and
//! in code) is an edge. Test-only items are left out. A module that reaches
//! itself again through its edges makes layers impossible to tell apart, so
//! the test fails and prints the circle.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use syn::visit::Visit;

type Module = Vec<String>;

/// The module a source file holds: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`.
fn module_of(src: &Path, file: &Path) -> Module {
    let relative = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Module = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Meta>()
                .is_ok_and(|m| m.path().is_ident("test"))
    })
}

/// Collects the full paths a file mentions, resolved against its module.
struct Paths<'a> {
    here: &'a Module,
    modules: &'a BTreeSet<Module>,
    found: BTreeSet<Module>,
}

impl Paths<'_> {
    /// `segments` as written in module `here`, made absolute when it starts
    /// with `crate`, `super`, `self` or the name of a child module.
    fn absolute(&self, segments: &[String]) -> Option<Module> {
        let first = segments.first()?;
        let (mut base, rest) = match first.as_str() {
            "crate" => (Vec::new(), &segments[1..]),
            "self" => (self.here.clone(), &segments[1..]),
            "super" => {
                let mut base = self.here.clone();
                let mut rest = segments;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
                (base, rest)
            }
            _ => {
                let mut child = self.here.clone();
                child.push(first.clone());
                if !self.modules.contains(&child) {
                    return None;
                }
                (self.here.clone(), segments)
            }
        };
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The longest known module that `path` lies in.
    fn note(&mut self, segments: &[String]) {
        let Some(full) = self.absolute(segments) else {
            return;
        };
        let target = (1..=full.len())
            .rev()
            .map(|n| full[..n].to_vec())
            .find(|m| self.modules.contains(m));
        if let Some(target) = target
            && &target != self.here
            && !target.is_empty()
        {
            self.found.insert(target);
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                prefix.push(n.ident.to_string());
                self.note(prefix);
                prefix.pop();
            }
            syn::UseTree::Rename(r) => {
                prefix.push(r.ident.to_string());
                self.note(prefix);
                prefix.pop();
            }
            syn::UseTree::Glob(_) => self.note(prefix),
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Paths<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Struct(s) => &s.attrs,
            syn::Item::Enum(e) => &e.attrs,
            syn::Item::Const(c) => &c.attrs,
            syn::Item::Static(s) => &s.attrs,
            syn::Item::Trait(t) => &t.attrs,
            syn::Item::Type(t) => &t.attrs,
            syn::Item::Macro(m) => &m.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if !is_test_only(attrs) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    /// `pub(super)` / `pub(in crate::a)` say who may use an item, not what
    /// the module uses: no edge.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    /// Paths inside a macro call (`routes!(a::b)`, `matches!(x, crate::…)`,
    /// `format!` arguments) when its body reads as expressions; bodies that
    /// do not (tracing's `field = %value`) are skipped.
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        use syn::punctuated::Punctuated;
        if let Ok(exprs) =
            mac.parse_body_with(Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated)
        {
            for expr in &exprs {
                self.visit_expr(expr);
            }
        }
        syn::visit::visit_macro(self, mac);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.note(&segments);
        syn::visit::visit_path(self, path);
    }
}

/// Every module's edges to the other modules of the crate.
fn graph(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    // `main.rs` and `bin/` are separate crates over the library.
    files.retain(|f| {
        let m = module_of(src, f);
        f.file_name().is_some_and(|n| n != "main.rs") && m.first().is_none_or(|s| s != "bin")
    });
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(src, f)).collect();
    let mut edges = BTreeMap::new();
    for file in &files {
        let here = module_of(src, file);
        let text = std::fs::read_to_string(file).unwrap();
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut paths = Paths {
            here: &here,
            modules: &modules,
            found: BTreeSet::new(),
        };
        paths.visit_file(&ast);
        edges.insert(here.clone(), paths.found);
    }
    edges
}

/// A circle through the graph, if there is one (depth-first search).
fn find_circle(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn walk(
        node: &Module,
        edges: &BTreeMap<Module, BTreeSet<Module>>,
        marks: &mut BTreeMap<Module, Mark>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        marks.insert(node.clone(), Mark::Open);
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            match marks.get(next) {
                Some(Mark::Open) => {
                    let start = stack.iter().position(|m| m == next).unwrap_or(0);
                    let mut circle = stack[start..].to_vec();
                    circle.push(next.clone());
                    return Some(circle);
                }
                Some(Mark::Done) => {}
                None => {
                    if let Some(c) = walk(next, edges, marks, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        marks.insert(node.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in edges.keys() {
        if !marks.contains_key(node)
            && let Some(c) = walk(node, edges, &mut marks, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

fn show(circle: &[Module]) -> String {
    circle
        .iter()
        .map(|m| m.join("::"))
        .collect::<Vec<_>>()
        .join(" → ")
}

#[test]
fn no_module_of_the_service_imports_itself_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = graph(&src);
    assert!(edges.len() > 20, "read {} modules", edges.len());
    if let Some(circle) = find_circle(&edges) {
        panic!("import circle: {}", show(&circle));
    }
}

#[test]
fn the_check_finds_a_circle_when_there_is_one() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a; pub mod b; pub mod c;").unwrap();
    std::fs::write(src.join("a/mod.rs"), "pub mod inner; pub use inner::X;").unwrap();
    std::fs::write(src.join("a/inner.rs"), "pub struct X(crate::b::Y);").unwrap();
    std::fs::write(src.join("b.rs"), "use crate::{c::Z};\npub struct Y(Z);").unwrap();
    std::fs::write(
        src.join("c.rs"),
        "pub struct Z;\n#[cfg(test)]\nmod tests { use crate::a::X; }\nfn f() { super::a::X::g(); }",
    )
    .unwrap();
    let edges = graph(src);
    let circle = find_circle(&edges).expect("c reaches a in code, a reaches c through b");
    assert_eq!(circle.first(), circle.last());
    assert!(show(&circle).contains("a::inner"), "{}", show(&circle));
    // Without the call in code (the test module does not count), no circle.
    std::fs::write(
        src.join("c.rs"),
        "pub struct Z;\n#[cfg(test)]\nmod tests { use crate::a::X; }",
    )
    .unwrap();
    assert_eq!(find_circle(&graph(src)).map(|c| show(&c)), None);
    // A test-only struct is left out; a path inside a macro call counts.
    std::fs::write(
        src.join("c.rs"),
        "pub struct Z;\n#[cfg(test)]\nstruct T(crate::a::X);",
    )
    .unwrap();
    assert_eq!(find_circle(&graph(src)).map(|c| show(&c)), None);
    std::fs::write(
        src.join("c.rs"),
        "pub struct Z;\nfn f() { assert!(matches!(1, crate::a::N)); }",
    )
    .unwrap();
    let circle = find_circle(&graph(src)).expect("c reaches a inside matches!");
    assert!(show(&circle).contains("a::inner"), "{}", show(&circle));
}
