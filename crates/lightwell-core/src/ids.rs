//! Typed ids. Principals and CAs are addressed by UUIDs that the store
//! keeps as text; a [`PrincipalId`] and a [`CaId`] cannot be swapped for
//! each other or for a name, and an id that arrives from outside (a URL, a
//! certificate request) is parsed once, where it arrives, by `parse`:
//! anything that is not a UUID is refused before it reaches a query.
//! [`TenantId`](crate::TenantId) is the store's own (it also names the
//! system scope).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(into = "String", try_from = "String")]
        pub struct $name(String);

        /// Deserializing parses, as [`Self::parse`] does: an id read from
        /// JSON is checked like one from a URL.
        impl TryFrom<String> for $name {
            type Error = Error;

            fn try_from(s: String) -> Result<Self> {
                Self::parse(&s)
            }
        }

        impl $name {
            /// Parses an id that arrived from outside: a UUID, in any case;
            /// kept in the lower-case form the store uses.
            pub fn parse(s: &str) -> Result<Self> {
                uuid::Uuid::parse_str(s)
                    .map(|u| Self(u.hyphenated().to_string()))
                    .map_err(|_| Error::invalid(concat!("not a ", $what, " id (ids are UUIDs)")))
            }

            /// Wraps an id read from the store (not checked again).
            pub(crate) fn stored(s: impl Into<String>) -> Self {
                Self(s.into())
            }

            /// The id as stored.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// Reads as the stored string where the store's API takes one.
        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

uuid_id!(
    /// The stable id of a principal (user, group, service, machine).
    PrincipalId,
    "principal"
);
uuid_id!(
    /// The stable id of a certificate authority; part of its plain-HTTP URLs.
    CaId,
    "CA"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_outside_are_uuids_and_nothing_else() {
        let id = CaId::parse("6F9619FF-8B86-D011-B42D-00C04FC964FF").unwrap();
        assert_eq!(id.as_str(), "6f9619ff-8b86-d011-b42d-00c04fc964ff", "one spelling, the store's");
        for hostile in ["", "x", "6f9619ff-8b86-d011-b42d-00c04fc964ff' OR '1'='1", "../../etc/passwd", "6f9619ff"] {
            let err = PrincipalId::parse(hostile).unwrap_err();
            assert_eq!(err.code, lightwell_proto::ErrorCode::InvalidRequest, "{hostile:?}: {err:?}");
        }
    }

    #[test]
    fn ids_serialize_as_the_plain_string_and_deserialize_only_when_they_parse() {
        let id = PrincipalId::stored("6f9619ff-8b86-d011-b42d-00c04fc964ff");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"6f9619ff-8b86-d011-b42d-00c04fc964ff\"");
        assert_eq!(serde_json::from_str::<PrincipalId>("\"6F9619FF-8B86-D011-B42D-00C04FC964FF\"").unwrap(), id);
        assert!(serde_json::from_str::<CaId>("\"../../etc/passwd\"").is_err());
    }
}
