//! ARCHITECTURE.md stays true where a test can tell: every file its "where to change X" table
//! names exists.

/// The workspace root (this crate is `tests/`).
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

#[test]
fn where_to_change_names_files_that_exist() {
    let map = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let section = map
        .split("## Where to change X")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a \"Where to change X\" section");
    let rows = section.lines().filter(|l| l.starts_with("| ")).count();
    assert!(rows >= 6, "the table holds its five questions: {rows} rows");
    let mut named = 0;
    let mut missing = Vec::new();
    for (i, quoted) in section.split('`').enumerate() {
        // Every other piece is inside backticks; a path has a folder and no spaces.
        if i % 2 == 0 || !quoted.contains('/') || quoted.contains(' ') {
            continue;
        }
        named += 1;
        if !root().join(quoted).exists() {
            missing.push(quoted.to_owned());
        }
    }
    assert!(named >= 20, "the table names files: {named}");
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names files that do not exist: {missing:?}"
    );
}

/// Every backquoted path (a folder and no spaces, no placeholder) in the map and its pages.
fn named_paths(text: &str) -> Vec<String> {
    text.split('`')
        .enumerate()
        .filter(|(i, quoted)| {
            i % 2 == 1
                && quoted.contains('/')
                && !quoted.contains(' ')
                && !quoted.contains('<')
                && !quoted.contains('*')
                && !quoted.contains("://")
                && (quoted.starts_with("services/")
                    || quoted.starts_with("shared/")
                    || quoted.starts_with("proto/")
                    || quoted.starts_with("tests/")
                    || quoted.starts_with("docs/"))
        })
        .map(|(_, quoted)| quoted.trim_end_matches(['.', ',', ':']).to_owned())
        .collect()
}

#[test]
fn the_map_and_its_pages_name_files_that_exist() {
    let mut pages = vec![root().join("ARCHITECTURE.md")];
    for entry in std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .flatten()
    {
        pages.push(entry.path());
    }
    let mut missing = Vec::new();
    let mut named = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("a page");
        for path in named_paths(&text) {
            named += 1;
            if !root().join(&path).exists() {
                missing.push(format!("{}: {path}", page.display()));
            }
        }
        // Every docs page the map links exists.
        for link in text.split("](").skip(1) {
            let target = link.split(')').next().unwrap_or("");
            if target.ends_with(".md") && !target.starts_with("http") {
                let base = page.parent().expect("a folder");
                if !base.join(target).exists() {
                    missing.push(format!("{}: link {target}", page.display()));
                }
            }
        }
    }
    assert!(named >= 40, "the pages name files: {named}");
    assert!(missing.is_empty(), "named but missing: {missing:#?}");
}
