//! Starts a throwaway cluster with every service's migrations applied, prints its URL and waits
//! until standard input closes. `just sqlx-prepare` uses it to refresh the offline query data
//! that lets a clean clone build without a database.

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use xueji_db::{ClusterOptions, EmbeddedPostgres};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cluster =
        tokio::task::spawn_blocking(|| EmbeddedPostgres::start(ClusterOptions::default()))
            .await??;
    let url = cluster.url("postgres");
    let pool = xueji_db::connect(&url, 2).await?;
    for (schema, dir) in migration_dirs(&workspace)? {
        let migrator = sqlx::migrate::Migrator::new(dir.as_path()).await?;
        xueji_db::migrate_schema(&pool, &schema, &migrator).await?;
        eprintln!("migrated {schema} from {}", dir.display());
    }
    println!("{url}");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    Ok(())
}

/// (schema, folder) of every migration set. A crate's `migrations/` belongs to the schema named
/// after the crate's folder; a crate with several schemas keeps one subfolder per schema
/// (`schools/migrations/national` → `schools_national`).
fn migration_dirs(workspace: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut dirs = Vec::new();
    // Shared crates first: services' migrations may call their functions.
    for group in ["shared", "services"] {
        let mut crates: Vec<PathBuf> = std::fs::read_dir(workspace.join(group))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("migrations").is_dir())
            .collect();
        crates.sort();
        for crate_dir in crates {
            let name = crate_dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            let migrations = crate_dir.join("migrations");
            let mut schemas: Vec<PathBuf> = std::fs::read_dir(&migrations)?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect();
            schemas.sort();
            if schemas.is_empty() {
                dirs.push((name, migrations));
            } else {
                for dir in schemas {
                    let sub = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                    dirs.push((format!("{name}_{sub}"), dir));
                }
            }
        }
    }
    Ok(dirs)
}
