//! A fixed school list read from a CSV file (`code,name,division,registry_authority,open_from`),
//! for a development node that runs without the school replica (`schools_file`).

use std::path::Path;

use anyhow::Context;
use chrono::NaiveDate;
use serde::Deserialize;

use crate::{directory::SchoolDirectory, domain::School, store::Store};

#[derive(Debug, Deserialize)]
struct SchoolRow {
    code: String,
    name: String,
    division: String,
    registry_authority: String,
    open_from: NaiveDate,
}

/// Parses `code,name,division,registry_authority,open_from` rows.
pub fn parse_schools(text: &str) -> anyhow::Result<Vec<School>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut schools = Vec::new();
    let divisions = xueji_codes::Divisions::bundled();
    for (index, row) in reader.deserialize::<SchoolRow>().enumerate() {
        let line = index + 2;
        let row = row.with_context(|| format!("schools line {line}"))?;
        let code: xueji_codes::SchoolCode = row
            .code
            .parse()
            .map_err(|e| anyhow::anyhow!("schools line {line}: code {e}"))?;
        schools.push(School {
            code: code.clone(),
            name: row.name,
            division: divisions
                .known(&row.division)
                .map_err(|e| anyhow::anyhow!("schools line {line}: division {e}"))?
                .code,
            registry_authority: divisions
                .known(&row.registry_authority)
                .map_err(|e| anyhow::anyhow!("schools line {line}: registry_authority {e}"))?
                .code,
            open_from: row.open_from,
            open_until: None,
            stages: xueji_codes::default_stages(code.category()),
        });
    }
    Ok(schools)
}

/// Reads `file` and puts each of its schools into the directory.
pub async fn load_schools(
    file: &Path,
    store: &Store,
    directory: &SchoolDirectory,
) -> anyhow::Result<usize> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading schools file {}", file.display()))?;
    load_school_list(&parse_schools(&text)?, store, directory).await
}

/// Puts each of `schools` into the directory (and its stored copy).
pub async fn load_school_list(
    schools: &[School],
    store: &Store,
    directory: &SchoolDirectory,
) -> anyhow::Result<usize> {
    for school in schools {
        directory.upsert(store, school).await?;
    }
    Ok(schools.len())
}
