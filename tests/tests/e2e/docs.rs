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
