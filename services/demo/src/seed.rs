//! `xueji schools seed`: a realistic sample of the national school list — the bundled sample
//! schools (with their existing codes) and a few hundred generated ones over the real counties
//! of Fujian (35) and Anhui (34), in categories 21, 31, 34 and 51 — issued and published as
//! version 1.

use anyhow::Context;
use chrono::NaiveDate;
use xueji_auth::{Caller, Jurisdiction, Level, Role};
use xueji_codes::{DivisionCode, DivisionLevel, Divisions, SchoolCategory, SchoolCode};
use xueji_schools::{
    domain::{OperatorType, Profile},
    store::{Actor, national::NationalStore},
};

use crate::sample;

pub const SEED_PROVINCES: [&str; 2] = ["35", "34"];

#[derive(Debug, Clone)]
pub struct SeedSchool {
    pub code: Option<SchoolCode>,
    pub profile: Profile,
    pub open_from: NaiveDate,
}

/// "福州市鼓楼区" for a county, or the county alone where its city is a placeholder.
fn place_name(divisions: &Divisions, county: DivisionCode) -> String {
    let Some(division) = divisions.get(county) else {
        return county.to_string();
    };
    let city = division
        .parent
        .and_then(|parent| divisions.get(parent))
        .filter(|city| city.level == DivisionLevel::City && city.name != "市辖区")
        .map(|city| city.name.as_str())
        .unwrap_or("");
    format!("{city}{}", division.name)
}

const ORDINALS: [&str; 3] = ["第一", "第二", "第三"];

/// Every school of the sample, the bundled ones first.
pub fn schools() -> anyhow::Result<Vec<SeedSchool>> {
    let divisions = Divisions::bundled();
    let mut seed = Vec::new();
    for school in sample::parse_schools(sample::SCHOOLS_CSV)? {
        let category = school.code.category();
        seed.push(SeedSchool {
            profile: Profile {
                name: school.name.clone(),
                category,
                stages: xueji_codes::default_stages(category),
                division: school.division,
                registry_authority: school.registry_authority,
                operator_type: OperatorType::Public,
                address: format!("{}教育路1号", place_name(divisions, school.division)),
                township: None,
            },
            code: Some(school.code),
            open_from: school.open_from,
        });
    }
    for province in SEED_PROVINCES {
        let province_code = format!("{province}0000").parse().expect("known province");
        for (index, county) in divisions.counties_of(province_code).into_iter().enumerate() {
            let place = place_name(divisions, county.code);
            let city_authority = county.parent.unwrap_or(county.code);
            let opened = |offset: usize| {
                NaiveDate::from_ymd_opt(1950 + ((index * 7 + offset * 13) % 70) as i32, 9, 1)
                    .expect("a valid date")
            };
            // Two townships a county: the first primary school and the junior school share
            // the first, the second primary school lies in the second.
            let mut add = |name: String, category, authority, offset: usize| {
                // The bundled schools already carry some of the generated names.
                if seed.iter().any(|s: &SeedSchool| s.profile.name == name) {
                    return;
                }
                seed.push(SeedSchool {
                    code: None,
                    profile: Profile {
                        name,
                        category,
                        stages: xueji_codes::default_stages(category),
                        division: county.code,
                        registry_authority: authority,
                        operator_type: if offset == 1 && index % 5 == 0 {
                            OperatorType::Private
                        } else {
                            OperatorType::Public
                        },
                        address: format!("{place}学府路{}号", index * 10 + offset + 1),
                        township: Some(format!(
                            "{}{:03}",
                            county.code,
                            if offset == 1 { 2 } else { 1 }
                        )),
                    },
                    open_from: opened(offset),
                });
            };
            for (n, ordinal) in ORDINALS.iter().take(2).enumerate() {
                add(
                    format!("{place}{ordinal}实验小学"),
                    SchoolCategory::Primary,
                    county.code,
                    n,
                );
            }
            add(
                format!("{place}第一中学"),
                SchoolCategory::Junior,
                county.code,
                2,
            );
            if index % 3 == 0 {
                add(
                    format!("{place}高级中学"),
                    SchoolCategory::SeniorHigh,
                    city_authority,
                    3,
                );
            }
            if index % 8 == 0 {
                add(
                    format!("{place}特殊教育学校"),
                    SchoolCategory::SpecialEducation,
                    county.code,
                    4,
                );
            }
        }
    }
    Ok(seed)
}

/// What seeding did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeded {
    Loaded {
        schools: usize,
        version: i64,
    },
    /// The registry already held codes; nothing was loaded.
    AlreadySeeded {
        codes: i64,
    },
}

/// Loads the sample into the national registry and publishes it, unless the registry already
/// holds codes.
pub async fn load(
    store: &NationalStore,
    mut progress: impl FnMut(usize, usize),
) -> anyhow::Result<Seeded> {
    let codes = store.issued_codes().await?;
    if codes > 0 {
        return Ok(Seeded::AlreadySeeded { codes });
    }
    let schools = schools()?;
    let actor = Actor {
        caller: Caller {
            user: "seed".into(),
            level: Level::Ministry,
            jurisdiction: Jurisdiction::Nation,
            role: Role::Approver,
        },
        request_id: "seed".into(),
    };
    let rows: Vec<_> = schools
        .iter()
        .map(|s| (s.code.clone(), s.profile.clone(), s.open_from))
        .collect();
    for (done, chunk) in rows.chunks(100).enumerate() {
        store
            .import_existing(chunk, &actor)
            .await
            .context("loading the sample schools")?;
        progress((done * 100 + chunk.len()).min(rows.len()), rows.len());
    }
    let publication = store
        .publish("sample school list (Fujian and Anhui)", &actor)
        .await?
        .context("the seed published nothing")?;
    Ok(Seeded::Loaded {
        schools: rows.len(),
        version: publication.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_spans_both_provinces_and_four_categories() {
        let schools = schools().unwrap();
        assert!(schools.len() > 300, "{} schools", schools.len());
        for province in SEED_PROVINCES {
            for category in ["21", "31", "34", "51"] {
                assert!(
                    schools.iter().any(|s| s.profile.province() == province
                        && s.profile.category.digits() == category),
                    "no category {category} school in province {province}"
                );
            }
        }
        let mut names: Vec<_> = schools.iter().map(|s| &s.profile.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), schools.len(), "names are unique");
    }
}
