//! Test harness: a real PostgreSQL for every test.
//!
//! With `DATABASE_URL` set, tests use that server (the URL must allow `CREATE DATABASE`);
//! otherwise the first test of a process starts a private throwaway cluster from the system's
//! server binaries, shared by the process's tests and stopped when the process exits. Each test
//! gets its own database, cloned from a template that already holds the migrations, so tests
//! never see each other's rows.

use std::{
    collections::HashSet,
    sync::{
        OnceLock,
        atomic::{AtomicU32, Ordering},
    },
};

use futures::future::BoxFuture;
use sqlx::PgPool;
use xueji_db::{ClusterOptions, EmbeddedPostgres};

enum Server {
    External(String),
    Embedded(EmbeddedPostgres),
}

impl Server {
    fn url(&self, database: &str) -> String {
        match self {
            Server::External(url) => with_database(url, database),
            Server::Embedded(cluster) => cluster.url(database),
        }
    }
}

/// Replaces the database name at the end of a PostgreSQL URL.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

static SERVER: OnceLock<Server> = OnceLock::new();
static TEMPLATES: tokio::sync::Mutex<Option<HashSet<&'static str>>> =
    tokio::sync::Mutex::const_new(None);
static NEXT_DATABASE: AtomicU32 = AtomicU32::new(0);

fn server() -> &'static Server {
    SERVER.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Server::External(url),
        _ => Server::Embedded(
            EmbeddedPostgres::start(ClusterOptions::default())
                .unwrap_or_else(|e| panic!("cannot start a test PostgreSQL: {e}")),
        ),
    })
}

/// A database of its own for one test.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    pub pool: PgPool,
    pub url: String,
    pub name: String,
}

/// Applies migrations to a fresh template database.
pub type Setup =
    fn(PgPool) -> BoxFuture<'static, Result<(), Box<dyn std::error::Error + Send + Sync>>>;

/// A new database cloned from the template `template`, which `setup` migrates the first time
/// this process asks for it.
pub async fn database(template: &'static str, setup: Setup) -> TestDatabase {
    let server = tokio::task::spawn_blocking(server)
        .await
        .expect("server start does not panic");
    let admin = server.url("postgres");
    let template_name = format!("tmpl_{template}");
    {
        let mut templates = TEMPLATES.lock().await;
        let templates = templates.get_or_insert_with(HashSet::new);
        if !templates.contains(template) {
            let name = format!("{template_name}_{}", std::process::id());
            xueji_db::create_database(&admin, &name, None)
                .await
                .expect("create template database");
            let pool = xueji_db::connect(&server.url(&name), 2)
                .await
                .expect("connect to template");
            setup(pool.clone()).await.expect("migrate template");
            pool.close().await;
            templates.insert(template);
        }
    }
    let name = format!(
        "test_{}_{}",
        std::process::id(),
        NEXT_DATABASE.fetch_add(1, Ordering::Relaxed)
    );
    let template_db = format!("{template_name}_{}", std::process::id());
    xueji_db::create_database(&admin, &name, Some(&template_db))
        .await
        .expect("create test database");
    let url = server.url(&name);
    let pool = xueji_db::connect(&url, 16)
        .await
        .expect("connect to test database");
    TestDatabase { pool, url, name }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            with_database("postgres://u:p@h:5/db", "x"),
            "postgres://u:p@h:5/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h:5/db?sslmode=disable", "x"),
            "postgres://u:p@h:5/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
