//! Bulk import and export, end to end over real gRPC streams: bad rows reported with row and
//! field (none written), the same result from GB18030 and UTF-8 CSV and XLSX, re-submission,
//! resumption after a crash, migration conflicts between provinces, the export round trip,
//! and who may import what.

use std::collections::BTreeSet;

use xueji_auth::{Level, Role};
use xueji_client::{ImportKind, download, upload};
use xueji_proto::identity::v1 as pb;
use xueji_tests::{
    federation::{Federation, registration_at},
    imports::{HEADINGS, file_of, import_as, row_of, students_at},
    resident_id,
};

/// A valid intake row at `school` for the n-th student of a series.
fn student_row(school: &str, county: &str, series: u32, n: u32) -> Vec<String> {
    let id = resident_id(&format!(
        "{county}2018{:02}{:02}{:03}",
        1 + series,
        1 + n / 400,
        n % 400 * 2 + 1
    ));
    let request = registration_at("unused", &format!("新生𠀀{series}号{n}"), school, &id);
    row_of(&request, "", "")
}

/// A mix of good rows and every kind of bad one, at a county operator's schools.
fn mixed_rows(
    gulou: &str,
    xiamen: &str,
    series: u32,
) -> (Vec<Vec<String>>, Vec<(u64, &'static str)>) {
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    let good = |n| student_row(gulou, "350102", series, n);
    rows.push(good(0));
    // Row 3: the ID number's check character is wrong.
    let mut row = good(1);
    let last = row[7].pop().unwrap();
    row[7].push(if last == '0' { '1' } else { '0' });
    rows.push(row);
    bad.push((3, "document_number"));
    // Row 4: a gender spelt wrong.
    let mut row = good(2);
    row[3] = "男生".into();
    rows.push(row);
    bad.push((4, "gender"));
    // Row 5: a birth date the ID number disagrees with.
    let mut row = good(3);
    row[4] = "2017-05-05".into();
    rows.push(row);
    bad.push((5, "birth_date"));
    // Row 6: an ethnicity that is no code.
    let mut row = good(4);
    row[5] = "99".into();
    rows.push(row);
    bad.push((6, "ethnicity"));
    // Row 7: a school outside the county operator's jurisdiction.
    let mut row = good(5);
    row[8] = xiamen.into();
    rows.push(row);
    bad.push((7, "school_code"));
    // Row 8: a grade a primary school does not teach.
    let mut row = good(6);
    row[9] = "11".into();
    rows.push(row);
    bad.push((8, "grade"));
    // Row 9: the same ID number as row 2.
    let mut row = good(7);
    row[7] = rows[0][7].clone();
    row[4] = rows[0][4].clone();
    row[3] = rows[0][3].clone();
    rows.push(row);
    bad.push((9, "document_number"));
    // Row 10: no name.
    let mut row = good(8);
    row[2] = String::new();
    rows.push(row);
    bad.push((10, "name"));
    // Row 11: a date nobody can read.
    let mut row = good(9);
    row[10] = "去年九月".into();
    rows.push(row);
    bad.push((11, "entry_date"));
    rows.push(good(10));
    rows.push(good(11));
    (rows, bad)
}

#[tokio::test]
async fn bad_rows_are_reported_with_row_and_field_and_never_written() {
    let federation = Federation::start().await;
    let gulou = federation.a_primary_school("35").await;
    let county = federation.school_county("35", &gulou).await;
    let mut xiamen = None;
    for code in federation.primary_schools("35").await {
        if federation.school_county("35", &code).await != county {
            xiamen = Some(code);
            break;
        }
    }
    let xiamen = xiamen.expect("a school outside the county");
    let before = students_at(&federation, &gulou).await;

    let mut results = Vec::new();
    for (series, format) in [(1, "csv"), (2, "gb18030.csv"), (3, "xlsx")] {
        let (rows, bad) = mixed_rows(&gulou, &xiamen, series);
        let file = file_of(&rows, format);
        let name = format!("新生名单.{}", if format == "xlsx" { "xlsx" } else { "csv" });
        let job = import_as(
            &federation,
            "35",
            Level::County,
            &county,
            ImportKind::Intake,
            &name,
            &file,
        )
        .await
        .expect("the import runs");
        assert_eq!(
            job.state,
            pb::ImportJobState::Finished as i32,
            "{format}: {job:?}"
        );
        assert_eq!(job.imported, 3, "{format}: {job:?}");
        assert_eq!(job.bad, bad.len() as u64, "{format}: {job:?}");
        let reported: BTreeSet<(u64, String)> = job
            .first_errors
            .iter()
            .map(|e| (e.row, e.field.clone()))
            .collect();
        for (row, field) in &bad {
            assert!(
                reported.contains(&(*row, field.to_string())),
                "{format}: row {row} should be reported for {field}: {:?}",
                job.first_errors
            );
        }
        // The error file: the same format, the heading row plus 错误说明, each bad row as sent.
        let mut client = federation
            .imports("35", Level::County, &county, Role::Operator)
            .await;
        let stream = client
            .download_import_errors(pb::DownloadImportErrorsRequest {
                job_id: job.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let (bytes, file_name) = download(stream, |m| (m.chunk, m.file_name)).await.unwrap();
        assert!(file_name.contains(".errors."), "{file_name}");
        if format == "gb18030.csv" {
            assert_eq!(
                xueji_sheets::sniff_encoding(&bytes),
                xueji_sheets::Encoding::Gb18030,
                "the error file keeps the upload's encoding"
            );
        }
        let mut errors = Vec::new();
        if format == "xlsx" {
            xueji_sheets::read_xlsx(std::io::Cursor::new(bytes), |row| {
                errors.push(row.cells);
                true
            })
            .unwrap();
        } else {
            xueji_sheets::read_csv(&bytes[..], None, |row| {
                errors.push(row.cells);
                true
            })
            .unwrap();
        }
        assert_eq!(errors.len(), 1 + bad.len(), "{format}");
        assert_eq!(errors[0][HEADINGS.len()..], ["错误说明", "原行号"]);
        assert_eq!(
            errors[1][..HEADINGS.len()],
            rows[1][..],
            "{format}: the row as sent"
        );
        assert!(
            errors[1][HEADINGS.len()].contains("证件号码"),
            "{:?}",
            errors[1]
        );
        // Every bad row, not only the first twenty, says where it stood in the upload.
        let numbered: BTreeSet<u64> = errors[1..]
            .iter()
            .map(|row| row.last().unwrap().parse().expect("a row number"))
            .collect();
        let expected: BTreeSet<u64> = bad.iter().map(|(row, _)| *row).collect();
        assert_eq!(numbered, expected, "{format}");
        results.push((
            job.imported,
            job.bad,
            reported.into_iter().collect::<Vec<_>>(),
        ));
    }
    // The three encodings and formats give the same result, row for row.
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
    assert_eq!(students_at(&federation, &gulou).await, before + 9);

    // The stored names are the same characters whatever the file's encoding.
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM identity.students WHERE name LIKE '新生𠀀%号0' ORDER BY name",
    )
    .fetch_all(&federation.province("35").pool)
    .await
    .unwrap();
    assert_eq!(names, ["新生𠀀1号0", "新生𠀀2号0", "新生𠀀3号0"]);
}

#[tokio::test]
async fn a_file_sent_twice_imports_nothing_twice_and_intake_stays_in_the_school() {
    let federation = Federation::start().await;
    let schools = federation.primary_schools("35").await;
    let (mine, other) = (&schools[0], &schools[schools.len() - 1]);
    let (mine_county, other_county) = (
        federation.school_county("35", mine).await,
        federation.school_county("35", other).await,
    );
    let rows: Vec<Vec<String>> = (0..5)
        .map(|n| student_row(mine, &mine_county, 4, n))
        .chain([student_row(other, &other_county, 4, 99)])
        .collect();
    let file = file_of(&rows, "csv");
    let first = import_as(
        &federation,
        "35",
        Level::School,
        mine,
        ImportKind::Intake,
        "a.csv",
        &file,
    )
    .await
    .unwrap();
    assert_eq!((first.imported, first.bad), (5, 1), "{first:?}");
    assert_eq!(first.first_errors[0].field, "school_code");
    assert_eq!(first.first_errors[0].row, 7);
    let count = students_at(&federation, mine).await;

    let again = import_as(
        &federation,
        "35",
        Level::School,
        mine,
        ImportKind::Intake,
        "a-copy.csv",
        &file,
    )
    .await
    .unwrap();
    assert!(again.replayed, "{again:?}");
    assert_eq!(again.id, first.id);
    assert_eq!((again.imported, again.bad), (5, 1));
    assert_eq!(students_at(&federation, mine).await, count);

    // The school's list sent again with two pupils added (another file): the five already
    // here count as present, not as bad rows; the two are imported.
    let grown: Vec<Vec<String>> = (0..7)
        .map(|n| student_row(mine, &mine_county, 4, n))
        .collect();
    let grown_job = import_as(
        &federation,
        "35",
        Level::School,
        mine,
        ImportKind::Intake,
        "a-grown.csv",
        &file_of(&grown, "csv"),
    )
    .await
    .unwrap();
    assert!(!grown_job.replayed, "{grown_job:?}");
    assert_eq!(
        (grown_job.imported, grown_job.already_present, grown_job.bad),
        (2, 5, 0),
        "{grown_job:?}"
    );
    assert_eq!(students_at(&federation, mine).await, count + 2);

    // Migration is for province and ministry operators only.
    let refused = import_as(
        &federation,
        "35",
        Level::County,
        &mine_county,
        ImportKind::Migration,
        "m.csv",
        &file,
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    let refused = import_as(
        &federation,
        "35",
        Level::School,
        mine,
        ImportKind::Migration,
        "m.csv",
        &file,
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");

    // A header without a SHA-256 is refused naming the field, and nothing is opened.
    let mut client = federation
        .imports("35", Level::School, mine, Role::Operator)
        .await;
    let header = pb::ImportIntakeRequest {
        part: Some(pb::import_intake_request::Part::Header(pb::ImportHeader {
            file_name: "x.csv".into(),
            format: 0,
            sha256: "abc".into(),
            size: 0,
        })),
    };
    let status = client
        .import_intake(futures::stream::iter([header]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("header.sha256"),
        "{}",
        status.message()
    );
}

/// `count` active records at `school`, migrated with their G numbers.
fn migration_rows(school: &str, county: &str, count: u32) -> Vec<Vec<String>> {
    (0..count)
        .map(|n| {
            let date = chrono::NaiveDate::from_ymd_opt(2016, 1, 1).unwrap()
                + chrono::Days::new(u64::from(n / 450));
            let id = resident_id(&format!(
                "{county}{}{:03}",
                date.format("%Y%m%d"),
                n % 450 * 2 + 1
            ));
            let mut request = registration_at("unused", &format!("迁移{n}"), school, &id);
            request.grade = 4;
            request.entry_date = "2022-09-01".into();
            row_of(&request, &format!("G{id}"), "在籍")
        })
        .collect()
}

#[tokio::test]
async fn a_crash_mid_import_resumes_without_loss_or_duplicates() {
    let mut federation = Federation::start().await;
    let school = federation.a_primary_school("35").await;
    let county = federation.school_county("35", &school).await;
    let rows = migration_rows(&school, &county, 60_000);
    let file = file_of(&rows, "csv");

    let mut client = federation
        .imports("35", Level::Province, "350000", Role::Operator)
        .await;
    let (progressed_tx, progressed_rx) = tokio::sync::oneshot::channel();
    let upload_file = file.clone();
    let first = tokio::spawn(async move {
        let mut progressed = Some(progressed_tx);
        upload(
            &mut client,
            ImportKind::Migration,
            "旧系统.csv",
            &upload_file,
            |job| {
                if let Some(tx) = progressed.take() {
                    let _ = tx.send(job.done_through_row);
                }
            },
        )
        .await
    });
    let committed = progressed_rx.await.expect("a first chunk committed");
    assert!(committed > 1);
    federation.kill_province("35").await;
    assert!(
        first.await.unwrap().is_err(),
        "the upload broke with the node"
    );
    federation.restart_province("35").await;

    let job = import_as(
        &federation,
        "35",
        Level::Province,
        "350000",
        ImportKind::Migration,
        "旧系统.csv",
        &file,
    )
    .await
    .unwrap();
    assert_eq!(job.state, pb::ImportJobState::Finished as i32, "{job:?}");
    assert_eq!(job.bad, 0, "{job:?}");
    assert_eq!(job.imported + job.already_present, 60_000, "{job:?}");
    assert_eq!(
        job.already_present, 0,
        "a resumed job skips committed rows: {job:?}"
    );
    let (students, numbers): (i64, i64) = sqlx::query_as(
        "SELECT count(DISTINCT s.id), count(r.number) FROM identity.students s
         JOIN identity.registry_numbers r ON r.student_id = s.id
         WHERE s.idempotency_key LIKE 'migration:%'",
    )
    .fetch_one(&federation.province("35").pool)
    .await
    .unwrap();
    assert_eq!((students, numbers), (60_000, 60_000));
    // The records reach the national index, each once.
    federation.delivered("35").await;
    let indexed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM national.students WHERE province = '35' AND registry_number LIKE 'G%'
           AND registry_number IN (SELECT 'G' || substr(registry_number, 2) FROM national.students)",
    )
    .fetch_one(&federation.national.pool)
    .await
    .unwrap();
    assert!(indexed >= 60_000, "{indexed}");
}

#[tokio::test]
async fn a_migrated_record_another_province_holds_becomes_a_problem_in_both() {
    let federation = Federation::start().await;
    let anhui_school = federation.a_primary_school("34").await;
    let (anhui_number, _, _) =
        xueji_tests::transfers::active_student(&federation, "34", &anhui_school).await;
    let id = anhui_number[1..].to_owned();
    let school = federation.a_primary_school("35").await;
    let request = registration_at("unused", "重复迁移", &school, &id);
    let rows = vec![
        row_of(&request, &format!("G{id}"), "在籍"),
        migration_rows(&school, &federation.school_county("35", &school).await, 1)
            .pop()
            .unwrap(),
    ];
    let job = import_as(
        &federation,
        "35",
        Level::Province,
        "350000",
        ImportKind::Migration,
        "旧.csv",
        &file_of(&rows, "csv"),
    )
    .await
    .unwrap();
    assert_eq!((job.imported, job.bad), (2, 0), "{job:?}");
    federation.delivered("35").await;

    let fujian_number = format!("G{id}");
    let problems = |province: &'static str, number: String| {
        let federation = &federation;
        async move {
            for _ in 0..100 {
                let student = federation
                    .identity(
                        province,
                        Level::Province,
                        &format!("{province}0000"),
                        Role::Operator,
                    )
                    .await
                    .get_student(pb::GetStudentRequest {
                        number: number.clone(),
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .student
                    .unwrap();
                if student
                    .problems
                    .contains(&(pb::ProblemKind::DuplicateIdNumber as i32))
                {
                    return student.problems;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Vec::new()
        }
    };
    let in_fujian = problems("35", fujian_number).await;
    let in_anhui = problems("34", anhui_number.clone()).await;
    assert!(
        !in_fujian.is_empty(),
        "Fujian's migrated record is a problem record"
    );
    assert!(
        !in_anhui.is_empty(),
        "Anhui's record is a problem record too"
    );
    // Anhui's record was not overwritten: the index still has it as Anhui's.
    let owner: String = sqlx::query_scalar(
        "SELECT s.province FROM national.numbers n JOIN national.students s ON s.id = n.student_id
         WHERE n.number = $1",
    )
    .bind(&anhui_number)
    .fetch_one(&federation.national.pool)
    .await
    .unwrap();
    assert_eq!(owner, "34");
}

async fn export(federation: &Federation, format: pb::SheetFormat, scope: &str) -> Vec<Vec<String>> {
    let mut client = federation
        .imports("35", Level::Province, "350000", Role::Operator)
        .await;
    let stream = client
        .export_students(pb::ExportStudentsRequest {
            format: format as i32,
            scope: scope.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let (bytes, _) = download(stream, |m| (m.chunk, m.file_name)).await.unwrap();
    let mut rows = Vec::new();
    let each = |row: xueji_sheets::Row| {
        rows.push(row.cells);
        true
    };
    if format == pb::SheetFormat::Xlsx {
        xueji_sheets::read_xlsx(std::io::Cursor::new(bytes), each).unwrap();
    } else {
        xueji_sheets::read_csv(&bytes[..], None, each).unwrap();
    }
    rows[1..].sort();
    rows
}

#[tokio::test]
async fn an_export_imports_into_an_empty_node_as_it_was() {
    let source = Federation::start().await;
    let school = source.a_primary_school("35").await;
    let county = source.school_county("35", &school).await;
    // Records in several states: active (G), pending (L), suspended, graduated.
    let mut rows = migration_rows(&school, &county, 6);
    rows[1][12] = "休学".into();
    rows[2][12] = "毕业".into();
    rows[3][1] = format!("L{county}201601010001");
    let source_job = import_as(
        &source,
        "35",
        Level::Province,
        "350000",
        ImportKind::Migration,
        "a.csv",
        &file_of(&rows, "csv"),
    )
    .await
    .unwrap();
    assert_eq!(
        (source_job.imported, source_job.bad),
        (6, 0),
        "{source_job:?}"
    );
    for n in 0..3 {
        let id = resident_id(&format!("{county}2019030{}{:03}", n + 1, 11));
        let request = registration_at(&format!("rt-{n}"), &format!("往返{n}"), &school, &id);
        source
            .identity("35", Level::School, &school, Role::Operator)
            .await
            .register_student(request)
            .await
            .unwrap();
    }
    for format in [pb::SheetFormat::Csv, pb::SheetFormat::Xlsx] {
        let exported = export(&source, format, &school).await;
        assert_eq!(exported.len(), 1 + 9, "{format:?}");
        let target = Federation::start().await;
        let mut bytes = {
            let mut writer = xueji_sheets::SheetWriter::new(match format {
                pb::SheetFormat::Xlsx => xueji_sheets::Format::Xlsx,
                _ => xueji_sheets::Format::Csv,
            })
            .unwrap();
            for row in &exported {
                writer.write_row(row).unwrap();
            }
            let mut bytes = writer.take_ready().unwrap();
            bytes.extend(writer.finish().unwrap());
            bytes
        };
        let name = if format == pb::SheetFormat::Xlsx {
            "x.xlsx"
        } else {
            "x.csv"
        };
        let job = import_as(
            &target,
            "35",
            Level::Province,
            "350000",
            ImportKind::Migration,
            name,
            &bytes,
        )
        .await
        .unwrap();
        assert_eq!((job.imported, job.bad), (9, 0), "{format:?}: {job:?}");
        assert_eq!(
            export(&target, format, &school).await,
            exported,
            "{format:?}"
        );
        bytes.clear();
    }
}

#[tokio::test]
async fn the_template_carries_the_provinces_columns_and_lists() {
    let federation = Federation::start().await;
    let school = federation.a_primary_school("35").await;
    let mut client = federation
        .imports("35", Level::School, &school, Role::Operator)
        .await;
    let stream = client
        .download_template(pb::DownloadTemplateRequest {
            format: pb::SheetFormat::Xlsx as i32,
            province: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let (bytes, name) = download(stream, |m| (m.chunk, m.file_name)).await.unwrap();
    assert_eq!(name, "xueji-template-35.xlsx");
    let mut rows = Vec::new();
    xueji_sheets::read_xlsx(std::io::Cursor::new(bytes.clone()), |row| {
        rows.push(row.cells);
        true
    })
    .unwrap();
    assert_eq!(rows[0][..HEADINGS.len()], HEADINGS);
    // Fujian's own fields follow the national columns.
    assert!(rows[0].contains(&"是否住校".to_owned()), "{:?}", rows[0]);
    assert!(rows[0].contains(&"残疾类别".to_owned()), "{:?}", rows[0]);
    // The drop-down lists' values sit in the hidden sheet.
    let mut workbook: calamine::Xlsx<_> =
        calamine::Reader::new(std::io::Cursor::new(bytes)).unwrap();
    let lists = calamine::Reader::worksheet_range(&mut workbook, "选项").unwrap();
    let values: Vec<String> = lists
        .cells()
        .map(|(_, _, value)| value.to_string())
        .collect();
    assert!(values.contains(&"01 汉族".to_owned()), "{values:?}");
    assert!(values.contains(&"视力".to_owned()), "{values:?}");
}

/// The node's upload limits: an upload past the size limit and one that stalls fail their
/// jobs with the reason; while a node reads as many imports as it may, one more is refused
/// RESOURCE_EXHAUSTED, and accepted once one has ended.
#[tokio::test]
async fn uploads_are_bounded_in_size_idle_time_and_number() {
    use xueji_proto::identity::v1::import_intake_request::Part;
    let node = xueji_tests::TestNode::start_with(|config| {
        config.import_max_upload_mib = 1;
        config.import_idle_secs = 2;
        config.imports_at_once = 1;
    })
    .await;
    let county = "350102";
    let client = || async {
        xueji_client::import_client(
            &node.address(),
            &node.pki_dir(),
            &node.token(Level::County, county, Role::Operator),
        )
        .await
        .expect("import client")
    };
    let header = |name: &str, bytes: &[u8]| pb::ImportHeader {
        file_name: name.to_owned(),
        format: pb::SheetFormat::Unspecified as i32,
        sha256: {
            use sha2::Digest;
            hex_of(&sha2::Sha256::digest(bytes))
        },
        size: bytes.len() as u64,
    };

    // 2 MiB of CSV against a limit of 1 MiB.
    let mut big = HEADINGS.join(",").into_bytes();
    big.push(b'\n');
    while big.len() < 2 << 20 {
        big.extend_from_slice(",,,,,,,,,,,,,,,,\n".as_bytes());
    }
    let job = upload(
        &mut client().await,
        ImportKind::Intake,
        "big.csv",
        &big,
        |_| {},
    )
    .await
    .expect("the job answers");
    assert_eq!(job.state, pb::ImportJobState::Failed as i32, "{job:?}");
    assert!(job.failure.contains("limit of 1 MiB"), "{}", job.failure);

    // An upload that sends its header and one piece, then nothing: it holds the node's one
    // reading slot until its idle time passes.
    let stalled_bytes = HEADINGS.join(",").into_bytes();
    let (pieces, stream) = tokio::sync::mpsc::channel(4);
    pieces
        .send(pb::ImportIntakeRequest {
            part: Some(Part::Header(header("stalled.csv", b"not what is sent"))),
        })
        .await
        .unwrap();
    pieces
        .send(pb::ImportIntakeRequest {
            part: Some(Part::Chunk(stalled_bytes)),
        })
        .await
        .unwrap();
    let mut stalled_client = client().await;
    let mut stalled = stalled_client
        .import_intake(tokio_stream::wrappers::ReceiverStream::new(stream))
        .await
        .expect("the stalled upload starts")
        .into_inner();

    // A file of the heading row alone.
    let headings_only = async |name: &str| {
        upload(
            &mut client().await,
            ImportKind::Intake,
            name,
            HEADINGS.join(",").as_bytes(),
            |_| {},
        )
        .await
    };
    let refused = headings_only("second.csv")
        .await
        .expect_err("the node reads one import at a time");
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert!(
        refused.message().contains("1 imports at once"),
        "{refused:?}"
    );

    // The stalled upload is stopped after its idle time, its job failed with the reason.
    let mut failure = None;
    while let Some(event) = stalled.message().await.expect("events") {
        if let Some(pb::import_intake_response::Event::Finished(job)) = event.event {
            failure = Some(job);
        }
    }
    let job = failure.expect("the stalled job's summary");
    assert_eq!(job.state, pb::ImportJobState::Failed as i32, "{job:?}");
    assert!(
        job.failure.contains("sent nothing for 2 s"),
        "{}",
        job.failure
    );
    drop(pieces);

    // The slot is free again.
    let job = headings_only("third.csv")
        .await
        .expect("accepted once the slot is free");
    assert_eq!(job.state, pb::ImportJobState::Finished as i32, "{job:?}");
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
