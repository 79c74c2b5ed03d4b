//! The record's non-key fields (非关键字段): the school keeps them up to date itself, without
//! an approval (Anhui 第十七条: the school maintains its pupils' records day to day; only key
//! fields change through the authority). The guardian, the ethnicity, the entry route, the
//! 随迁子女 and 留守儿童 flags, and the province's own fields that it does not declare key.
//! Pure: the check of one update, field by field, against the record as it stands.

use std::collections::BTreeMap;

use super::{
    EntryRoute, Guardian,
    correction::FieldChange,
    provincial_fields::{CORRECTED_PREFIX, ProvincialField},
    registration::{is_ethnicity, normalize_name},
};
use xueji_validation::FieldViolation;

/// The national non-key fields an update may name, as it names them.
pub const DETAIL_FIELDS: [&str; 7] = [
    "guardian.name",
    "guardian.relation",
    "guardian.phone",
    "ethnicity",
    "entry_route",
    "migrant_child",
    "left_behind_child",
];

/// A record's non-key fields as they stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details {
    pub guardian: Guardian,
    pub ethnicity: String,
    pub entry_route: EntryRoute,
    pub migrant_child: bool,
    pub left_behind_child: bool,
    /// The province's own fields (key and non-key): an update changes the non-key ones only.
    pub provincial: BTreeMap<String, String>,
}

impl Details {
    /// The value of a national non-key field, as the history and the audit write it.
    pub fn value(&self, field: &str) -> Option<String> {
        Some(match field {
            "guardian.name" => self.guardian.name.clone(),
            "guardian.relation" => self.guardian.relation.clone(),
            "guardian.phone" => self.guardian.phone.clone(),
            "ethnicity" => self.ethnicity.clone(),
            "entry_route" => self.entry_route.as_str().to_owned(),
            "migrant_child" => self.migrant_child.to_string(),
            "left_behind_child" => self.left_behind_child.to_string(),
            _ => return None,
        })
    }
}

/// Checks an update of `current` by (field, value) pairs: each field named once, each a non-key
/// field the school keeps, each value valid. Answers the details after the update and what
/// changed (a value equal to the current one changes nothing and is not listed).
pub fn check_details(
    current: &Details,
    values: &[(String, String)],
    declared: &[ProvincialField],
) -> Result<(Details, Vec<FieldChange>), Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let mut after = current.clone();
    let mut named: Vec<String> = Vec::new();
    if values.is_empty() {
        return Err(vec![FieldViolation::new(
            "values",
            "name at least one field to change",
        )]);
    }
    for (raw_field, raw_value) in values {
        let field = raw_field.trim();
        let bare = field.strip_prefix(CORRECTED_PREFIX).unwrap_or(field);
        if named.iter().any(|n| n == bare) {
            violations.push(FieldViolation::new(
                "values",
                format!("{bare} is named twice; name each field once"),
            ));
            continue;
        }
        named.push(bare.to_owned());
        if let Some(declared) = declared.iter().find(|f| f.name == bare) {
            if declared.key {
                violations.push(FieldViolation::new(
                    declared.violation_name(),
                    format!(
                        "is a key field of the province ({}): it changes by a correction, \
                         with evidence and the authority's approval",
                        declared.label
                    ),
                ));
                continue;
            }
            match declared.check(raw_value) {
                Ok(value) if value.is_empty() => {
                    after.provincial.remove(&declared.name);
                }
                Ok(value) => {
                    after.provincial.insert(declared.name.clone(), value);
                }
                Err(why) => violations.push(FieldViolation::new(declared.violation_name(), why)),
            }
            continue;
        }
        let value = raw_value.trim();
        let checked = match bare {
            "guardian.name" => normalize_name(value)
                .map(|name| after.guardian.name = name)
                .map_err(|why| ("guardian.name", why)),
            "guardian.relation" => {
                if value.is_empty() || value.chars().count() > 20 {
                    Err(("guardian.relation", "must be 1–20 characters".to_owned()))
                } else {
                    after.guardian.relation = value.to_owned();
                    Ok(())
                }
            }
            "guardian.phone" => {
                if value.len() > 20
                    || !value
                        .chars()
                        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' '))
                {
                    Err((
                        "guardian.phone",
                        "must be at most 20 digits, spaces, + or -".to_owned(),
                    ))
                } else {
                    after.guardian.phone = value.to_owned();
                    Ok(())
                }
            }
            "ethnicity" => {
                if is_ethnicity(value) {
                    after.ethnicity = value.to_owned();
                    Ok(())
                } else {
                    Err((
                        "ethnicity",
                        "must be a GB/T 3304 code: 01–56, 97 or 98".to_owned(),
                    ))
                }
            }
            "entry_route" => match EntryRoute::parse(value) {
                Some(route) => {
                    after.entry_route = route;
                    Ok(())
                }
                None => Err((
                    "entry_route",
                    format!("{value:?} is not an entry route (e.g. nearby_admission)"),
                )),
            },
            "migrant_child" => flag(value)
                .map(|v| after.migrant_child = v)
                .ok_or(("migrant_child", "must be true or false (是/否)".to_owned())),
            "left_behind_child" => flag(value).map(|v| after.left_behind_child = v).ok_or((
                "left_behind_child",
                "must be true or false (是/否)".to_owned(),
            )),
            other => {
                violations.push(FieldViolation::new(
                    "values",
                    format!(
                        "{other:?} is not a field the school keeps ({}, or a province's own \
                         non-key field); key fields change by a correction",
                        DETAIL_FIELDS.join(", ")
                    ),
                ));
                continue;
            }
        };
        if let Err((field, why)) = checked {
            violations.push(FieldViolation::new(field, why));
        }
    }
    if !violations.is_empty() {
        return Err(violations);
    }
    let mut changes = Vec::new();
    for field in DETAIL_FIELDS {
        let (from, to) = (current.value(field), after.value(field));
        if from != to {
            changes.push(FieldChange {
                field: field.to_owned(),
                from: from.unwrap_or_default(),
                to: to.unwrap_or_default(),
            });
        }
    }
    let provincial_names: std::collections::BTreeSet<&String> = current
        .provincial
        .keys()
        .chain(after.provincial.keys())
        .collect();
    for name in provincial_names {
        let (from, to) = (current.provincial.get(name), after.provincial.get(name));
        if from != to {
            changes.push(FieldChange {
                field: format!("{CORRECTED_PREFIX}{name}"),
                from: from.cloned().unwrap_or_default(),
                to: to.cloned().unwrap_or_default(),
            });
        }
    }
    Ok((after, changes))
}

