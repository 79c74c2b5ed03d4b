//! The bundled sample: a school list (in the format of `xueji_identity::fixed_schools`) and the
//! students the demo registers.

use anyhow::Context;
use serde::Deserialize;
use xueji_proto::identity::v1 as pb;

pub use xueji_identity::fixed_schools::parse_schools;

pub const SCHOOLS_CSV: &str = include_str!("../sample/schools.csv");
pub const STUDENTS_CSV: &str = include_str!("../sample/students.csv");

#[derive(Debug, Deserialize)]
struct StudentRow {
    idempotency_key: String,
    name: String,
    gender: String,
    birth_date: String,
    ethnicity: String,
    document_type: String,
    document_number: String,
    school_code: String,
    grade: u32,
    entry_date: String,
    entry_route: String,
    guardian_name: String,
    guardian_relation: String,
    guardian_phone: String,
    /// The province's own fields, `name=value` pairs separated by `;` (may be empty).
    provincial_fields: String,
}

/// Parses the student CSV into registration requests. Unknown enum words become UNSPECIFIED,
/// which the service refuses with a field error: the CSV is input like any other.
pub fn parse_students(text: &str) -> anyhow::Result<Vec<pb::RegisterStudentRequest>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut requests = Vec::new();
    for (index, row) in reader.deserialize::<StudentRow>().enumerate() {
        let row = row.with_context(|| format!("students line {}", index + 2))?;
        let gender = match row.gender.as_str() {
            "male" => pb::Gender::Male,
            "female" => pb::Gender::Female,
            _ => pb::Gender::Unspecified,
        };
        let document_type = pb::DocumentType::from_str_name(&format!(
            "DOCUMENT_TYPE_{}",
            row.document_type.to_uppercase()
        ))
        .unwrap_or(pb::DocumentType::Unspecified);
        let entry_route = pb::EntryRoute::from_str_name(&format!(
            "ENTRY_ROUTE_{}",
            row.entry_route.to_uppercase()
        ))
        .unwrap_or(pb::EntryRoute::Unspecified);
        let mut provincial_fields = std::collections::HashMap::new();
        for pair in row
            .provincial_fields
            .split(';')
            .filter(|p| !p.trim().is_empty())
        {
            let (name, value) = pair.split_once('=').with_context(|| {
                format!(
                    "students line {}: provincial field {pair:?} is not name=value",
                    index + 2
                )
            })?;
            provincial_fields.insert(name.trim().to_owned(), value.trim().to_owned());
        }
        requests.push(pb::RegisterStudentRequest {
            class_name: String::new(),
            migrant_child: false,
            left_behind_child: false,
            continues_registry_number: String::new(),
            provincial_fields,
            idempotency_key: row.idempotency_key,
            name: row.name,
            gender: gender as i32,
            birth_date: row.birth_date,
            ethnicity: row.ethnicity,
            document_type: document_type as i32,
            document_number: row.document_number,
            school_code: row.school_code,
            grade: row.grade,
            entry_date: row.entry_date,
            entry_route: entry_route as i32,
            guardian: Some(pb::Guardian {
                name: row.guardian_name,
                relation: row.guardian_relation,
                phone: row.guardian_phone,
            }),
        });
    }
    Ok(requests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_sample_parses() {
        assert_eq!(parse_schools(SCHOOLS_CSV).unwrap().len(), 6);
        let students = parse_students(STUDENTS_CSV).unwrap();
        assert_eq!(students.len(), 46);
        assert!(
            students
                .iter()
                .all(|s| s.gender != 0 && s.document_type != 0)
        );
    }
}
