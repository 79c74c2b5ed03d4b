//! Registration: what a caller sent, checked whole against §2 and the school it names.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use sha2::{Digest, Sha256};
use xueji_codes::{Gender, RegistryNumber, ResidentId, SchoolCode};
use xueji_validation::parse_date;

use super::{DocumentType, EntryRoute, FieldViolation, Guardian, School, gender_str};

/// What a caller asked to register, as received (already decoded from the wire, not checked).
#[derive(Debug, Clone)]
pub struct RegistrationInput {
    pub idempotency_key: String,
    pub name: String,
    pub gender: Option<Gender>,
    pub birth_date: String,
    pub ethnicity: String,
    pub document_type: Option<DocumentType>,
    pub document_number: String,
    pub school_code: String,
    pub grade: u32,
    pub entry_date: String,
    pub entry_route: Option<EntryRoute>,
    pub guardian: Option<Guardian>,
    pub flags: StudentFlags,
}

/// The two flags statistics break figures down by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StudentFlags {
    /// 随迁子女
    pub migrant_child: bool,
    /// 留守儿童
    pub left_behind_child: bool,
}

/// A registration that passed every rule.
#[derive(Debug, Clone)]
pub struct Registration {
    pub idempotency_key: String,
    pub name: String,
    pub gender: Gender,
    pub birth_date: NaiveDate,
    pub ethnicity: String,
    pub document_type: DocumentType,
    /// The document number as stored (a resident ID upper-cased).
    pub document_number: Option<String>,
    pub resident_id: Option<ResidentId>,
    pub school: School,
    pub grade: u32,
    pub entry_date: NaiveDate,
    pub entry_route: EntryRoute,
    pub guardian: Guardian,
    pub flags: StudentFlags,
    /// The province's own fields (非基础字段), checked against its declaration by
    /// `provincial_fields::check_registration_fields`.
    pub provincial_fields: BTreeMap<String, String>,
}

impl Registration {
    pub fn name_key(&self) -> String {
        name_key(&self.name, self.gender, self.birth_date)
    }

    /// A digest of everything the caller sent, to tell an honest retry from a different
    /// registration that reuses an idempotency key.
    pub fn fingerprint(&self) -> Vec<u8> {
        let mut hasher = Sha256::new();
        for part in [
            self.name.as_str(),
            gender_str(self.gender),
            &self.birth_date.to_string(),
            &self.ethnicity,
            self.document_type.as_str(),
            self.document_number.as_deref().unwrap_or(""),
            self.school.code.as_str(),
            &self.grade.to_string(),
            &self.entry_date.to_string(),
            self.entry_route.as_str(),
            &self.guardian.name,
            &self.guardian.relation,
            &self.guardian.phone,
        ] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        // The flags came later: digested only when set, so earlier registrations keep their digest.
        for (set, part) in [
            (self.flags.migrant_child, "migrant_child"),
            (self.flags.left_behind_child, "left_behind_child"),
        ] {
            if set {
                hasher.update((part.len() as u64).to_be_bytes());
                hasher.update(part.as_bytes());
            }
        }
        for (name, value) in &self.provincial_fields {
            for part in [name, value] {
                hasher.update((part.len() as u64).to_be_bytes());
                hasher.update(part.as_bytes());
            }
        }
        hasher.finalize().to_vec()
    }

    /// The temporary number: the school's division, the birth date, four random digits.
    pub fn temporary_number(&self, random: u16) -> RegistryNumber {
        RegistryNumber::l(self.school.division, self.birth_date, random)
    }
}

/// The duplicate-without-ID key: the name's canonical form (as people read it: compatibility
/// forms, case, spacing and middle dots folded), gender, birth date. The national digest is
/// computed from this key, so both provinces of a cross-province pair fold names alike.
pub fn name_key(name: &str, gender: Gender, birth_date: NaiveDate) -> String {
    format!(
        "{}|{}|{birth_date}",
        xueji_validation::canonical_name(name),
        gender_str(gender)
    )
}

/// The school categories whose pupils the registry holds (Ministry 第二条 and the national
/// collection scope): primary, junior, senior high, special education and 专门学校 (reform
/// schools). 职业初中, 中职 and adult schools keep registers of their own.
pub(crate) fn in_registry_scope(category: xueji_codes::SchoolCategory) -> bool {
    use xueji_codes::SchoolCategory as C;
    matches!(
        category,
        C::Primary | C::Junior | C::SeniorHigh | C::SpecialEducation | C::ReformSchool
    )
}

