//! Sheets for the import tests: the national heading row, rows made from registration
//! requests, files in each format, and uploads through the import service.

use xueji_auth::{Level, Role};
use xueji_client::{ImportKind, upload};
use xueji_proto::identity::v1 as pb;

use crate::federation::Federation;

/// The national headings, in the layout's order.
pub const HEADINGS: [&str; 17] = [
    "全国学籍号",
    "曾用学籍号",
    "姓名",
    "性别",
    "出生日期",
    "民族",
    "证件类型",
    "证件号码",
    "学校标识码",
    "年级",
    "入学日期",
    "入学方式",
    "学籍状态",
    "离校原因",
    "监护人姓名",
    "监护人关系",
    "监护人电话",
];

/// A sheet row (national columns) for a registration request, with a registry number and
/// state for migration (both empty for intake).
pub fn row_of(request: &pb::RegisterStudentRequest, number: &str, status: &str) -> Vec<String> {
    let guardian = request.guardian.clone().unwrap_or_default();
    vec![
        number.to_owned(),
        String::new(),
        request.name.clone(),
        if request.gender == pb::Gender::Male as i32 {
            "男"
        } else {
            "女"
        }
        .to_owned(),
        request.birth_date.clone(),
        request.ethnicity.clone(),
        "居民身份证".to_owned(),
        request.document_number.clone(),
        request.school_code.clone(),
        request.grade.to_string(),
        request.entry_date.clone(),
        "就近入学".to_owned(),
        status.to_owned(),
        String::new(),
        guardian.name,
        guardian.relation,
        guardian.phone,
    ]
}

/// The rows as a file: `csv` (UTF-8), `gb18030.csv` or `xlsx`, the heading row first.
pub fn file_of(rows: &[Vec<String>], format: &str) -> Vec<u8> {
    let sheet_format = if format == "xlsx" {
        xueji_sheets::Format::Xlsx
    } else {
        xueji_sheets::Format::Csv
    };
    let mut writer = xueji_sheets::SheetWriter::new(sheet_format).unwrap();
    writer.write_row(&HEADINGS).unwrap();
    for row in rows {
        writer.write_row(row).unwrap();
    }
    let mut bytes = writer.take_ready().unwrap();
    bytes.extend(writer.finish().unwrap());
    if format == "gb18030.csv" {
        let text = String::from_utf8(bytes).unwrap();
        let text = text.trim_start_matches('\u{feff}');
        return encoding_rs::GB18030.encode(text).0.into_owned();
    }
    bytes
}

/// Uploads `bytes` as `file_name` through `province`'s import service as the given user.
#[allow(clippy::too_many_arguments)]
pub async fn import_as(
    federation: &Federation,
    province: &str,
    level: Level,
    jurisdiction: &str,
    kind: ImportKind,
    file_name: &str,
    bytes: &[u8],
) -> Result<pb::ImportJob, tonic::Status> {
    let mut client = federation
        .imports(province, level, jurisdiction, Role::Operator)
        .await;
    upload(&mut client, kind, file_name, bytes, |_| {}).await
}

/// Students whose current enrollment is at `school` (in Fujian, 35).
pub async fn students_at(federation: &Federation, school: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM identity.enrollments WHERE school_code = $1 AND is_current",
    )
    .bind(school)
    .fetch_one(&federation.province("35").pool)
    .await
    .unwrap()
}
