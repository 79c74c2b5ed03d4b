//! Printouts as files: a certificate (学籍证明, 在读证明) as a one-page A4 PDF, its text in a
//! CJK font found on the machine (or given), so that what is printed can be searched and
//! copied, and its verification code checked through the API; the 在校生名册 (the school's
//! pupils by grade and class, by seat) as a spreadsheet.

use std::path::{Path, PathBuf};

use anyhow::Context;
use krilla::{
    Document,
    geom::Point,
    page::PageSettings,
    text::{Font, TextDirection},
};
use xueji_proto::identity::v1 as pb;
use xueji_sheets::{Format, SheetError, SheetWriter};

/// The 在校生名册's columns.
pub const ROSTER_HEADINGS: [&str; 9] = [
    "年级",
    "班级",
    "班内学号",
    "全国学籍号",
    "姓名",
    "性别",
    "出生日期",
    "入学日期",
    "学籍状态",
];

/// The 在校生名册 of a school: a title row, the headings, then each class's pupils by seat,
/// classes in the order given (grade, then name).
pub fn roster_sheet(
    school: &str,
    school_year: u32,
    classes: &[(pb::SchoolClass, Vec<pb::RosterEntry>)],
    format: Format,
) -> Result<Vec<u8>, SheetError> {
    let mut writer = SheetWriter::new(format)?;
    writer.write_row(&[
        "在校生名册".to_owned(),
        school.to_owned(),
        format!("{school_year}–{}学年", school_year + 1),
    ])?;
    writer.write_row(&ROSTER_HEADINGS)?;
    for (class, pupils) in classes {
        for pupil in pupils {
            let student = pupil.student.clone().unwrap_or_default();
            writer.write_row(&[
                class.grade.to_string(),
                class.name.clone(),
                pupil.seat.to_string(),
                student.registry_number.clone(),
                student.name.clone(),
                match student.gender() {
                    pb::Gender::Female => "女",
                    _ => "男",
                }
                .to_owned(),
                student.birth_date.clone(),
                student.entry_date.clone(),
                student
                    .status()
                    .as_str_name()
                    .trim_start_matches("ENROLLMENT_STATUS_")
                    .to_lowercase(),
            ])?;
        }
    }
    writer.finish()
}

/// A4 in points.
const PAGE: (f32, f32) = (595.0, 842.0);

/// A font with Chinese glyphs: `given`, or the one fontconfig matches for Chinese.
pub fn cjk_font(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_owned());
    }
    let matched = std::process::Command::new("fc-match")
        .args(["-f", "%{file}", ":lang=zh-cn"])
        .output()
        .context("finding a Chinese font with fc-match (give one with --font)")?;
    let path = PathBuf::from(String::from_utf8_lossy(&matched.stdout).trim());
    anyhow::ensure!(
        matched.status.success() && path.is_file(),
        "no Chinese font found (install one, e.g. Debian's fonts-wqy-microhei, or give --font)"
    );
    Ok(path)
}

/// Loads the font at `path` for a printout.
fn load_font(path: &Path) -> anyhow::Result<Font> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Font::new(data.into(), 0)
        .with_context(|| format!("{} is not a font this printout can use", path.display()))
}

/// Lines of the 学籍卡 per A4 page after the first page's head.
const CARD_LINES_PER_PAGE: usize = 40;

