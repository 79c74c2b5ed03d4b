//! Students as `xuejictl` asks for and shows them: a registration from the command line, a
//! list as a table or JSON, one student in detail.

use anyhow::Context;
use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use xueji_proto::identity::v1::{self as pb};

use super::*;

#[derive(Args)]
pub(crate) struct RegisterArgs {
    /// Any unique string; reuse it to retry safely.
    #[arg(long)]
    idempotency_key: String,
    #[arg(long)]
    name: String,
    /// male or female.
    #[arg(long)]
    gender: String,
    /// YYYY-MM-DD
    #[arg(long)]
    birth_date: String,
    /// GB/T 3304 code, e.g. 01.
    #[arg(long, default_value = "01")]
    ethnicity: String,
    /// resident_id_card, hk_macao_travel_permit, taiwan_compatriot_permit,
    /// hmt_residence_permit, passport, other or none.
    #[arg(long, default_value = "resident_id_card")]
    document_type: String,
    #[arg(long, default_value = "")]
    document_number: String,
    #[arg(long)]
    school: String,
    #[arg(long)]
    grade: u32,
    /// YYYY-MM-DD
    #[arg(long)]
    entry_date: String,
    /// nearby_admission, entrance_exam, recommendation, migrant_admission or other.
    #[arg(long, default_value = "nearby_admission")]
    entry_route: String,
    #[arg(long)]
    guardian_name: String,
    #[arg(long, default_value = "父亲")]
    guardian_relation: String,
    #[arg(long, default_value = "")]
    guardian_phone: String,
    /// Progression to the next stage of a student without a resident ID number: the registry
    /// number of their finished record (a student with one is found by it).
    #[arg(long, default_value = "")]
    continues: String,
    /// A provincial field (非基础字段) of the school's province, as `name=value`; repeat for
    /// each (e.g. `--field boarding=是`).
    #[arg(long = "field", value_name = "NAME=VALUE")]
    fields: Vec<String>,
    /// The class (班级) of the current school year to seat the pupil in (`class create` opens
    /// one); the pupil takes its next free seat.
    #[arg(long, default_value = "")]
    class: String,
}

pub(super) fn register_request(args: RegisterArgs) -> anyhow::Result<pb::RegisterStudentRequest> {
    let gender = match args.gender.as_str() {
        "male" | "m" | "男" => pb::Gender::Male,
        "female" | "f" | "女" => pb::Gender::Female,
        other => anyhow::bail!("--gender {other:?}: use male or female"),
    };
    let document_type = pb::DocumentType::from_str_name(&format!(
        "DOCUMENT_TYPE_{}",
        args.document_type.to_uppercase()
    ))
    .with_context(|| {
        format!(
            "--document-type {:?} is not a document type",
            args.document_type
        )
    })?;
    let entry_route =
        pb::EntryRoute::from_str_name(&format!("ENTRY_ROUTE_{}", args.entry_route.to_uppercase()))
            .with_context(|| {
                format!("--entry-route {:?} is not an entry route", args.entry_route)
            })?;
    let mut provincial_fields = std::collections::HashMap::new();
    for pair in &args.fields {
        let (field, value) = pair
            .split_once('=')
            .with_context(|| format!("--field {pair:?}: write it as name=value"))?;
        if provincial_fields
            .insert(field.trim().to_owned(), value.to_owned())
            .is_some()
        {
            anyhow::bail!(
                "--field {}: given twice; give each field once",
                field.trim()
            );
        }
    }
    Ok(pb::RegisterStudentRequest {
        class_name: args.class,
        migrant_child: false,
        left_behind_child: false,
        provincial_fields,
        continues_registry_number: args.continues,
        idempotency_key: args.idempotency_key,
        name: args.name,
        gender: gender as i32,
        birth_date: args.birth_date,
        ethnicity: args.ethnicity,
        document_type: document_type as i32,
        document_number: args.document_number,
        school_code: args.school,
        grade: args.grade,
        entry_date: args.entry_date,
        entry_route: entry_route as i32,
        guardian: Some(pb::Guardian {
            name: args.guardian_name,
            relation: args.guardian_relation,
            phone: args.guardian_phone,
        }),
    })
}

pub(crate) fn status_name(student: &pb::Student) -> String {
    student
        .status()
        .as_str_name()
        .trim_start_matches("ENROLLMENT_STATUS_")
        .to_lowercase()
}

pub(super) fn to_json(student: &pb::Student) -> serde_json::Value {
    serde_json::json!({
        "registry_number": student.registry_number,
        "aliases": student.aliases,
        "name": student.name,
        "gender": student.gender().as_str_name().trim_start_matches("GENDER_").to_lowercase(),
        "birth_date": student.birth_date,
        "ethnicity": student.ethnicity,
        "document_type": student.document_type().as_str_name().trim_start_matches("DOCUMENT_TYPE_").to_lowercase(),
        "document_number": student.document_number,
        "school_code": student.school_code,
        "grade": student.grade,
        "entry_date": student.entry_date,
        "entry_route": student.entry_route().as_str_name().trim_start_matches("ENTRY_ROUTE_").to_lowercase(),
        "status": status_name(student),
        "registered_at": student.registered_at,
        "decided_at": student.decided_at,
        "decided_by": student.decided_by,
        "decision_reason": student.decision_reason,
        "problems": student.problems().map(kind_name).collect::<Vec<_>>(),
        "suspended_until": student.suspended_until,
        "class": student.class_name,
        "class_seat": student.class_seat,
    })
}

pub(super) fn print_students(students: Vec<pb::Student>, json: bool) -> anyhow::Result<()> {
    if json {
        let rows: Vec<_> = students.iter().map(to_json).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "registry number",
        "aliases",
        "name",
        "birth date",
        "school",
        "grade",
        "status",
        "problems",
    ]);
    for s in &students {
        table.add_row([
            s.registry_number.clone(),
            s.aliases.join(", "),
            s.name.clone(),
            s.birth_date.clone(),
            s.school_code.clone(),
            s.grade.to_string(),
            status_name(s),
            s.problems().map(kind_name).collect::<Vec<_>>().join(", "),
        ]);
    }
    println!("{table}");
    Ok(())
}

pub(super) fn print_detail(student: &pb::Student) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    if let serde_json::Value::Object(fields) = to_json(student) {
        for (key, value) in fields {
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| i.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            table.add_row([key, text]);
        }
    }
    println!("{table}");
}
