//! House rules a test can check on the source tree itself: no source file past 600 lines, and
//! no two files of a crate that import each other (directly or round a longer loop). A module
//! using its parent's items, or a parent re-exporting its children's, is the module tree, not
//! a loop, and is not counted.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::LazyLock,
};

/// Lines a source file may reach before it is split along its own seams.
const MAX_LINES: usize = 600;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// The `src/` folder of every crate of the workspace but the tests'.
fn crate_sources() -> Vec<PathBuf> {
    let mut sources = Vec::new();
    for floor in ["services", "shared"] {
        let Ok(entries) = std::fs::read_dir(root().join(floor)) else {
            continue;
        };
        for entry in entries.flatten() {
            let src = entry.path().join("src");
            if src.is_dir() {
                sources.push(src);
            }
        }
    }
    sources.sort();
    sources
}

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

#[test]
fn no_source_file_passes_600_lines() {
    let mut long = Vec::new();
    for src in crate_sources() {
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for file in files {
            let lines = std::fs::read_to_string(&file)
                .expect("source")
                .lines()
                .count();
            if lines > MAX_LINES {
                long.push(format!(
                    "{} ({lines})",
                    file.strip_prefix(root()).unwrap_or(&file).display()
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these along their seams (at most {MAX_LINES} lines): {long:?}"
    );
}

/// A module's path inside its crate (`["store", "delivery"]`) from its file.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).expect("inside src");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_owned());
    }
    parts
}

/// Every path a file names through `crate::` or `super::`, resolved to a module path (the
/// items after the last module are kept; the caller trims them to a known module).
fn named_paths(text: &str, module: &[String]) -> Vec<Vec<String>> {
    // Code only: doc comments and line comments may name anything.
    let code: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut paths = Vec::new();
    static STATEMENT: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);").unwrap()
    });
    static INLINE: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)").unwrap()
    });
    for found in STATEMENT.captures_iter(&code) {
        expand_use(&found[1], Vec::new(), &mut paths);
    }
    for found in INLINE.captures_iter(&code) {
        let mut path = vec![found[1].to_owned()];
        path.extend(
            found[2]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
        paths.push(path);
    }
    // `super` in a `mod.rs` or a file module names the module's parent.
    let parent: Vec<String> = module[..module.len().saturating_sub(1)].to_vec();
    paths
        .into_iter()
        .filter_map(|path| match path.first().map(String::as_str) {
            Some("crate") => Some(path[1..].to_vec()),
            Some("super") => {
                let mut base = parent.clone();
                let mut rest = &path[1..];
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop();
                    rest = &rest[1..];
                }
                base.extend(rest.iter().cloned());
                Some(base)
            }
            _ => None,
        })
        .collect()
}

/// Expands one `use` tree (`crate::{a::X, b::{Y, Z}}`) into its paths.
fn expand_use(tree: &str, prefix: Vec<String>, into: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open]
            .split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let mut base = prefix;
        base.extend(head);
        let close = tree
            .rfind('}')
            .filter(|&close| close > open)
            .unwrap_or(tree.len());
        let inner = &tree[open + 1..close];
        let mut depth = 0;
        let mut piece = String::new();
        for c in inner.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand_use(&piece, base.clone(), into);
                    piece.clear();
                    continue;
                }
                _ => {}
            }
            piece.push(c);
        }
        expand_use(&piece, base, into);
    } else if !tree.is_empty() {
        let mut path = prefix;
        let tree = tree.split(" as ").next().unwrap_or(tree);
        path.extend(
            tree.split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty() && *s != "self" && *s != "*")
                .map(str::to_owned),
        );
        into.push(path);
    }
}

/// The strongly connected groups of more than one file (Tarjan's algorithm).
fn loops(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    struct Search<'a> {
        graph: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        found: Vec<Vec<Vec<String>>>,
    }
    impl<'a> Search<'a> {
        fn visit(&mut self, node: &'a Vec<String>) {
            let next = self.index.len();
            self.index.insert(node, next);
            self.low.insert(node, next);
            self.stack.push(node);
            self.on_stack.insert(node);
            for target in self.graph.get(node).into_iter().flatten() {
                let Some((target, _)) = self.graph.get_key_value(target) else {
                    continue;
                };
                if !self.index.contains_key(target) {
                    self.visit(target);
                    let low = self.low[target].min(self.low[node]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(target) {
                    let low = self.index[target].min(self.low[node]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut group = Vec::new();
                while let Some(member) = self.stack.pop() {
                    self.on_stack.remove(member);
                    group.push(member.clone());
                    if member == node {
                        break;
                    }
                }
                if group.len() > 1 {
                    self.found.push(group);
                }
            }
        }
    }
    let mut search = Search {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !search.index.contains_key(node) {
            search.visit(node);
        }
    }
    search.found
}

#[test]
fn no_two_files_of_a_crate_import_each_other() {
    let mut found = Vec::new();
    for src in crate_sources() {
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let modules: BTreeMap<Vec<String>, PathBuf> = files
            .iter()
            .map(|file| (module_of(&src, file), file.clone()))
            .collect();
        let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
        for (module, file) in &modules {
            let text = std::fs::read_to_string(file).expect("source");
            let edges = graph.entry(module.clone()).or_default();
            for mut path in named_paths(&text, module) {
                // The deepest module the path names is the file it imports from.
                while !path.is_empty() && !modules.contains_key(&path) {
                    path.pop();
                }
                let related = path.starts_with(module) || module.starts_with(&path);
                if !related {
                    edges.insert(path);
                }
            }
        }
        for group in loops(&graph) {
            found.push(format!(
                "{}: {}",
                src.strip_prefix(root()).unwrap_or(&src).display(),
                group
                    .iter()
                    .map(|m| m.join("::"))
                    .collect::<Vec<_>>()
                    .join(" ↔ ")
            ));
        }
    }
    assert!(
        found.is_empty(),
        "files that import each other (move what they share below both): {found:#?}"
    );
}
