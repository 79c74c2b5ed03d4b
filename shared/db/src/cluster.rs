//! A private PostgreSQL cluster run from the system's server binaries.
//!
//! PostgreSQL refuses to run as root, so when this process is root the cluster belongs to the
//! system's unprivileged `postgres` account; otherwise it runs as the current user, as on a
//! laptop. The server listens on loopback only, with a random password, and is stopped when the
//! handle drops; a small watchdog stops it too if this process dies without dropping it.

use std::{
    fs,
    net::TcpListener,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use nix::unistd::{Gid, Uid, User};
use rand::{Rng, distributions::Alphanumeric};

/// The superuser the cluster is initialised with.
const SUPERUSER: &str = "xueji";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL server binaries (initdb, postgres) were not found on PATH, in PG_BIN_DIR or in \
         the usual install locations; install the PostgreSQL server package or set PG_BIN_DIR"
    )]
    BinariesNotFound,
    #[error(
        "running as root, but there is no unprivileged 'postgres' account to run PostgreSQL as; \
         create one (useradd --system postgres) or run as a normal user"
    )]
    NoUnprivilegedAccount,
    #[error("{action}: {source}")]
    Io {
        action: String,
        source: std::io::Error,
    },
    #[error("initdb failed:\n{0}")]
    Initdb(String),
    #[error("PostgreSQL did not start: {0}")]
    Start(String),
}

fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let action = action.into();
    move |source| ClusterError::Io { action, source }
}

/// How much the cluster may trade durability for speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Default PostgreSQL settings: every commit reaches the disk.
    Durable,
    /// fsync off: for tests and demos whose data is thrown away.
    Throwaway,
}

#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Where the cluster lives. `None` makes a temporary directory removed on drop; an existing
    /// initialised directory is reused (its password file next to it).
    pub data_dir: Option<PathBuf>,
    pub durability: Durability,
    pub max_connections: u32,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            data_dir: None,
            durability: Durability::Throwaway,
            max_connections: 400,
        }
    }
}

/// A running private cluster. Dropping it stops the server (fast shutdown).
#[derive(Debug)]
pub struct EmbeddedPostgres {
    root: PathBuf,
    temporary: bool,
    port: u16,
    password: String,
    server: Child,
    watchdog: Option<Child>,
}

impl EmbeddedPostgres {
    /// Finds the binaries, initialises the cluster if needed and starts it on a free loopback
    /// port. Blocking: call it from `spawn_blocking` inside async code.
    pub fn start(options: ClusterOptions) -> Result<Self, ClusterError> {
        let bin_dir = find_bin_dir().ok_or(ClusterError::BinariesNotFound)?;
        let owner = cluster_owner()?;
        let (root, temporary) = match &options.data_dir {
            Some(dir) => {
                fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
                (dir.clone(), false)
            }
            None => (make_temp_root()?, true),
        };
        let data = root.join("pgdata");
        let password_file = root.join("superuser-password");
        if let Some((uid, gid)) = owner {
            chown(&root, uid, gid)?;
        }
        if !data.join("PG_VERSION").exists() {
            initdb(&bin_dir, &data, &password_file, owner, options.durability)?;
        }
        let password = fs::read_to_string(&password_file)
            .map_err(io("reading the cluster password"))?
            .trim()
            .to_owned();

        let mut last_error = String::new();
        // A free port can be taken between our probe and the server's bind: try a few.
        for _ in 0..5 {
            let port = free_port()?;
            match start_server(&bin_dir, &root, &data, port, owner, &options) {
                Ok(server) => {
                    let watchdog = spawn_watchdog(server.id(), temporary.then_some(&root));
                    return Ok(Self {
                        root,
                        temporary,
                        port,
                        password,
                        server,
                        watchdog,
                    });
                }
                Err(ClusterError::Start(message)) => last_error = message,
                Err(other) => return Err(other),
            }
        }
        Err(ClusterError::Start(last_error))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for `database` as the cluster's superuser.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.server.id() as i32);
        // SIGINT is PostgreSQL's "fast" shutdown: roll back, checkpoint, exit.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.server.try_wait() {
                break;
            }
            // Stopping runs on a blocking thread (drop, or spawn_blocking), never a worker.
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        if self.temporary {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// The uid/gid to run PostgreSQL as, or `None` to run as ourselves.
fn cluster_owner() -> Result<Option<(Uid, Gid)>, ClusterError> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    match User::from_name("postgres") {
        Ok(Some(user)) => Ok(Some((user.uid, user.gid))),
        _ => Err(ClusterError::NoUnprivilegedAccount),
    }
}

fn chown(path: &Path, uid: Uid, gid: Gid) -> Result<(), ClusterError> {
    nix::unistd::chown(path, Some(uid), Some(gid)).map_err(|errno| ClusterError::Io {
        action: format!("giving {} to the postgres account", path.display()),
        source: errno.into(),
    })
}

fn make_temp_root() -> Result<PathBuf, ClusterError> {
    let dir = tempfile::Builder::new()
        .prefix("xueji-pg-")
        .tempdir()
        .map_err(io("creating a temporary directory"))?;
    let path = dir.keep();
    // The postgres account must be able to enter it when we are root.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o700))
        .map_err(io("setting permissions"))?;
    Ok(path)
}

fn find_bin_dir() -> Option<PathBuf> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("PG_BIN_DIR").map(PathBuf::from) {
        return has_server(&dir).then_some(dir);
    }
    // On PATH, resolving symlinks so that `postgres` is found beside the real `initdb`.
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if let Ok(real) = fs::canonicalize(&initdb)
                && let Some(real_dir) = real.parent()
                && has_server(real_dir)
            {
                return Some(real_dir.to_path_buf());
            }
        }
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    for pattern_root in [
        "/usr/lib/postgresql",
        "/usr/local/pgsql",
        "/opt/homebrew/opt",
    ] {
        if let Ok(entries) = fs::read_dir(pattern_root) {
            candidates.extend(entries.flatten().map(|e| e.path().join("bin")));
        }
    }
    if let Ok(entries) = fs::read_dir("/usr") {
        candidates.extend(
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("pgsql-"))
                .map(|e| e.path().join("bin")),
        );
    }
    candidates.push(PathBuf::from("/usr/local/pgsql/bin"));
    // Newest major version first (directory names like 15, 16, pgsql-17).
    candidates.sort_by_key(|p| std::cmp::Reverse(version_of(p)));
    candidates.into_iter().find(|dir| has_server(dir))
}

