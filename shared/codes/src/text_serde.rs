//! The codes travel (JSON, configuration) as their text, and are parsed again on the way in:
//! a stored or received code is as valid as a typed one.

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

use crate::{DivisionCode, RegistryNumber, ResidentId, SchoolCode};

macro_rules! as_text {
    ($($code:ty),*) => {$(
        impl Serialize for $code {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $code {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(|e| D::Error::custom(format!("{text:?}: {e}")))
            }
        }
    )*};
}

as_text!(DivisionCode, SchoolCode, ResidentId, RegistryNumber);
