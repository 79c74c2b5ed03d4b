//! Classes (班级) and the pupil's number in the class (班内学号): what a class name may be, and
//! how a class carries forward to the next school year (the rule the school confirms). Pure.

use super::FieldViolation;

/// The longest class name and head teacher's name kept.
pub const MAX_NAME: usize = 30;
/// Seats in a class: 班内学号 1–999.
pub const MAX_SEAT: u32 = 999;

/// The grade as classes are named by it: 一年级 … 九年级, 高一 … 高三.
pub fn grade_label(grade: u32) -> Option<&'static str> {
    const LABELS: [&str; 12] = [
        "一年级",
        "二年级",
        "三年级",
        "四年级",
        "五年级",
        "六年级",
        "七年级",
        "八年级",
        "九年级",
        "高一",
        "高二",
        "高三",
    ];
    LABELS.get(grade.checked_sub(1)? as usize).copied()
}

/// A class name as given, checked: trimmed, 1–30 characters, no control characters.
pub fn check_name(field: &'static str, text: &str) -> Result<String, FieldViolation> {
    let name = text.trim();
    if name.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {MAX_NAME} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldViolation::new(
            field,
            "must not hold control characters",
        ));
    }
    Ok(name.to_owned())
}

/// The name a class of `grade` takes when it moves up a grade: a name that starts with its
/// grade (三年级(2)班) starts with the next one (四年级(2)班); any other (2班, 向日葵班) is kept.
pub fn carried_name(name: &str, grade: u32) -> String {
    match (grade_label(grade), grade_label(grade + 1)) {
        (Some(this), Some(next)) if name.starts_with(this) => {
            format!("{next}{}", &name[this.len()..])
        }
        _ => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_named_by_its_grade_moves_up_with_it_and_another_keeps_its_name() {
        assert_eq!(carried_name("三年级(2)班", 3), "四年级(2)班");
        assert_eq!(carried_name("九年级1班", 9), "高一1班");
        assert_eq!(carried_name("2班", 3), "2班");
        assert_eq!(carried_name("向日葵班", 1), "向日葵班");
        assert_eq!(carried_name("高三(1)班", 12), "高三(1)班");
    }

    #[test]
    fn a_class_name_is_checked() {
        assert_eq!(check_name("name", " 一年级(1)班 ").unwrap(), "一年级(1)班");
        assert_eq!(check_name("name", "  ").unwrap_err().field, "name");
        assert!(check_name("name", &"班".repeat(31)).is_err());
        assert!(check_name("name", "1\u{0}班").is_err());
    }
}