fn version_of(bin_dir: &Path) -> u32 {
    bin_dir
        .parent()
        .and_then(|p| p.file_name())
        .map(|name| {
            name.to_string_lossy()
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0)
}

fn as_owner(command: &mut Command, owner: Option<(Uid, Gid)>) -> &mut Command {
    if let Some((uid, gid)) = owner {
        command.uid(uid.as_raw()).gid(gid.as_raw());
    }
    command
}

fn initdb(
    bin_dir: &Path,
    data: &Path,
    password_file: &Path,
    owner: Option<(Uid, Gid)>,
    durability: Durability,
) -> Result<(), ClusterError> {
    let password: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    fs::write(password_file, &password).map_err(io("writing the cluster password"))?;
    fs::set_permissions(password_file, fs::Permissions::from_mode(0o600))
        .map_err(io("protecting the cluster password"))?;
    if let Some((uid, gid)) = owner {
        chown(password_file, uid, gid)?;
    }
    let mut command = Command::new(bin_dir.join("initdb"));
    command
        .arg("--pgdata")
        .arg(data)
        .arg("--username")
        .arg(SUPERUSER)
        .arg("--auth=scram-sha-256")
        .arg(format!("--pwfile={}", password_file.display()))
        .args(["--encoding=UTF8", "--locale=C"])
        .stdin(Stdio::null());
    if durability == Durability::Throwaway {
        command.arg("--no-sync");
    }
    let output = as_owner(&mut command, owner)
        .output()
        .map_err(io("running initdb"))?;
    if !output.status.success() {
        return Err(ClusterError::Initdb(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(())
}

fn free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(io("finding a free port"))?
        .port())
}

fn start_server(
    bin_dir: &Path,
    root: &Path,
    data: &Path,
    port: u16,
    owner: Option<(Uid, Gid)>,
    options: &ClusterOptions,
) -> Result<Child, ClusterError> {
    let log_path = root.join("postgres.log");
    // The server's log can carry personal data (a refused key names its value): readable by
    // its owner only.
    let log = {
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&log_path)
            .map_err(io("creating the server log"))?
    };
    fs::set_permissions(
        &log_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .map_err(io("restricting the server log"))?;
    if let Some((uid, gid)) = owner {
        chown(&log_path, uid, gid)?;
    }
    let mut command = Command::new(bin_dir.join("postgres"));
    command
        .arg("-D")
        .arg(data)
        .arg("-p")
        .arg(port.to_string())
        .args(["-c", "listen_addresses=127.0.0.1"])
        .args(["-c", "unix_socket_directories="])
        .arg("-c")
        .arg(format!("max_connections={}", options.max_connections))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        // Our own process group: a Ctrl-C in the terminal reaches us, and we shut the server
        // down in order, instead of the server dying mid-request.
        .process_group(0);
    // For diagnosis: e.g. XUEJI_PG_SETTINGS="shared_preload_libraries=pg_stat_statements".
    if let Ok(settings) = std::env::var("XUEJI_PG_SETTINGS") {
        for setting in settings.split_whitespace() {
            command.args(["-c", setting]);
        }
    }
    if options.durability == Durability::Throwaway {
        command.args(["-c", "fsync=off", "-c", "full_page_writes=off"]);
    }
    let mut server = as_owner(&mut command, owner)
        .spawn()
        .map_err(io("starting postgres"))?;

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = server.try_wait().map_err(io("waiting for postgres"))? {
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            return Err(ClusterError::Start(format!(
                "postgres exited ({status}):\n{log}"
            )));
        }
        // The last line of postmaster.pid reads "ready" once connections are accepted.
        let ready = fs::read_to_string(data.join("postmaster.pid"))
            .map(|pid_file| pid_file.lines().any(|line| line.trim() == "ready"))
            .unwrap_or(false);
        if ready {
            return Ok(server);
        }
        if Instant::now() > deadline {
            let _ = server.kill();
            let _ = server.wait();
            return Err(ClusterError::Start("not ready after 60 seconds".to_owned()));
        }
        // Starting runs on a blocking thread (spawn_blocking), never a runtime worker.
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A shell that waits for this process to end by any means and then stops the server, so an
/// aborted test run or a killed node never leaves a cluster behind.
fn spawn_watchdog(server_pid: u32, remove: Option<&PathBuf>) -> Option<Child> {
    let cleanup = remove
        .map(|dir| format!("rm -rf '{}'", dir.display()))
        .unwrap_or_default();
    let script = format!(
        "while kill -0 {parent} 2>/dev/null; do sleep 1; done; \
         kill -INT {server_pid} 2>/dev/null; \
         for _ in $(seq 1 100); do kill -0 {server_pid} 2>/dev/null || break; sleep 0.1; done; \
         {cleanup}",
        parent = std::process::id(),
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .ok()
}
