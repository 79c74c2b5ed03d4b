//! The coded values of the sheet as clerks write them: labels for genders, documents, entry
//! routes, states, departures and ethnicities, and dates as typed.

use xueji_codes::Gender;

use super::super::{DocumentType, EnrollmentStatus, EntryRoute, status_change::LeftReason};

pub(super) const GENDERS: [(&str, Gender); 2] = [("男", Gender::Male), ("女", Gender::Female)];

pub(super) const DOCUMENT_TYPES: [(&str, DocumentType); 7] = [
    ("居民身份证", DocumentType::ResidentIdCard),
    ("港澳居民来往内地通行证", DocumentType::HkMacaoTravelPermit),
    (
        "台湾居民来往大陆通行证",
        DocumentType::TaiwanCompatriotPermit,
    ),
    ("港澳台居民居住证", DocumentType::HmtResidencePermit),
    ("护照", DocumentType::Passport),
    ("其他", DocumentType::Other),
    ("无", DocumentType::None),
];

pub(super) const ENTRY_ROUTES: [(&str, EntryRoute); 5] = [
    ("就近入学", EntryRoute::NearbyAdmission),
    ("考试入学", EntryRoute::EntranceExam),
    ("推荐入学", EntryRoute::Recommendation),
    ("随迁子女入学", EntryRoute::MigrantAdmission),
    ("其他", EntryRoute::Other),
];

/// The states a migrated record may arrive in. A transferred-out archive is not one: the
/// student's current record is elsewhere, and is migrated there.
pub(super) const STATUSES: [(&str, EnrollmentStatus); 9] = [
    ("在籍", EnrollmentStatus::Active),
    ("待审核", EnrollmentStatus::Pending),
    ("休学", EnrollmentStatus::Suspended),
    ("离校", EnrollmentStatus::Left),
    ("毕业", EnrollmentStatus::Graduated),
    ("结业", EnrollmentStatus::Completed),
    ("肄业", EnrollmentStatus::Incomplete),
    ("辍学", EnrollmentStatus::DroppedOut),
    ("死亡", EnrollmentStatus::Deceased),
];

pub(super) const LEFT_REASONS: [(&str, LeftReason); 5] = [
    ("退学", LeftReason::Withdrawal),
    ("开除", LeftReason::Expulsion),
    ("出国出境", LeftReason::Abroad),
    ("失踪", LeftReason::Missing),
    ("其他", LeftReason::Other),
];

/// GB/T 3304 names, code order (01 汉族 … 56 基诺族), then 97 and 98.
pub(super) const ETHNICITIES: [&str; 56] = [
    "汉族",
    "蒙古族",
    "回族",
    "藏族",
    "维吾尔族",
    "苗族",
    "彝族",
    "壮族",
    "布依族",
    "朝鲜族",
    "满族",
    "侗族",
    "瑶族",
    "白族",
    "土家族",
    "哈尼族",
    "哈萨克族",
    "傣族",
    "黎族",
    "傈僳族",
    "佤族",
    "畲族",
    "高山族",
    "拉祜族",
    "水族",
    "东乡族",
    "纳西族",
    "景颇族",
    "柯尔克孜族",
    "土族",
    "达斡尔族",
    "仫佬族",
    "羌族",
    "布朗族",
    "撒拉族",
    "毛南族",
    "仡佬族",
    "锡伯族",
    "阿昌族",
    "普米族",
    "塔吉克族",
    "怒族",
    "乌孜别克族",
    "俄罗斯族",
    "鄂温克族",
    "德昂族",
    "保安族",
    "裕固族",
    "京族",
    "塔塔尔族",
    "独龙族",
    "鄂伦春族",
    "赫哲族",
    "门巴族",
    "珞巴族",
    "基诺族",
];
pub(super) const OTHER_ETHNICITIES: [(&str, &str); 2] =
    [("97", "其他"), ("98", "外国血统中国籍人士")];

/// Every ethnicity as the sheet writes it: `01 汉族`.
pub fn ethnicity_choices() -> Vec<String> {
    ETHNICITIES
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{:02} {name}", i + 1))
        .chain(OTHER_ETHNICITIES.iter().map(|(c, n)| format!("{c} {n}")))
        .collect()
}

pub(super) fn ethnicity_label(code: &str) -> String {
    ethnicity_choices()
        .into_iter()
        .find(|choice| choice.starts_with(code) && choice.as_bytes().get(2) == Some(&b' '))
        .unwrap_or_else(|| code.to_owned())
}

/// `01`, `1`, `01 汉族` or `汉族` → `01`; anything else is passed on for the registration
/// rule to refuse.
pub(super) fn ethnicity_code(cell: &str) -> String {
    let code: String = cell.chars().take_while(char::is_ascii_digit).collect();
    if !code.is_empty() {
        return format!("{:0>2}", code);
    }
    if let Some(i) = ETHNICITIES.iter().position(|name| *name == cell) {
        return format!("{:02}", i + 1);
    }
    OTHER_ETHNICITIES
        .iter()
        .find(|(_, name)| *name == cell)
        .map_or_else(|| cell.to_owned(), |(code, _)| (*code).to_owned())
}

pub(super) fn label_of<T: Copy + PartialEq>(table: &[(&'static str, T)], value: T) -> &'static str {
    table
        .iter()
        .find(|(_, v)| *v == value)
        .map_or("", |(label, _)| label)
}

/// A coded cell: its Chinese label, or the API's own word for it (`male`, `active`).
pub(super) fn coded<T: Copy>(
    table: &[(&'static str, T)],
    english: impl Fn(&str) -> Option<T>,
    cell: &str,
) -> Option<T> {
    table
        .iter()
        .find(|(label, _)| *label == cell)
        .map(|(_, v)| *v)
        .or_else(|| english(cell))
}

/// Dates as clerks type them: `2015-03-09`, `2015/3/9`, `20150309`, `2015.3.9` → `2015-03-09`;
/// anything else is passed on for the date rule to refuse.
pub(super) fn normalize_date(cell: &str) -> String {
    if cell.len() == 8 && cell.bytes().all(|b| b.is_ascii_digit()) {
        return format!("{}-{}-{}", &cell[..4], &cell[4..6], &cell[6..]);
    }
    let parts: Vec<&str> = cell.split(['-', '/', '.']).collect();
    if let [year, month, day] = parts[..]
        && year.len() == 4
        && [year, month, day]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return format!("{year}-{month:0>2}-{day:0>2}");
    }
    cell.to_owned()
}

pub(super) fn parse_gender_word(text: &str) -> Option<Gender> {
    match text {
        "male" | "1" => Some(Gender::Male),
        "female" | "2" => Some(Gender::Female),
        _ => None,
    }
}

pub(super) fn parse_status_word(text: &str) -> Option<EnrollmentStatus> {
    STATUSES
        .iter()
        .map(|(_, s)| *s)
        .find(|s| s.as_str() == text)
}

/// A yes/no cell as clerks write it (是/否, Y/N, yes/no, true/false, 1/0); empty is no.
pub(super) fn parse_yes_no(text: &str) -> Option<bool> {
    match text.trim().to_lowercase().as_str() {
        "是" | "y" | "yes" | "true" | "1" => Some(true),
        "否" | "n" | "no" | "false" | "0" | "" => Some(false),
        _ => None,
    }
}

/// How export writes a flag.
pub(super) fn yes_no(value: bool) -> &'static str {
    if value { "是" } else { "否" }
}
