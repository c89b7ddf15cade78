//! Where a configuration value came from: an environment variable, a line
//! of the YAML file, or the built-in default; and keys a file gives twice.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    path::{Path, PathBuf},
};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// The source that gave a key the value in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An environment variable, by name (`SERVICE_PORT`, `HARPOON__AUTH__MODE`).
    Env(String),
    /// The YAML file, at the key's line when known (1-based).
    File {
        /// The file.
        path: PathBuf,
        /// Line of the key.
        line: Option<usize>,
    },
    /// No source set it: the built-in default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "environment variable {name}"),
            Self::File {
                path,
                line: Some(line),
            } => write!(f, "file {}, line {line}", path.display()),
            Self::File { path, line: None } => write!(f, "file {}", path.display()),
            Self::Default => f.write_str("default"),
        }
    }
}

/// Everything that can set a key, in the order that wins: seed names
/// (`aliases`), then `HARPOON__…` names, then the file, then the default.
#[derive(Debug)]
pub(crate) struct Sources<'a> {
    /// The environment as given to `Settings::load`.
    pub env: &'a HashMap<String, String>,
    /// Seed names and the key each sets, applied in order (for one key the
    /// last one set wins).
    pub aliases: &'a [(&'a str, &'a str)],
    /// Prefix and separator of the generic names (`HARPOON`, `__`).
    pub prefix: &'a str,
    /// The file read, with the line of each of its keys.
    pub file: Option<(&'a Path, &'a KeyLines)>,
}

impl Sources<'_> {
    /// Where `key` (dotted; `[i]` list indices ignored) got its value; a
    /// section (`quotas`) is named by the first source of any key under it.
    pub fn origin(&self, key: &str) -> Origin {
        let key = strip_indices(key);
        let under = |k: &str| k == key || k.starts_with(&format!("{key}."));
        for (name, target) in self.aliases.iter().rev() {
            if under(target) && self.env.get(*name).is_some_and(|v| !v.is_empty()) {
                return Origin::Env((*name).to_owned());
            }
        }
        let head = format!("{}{}", self.prefix, "__").to_lowercase();
        let mut generic: Vec<&String> = self
            .env
            .keys()
            .filter(|name| {
                let lower = name.to_lowercase();
                lower
                    .strip_prefix(&head)
                    .is_some_and(|rest| under(&rest.replace("__", ".")))
            })
            .collect();
        generic.sort();
        if let Some(name) = generic.first() {
            return Origin::Env((*name).clone());
        }
        if let Some((path, lines)) = self.file {
            let line = lines
                .lines
                .iter()
                .filter(|(k, _)| under(&strip_indices(k)))
                .map(|(_, line)| *line)
                .min();
            if line.is_some() {
                return Origin::File {
                    path: path.to_owned(),
                    line,
                };
            }
        }
        Origin::Default
    }
}

/// `a.b[0].c` → `a.b.c`.
fn strip_indices(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut depth = 0usize;
    for c in key.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// A key a YAML mapping gives twice (the parser refuses the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Duplicate {
    /// Dotted path of the key, e.g. `service.port`.
    pub key: String,
    /// Line of the second occurrence.
    pub line: usize,
    /// Line of the first.
    pub first_line: usize,
}

/// The line of every key of a YAML text, by dotted path (list items as `[i]`).
#[derive(Debug, Default)]
pub(crate) struct KeyLines {
    lines: BTreeMap<String, usize>,
}

impl KeyLines {
    /// Reads `text` with the parser `config` uses. A text it cannot parse
    /// yields no lines (the parse that follows reports it); a key given
    /// twice in one mapping is an error.
    pub fn scan(text: &str) -> Result<Self, Duplicate> {
        let mut scan = Scan::default();
        if Parser::new_from_str(text).load(&mut scan, false).is_err() {
            return Ok(Self::default());
        }
        match scan.duplicate {
            Some(duplicate) => Err(duplicate),
            None => Ok(Self { lines: scan.lines }),
        }
    }
}

/// One open collection of the document.
#[derive(Debug)]
enum Frame {
    /// A mapping at `path`: its keys so far, and the path of the value
    /// that comes next when a key has just been read. The keys are kept
    /// per mapping because dotted paths need not be unique: a model named
    /// `g.repo` and model `g`'s `repo` are both `models.g.repo`.
    Map {
        path: String,
        seen: HashMap<String, usize>,
        value: Option<String>,
    },
    /// A sequence at `path` and the index of its next item.
    Seq { path: String, next: usize },
    /// Inside a key that is itself a collection (which `config` refuses);
    /// `of_key` for the outermost, whose end completes its mapping's key.
    Skip { of_key: bool },
}

