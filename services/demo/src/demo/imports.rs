//! The demo's September intake from a spreadsheet: a Gulou registrar imports a small XLSX
//! list (two rows with mistakes), sees the job's summary, and gets the error file back in the
//! same format with the reason beside each bad row.

use std::path::Path;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use xueji_auth::{Level, Role};
use xueji_identity::domain::{
    DocumentType, EnrollmentStatus, EntryRoute, Guardian,
    sheet::{Layout, SheetStudent},
};
use xueji_proto::identity::v1 as pb;

use super::{DemoKeys, mint, step};
use xueji_client::{ImportKind, download, import_client, upload};

/// What the intake did: rows imported, rows refused.
pub(super) struct IntakeOutcome {
    pub imported: u64,
    pub bad: u64,
}

/// The spreadsheet a registrar fills: six new pupils, one ID number mistyped, one in a grade
/// the primary school does not teach.
fn intake_sheet() -> anyhow::Result<Vec<u8>> {
    let layout = Layout::new(&[]);
    let mut writer = xueji_sheets::SheetWriter::new(xueji_sheets::Format::Xlsx)?;
    writer.write_row(&layout.headings())?;
    let guardian = Guardian {
        name: "陈秀英".into(),
        relation: "母亲".into(),
        phone: "13905910000".into(),
    };
    let fields = Default::default();
    for (n, name) in ["林𠀀晨", "黄雨桐", "郑子墨", "吴思远", "刘一诺", "许嘉禾"]
        .into_iter()
        .enumerate()
    {
        let birth = chrono::NaiveDate::from_ymd_opt(2020, 3, 1 + n as u32).expect("valid");
        let sequence = 101 + 2 * n as u32;
        let mut id = xueji_codes::ResidentId::from_body(&format!(
            "350102{}{sequence:03}",
            birth.format("%Y%m%d")
        ))?
        .to_string();
        if n == 2 {
            // A mistyped last character: the check character disagrees.
            let last = id.pop().expect("18 characters");
            id.push(if last == '1' { '2' } else { '1' });
        }
        let mut cells = layout.cells(&SheetStudent {
            registry_number: "",
            aliases: &[],
            name,
            gender: xueji_codes::Gender::Male,
            birth_date: birth,
            ethnicity: "01",
            document_type: DocumentType::ResidentIdCard,
            document_number: Some(&id),
            school_code: "2135000101",
            grade: if n == 4 { 8 } else { 1 },
            entry_date: chrono::NaiveDate::from_ymd_opt(2026, 9, 1).expect("valid"),
            entry_route: EntryRoute::NearbyAdmission,
            status: EnrollmentStatus::Pending,
            left_reason: None,
            guardian: &guardian,
            provincial_fields: &fields,
            // The first pupil came with parents working in Fuzhou (随迁子女).
            flags: xueji_identity::domain::StudentFlags {
                migrant_child: n == 0,
                left_behind_child: false,
            },
            class: None,
        });
        // An intake carries no number and no state: the node issues both.
        cells[0].clear();
        cells[12].clear();
        writer.write_row(&cells)?;
    }
    Ok(writer.finish()?)
}

pub(super) async fn intake_from_a_spreadsheet(
    address: &str,
    pki_dir: &Path,
    keys: &DemoKeys,
    dir: &Path,
) -> anyhow::Result<IntakeOutcome> {
    step("September intake from a spreadsheet: a Gulou registrar imports 新生名单.xlsx");
    let sheet = intake_sheet()?;
    let file = dir.join("新生名单.xlsx");
    std::fs::write(&file, &sheet)?;
    let token = mint(
        keys,
        "registrar",
        Level::School,
        "2135000101",
        Role::Operator,
    )?;
    let mut client = import_client(address, pki_dir, &token).await?;
    let job = upload(
        &mut client,
        ImportKind::Intake,
        "新生名单.xlsx",
        &sheet,
        |_| {},
    )
    .await?;
    println!(
        "  job {}: {} rows, {} imported as pending registrations (L numbers), {} refused",
        job.id, job.rows_handled, job.imported, job.bad
    );
    let stream = client
        .download_import_errors(pb::DownloadImportErrorsRequest {
            job_id: job.id.clone(),
        })
        .await?
        .into_inner();
    let (errors, name) = download(stream, |m| (m.chunk, m.file_name)).await?;
    let error_file = dir.join(&name);
    std::fs::write(&error_file, &errors)?;
    let mut rows = Vec::new();
    xueji_sheets::read_xlsx(std::io::Cursor::new(errors), |row| {
        rows.push(row);
        true
    })?;
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["原行号", "姓名", "证件号码", "年级", "错误说明"]);
    // The error file's last two columns: the reasons, then the row's number in the upload.
    for row in rows.iter().skip(1) {
        let cell = |i: usize| row.cells.get(i).cloned().unwrap_or_default();
        let from_end = |n: usize| {
            row.cells
                .len()
                .checked_sub(n)
                .and_then(|i| row.cells.get(i))
                .cloned()
                .unwrap_or_default()
        };
        table.add_row([from_end(1), cell(2), cell(7), cell(9), from_end(2)]);
    }
    println!(
        "  the error report ({}), ready to fix and import again:",
        error_file.display()
    );
    println!("{table}");
    Ok(IntakeOutcome {
        imported: job.imported,
        bad: job.bad,
    })
}
