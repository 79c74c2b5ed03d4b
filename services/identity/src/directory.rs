//! The schools registration can name, read through a short-lived cache: every registration
//! needs its school, and school records change a few times a year.
//!
//! Where a [`SchoolSource`] is configured (the province's replica of the published school
//! list, through the schools service's API), a miss asks it and keeps a copy in the identity
//! schema, which reads join for the school's registry authority. Without one, the identity
//! schema's own table is the list (tests, the benchmark).

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use xueji_auth::{Caller, Jurisdiction};
use xueji_codes::{Divisions, SchoolCode};

use crate::{
    IdentityError,
    domain::{
        self, School,
        succession::{Succession, SuccessionCursor},
    },
    store::Store,
};

const FRESH_FOR: Duration = Duration::from_secs(30);

/// Where the published school list comes from.
pub trait SchoolSource: Send + Sync + std::fmt::Debug {
    /// The school under `code`, `None` when the list does not hold it.
    fn find<'a>(
        &'a self,
        code: &'a SchoolCode,
    ) -> BoxFuture<'a, Result<Option<School>, IdentityError>>;

    /// Codes voided with a successor after `after`, in publication order, at most a page. A
    /// list that never voids codes (a fixed one) has none.
    fn successions<'a>(
        &'a self,
        _after: &'a SuccessionCursor,
    ) -> BoxFuture<'a, Result<Vec<Succession>, IdentityError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

#[derive(Debug, Default)]
pub struct SchoolDirectory {
    cache: RwLock<HashMap<SchoolCode, (Instant, School)>>,
    source: Option<Arc<dyn SchoolSource>>,
}

impl SchoolDirectory {
    /// What a request's scope (empty, a school code or a division code inside the caller's
    /// jurisdiction) covers: the county-level divisions, or one school. A school or division
    /// outside the caller's jurisdiction is NOT_FOUND, as a missing one.
    pub(crate) async fn scope_of(
        &self,
        store: &Store,
        caller: &Caller,
        requested: &str,
        field: &'static str,
    ) -> Result<(Vec<String>, Option<String>), IdentityError> {
        let requested = requested.trim();
        Ok(if requested.is_empty() {
            match &caller.jurisdiction {
                Jurisdiction::Nation => (all_counties(), None),
                Jurisdiction::Division(division) => (domain::counties_within(*division), None),
                Jurisdiction::School(code) => (Vec::new(), Some(code.to_string())),
            }
        } else if let Ok(code) = requested.parse::<SchoolCode>() {
            if self.visible(store, caller, &code).await?.is_none() {
                return Err(IdentityError::NotFound(format!("{field} {code}")));
            }
            (Vec::new(), Some(code.to_string()))
        } else {
            let division = Divisions::bundled()
                .known(requested)
                .map_err(|e| {
                    IdentityError::invalid(
                        field,
                        format!("must be a school code or a division code: {e}"),
                    )
                })?
                .code;
            if !caller
                .jurisdiction
                .contains(&Jurisdiction::Division(division))
            {
                return Err(IdentityError::NotFound(format!("{field} {division}")));
            }
            (domain::counties_within(division), None)
        })
    }

    /// The school under `code` if `caller` may see it; otherwise `None`, exactly as if it did
    /// not exist.
    pub(crate) async fn visible(
        &self,
        store: &Store,
        caller: &xueji_auth::Caller,
        code: &SchoolCode,
    ) -> Result<Option<School>, IdentityError> {
        Ok(self
            .get(store, code)
            .await?
            .filter(|school| caller.may_access(&school.scope())))
    }

    pub fn with_source(source: Arc<dyn SchoolSource>) -> Self {
        Self {
            cache: RwLock::default(),
            source: Some(source),
        }
    }

    pub async fn get(
        &self,
        store: &Store,
        code: &SchoolCode,
    ) -> Result<Option<School>, IdentityError> {
        let cached = self.cache.read().expect("not poisoned").get(code).cloned();
        if let Some((fetched, school)) = &cached
            && fetched.elapsed() < FRESH_FOR
        {
            return Ok(Some(school.clone()));
        }
        let school = match &self.source {
            Some(source) => {
                let found = source.find(code).await?;
                // The local copy is rewritten only when the list changed it.
                if let Some(school) = &found
                    && cached.as_ref().is_none_or(|(_, known)| known != school)
                {
                    store.upsert_school(school).await?;
                }
                found
            }
            None => store.school(code).await?,
        };
        if let Some(school) = &school {
            self.cache
                .write()
                .expect("not poisoned")
                .insert(code.clone(), (Instant::now(), school.clone()));
        }
        Ok(school)
    }

    /// Codes voided after `after`, from the source (none without one).
    pub async fn successions(
        &self,
        after: &SuccessionCursor,
    ) -> Result<Vec<Succession>, IdentityError> {
        match &self.source {
            Some(source) => source.successions(after).await,
            None => Ok(Vec::new()),
        }
    }

    /// Adds or updates a school in the identity schema's own table and forgets what the cache
    /// held for it.
    pub async fn upsert(&self, store: &Store, school: &School) -> Result<(), IdentityError> {
        store.upsert_school(school).await?;
        self.cache
            .write()
            .expect("not poisoned")
            .remove(&school.code);
        Ok(())
    }
}

/// Every county-level division of the bundled code list.
fn all_counties() -> Vec<String> {
    let divisions = Divisions::bundled();
    let provinces: Vec<_> = (11..=82)
        .filter_map(|p| format!("{p}0000").parse().ok())
        .filter(|code| divisions.get(*code).is_some())
        .collect();
    provinces
        .into_iter()
        .flat_map(domain::counties_within)
        .collect()
}