/// A yes/no value as a registrar types it.
fn flag(value: &str) -> Option<bool> {
    match value.to_lowercase().as_str() {
        "true" | "yes" | "1" | "是" => Some(true),
        "false" | "no" | "0" | "否" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn current() -> Details {
        Details {
            guardian: Guardian {
                name: "王建国".into(),
                relation: "父亲".into(),
                phone: "13800000000".into(),
            },
            ethnicity: "01".into(),
            entry_route: EntryRoute::NearbyAdmission,
            migrant_child: false,
            left_behind_child: false,
            provincial: BTreeMap::new(),
        }
    }

    fn asked(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn an_update_lists_what_changed_with_the_old_values() {
        let (after, changes) = check_details(
            &current(),
            &asked(&[
                ("guardian.phone", " 13900000000 "),
                ("migrant_child", "是"),
                ("ethnicity", "01"),
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(after.guardian.phone, "13900000000");
        assert!(after.migrant_child);
        assert_eq!(
            changes,
            [
                FieldChange {
                    field: "guardian.phone".into(),
                    from: "13800000000".into(),
                    to: "13900000000".into(),
                },
                FieldChange {
                    field: "migrant_child".into(),
                    from: "false".into(),
                    to: "true".into(),
                },
            ]
        );
    }

    #[test]
    fn bad_values_unknown_fields_and_key_fields_are_refused_by_name() {
        let refused = check_details(
            &current(),
            &asked(&[
                ("guardian.phone", "call me"),
                ("name", "王小二"),
                ("ethnicity", "99"),
                ("entry_route", "bribe"),
                ("left_behind_child", "maybe"),
                ("ethnicity", "02"),
            ]),
            &[],
        )
        .unwrap_err();
        let fields: Vec<_> = refused.iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            [
                "guardian.phone",
                "values",
                "ethnicity",
                "entry_route",
                "left_behind_child",
                "values"
            ]
        );
        assert!(check_details(&current(), &[], &[]).is_err());
    }
}
