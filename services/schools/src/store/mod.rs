//! All SQL of the schools service: [`national`] (the authority's tables) and [`provincial`]
//! (applications in the province and the replica). Each role owns its schema.

pub mod national;
pub mod provincial;
pub mod replication;

use chrono::NaiveDate;
use xueji_auth::Caller;
use xueji_codes::SchoolCode;

use crate::domain::{FormerName, Profile, SchoolRecord, SchoolStatus};

/// Who makes a change, for the audit entry written with it.
#[derive(Debug, Clone)]
pub struct Actor {
    pub caller: Caller,
    pub request_id: String,
}

/// Writes one audit entry for `actor` on the transaction's connection.
async fn audit(
    conn: &mut sqlx::PgConnection,
    actor: &Actor,
    action: &str,
    object: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Result<(), sqlx::Error> {
    xueji_audit::record(
        conn,
        &xueji_audit::Entry {
            actor: &actor.caller.describe(),
            jurisdiction: &actor.caller.jurisdiction.as_string(),
            action,
            object,
            before,
            after,
            request_id: &actor.request_id,
        },
    )
    .await?;
    Ok(())
}

/// The lookups both roles answer, the national registry from its own tables and a province
/// from its replica.
pub trait SchoolLookups: Send + Sync {
    fn school(
        &self,
        code: &str,
    ) -> impl Future<Output = Result<Option<SchoolRecord>, crate::SchoolsError>> + Send;
    fn schools(
        &self,
        filter: &SchoolFilter,
    ) -> impl Future<Output = Result<Vec<SchoolRecord>, crate::SchoolsError>> + Send;
    fn lineage(
        &self,
        code: &str,
    ) -> impl Future<Output = Result<Vec<national::LineageLink>, crate::SchoolsError>> + Send;
}

macro_rules! school_lookups {
    ($store:ty) => {
        impl $crate::store::SchoolLookups for $store {
            async fn school(
                &self,
                code: &str,
            ) -> Result<Option<SchoolRecord>, $crate::SchoolsError> {
                <$store>::school(self, code).await
            }

            async fn schools(
                &self,
                filter: &$crate::store::SchoolFilter,
            ) -> Result<Vec<SchoolRecord>, $crate::SchoolsError> {
                <$store>::schools(self, filter).await
            }

            async fn lineage(
                &self,
                code: &str,
            ) -> Result<Vec<$crate::store::national::LineageLink>, $crate::SchoolsError> {
                <$store>::lineage(self, code).await
            }
        }
    };
}
use school_lookups;

/// Filters of a school list, already narrowed to what the caller may see.
#[derive(Debug, Clone, Default)]
pub struct SchoolFilter {
    /// Division-code prefix (2 digits: a province, 4: a city, 6: a county); empty for all.
    pub division_prefix: String,
    /// Only this school (a school-level caller).
    pub only_code: Option<String>,
    pub name_contains: String,
    pub category: Option<String>,
    pub include_void: bool,
    /// Codes after this one (pagination).
    pub after_code: String,
    pub limit: i64,
}

/// A school row as both schemas store the flat columns.
struct SchoolRow {
    code: String,
    profile: serde_json::Value,
    status: String,
    open_from: NaiveDate,
    open_until: Option<NaiveDate>,
    former_names: Vec<String>,
    replaced_on: Vec<NaiveDate>,
    successors: Vec<String>,
}

impl SchoolRow {
    fn into_record(self) -> Result<SchoolRecord, sqlx::Error> {
        let corrupt = |what: String| sqlx::Error::Decode(what.into());
        let profile: Profile = serde_json::from_value(self.profile)
            .map_err(|e| corrupt(format!("school {}: stored profile: {e}", self.code)))?;
        Ok(SchoolRecord {
            code: self
                .code
                .parse()
                .map_err(|e| corrupt(format!("stored school code {}: {e}", self.code)))?,
            profile,
            status: SchoolStatus::parse(&self.status)
                .ok_or_else(|| corrupt(format!("school {}: status {}", self.code, self.status)))?,
            open_from: self.open_from,
            open_until: self.open_until,
            former_names: self
                .former_names
                .into_iter()
                .zip(self.replaced_on)
                .map(|(name, replaced_on)| FormerName { name, replaced_on })
                .collect(),
            successors: self
                .successors
                .iter()
                .map(|successor| {
                    successor.parse::<SchoolCode>().map_err(|e| {
                        corrupt(format!("school {}: successor {successor}: {e}", self.code))
                    })
                })
                .collect::<Result<_, _>>()?,
        })
    }
}

/// The division prefix a list is narrowed to: what both the caller and the request allow, or
/// `None` when they do not overlap.
pub fn narrow_prefix(caller_prefix: &str, requested_prefix: &str) -> Option<String> {
    if requested_prefix.starts_with(caller_prefix) {
        Some(requested_prefix.to_owned())
    } else if caller_prefix.starts_with(requested_prefix) {
        Some(caller_prefix.to_owned())
    } else {
        None
    }
}