/// GB/T 3304 ethnicity codes: the 56 nationalities, 97 other, 98 foreign origin.
pub(crate) fn is_ethnicity(code: &str) -> bool {
    code.len() == 2
        && code
            .parse::<u8>()
            .is_ok_and(|n| (1..=56).contains(&n) || n == 97 || n == 98)
}

/// A person's name as stored (see `xueji_validation::person_name`): NFC, whitespace folded,
/// at most 50 characters, refusing invisible characters (control, zero-width, bidi,
/// private-use) that would let two records of one child dodge the duplicate check. Characters
/// outside the BMP (rare characters in names) are ordinary characters here.
pub fn normalize_name(raw: &str) -> Result<String, String> {
    xueji_validation::person_name(raw, 50)
}

/// Checks a registration against every rule of §2 and the school it names. `school` is the
/// school the caller may see under that code, or `None` (unknown or outside the caller's
/// jurisdiction: both answer alike). Collects every violation, not only the first.
pub fn validate_registration(
    input: RegistrationInput,
    school: Option<School>,
    today: NaiveDate,
) -> Result<Registration, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let mut check = |result: Result<(), FieldViolation>| {
        if let Err(violation) = result {
            violations.push(violation);
        }
    };

    let key = input.idempotency_key.as_str();
    check(
        if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            Err(FieldViolation::new(
                "idempotency_key",
                "must be 1–128 printable ASCII characters",
            ))
        } else {
            Ok(())
        },
    );

    let name = normalize_name(&input.name).map_err(|e| FieldViolation::new("name", e));
    let birth_date = parse_date("birth_date", &input.birth_date).and_then(|date| {
        let age = today.year() - date.year();
        if date > today {
            Err(FieldViolation::new("birth_date", "is in the future"))
        } else if !(2..=30).contains(&age) {
            Err(FieldViolation::new(
                "birth_date",
                format!("gives an age of {age}; a student is 2 to 30 years old"),
            ))
        } else {
            Ok(date)
        }
    });
    let gender = input
        .gender
        .ok_or_else(|| FieldViolation::new("gender", "must be male or female"));
    let ethnicity = if is_ethnicity(&input.ethnicity) {
        Ok(input.ethnicity.clone())
    } else {
        Err(FieldViolation::new(
            "ethnicity",
            "must be a GB/T 3304 code: 01–56, 97 or 98",
        ))
    };

    let document_type = input
        .document_type
        .ok_or_else(|| FieldViolation::new("document_type", "must be given"));
    let mut resident_id = None;
    let document_number = match document_type {
        Ok(DocumentType::ResidentIdCard) => {
            match input.document_number.trim().parse::<ResidentId>() {
                Ok(id) => {
                    if let Ok(date) = &birth_date
                        && id.birth_date() != *date
                    {
                        violations.push(FieldViolation::new(
                            "birth_date",
                            format!(
                                "{date} disagrees with the ID number, which says {}",
                                id.birth_date()
                            ),
                        ));
                    }
                    if let Ok(gender) = &gender
                        && id.gender() != *gender
                    {
                        violations.push(FieldViolation::new(
                            "gender",
                            format!(
                                "{} disagrees with the ID number, which says {}",
                                gender_str(*gender),
                                gender_str(id.gender())
                            ),
                        ));
                    }
                    let number = id.as_str().to_owned();
                    resident_id = Some(id);
                    Ok(Some(number))
                }
                Err(e) => Err(FieldViolation::new(
                    "document_number",
                    format!("resident ID number {e}"),
                )),
            }
        }
        Ok(DocumentType::None) if input.document_number.trim().is_empty() => Ok(None),
        Ok(DocumentType::None) => Err(FieldViolation::new(
            "document_number",
            "must be empty when document_type is NONE",
        )),
        Ok(_) => {
            let number = input.document_number.trim();
            if number.is_empty()
                || number.len() > 32
                || !number.bytes().all(|b| b.is_ascii_graphic())
            {
                Err(FieldViolation::new(
                    "document_number",
                    "must be 1–32 printable ASCII characters",
                ))
            } else {
                Ok(Some(number.to_owned()))
            }
        }
        Err(_) => Ok(None),
    };

    let school = match input.school_code.parse::<SchoolCode>() {
        Err(e) => Err(FieldViolation::new(
            "school_code",
            format!("school code {e}"),
        )),
        Ok(code) if !in_registry_scope(code.category()) => Err(FieldViolation::new(
            "school_code",
            format!(
                "a category-{} school is outside the student registry, which covers primary, \
                 junior, senior high, special-education and 专门 schools (Ministry 第二条); \
                 vocational and adult schools keep their own registers",
                code.category().digits()
            ),
        )),
        Ok(_) => match school {
            None => Err(FieldViolation::new(
                "school_code",
                "no such school in this province's published school list",
            )),
            Some(school) => match school.open_until {
                Some(until) if until <= today => Err(FieldViolation::new(
                    "school_code",
                    format!("the school closed on {until} and takes no new students"),
                )),
                _ => Ok(school),
            },
        },
    };
    let entry_date = parse_date("entry_date", &input.entry_date).and_then(|date| {
        if let Ok(birth) = &birth_date
            && date <= *birth
        {
            return Err(FieldViolation::new(
                "entry_date",
                "is not after the birth date",
            ));
        }
        if date > today + chrono::Days::new(366) {
            return Err(FieldViolation::new(
                "entry_date",
                "is more than a year in the future",
            ));
        }
        if let Ok(school) = &school
            && !school.is_open_on(date)
        {
            return Err(FieldViolation::new(
                "entry_date",
                format!("the school is not open on {date}"),
            ));
        }
        Ok(date)
    });
    let grade = match school.as_ref().ok() {
        _ if !(1..=12).contains(&input.grade) => Err(FieldViolation::new("grade", "must be 1–12")),
        Some(school) if school.stages.is_empty() => Err(FieldViolation::new(
            "grade",
            "this school teaches no primary or secondary stage",
        )),
        Some(school) if school.grade_place(input.grade).is_none() => Err(FieldViolation::new(
            "grade",
            format!(
                "{} is not taught at this school (grades {}, by its length of schooling)",
                input.grade,
                xueji_codes::describe_grades(&school.stages)
            ),
        )),
        _ => Ok(input.grade),
    };
    let entry_route = input
        .entry_route
        .ok_or_else(|| FieldViolation::new("entry_route", "must be given"));
    let guardian = match input.guardian {
        None => Err(FieldViolation::new("guardian", "must be given")),
        Some(g) => {
            let name = normalize_name(&g.name).map_err(|e| FieldViolation::new("guardian.name", e));
            let relation = g.relation.trim().to_owned();
            let phone = g.phone.trim().to_owned();
            if relation.is_empty() || relation.chars().count() > 20 {
                Err(FieldViolation::new(
                    "guardian.relation",
                    "must be 1–20 characters",
                ))
            } else if phone.len() > 20
                || !phone
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' '))
            {
                Err(FieldViolation::new(
                    "guardian.phone",
                    "must be at most 20 digits, spaces, + or -",
                ))
            } else {
                name.map(|name| Guardian {
                    name,
                    relation,
                    phone,
                })
            }
        }
    };

    match (
        name,
        gender,
        birth_date,
        ethnicity,
        document_type,
        document_number,
        school,
        grade,
        entry_date,
        entry_route,
        guardian,
    ) {
        (
            Ok(name),
            Ok(gender),
            Ok(birth_date),
            Ok(ethnicity),
            Ok(document_type),
            Ok(document_number),
            Ok(school),
            Ok(grade),
            Ok(entry_date),
            Ok(entry_route),
            Ok(guardian),
        ) if violations.is_empty() => Ok(Registration {
            idempotency_key: input.idempotency_key,
            name,
            gender,
            birth_date,
            ethnicity,
            document_type,
            document_number,
            resident_id,
            school,
            grade,
            entry_date,
            entry_route,
            guardian,
            flags: input.flags,
            provincial_fields: BTreeMap::new(),
        }),
        (a, b, c, d, e, f, g, h, i, j, k) => {
            let errors = [
                a.err(),
                b.err(),
                c.err(),
                d.err(),
                e.err(),
                f.err(),
                g.err(),
                h.err(),
                i.err(),
                j.err(),
                k.err(),
            ];
            violations.extend(errors.into_iter().flatten());
            Err(violations)
        }
    }
}
