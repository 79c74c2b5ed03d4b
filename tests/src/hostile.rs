//! Hostile files, as an attacker with a school operator's account would make them: workbooks
//! whose parts decompress past any bound, a cell of 32 MiB, a row of a million columns; and the
//! process's peak memory, measured around the reading of one.

use std::io::{Seek, Write};

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#;
const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
const WORKBOOK: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
const WORKBOOK_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#;

/// A workbook whose sheet and shared strings parts are written by the given closures.
pub fn workbook(
    sheet: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    shared_strings: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::fs::File {
    let file = tempfile::tempfile().unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(true);
    for (name, text) in [
        ("[Content_Types].xml", CONTENT_TYPES),
        ("_rels/.rels", RELS),
        ("xl/workbook.xml", WORKBOOK),
        ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS),
    ] {
        zip.start_file(name, options).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.start_file("xl/worksheets/sheet1.xml", options).unwrap();
    sheet(&mut zip).unwrap();
    zip.start_file("xl/sharedStrings.xml", options).unwrap();
    shared_strings(&mut zip).unwrap();
    let mut file = zip.finish().unwrap();
    file.rewind().unwrap();
    file
}

pub const SHEET_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#;
pub const SHEET_TAIL: &str = "</sheetData></worksheet>";

/// A sheet whose row 1 references shared string 0 in `references` cells.
pub fn referencing_sheet(references: usize) -> impl FnOnce(&mut dyn Write) -> std::io::Result<()> {
    move |out| {
        out.write_all(SHEET_HEAD.as_bytes())?;
        out.write_all(b"<row r=\"1\">")?;
        for column in 0..references {
            write!(out, "<c r=\"{}1\" t=\"s\"><v>0</v></c>", letters(column))?;
        }
        out.write_all(b"</row>")?;
        out.write_all(SHEET_TAIL.as_bytes())
    }
}

pub fn letters(index: usize) -> String {
    let mut text = Vec::new();
    let mut n = index + 1;
    while n > 0 {
        text.push(b'A' + ((n - 1) % 26) as u8);
        n = (n - 1) / 26;
    }
    text.reverse();
    String::from_utf8(text).unwrap()
}

/// 11,000 shared strings of 100 KiB each: 1.1 GB decompressed from about 11 MB of zip,
/// referenced by twelve cells of row 1.
pub fn shared_strings_bomb() -> std::fs::File {
    workbook(referencing_sheet(12), |out| {
        out.write_all(SST_HEAD)?;
        let string = format!("<si><t>{}</t></si>", "A".repeat(100 * 1024));
        for _ in 0..11_000 {
            out.write_all(string.as_bytes())?;
        }
        out.write_all(b"</sst>")
    })
}

/// One shared string of 32 MiB referenced by twelve cells (the review's 2.66 GB workbook).
pub fn giant_string() -> std::fs::File {
    workbook(referencing_sheet(12), |out| {
        out.write_all(SST_HEAD)?;
        out.write_all(b"<si><t>")?;
        out.write_all("A".repeat(32 << 20).as_bytes())?;
        out.write_all(b"</t></si></sst>")
    })
}

/// `headings` as row 1, then row 2 with a million cells, one per column.
pub fn million_columns(headings: &[&str]) -> std::fs::File {
    let headings: Vec<String> = headings.iter().map(|h| (*h).to_owned()).collect();
    workbook(
        move |out| {
            out.write_all(SHEET_HEAD.as_bytes())?;
            out.write_all(b"<row r=\"1\">")?;
            for (column, heading) in headings.iter().enumerate() {
                write!(
                    out,
                    "<c r=\"{}1\" t=\"inlineStr\"><is><t>{heading}</t></is></c>",
                    letters(column)
                )?;
            }
            out.write_all(b"</row><row r=\"2\">")?;
            for column in 0..1_000_000 {
                write!(
                    out,
                    "<c r=\"{}2\" t=\"inlineStr\"><is><t>x</t></is></c>",
                    letters(column)
                )?;
            }
            out.write_all(b"</row>")?;
            out.write_all(SHEET_TAIL.as_bytes())
        },
        |out| {
            out.write_all(SST_HEAD)?;
            out.write_all(b"</sst>")
        },
    )
}

const SST_HEAD: &[u8] =
    b"<sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">";

pub fn bytes_of(mut file: std::fs::File) -> Vec<u8> {
    use std::io::Read;
    file.rewind().unwrap();
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).unwrap();
    bytes
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Runs `work`, answering its result and how far the process's peak resident memory rose above
/// the memory resident when it started, in KiB (the kernel's high-water mark, reset first).
pub async fn peak_growth_kib<T>(work: impl std::future::Future<Output = T>) -> (T, u64) {
    std::fs::write("/proc/self/clear_refs", "5").expect("the peak resident set resets");
    let before = status_kib("VmRSS:");
    let result = work.await;
    (result, status_kib("VmHWM:").saturating_sub(before))
}
