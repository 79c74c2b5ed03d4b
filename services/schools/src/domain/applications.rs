//! New-school applications in the province: where each stands, and whose turn it is.

use xueji_auth::{Caller, Jurisdiction, Level, Role};
use xueji_codes::{DivisionCode, Divisions};
pub use xueji_validation::FieldViolation;

use crate::SchoolsError;

/// Where an application stands in the province.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationStatus {
    Filed,
    CountyEndorsed,
    CityEndorsed,
    ProvinceEndorsed,
    Submitted,
    Approved,
    Rejected,
    Returned,
}

impl ApplicationStatus {
    pub const ALL: [ApplicationStatus; 8] = [
        Self::Filed,
        Self::CountyEndorsed,
        Self::CityEndorsed,
        Self::ProvinceEndorsed,
        Self::Submitted,
        Self::Approved,
        Self::Rejected,
        Self::Returned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Filed => "filed",
            Self::CountyEndorsed => "county_endorsed",
            Self::CityEndorsed => "city_endorsed",
            Self::ProvinceEndorsed => "province_endorsed",
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Returned => "returned",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The level whose approver acts next, while the application is in the province.
    pub fn endorser(self) -> Option<Level> {
        match self {
            Self::Filed => Some(Level::County),
            Self::CountyEndorsed => Some(Level::City),
            Self::CityEndorsed => Some(Level::Province),
            _ => None,
        }
    }

    /// The status an endorsement moves to.
    pub fn endorsed(self) -> Option<Self> {
        match self {
            Self::Filed => Some(Self::CountyEndorsed),
            Self::CountyEndorsed => Some(Self::CityEndorsed),
            Self::CityEndorsed => Some(Self::ProvinceEndorsed),
            _ => None,
        }
    }
}

/// May `caller` file an application for a school in `county`? Operators and approvers of that
/// county.
pub fn may_file(caller: &Caller, county: DivisionCode) -> bool {
    caller.level == Level::County && caller.jurisdiction == Jurisdiction::Division(county)
}

/// May `caller` see an application filed in `county`? The county and the city and province
/// above it (and the ministry).
pub fn may_see_application(caller: &Caller, county: DivisionCode) -> bool {
    match &caller.jurisdiction {
        Jurisdiction::Nation => true,
        Jurisdiction::Division(division) => Divisions::bundled().contains(*division, county),
        Jurisdiction::School(_) => false,
    }
}

/// Is it `caller`'s turn to endorse or return an application in `status` from `county`? Only
/// an approver of the level whose turn it is, over that county.
pub fn check_turn(
    caller: &Caller,
    status: ApplicationStatus,
    county: DivisionCode,
) -> Result<(), SchoolsError> {
    let Some(level) = status.endorser() else {
        return Err(SchoolsError::FailedPrecondition(format!(
            "the application is {}; nobody in the province acts on it now",
            status.as_str()
        )));
    };
    if caller.level != level || caller.role != Role::Approver {
        return Err(SchoolsError::PermissionDenied(format!(
            "the application waits for a {level}-level approver"
        )));
    }
    Ok(()).and_then(|()| {
        if may_see_application(caller, county) {
            Ok(())
        } else {
            Err(SchoolsError::PermissionDenied(format!(
                "the application waits for the {level} over {county}"
            )))
        }
    })
}

/// The ministry decides applications and applies the lifecycle rules.
/// Whether `caller` speaks for the province of a school in `division`: the ministry, or that
/// province's own authority. A province submits applications for its own schools only.
pub fn require_own_province(
    caller: &Caller,
    division: xueji_codes::DivisionCode,
) -> Result<(), SchoolsError> {
    let speaks_for_province = match &caller.jurisdiction {
        Jurisdiction::Nation => true,
        Jurisdiction::Division(own) => {
            caller.level == xueji_auth::Level::Province && *own == division.province()
        }
        Jurisdiction::School(_) => false,
    };
    if speaks_for_province {
        Ok(())
    } else {
        Err(SchoolsError::PermissionDenied(format!(
            "only province {} submits applications for schools in {division}",
            division.province_digits()
        )))
    }
}

pub fn require_ministry(caller: &Caller, what: &str) -> Result<(), SchoolsError> {
    if caller.jurisdiction == Jurisdiction::Nation && caller.role == Role::Approver {
        Ok(())
    } else {
        Err(SchoolsError::PermissionDenied(format!(
            "only a ministry approver may {what}; the national authority issues and changes codes"
        )))
    }
}
