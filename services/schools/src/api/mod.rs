//! The gRPC handlers of both roles: decode, authorize against the object, call the domain and
//! the store, map errors (through `From<SchoolsError> for Status`).

pub mod authority;
pub mod convert;
pub mod intake;

use xueji_auth::{Caller, Jurisdiction};
use xueji_codes::{DivisionLevel, Divisions};
use xueji_proto::schools::v1 as pb;

use crate::{
    SchoolsError,
    domain::{self, SchoolRecord},
    store::{Actor, SchoolFilter, SchoolLookups, narrow_prefix},
};

/// The authenticated caller and request id of a request, as the store's audit entries name
/// them.
fn actor_of<T>(request: &tonic::Request<T>) -> Result<Actor, tonic::Status> {
    let (caller, request_id) = xueji_rpc::caller(request)?;
    Ok(Actor {
        caller: caller.clone(),
        request_id: request_id.to_owned(),
    })
}

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// The division-code prefix a division covers: 2 digits for a province, 4 for a city, 6 for a
/// county.
fn prefix_of(division: xueji_codes::DivisionCode) -> String {
    let text = division.to_string();
    match Divisions::bundled().get(division).map(|d| d.level) {
        Some(DivisionLevel::Province) => text[..2].to_owned(),
        Some(DivisionLevel::City) => text[..4].to_owned(),
        _ => text,
    }
}

/// A list request narrowed to what the caller may see; `None` when nothing can match.
fn school_filter(
    caller: &Caller,
    request: &pb::ListSchoolsRequest,
) -> Result<Option<SchoolFilter>, SchoolsError> {
    let limit = match request.page_size {
        0 => DEFAULT_PAGE,
        n if n <= MAX_PAGE => n,
        _ => {
            return Err(SchoolsError::invalid(
                "page_size",
                format!("must be at most {MAX_PAGE}"),
            ));
        }
    };
    let requested = match request.division.trim() {
        "" => String::new(),
        text => prefix_of(
            Divisions::bundled()
                .known(text)
                .map_err(|e| SchoolsError::invalid("division", e.to_string()))?
                .code,
        ),
    };
    let category = match request.category.trim() {
        "" => None,
        text => Some(
            domain::parse_category("category", text)
                .map_err(|v| SchoolsError::InvalidArgument(vec![v]))?
                .digits(),
        ),
    };
    if !request.page_token.is_empty()
        && request
            .page_token
            .parse::<xueji_codes::SchoolCode>()
            .is_err()
    {
        return Err(SchoolsError::invalid(
            "page_token",
            "is not a token this service issued",
        ));
    }
    let (caller_prefix, only_code) = match &caller.jurisdiction {
        Jurisdiction::Nation => (String::new(), None),
        Jurisdiction::Division(division) => (prefix_of(*division), None),
        Jurisdiction::School(code) => (String::new(), Some(code.to_string())),
    };
    let Some(division_prefix) = narrow_prefix(&caller_prefix, &requested) else {
        return Ok(None);
    };
    Ok(Some(SchoolFilter {
        division_prefix,
        only_code,
        // Matched with LIKE: the caller's `%` and `_` are characters of a name, not wildcards.
        name_contains: xueji_validation::like_literal(request.name_contains.trim()),
        category,
        include_void: request.include_void,
        after_code: request.page_token.clone(),
        limit: i64::from(limit) + 1,
    }))
}

/// Cuts one extra row off a page and turns it into the next page's token.
fn paginate(mut schools: Vec<SchoolRecord>, filter: &SchoolFilter) -> (Vec<SchoolRecord>, String) {
    let limit = (filter.limit - 1) as usize;
    if schools.len() > limit {
        schools.truncate(limit);
        let token = schools
            .last()
            .map(|s| s.code.to_string())
            .unwrap_or_default();
        (schools, token)
    } else {
        (schools, String::new())
    }
}

/// The school if the caller may see it; otherwise NOT_FOUND, as if it did not exist.
fn visible(
    caller: &Caller,
    code: &str,
    school: Option<SchoolRecord>,
) -> Result<SchoolRecord, SchoolsError> {
    school
        .filter(|s| caller.may_access(&s.scope()))
        .ok_or_else(|| SchoolsError::NotFound(format!("school {code}")))
}

/// `GetSchool` of either role: the school under a code, if the caller may see it.
async fn get_school(
    store: &impl SchoolLookups,
    caller: &Caller,
    code: &str,
) -> Result<SchoolRecord, SchoolsError> {
    let code = domain::parse_code("code", code)?;
    visible(caller, code.as_str(), store.school(code.as_str()).await?)
}

/// `ListSchools` of either role, narrowed to what the caller may see.
async fn list_schools(
    store: &impl SchoolLookups,
    caller: &Caller,
    request: &pb::ListSchoolsRequest,
) -> Result<pb::ListSchoolsResponse, SchoolsError> {
    let Some(filter) = school_filter(caller, request)? else {
        return Ok(pb::ListSchoolsResponse::default());
    };
    let (schools, next_page_token) = paginate(store.schools(&filter).await?, &filter);
    Ok(pb::ListSchoolsResponse {
        schools: schools.iter().map(|s| convert::school(s, 0)).collect(),
        next_page_token,
    })
}

/// `GetLineage` of either role, for a school the caller may see.
async fn get_lineage(
    store: &impl SchoolLookups,
    caller: &Caller,
    code: &str,
) -> Result<pb::GetLineageResponse, SchoolsError> {
    let school = get_school(store, caller, code).await?;
    let links = store.lineage(school.code.as_str()).await?;
    Ok(pb::GetLineageResponse {
        links: links.iter().map(convert::lineage).collect(),
    })
}

/// Applications listed in one page unless the caller asks for fewer, and at most.
const DEFAULT_APPLICATIONS: u32 = 100;
const MAX_APPLICATIONS: u32 = 500;

/// A page request over applications: how many (plus one, to tell whether more follow) and after
/// which (the last id of the previous page).
pub(crate) fn application_page(
    page_size: u32,
    page_token: &str,
) -> Result<(i64, Option<String>), SchoolsError> {
    let size = match page_size {
        0 => DEFAULT_APPLICATIONS,
        n if n <= MAX_APPLICATIONS => n,
        _ => {
            return Err(SchoolsError::invalid(
                "page_size",
                format!("must be at most {MAX_APPLICATIONS}"),
            ));
        }
    };
    let after = match page_token.trim() {
        "" => None,
        token if token.len() <= 64 && token.split_once('-').is_some() => Some(token.to_owned()),
        _ => {
            return Err(SchoolsError::invalid(
                "page_token",
                "is not a token this service issued",
            ));
        }
    };
    Ok((i64::from(size), after))
}

/// Cuts `items` (fetched one beyond the page) to the page and answers the next page token.
pub(crate) fn cut_page<T>(items: &mut Vec<T>, size: i64, id: impl Fn(&T) -> String) -> String {
    if items.len() as i64 > size {
        items.truncate(size as usize);
        items.last().map(id).unwrap_or_default()
    } else {
        String::new()
    }
}
