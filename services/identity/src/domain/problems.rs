//! What a caller may learn of a problem record (DESIGN: scope): the privacy rules of the
//! problem list and of a refused approval, pure. A handler asks these and encodes the answer.

use xueji_auth::{Caller, Jurisdiction, Level};

/// The other students of a duplicate-name group, as `caller` may see them: those inside the
/// caller's jurisdiction named, the others only counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnersShown {
    /// Registry numbers the caller may see.
    pub named: Vec<String>,
    /// Partners outside the caller's jurisdiction.
    pub hidden: usize,
}

/// Splits a group's partners (`(registry number, school code, school division)`) into those
/// `caller` may see and a count of the rest.
pub fn partners_shown<'a>(
    caller: &Caller,
    partners: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
) -> PartnersShown {
    let mut shown = PartnersShown {
        named: Vec::new(),
        hidden: 0,
    };
    for (number, school_code, school_division) in partners {
        if caller.may_access_record(school_code, school_division) {
            shown.named.push(number.to_owned());
        } else {
            shown.hidden += 1;
        }
    }
    shown
}

impl PartnersShown {
    /// The problem's detail line: how many others share the key, how many of them lie
    /// outside the caller's jurisdiction.
    pub fn detail(&self) -> String {
        let total = self.named.len() + self.hidden;
        let outside = if self.hidden > 0 {
            format!(", {} of them outside your jurisdiction", self.hidden)
        } else {
            String::new()
        };
        format!("same name, gender and birth date as {total} other live record(s){outside}")
    }
}

/// The province holding the other record of a cross-province problem, as `caller` may learn
/// it: a province's and the ministry's operators, who settle it with that province, learn which
/// it is; everyone below hears "another province".
pub fn other_province_named(caller: &Caller, province: &str) -> String {
    if matches!(caller.level, Level::Province | Level::Ministry) {
        format!("province {province}")
    } else {
        "another province".to_owned()
    }
}

/// The other record's registry number of a cross-province problem, as `caller` may see it: it
/// lies outside every jurisdiction but the nation's, so only the ministry sees it.
pub fn other_record_shown(caller: &Caller, registry_number: String) -> Vec<String> {
    if caller.jurisdiction == Jurisdiction::Nation {
        vec![registry_number]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use xueji_auth::Role;

    use super::*;

    fn caller(level: Level, jurisdiction: &str) -> Caller {
        Caller {
            user: "u".into(),
            level,
            jurisdiction: Jurisdiction::for_level(level, jurisdiction).unwrap(),
            role: Role::Operator,
        }
    }

    #[test]
    fn partners_outside_the_jurisdiction_are_counted_never_named() {
        let county = caller(Level::County, "350102");
        let shown = partners_shown(
            &county,
            [
                ("G1", "2135010201", "350102"),
                ("G2", "2135020301", "350203"),
            ],
        );
        assert_eq!(shown.named, vec!["G1".to_owned()]);
        assert_eq!(shown.hidden, 1);
        assert_eq!(
            shown.detail(),
            "same name, gender and birth date as 2 other live record(s), 1 of them outside your \
             jurisdiction"
        );
    }

    #[test]
    fn only_provinces_and_the_ministry_learn_the_other_province_and_only_the_ministry_its_number() {
        let county = caller(Level::County, "350102");
        let province = caller(Level::Province, "350000");
        let ministry = caller(Level::Ministry, "");
        assert_eq!(other_province_named(&county, "34"), "another province");
        assert_eq!(other_province_named(&province, "34"), "province 34");
        assert!(other_record_shown(&province, "G34".into()).is_empty());
        assert_eq!(other_record_shown(&ministry, "G34".into()), vec!["G34"]);
    }
}