/// The 学籍卡 (学生学籍信息表): the record's fields, then every value each field had (修改留痕),
/// as a PDF of as many A4 pages as the history needs, in the font at `font`.
pub fn student_card_pdf(
    student: &pb::Student,
    history: &[pb::FieldHistory],
    font: &Path,
) -> anyhow::Result<Vec<u8>> {
    let font = load_font(font)?;
    let guardian = student.guardian.clone().unwrap_or_default();
    let mut lines = vec![
        format!("全国学籍号：{}", student.registry_number),
        format!(
            "姓名：{}　性别：{}　出生日期：{}　民族：{}",
            student.name,
            match student.gender() {
                pb::Gender::Female => "女",
                _ => "男",
            },
            student.birth_date,
            student.ethnicity
        ),
        format!("证件号码：{}", student.document_number),
        format!(
            "学校标识码：{}　年级：{}　班级：{}　班内学号：{}",
            student.school_code,
            student.grade,
            student.class_name,
            if student.class_seat == 0 {
                String::new()
            } else {
                student.class_seat.to_string()
            }
        ),
        format!(
            "入学日期：{}　学籍状态：{}",
            student.entry_date,
            student
                .status()
                .as_str_name()
                .trim_start_matches("ENROLLMENT_STATUS_")
                .to_lowercase()
        ),
        format!(
            "监护人：{}（{}）{}",
            guardian.name, guardian.relation, guardian.phone
        ),
        String::new(),
        "学籍变动与修改记录（修改留痕）：".to_owned(),
    ];
    for entry in history {
        lines.push(format!(
            "{}　{} = {}　{}{}",
            entry.since.get(..10).unwrap_or(&entry.since),
            entry.field,
            entry.value,
            entry.reason,
            if entry.approved_by.is_empty() {
                String::new()
            } else {
                format!("（核准：{}）", entry.approved_by)
            }
        ));
    }
    let mut document = Document::new();
    let settings = || PageSettings::from_wh(PAGE.0, PAGE.1).context("the page size");
    for (n, page_lines) in lines.chunks(CARD_LINES_PER_PAGE).enumerate() {
        let mut page = document.start_page_with(settings()?);
        let mut surface = page.surface();
        let mut y = 72.0;
        if n == 0 {
            surface.draw_text(
                Point::from_xy(220.0, y),
                font.clone(),
                22.0,
                "学籍卡（学生学籍信息表）",
                false,
                TextDirection::Auto,
            );
            y += 40.0;
        }
        for line in page_lines {
            surface.draw_text(
                Point::from_xy(56.0, y),
                font.clone(),
                10.5,
                line,
                false,
                TextDirection::Auto,
            );
            y += 17.0;
        }
        surface.finish();
        page.finish();
    }
    document
        .finish()
        .map_err(|e| anyhow::anyhow!("the PDF could not be written: {e:?}"))
}

/// The certificate as a PDF, in the font at `font`.
pub fn certificate_pdf(certificate: &pb::Certificate, font: &Path) -> anyhow::Result<Vec<u8>> {
    let font = load_font(font)?;
    let title = match certificate.kind() {
        pb::CertificateKind::Attendance => "在读证明",
        _ => "学籍证明",
    };
    let lines = [
        format!("姓名：{}", certificate.name),
        format!("性别：{}", certificate.gender),
        format!("出生日期：{}", certificate.birth_date),
        format!("全国学籍号：{}", certificate.registry_number),
        format!(
            "学校：{}（{}）",
            certificate.school_name, certificate.school_code
        ),
        format!(
            "年级：{}{}",
            certificate.grade,
            if certificate.class_name.is_empty() {
                String::new()
            } else {
                format!("　班级：{}", certificate.class_name)
            }
        ),
        format!("入学日期：{}", certificate.entry_date),
        format!("学籍状态：{}", certificate.status),
    ];
    let mut document = Document::new();
    let settings = PageSettings::from_wh(PAGE.0, PAGE.1).context("the page size")?;
    let mut page = document.start_page_with(settings);
    let mut surface = page.surface();
    let mut text = |x: f32, y: f32, size: f32, line: &str| {
        surface.draw_text(
            Point::from_xy(x, y),
            font.clone(),
            size,
            line,
            false,
            TextDirection::Auto,
        );
    };
    text(240.0, 110.0, 26.0, title);
    text(
        72.0,
        170.0,
        13.0,
        "兹证明下列学生的学籍信息如下（以全国中小学生学籍信息管理系统所载为准）：",
    );
    for (n, line) in lines.iter().enumerate() {
        text(96.0, 215.0 + 30.0 * n as f32, 14.0, line);
    }
    text(
        72.0,
        500.0,
        13.0,
        &format!("核验码：{}", certificate.verification_code),
    );
    text(
        72.0,
        525.0,
        11.0,
        "凭核验码可通过学籍系统（VerifyCertificate）核验本证明。",
    );
    text(
        72.0,
        560.0,
        11.0,
        &format!(
            "出具时间：{}　出具人：{}",
            certificate.issued_at, certificate.issued_by
        ),
    );
    surface.finish();
    page.finish();
    document
        .finish()
        .map_err(|e| anyhow::anyhow!("the PDF could not be written: {e:?}"))
}
