//! Personal names as people read them.
//!
//! Two rules keep duplicate detection from being dodged by characters nobody sees:
//! - [`person_name`] refuses what a reader cannot see or a font cannot draw: control, format
//!   (zero-width spaces and joiners, bidirectional overrides, soft hyphens), private-use,
//!   surrogate, line- and paragraph-separator characters. What it keeps is stored as the
//!   operator typed it, in NFC, with every run of whitespace folded to one space.
//! - [`canonical_name`] is what duplicate keys compare: compatibility normalization (NFKC:
//!   full-width Latin letters and digits, compatibility ideographs and the ideographic space
//!   become their ordinary forms), lower case, no whitespace at all, and every middle-dot look-
//!   alike of a transliterated name (`·`, `•`, `・`, `‧`…) as U+00B7.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Why a character may not appear in a name, or `None` when it may.
fn invisible(c: char) -> Option<&'static str> {
    match c.general_category() {
        GeneralCategory::Control => Some("a control character"),
        GeneralCategory::Format => Some("an invisible formatting character (zero-width or bidi)"),
        GeneralCategory::PrivateUse => Some("a private-use character"),
        GeneralCategory::Surrogate => Some("a surrogate"),
        GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => {
            Some("a line break")
        }
        _ => None,
    }
}

/// A name as stored: trimmed, NFC, whitespace runs folded to one space, at most `max_chars`
/// characters, none of them invisible. The error says which character and where, so that the
/// operator can find a character they cannot see.
pub fn person_name(raw: &str, max_chars: usize) -> Result<String, String> {
    let nfc: String = raw.nfc().collect();
    let mut name = String::with_capacity(nfc.len());
    for (position, c) in nfc.chars().enumerate() {
        if let Some(why) = invisible(c) {
            return Err(format!(
                "character {} (U+{:04X}) is {why}; retype the name without it",
                position + 1,
                u32::from(c)
            ));
        }
        if c.is_whitespace() {
            if !name.is_empty() && !name.ends_with(' ') {
                name.push(' ');
            }
        } else {
            name.push(c);
        }
    }
    let name = name.trim_end().to_owned();
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.chars().count() > max_chars {
        return Err(format!("must be at most {max_chars} characters"));
    }
    Ok(name)
}

/// The middle dots of transliterated names (阿依古丽·买买提) and their look-alikes.
fn is_middle_dot(c: char) -> bool {
    matches!(
        c,
        '\u{00B7}'
            | '\u{0387}'
            | '\u{16EB}'
            | '\u{2022}'
            | '\u{2027}'
            | '\u{2219}'
            | '\u{22C5}'
            | '\u{2E31}'
            | '\u{30FB}'
            | '\u{FF65}'
    )
}

/// The form duplicate keys compare: two names a reader takes for the same have the same
/// canonical form.
pub fn canonical_name(name: &str) -> String {
    name.nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| !c.is_whitespace())
        .map(|c| if is_middle_dot(c) { '\u{00B7}' } else { c })
        .collect::<String>()
        // Lower-casing can leave a sequence that is no longer composed.
        .nfc()
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn invisible_characters_are_refused_and_named() {
        for (raw, code) in [
            ("王\u{200B}小红", "U+200B"),
            ("王小红\u{200D}", "U+200D"),
            ("\u{202E}红小王", "U+202E"),
            ("王\u{2066}小红", "U+2066"),
            ("王\u{00AD}小红", "U+00AD"),
            ("王\u{E000}红", "U+E000"),
            ("王\u{7}红", "U+0007"),
            ("王\u{2028}红", "U+2028"),
            ("王\u{FEFF}红", "U+FEFF"),
        ] {
            let error = person_name(raw, 50).unwrap_err();
            assert!(error.contains(code), "{raw:?}: {error}");
        }
    }

    #[test]
    fn visible_names_are_kept_as_typed() {
        assert_eq!(person_name("  张𠮷 ", 50).unwrap(), "张𠮷");
        assert_eq!(
            person_name("阿依古丽·买买提", 50).unwrap(),
            "阿依古丽·买买提"
        );
        assert_eq!(person_name("Anna \u{3000} Lee", 50).unwrap(), "Anna Lee");
        // "e" + combining acute accent is stored precomposed.
        assert_eq!(person_name("Rene\u{301}", 50).unwrap(), "Ren\u{E9}");
        assert!(person_name(" \u{3000} ", 50).is_err());
        assert!(person_name(&"王".repeat(51), 50).is_err());
    }

    #[test]
    fn look_alikes_meet() {
        let same = [
            ("王小红", "王 小 红"),
            ("王小红", "王\u{3000}小红"),
            ("Wang Xiaohong", "Ｗａｎｇ　Ｘｉａｏｈｏｎｇ"),
            ("wang xiaohong", "WANG XIAOHONG"),
            ("阿依古丽·买买提", "阿依古丽•买买提"),
            ("阿依古丽·买买提", "阿依古丽・买买提"),
            ("阿依古丽·买买提", "阿依古丽･买买提"),
            // A compatibility ideograph (U+F900 block) reads as its unified form.
            ("\u{8C48}", "\u{F900}"),
            ("Ren\u{E9}", "Rene\u{301}"),
        ];
        for (a, b) in same {
            assert_eq!(canonical_name(a), canonical_name(b), "{a:?} vs {b:?}");
        }
        assert_ne!(canonical_name("王小红"), canonical_name("王小虹"));
    }

    fn full_width(c: char) -> char {
        match c {
            '!'..='~' => char::from_u32(u32::from(c) - 0x21 + 0xFF01).unwrap(),
            ' ' => '\u{3000}',
            other => other,
        }
    }

    /// Names of common surname and given-name characters, Latin letters and spaces.
    fn names() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(vec!['王', '李', '张', '小', '红', '明', '𠮷', '·']),
                proptest::char::range('a', 'z'),
                proptest::char::range('A', 'Z'),
                Just(' '),
            ],
            1..12,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        #[test]
        fn full_width_forms_meet(name in names()) {
            let wide: String = name.chars().map(full_width).collect();
            prop_assert_eq!(canonical_name(&name), canonical_name(&wide));
        }

        #[test]
        fn spacing_and_case_meet(name in names(), at in 0usize..12) {
            let mut spaced: Vec<char> = name.to_uppercase().chars().collect();
            spaced.insert(at.min(spaced.len()), '\u{3000}');
            let spaced: String = spaced.into_iter().collect();
            prop_assert_eq!(canonical_name(&name), canonical_name(&spaced));
        }

        #[test]
        fn a_hidden_character_anywhere_is_refused(
            name in names(),
            at in 0usize..12,
            hidden in proptest::sample::select(vec![
                '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{202A}',
                '\u{202E}', '\u{2066}', '\u{2069}', '\u{061C}', '\u{E123}', '\u{F8FF}',
            ]),
        ) {
            let mut chars: Vec<char> = name.chars().collect();
            chars.insert(at.min(chars.len()), hidden);
            let tricked: String = chars.into_iter().collect();
            prop_assert!(person_name(&tricked, 50).is_err());
        }

        #[test]
        fn stored_names_are_stable(name in names()) {
            if let Ok(stored) = person_name(&name, 50) {
                prop_assert_eq!(person_name(&stored, 50).unwrap(), stored.clone());
                prop_assert_eq!(canonical_name(&stored), canonical_name(&name));
            }
        }
    }
}
