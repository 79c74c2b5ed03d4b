//! What this province takes from the other province of a transfer: each relayed message is
//! read as untrusted input. A province is trusted for its own schools, authorities and steps
//! only, so every code a message names is parsed and must lie in the province that sent it,
//! and every text is bounded. Failures name the field and are final (the message is set aside).

use xueji_codes::{DivisionCode, RegistryNumber, SchoolCode};
use xueji_workflow::{Counterpart, Party, province_of_jurisdiction};

use super::party;

/// Free text from another province (reasons, user names), at most.
const MAX_TEXT_CHARS: usize = 500;
/// Evidence references on a hold request, at most.
const MAX_EVIDENCE: usize = 20;

/// A field of a relayed message that does not read, or claims what its sender does not own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {what}")]
pub struct RemoteRefusal {
    pub field: &'static str,
    pub what: String,
}

fn refusal(field: &'static str, what: impl Into<String>) -> RemoteRefusal {
    RemoteRefusal {
        field,
        what: what.into(),
    }
}

/// A shortened, printable form of untrusted text for a refusal's reason.
fn shown(text: &str) -> String {
    let mut shown: String = text.chars().take(24).collect();
    if text.chars().count() > 24 {
        shown.push('…');
    }
    format!("{shown:?}")
}

/// A school code of `province`.
pub fn school_of(
    field: &'static str,
    code: &str,
    province: &str,
) -> Result<SchoolCode, RemoteRefusal> {
    let parsed: SchoolCode = code
        .parse()
        .map_err(|_| refusal(field, format!("{} is not a school code", shown(code))))?;
    if parsed.province_digits() != province {
        return Err(refusal(
            field,
            format!("school {code} is not one of province {province}'s"),
        ));
    }
    Ok(parsed)
}

/// A division code inside `province`.
pub fn division_of(
    field: &'static str,
    code: &str,
    province: &str,
) -> Result<DivisionCode, RemoteRefusal> {
    let parsed: DivisionCode = code
        .parse()
        .map_err(|_| refusal(field, format!("{} is not a division code", shown(code))))?;
    if parsed.province_digits() != province {
        return Err(refusal(
            field,
            format!("division {code} is not in province {province}"),
        ));
    }
    Ok(parsed)
}

/// Bounded free text.
pub fn text(field: &'static str, value: &str) -> Result<(), RemoteRefusal> {
    if value.chars().count() > MAX_TEXT_CHARS {
        return Err(refusal(
            field,
            format!("is longer than {MAX_TEXT_CHARS} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(refusal(field, "holds control characters"));
    }
    Ok(())
}

/// A registry number (the student's number as the sending side holds it).
pub fn registry_number(field: &'static str, value: &str) -> Result<RegistryNumber, RemoteRefusal> {
    value
        .parse()
        .map_err(|_| refusal(field, format!("{} is not a registry number", shown(value))))
}

/// A hold request from `from`, the receiving province: its school, division and authority
/// are `from`'s, its texts bounded.
pub fn check_hold_request(
    from: &str,
    receiving_school: &str,
    receiving_division: &str,
    receiving_authority: &str,
    texts: &[(&'static str, &str)],
    evidence: &[String],
    target_grade: u32,
) -> Result<(), RemoteRefusal> {
    school_of("hold_request.receiving_school_code", receiving_school, from)?;
    division_of("hold_request.receiving_division", receiving_division, from)?;
    division_of(
        "hold_request.receiving_authority",
        receiving_authority,
        from,
    )?;
    for (field, value) in texts {
        text(field, value)?;
    }
    if evidence.len() > MAX_EVIDENCE {
        return Err(refusal(
            "hold_request.evidence",
            format!("at most {MAX_EVIDENCE} references"),
        ));
    }
    for reference in evidence {
        text("hold_request.evidence", reference)?;
    }
    if !(1..=12).contains(&target_grade) {
        return Err(refusal("hold_request.target_grade", "must be 1 to 12"));
    }
    Ok(())
}

/// The other province's step parties, as this side accepts them: a party of that side's
/// kinds, inside that province (an escalation may move it up its own ladder).
fn remote_side_party(remote_province: &str, remote_is_sending: bool) -> impl Fn(&Party) -> bool {
    let province = remote_province.to_owned();
    move |p: &Party| {
        party::is_sending(&p.kind) == remote_is_sending
            && province_of_jurisdiction(&p.jurisdiction) == Some(province.as_str())
    }
}

/// The two sides of a transfer between provinces, as `local_province` sees them when a copy
/// of the task comes from `remote_province`. On the sending side, its own steps may name only
/// the school that holds the student, that school's authority and its province; on the
/// receiving side, its own kinds inside its own province.
pub fn with_counterpart<T>(
    local_province: &str,
    remote_province: &str,
    sending_here: Option<(&str, &str)>,
    f: impl FnOnce(&Counterpart<'_>) -> T,
) -> T {
    let local_is_sending = sending_here.is_some();
    let own_province = format!("{local_province}0000");
    let local_party = |p: &Party| -> bool {
        if party::is_sending(&p.kind) != local_is_sending
            || province_of_jurisdiction(&p.jurisdiction) != Some(local_province)
        {
            return false;
        }
        match sending_here {
            Some((school, authority)) => match p.kind.as_str() {
                party::SENDING_SCHOOL => p.jurisdiction == school,
                party::SENDING_AUTHORITY => p.jurisdiction == authority,
                party::SENDING_PROVINCE => p.jurisdiction == own_province,
                _ => false,
            },
            None => true,
        }
    };
    let remote_party = remote_side_party(remote_province, !local_is_sending);
    f(&Counterpart {
        local_province,
        remote_province,
        local_party: &local_party,
        remote_party: &remote_party,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_another_province_or_not_codes_are_refused() {
        assert!(school_of("f", "2135000101", "35").is_ok());
        assert!(school_of("f", "2134000001", "35").is_err());
        assert!(school_of("f", "21350é101", "35").is_err());
        assert!(division_of("f", "350102", "35").is_ok());
        assert!(division_of("f", "351é1", "35").is_err());
        assert!(division_of("f", &"9".repeat(10_000), "35").is_err());
        assert!(text("f", &"长".repeat(501)).is_err());
        assert!(text("f", "a\u{0}b").is_err());
        assert!(registry_number("f", "G3501é").is_err());
    }

    #[test]
    fn the_sending_side_names_only_its_own_school_and_authority() {
        with_counterpart("34", "35", Some(("2134000001", "340102")), |side| {
            let at = |kind: &str, j: &str, p: &str| Party {
                kind: kind.into(),
                jurisdiction: j.into(),
                province: p.into(),
            };
            assert!((side.local_party)(&at(
                party::SENDING_SCHOOL,
                "2134000001",
                "34"
            )));
            assert!(!(side.local_party)(&at(
                party::SENDING_SCHOOL,
                "2134000002",
                "34"
            )));
            assert!((side.local_party)(&at(
                party::SENDING_PROVINCE,
                "340000",
                "34"
            )));
            assert!(!(side.local_party)(&at(
                party::RECEIVING_AUTHORITY,
                "340102",
                "34"
            )));
            assert!((side.remote_party)(&at(
                party::RECEIVING_AUTHORITY,
                "350102",
                "35"
            )));
            assert!(!(side.remote_party)(&at(
                party::RECEIVING_AUTHORITY,
                "340102",
                "35"
            )));
            assert!(!(side.remote_party)(&at(
                party::SENDING_SCHOOL,
                "2135000101",
                "35"
            )));
        });
    }
}
