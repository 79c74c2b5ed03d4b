use sqlx::{
    Connection, Executor, PgConnection, PgPool, migrate::Migrator, postgres::PgPoolOptions,
};

/// Applies a service's migrations inside its own schema. Each service owns one schema and keeps
/// its own `_sqlx_migrations` table there, so several services can share one database (the
/// monolithic node) without seeing each other's migration history.
pub async fn migrate_schema(
    pool: &PgPool,
    schema: &str,
    migrator: &Migrator,
) -> Result<(), sqlx::migrate::MigrateError> {
    assert!(
        schema.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "schema names are fixed identifiers"
    );
    pool.execute(format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str())
        .await?;
    // A one-connection pool whose search path puts the migration history in the schema.
    let options = (*pool.connect_options())
        .clone()
        .options([("search_path", schema)]);
    let scoped = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let result = migrator.run(&scoped).await;
    scoped.close().await;
    result
}

/// Creates `name` on the server of `admin_url` (optionally from a template) unless it exists.
pub async fn create_database(
    admin_url: &str,
    name: &str,
    template: Option<&str>,
) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect(admin_url).await?;
    // The catalogue, asked before any schema of ours exists: nothing to check it against.
    #[allow(clippy::disallowed_methods)]
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        let statement = match template {
            Some(template) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""),
            None => format!("CREATE DATABASE \"{name}\""),
        };
        conn.execute(statement.as_str()).await?;
    }
    conn.close().await
}
