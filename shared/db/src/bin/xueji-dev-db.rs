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
    for dir in migration_dirs(&workspace)? {
        // The folder above `migrations/` names the schema the migrations belong to.
        let schema = dir
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .ok_or("migration folder without a parent")?
            .to_owned();
        let migrator = sqlx::migrate::Migrator::new(dir.as_path()).await?;
        xueji_db::migrate_schema(&pool, &schema, &migrator).await?;
        eprintln!("migrated {schema} from {}", dir.display());
    }
    println!("{url}");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    Ok(())
}

fn migration_dirs(workspace: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    // Shared crates first: services' migrations may call their functions.
    for group in ["shared", "services"] {
        let mut crates: Vec<PathBuf> = std::fs::read_dir(workspace.join(group))?
            .flatten()
            .map(|e| e.path().join("migrations"))
            .filter(|p| p.is_dir())
            .collect();
        crates.sort();
        dirs.extend(crates);
    }
    Ok(dirs)
}
