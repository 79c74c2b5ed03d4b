//! Policy as data of the deployment: the rules a province may change (status changes, the
//! school year's dates, transfer deadlines and rules, provincial fields, dropout grace days)
//! are files. Each service bundles its national defaults (`services/<service>/policy/`); a
//! node's `policy_dir` holds the deployment's own, under the same names
//! (`<policy_dir>/<service>/<file>`), and a file there replaces the bundled one. Files are
//! checked when read, with errors naming the file, the line and the key; a service keeps its
//! policy in a [`Live`] handle, so that a node reloads it without a restart: every service's
//! files are read and checked first ([`PolicyHook::prepare`]), and only if all of them pass is
//! any of them put in place.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

/// A policy a service reads on each use, which a reload replaces as a whole.
#[derive(Debug)]
pub struct Live<T>(Arc<RwLock<Arc<T>>>);

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Live<T> {
    pub fn new(value: T) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(value))))
    }

    /// The policy in force now; a reload does not change a value already taken.
    pub fn current(&self) -> Arc<T> {
        // A writer only swaps an `Arc`: a poisoned lock still holds a whole policy.
        match self.0.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `value` in force.
    pub fn replace(&self, value: T) {
        let value = Arc::new(value);
        match self.0.write() {
            Ok(mut guard) => *guard = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
    }
}

/// Where a node's policy files are: its `policy_dir`, or none (the bundled files only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyDir {
    root: Option<PathBuf>,
}

/// A policy file's text, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyText {
    /// The deployment's file, or `bundled <service>/<name>`.
    pub file: String,
    pub text: String,
}

