//! The decoders of relayed fields, fuzzed: any text (non-ASCII, control characters, overlong,
//! digits of the wrong length) answers a value or an error naming the field, never a panic; and
//! what is not the sender's own never reads as if it were.

use proptest::prelude::*;

use super::{StudentKey, remote};

/// Texts a misbehaving province could put in any relayed field.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        // Any Unicode, short and long.
        any::<String>(),
        "\\PC{0,2000}",
        // Digits of every length, with non-ASCII digits and marks mixed in.
        "[0-9０-９٠-٩]{0,40}",
        "[0-9]{0,12}[\u{301}\u{200B}é]{0,3}[0-9]{0,12}",
        // Codes of another province, or of the right one.
        "3[45][0-9]{8}",
        "[GLJ][0-9X]{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn relayed_codes_never_panic_and_never_read_outside_the_sender(code in hostile_text()) {
        if let Ok(school) = remote::school_of("f", &code, "34") {
            prop_assert_eq!(school.province_digits(), "34");
            prop_assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
        if let Ok(division) = remote::division_of("f", &code, "34") {
            prop_assert_eq!(division.province_digits(), "34");
        }
        let _ = remote::registry_number("f", &code);
        let _ = StudentKey::parse(&code);
        match remote::text("f", &code) {
            Ok(()) => {
                prop_assert!(code.chars().count() <= 500);
                prop_assert!(!code.chars().any(char::is_control));
            }
            Err(refusal) => prop_assert_eq!(refusal.field, "f"),
        }
    }

    #[test]
    fn a_hold_request_of_hostile_fields_answers_an_error_naming_one(
        school in hostile_text(),
        division in hostile_text(),
        authority in hostile_text(),
        reason in hostile_text(),
        evidence in proptest::collection::vec(hostile_text(), 0..30),
        grade in any::<u32>(),
    ) {
        let result = remote::check_hold_request(
            "35",
            &school,
            &division,
            &authority,
            &[("hold_request.reason", reason.as_str())],
            &evidence,
            grade,
        );
        if let Err(refusal) = result {
            prop_assert!(refusal.field.starts_with("hold_request."), "{refusal}");
        } else {
            prop_assert!(school.starts_with("35") && (1..=12).contains(&grade));
        }
    }
}
