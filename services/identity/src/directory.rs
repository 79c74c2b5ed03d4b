//! The schools registration can name, read through a short-lived cache: every registration
//! needs its school, and school records change a few times a year.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

use xueji_codes::SchoolCode;

use crate::{IdentityError, domain::School, store::Store};

const FRESH_FOR: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct SchoolDirectory {
    cache: RwLock<HashMap<SchoolCode, (Instant, Option<School>)>>,
}

impl SchoolDirectory {
    pub async fn get(
        &self,
        store: &Store,
        code: &SchoolCode,
    ) -> Result<Option<School>, IdentityError> {
        if let Some((fetched, school)) = self.cache.read().expect("not poisoned").get(code)
            && fetched.elapsed() < FRESH_FOR
        {
            return Ok(school.clone());
        }
        let school = store.school(code).await?;
        self.cache
            .write()
            .expect("not poisoned")
            .insert(code.clone(), (Instant::now(), school.clone()));
        Ok(school)
    }

    /// Adds or updates a school and forgets what the cache held for it.
    pub async fn upsert(&self, store: &Store, school: &School) -> Result<(), IdentityError> {
        store.upsert_school(school).await?;
        self.cache
            .write()
            .expect("not poisoned")
            .remove(&school.code);
        Ok(())
    }
}