/// Where the node that begins now sits.
enum Place {
    /// A key of the enclosing mapping.
    Key,
    /// A value at this path.
    Value(String),
    /// Inside a collection key.
    Skip,
}

#[derive(Debug, Default)]
struct Scan {
    stack: Vec<Frame>,
    lines: BTreeMap<String, usize>,
    duplicate: Option<Duplicate>,
}

impl Scan {
    fn place(&mut self) -> Place {
        match self.stack.last_mut() {
            None => Place::Value(String::new()),
            Some(Frame::Map { value, .. }) => match value.take() {
                Some(path) => Place::Value(path),
                None => Place::Key,
            },
            Some(Frame::Seq { path, next }) => {
                *next += 1;
                Place::Value(format!("{path}[{}]", *next - 1))
            }
            Some(Frame::Skip { .. }) => Place::Skip,
        }
    }

    fn key(&mut self, name: &str, line: usize) {
        let Some(Frame::Map { path, seen, value }) = self.stack.last_mut() else {
            return;
        };
        let full = if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        };
        if let Some(&first_line) = seen.get(name) {
            if self.duplicate.is_none() {
                self.duplicate = Some(Duplicate {
                    key: full.clone(),
                    line,
                    first_line,
                });
            }
        } else {
            seen.insert(name.to_owned(), line);
            self.lines.insert(full.clone(), line);
        }
        *value = Some(full);
    }

    fn open(&mut self, map: bool) {
        let frame = match self.place() {
            Place::Value(path) if map => Frame::Map {
                path,
                seen: HashMap::new(),
                value: None,
            },
            Place::Value(path) => Frame::Seq { path, next: 0 },
            Place::Key => Frame::Skip { of_key: true },
            Place::Skip => Frame::Skip { of_key: false },
        };
        self.stack.push(frame);
    }

    fn close(&mut self) {
        if let Some(Frame::Skip { of_key: true }) = self.stack.pop()
            && let Some(Frame::Map { path, value, .. }) = self.stack.last_mut()
        {
            *value = Some(format!("{path}.?"));
        }
    }
}

impl MarkedEventReceiver for Scan {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(text, ..) => {
                if let Place::Key = self.place() {
                    self.key(&text, mark.line());
                }
            }
            Event::Alias(_) => {
                if let Place::Key = self.place() {
                    self.key("*alias", mark.line());
                }
            }
            Event::MappingStart(..) => self.open(true),
            Event::SequenceStart(..) => self.open(false),
            Event::MappingEnd | Event::SequenceEnd => self.close(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_have_their_lines_and_list_items_their_index() {
        let lines = KeyLines::scan(
            "service:\n  port: 1\n  cors_origins:\n    - a\nmodels:\n  gemma: {repo: x}\nlist:\n  - name: a\n  - name: b\n",
        )
        .unwrap();
        let got: Vec<(&str, usize)> = lines.lines.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            got,
            [
                ("list", 7),
                ("list[0].name", 8),
                ("list[1].name", 9),
                ("models", 5),
                ("models.gemma", 6),
                ("models.gemma.repo", 6),
                ("service", 1),
                ("service.cors_origins", 3),
                ("service.port", 2),
            ]
        );
    }

    #[test]
    fn a_key_twice_in_one_mapping_is_found_not_in_two() {
        assert_eq!(
            KeyLines::scan("a:\n  x: 1\nb:\n  x: 2\n  y: 3\n  x: 4\n").unwrap_err(),
            Duplicate {
                key: "b.x".into(),
                line: 6,
                first_line: 4
            }
        );
        assert!(KeyLines::scan("a:\n  x: 1\nb:\n  x: 2\n").is_ok());
        assert!(
            KeyLines::scan("a: [\n").is_ok(),
            "left to the parse that follows"
        );
        // A collection as a key is skipped whole.
        assert!(KeyLines::scan("? [a, b]\n: 1\nc: 2\n").is_ok());
        // Keys of different mappings may share a dotted path.
        assert!(KeyLines::scan("m:\n  \"g.repo\": {repo: x}\n  g:\n    repo: y\n").is_ok());
    }

    #[test]
    fn strip_indices_drops_list_positions() {
        assert_eq!(strip_indices("a.b[0].c[12]"), "a.b.c");
    }
}
