//! The identity service's policy files, read from the node's `policy_dir` over the bundled
//! ones (`services/identity/policy/`) and checked when read: the status changes and their
//! approvals, and the school year's dates, which a reload replaces without a restart; the
//! provincial fields, read at start-up only (they shape what every record holds, and a change
//! to them goes with a restart and, where a field is new, a migration of the records).

use std::sync::Arc;

use xueji_policy::{Live, PolicyDir, PolicyError, PolicyHook, Prepared};
use xueji_workflow::Policy as Approvals;

use crate::domain::{
    provincial_fields::{BUNDLED_FIELDS, ProvincialFields},
    school_year::{BUNDLED_DATES, SchoolYearPolicy},
    status_change::{BUNDLED_APPROVALS, BUNDLED_RULES, ChangeRules},
};

const SERVICE: &str = "identity";

/// The status-change rules and who approves them within which deadlines: one reload changes
/// both.
#[derive(Debug, Clone)]
pub struct StatusPolicy {
    pub rules: ChangeRules,
    pub approvals: Approvals,
}

impl StatusPolicy {
    pub fn bundled() -> Self {
        Self {
            rules: ChangeRules::bundled(),
            approvals: Approvals::from_toml(BUNDLED_APPROVALS)
                .expect("the bundled status-change approvals are valid"),
        }
    }
}

/// The identity service's policy in force.
#[derive(Debug, Clone)]
pub struct IdentityPolicy {
    pub status: Live<StatusPolicy>,
    pub school_year: Live<SchoolYearPolicy>,
    pub fields: Arc<ProvincialFields>,
    dir: PolicyDir,
}

impl IdentityPolicy {
    /// The bundled files only.
    pub fn bundled() -> Self {
        Self {
            status: Live::new(StatusPolicy::bundled()),
            school_year: Live::new(SchoolYearPolicy::bundled()),
            fields: ProvincialFields::bundled(),
            dir: PolicyDir::default(),
        }
    }

    /// The deployment's files of `dir` over the bundled ones, every one checked.
    pub fn load(dir: PolicyDir) -> Result<Self, PolicyError> {
        let fields = dir
            .read(SERVICE, "provincial_fields.toml", BUNDLED_FIELDS)?
            .parse(|text| ProvincialFields::from_toml(text).map(Arc::new))?;
        let (status, school_year, _) = read_reloadable(&dir)?;
        Ok(Self {
            status: Live::new(status),
            school_year: Live::new(school_year),
            fields,
            dir,
        })
    }

    /// The hook a node's reload runs.
    pub fn hook(&self) -> Arc<dyn PolicyHook> {
        Arc::new(self.clone())
    }
}

/// The files a reload reads, checked, and the names they were read under.
fn read_reloadable(
    dir: &PolicyDir,
) -> Result<(StatusPolicy, SchoolYearPolicy, Vec<String>), PolicyError> {
    let rules_text = dir.read(SERVICE, "status_changes.toml", BUNDLED_RULES)?;
    let rules = rules_text.parse(ChangeRules::from_toml)?;
    let approvals_text = dir.read(SERVICE, "status_approvals.toml", BUNDLED_APPROVALS)?;
    let approvals = approvals_text.parse(|text| {
        Approvals::from_toml(text).map_err(|e| format!("status-change approvals: {e}"))
    })?;
    let dates_text = dir.read(SERVICE, "school_year.toml", BUNDLED_DATES)?;
    let school_year = dates_text.parse(SchoolYearPolicy::from_toml)?;
    Ok((
        StatusPolicy { rules, approvals },
        school_year,
        vec![rules_text.file, approvals_text.file, dates_text.file],
    ))
}

impl PolicyHook for IdentityPolicy {
    fn prepare(&self) -> Result<Prepared, PolicyError> {
        let (status, school_year, files) = read_reloadable(&self.dir)?;
        let (live_status, live_year) = (self.status.clone(), self.school_year.clone());
        Ok(Prepared {
            files,
            apply: Box::new(move || {
                live_status.replace(status);
                live_year.replace(school_year);
            }),
        })
    }
}