impl PolicyDir {
    pub fn new(root: Option<PathBuf>) -> Self {
        Self { root }
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// `<policy_dir>/<service>/<name>` if the deployment has one, else the bundled text.
    pub fn read(
        &self,
        service: &str,
        name: &str,
        bundled: &str,
    ) -> Result<PolicyText, PolicyError> {
        if let Some(root) = &self.root {
            let path = root.join(service).join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    return Ok(PolicyText {
                        file: path.display().to_string(),
                        text,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(PolicyError {
                        file: path.display().to_string(),
                        line: None,
                        message: format!("cannot be read: {e}"),
                    });
                }
            }
        }
        Ok(PolicyText {
            file: format!("bundled {service}/{name}"),
            text: bundled.to_owned(),
        })
    }
}

impl PolicyText {
    /// Checks the text with `parse`; its error is placed on the file's line (see [`locate`]).
    pub fn parse<T>(
        &self,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, PolicyError> {
        parse(&self.text).map_err(|message| PolicyError {
            file: self.file.clone(),
            line: locate(&self.text, &message),
            message,
        })
    }
}

/// A policy file that does not read or does not pass its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub file: String,
    /// The line (from 1) the fault is on, where it can be told.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for PolicyError {}

/// The line `message` is about in `text`: the line a TOML parse error names ("at line N"), or
/// the line of the key a rule's error names (`` `key` `` inside the table `[a.b]` the message
/// names), or that table's header.
pub fn locate(text: &str, message: &str) -> Option<usize> {
    if let Some(at) = message.find("at line ") {
        let digits: String = message[at + 8..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(line) = digits.parse() {
            return Some(line);
        }
    }
    // The table: the last `[...]` of the message that is a header of the file.
    let lines: Vec<&str> = text.lines().collect();
    let mut header = None;
    let mut rest = message;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']') else {
            break;
        };
        let table = &rest[open..open + close + 1];
        if let Some(at) = lines.iter().position(|line| header_of(line) == Some(table)) {
            header = Some(at);
        }
        rest = &rest[open + close + 1..];
    }
    let header = header?;
    // The key: the first `key` of the message set in that table.
    let mut rest = message;
    while let Some(open) = rest.find('`') {
        let Some(close) = rest[open + 1..].find('`') else {
            break;
        };
        let key = &rest[open + 1..open + 1 + close];
        let found = lines
            .iter()
            .enumerate()
            .skip(header + 1)
            .take_while(|(_, line)| header_of(line).is_none())
            .find(|(_, line)| {
                line.trim_start()
                    .strip_prefix(key)
                    .is_some_and(|after| after.trim_start().starts_with('='))
            });
        if let Some((at, _)) = found {
            return Some(at + 1);
        }
        rest = &rest[open + 1 + close + 1..];
    }
    Some(header + 1)
}

/// The `[table]` a line opens, comments and spaces aside.
fn header_of(line: &str) -> Option<&str> {
    let line = line.split('#').next().unwrap_or("").trim();
    (line.starts_with('[') && line.ends_with(']')).then_some(line)
}

/// A service's part in a reload: reads and checks its files, and answers what puts them in
/// force (nothing is in force until every service's files passed).
pub trait PolicyHook: Send + Sync + fmt::Debug {
    /// The files read (as [`PolicyText::file`] names them) and the step that puts them in
    /// force.
    fn prepare(&self) -> Result<Prepared, PolicyError>;
}

/// A checked policy, waiting to be put in force.
pub struct Prepared {
    pub files: Vec<String>,
    pub apply: Box<dyn FnOnce() + Send>,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// Reloads every hook's policy: all are read and checked first; none changes unless all pass.
/// Answers the files now in force.
pub fn reload(hooks: &[Arc<dyn PolicyHook>]) -> Result<Vec<String>, PolicyError> {
    let prepared = hooks
        .iter()
        .map(|hook| hook.prepare())
        .collect::<Result<Vec<_>, _>>()?;
    let mut files = Vec::new();
    for step in prepared {
        files.extend(step.files);
        (step.apply)();
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# rules\n[change.suspension]\nfrom = [\"active\"]\nterm_months = 0\n\n[province.34.change.suspension]\nterm_months = 70\n";

    #[test]
    fn a_rule_error_is_placed_on_its_key_in_its_table() {
        assert_eq!(
            locate(
                TEXT,
                "status-change rules: [change.suspension]: `term_months` must be 1–60"
            ),
            Some(4)
        );
        assert_eq!(
            locate(
                TEXT,
                "status-change rules: [province.34.change.suspension]: `term_months` must be 1–60"
            ),
            Some(7)
        );
        // A key the table does not set: the table's header.
        assert_eq!(
            locate(
                TEXT,
                "status-change rules: [change.suspension]: `stages` is missing"
            ),
            Some(2)
        );
    }

    #[test]
    fn a_parse_error_keeps_the_line_it_names() {
        assert_eq!(
            locate(
                TEXT,
                "TOML parse error at line 3, column 9\n  |\n3 | from = [x"
            ),
            Some(3)
        );
        assert_eq!(locate(TEXT, "something without a place"), None);
    }

    #[test]
    fn a_deployments_file_replaces_the_bundled_one_and_names_itself_in_errors() {
        let dir = std::env::temp_dir().join(format!("xueji-policy-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("identity")).unwrap();
        std::fs::write(dir.join("identity/rules.toml"), "[a]\nb = 1\n").unwrap();
        let policy = PolicyDir::new(Some(dir.clone()));
        let own = policy.read("identity", "rules.toml", "bundled").unwrap();
        assert_eq!(own.text, "[a]\nb = 1\n");
        let error = own
            .parse(|_| Err::<(), _>("[a]: `b` must be 2".into()))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{}:2: [a]: `b` must be 2",
                dir.join("identity/rules.toml").display()
            )
        );
        let bundled = policy.read("identity", "other.toml", "x = 1").unwrap();
        assert_eq!(
            (bundled.file.as_str(), bundled.text.as_str()),
            ("bundled identity/other.toml", "x = 1")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[derive(Debug)]
    struct Hook(Live<u32>, Result<u32, &'static str>);

    impl PolicyHook for Hook {
        fn prepare(&self) -> Result<Prepared, PolicyError> {
            let value = self.1.map_err(|message| PolicyError {
                file: "f.toml".into(),
                line: Some(1),
                message: message.into(),
            })?;
            let live = self.0.clone();
            Ok(Prepared {
                files: vec!["f.toml".into()],
                apply: Box::new(move || live.replace(value)),
            })
        }
    }

    #[test]
    fn a_reload_puts_nothing_in_force_unless_every_file_passes() {
        let (a, b) = (Live::new(1), Live::new(1));
        let hooks: Vec<Arc<dyn PolicyHook>> = vec![
            Arc::new(Hook(a.clone(), Ok(2))),
            Arc::new(Hook(b.clone(), Err("bad"))),
        ];
        assert!(reload(&hooks).is_err());
        assert_eq!((*a.current(), *b.current()), (1, 1));
        let hooks: Vec<Arc<dyn PolicyHook>> = vec![Arc::new(Hook(a.clone(), Ok(2)))];
        assert_eq!(reload(&hooks).unwrap(), ["f.toml"]);
        assert_eq!(*a.current(), 2);
    }
}
