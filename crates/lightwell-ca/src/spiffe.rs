//! SPIFFE IDs (`spiffe://<trust domain>/<path>`), the one URI SAN of every
//! Lightwell leaf, which makes each leaf a valid X.509-SVID.
use std::fmt;
use std::str::FromStr;

use crate::Error;

const SCHEME: &str = "spiffe://";
/// The SPIFFE ID specification caps IDs at 2048 bytes.
const MAX_LEN: usize = 2048;

/// A SPIFFE ID with a non-empty path, checked against the SPIFFE ID
/// specification: lower-case trust domain of `[a-z0-9.-_]`, path segments of
/// `[A-Za-z0-9.-_]`, none empty, `.` or `..`; no query, fragment or port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId(String);

impl SpiffeId {
    /// Builds `spiffe://<trust_domain>/<segments joined by '/'>`.
    ///
    /// Lightwell's IDs are `spiffe://<tenant>/<kind>/<name>`, for example
    /// `SpiffeId::new("corp.example", &["machine", "node1.corp.example"])`.
    pub fn new(trust_domain: &str, segments: &[&str]) -> Result<Self, Error> {
        format!("{SCHEME}{trust_domain}/{}", segments.join("/")).parse()
    }

    /// The whole ID.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The trust domain (for Lightwell, the tenant's domain).
    pub fn trust_domain(&self) -> &str {
        let rest = &self.0[SCHEME.len()..];
        rest.split_once('/').map_or(rest, |(domain, _)| domain)
    }

    /// The path, starting with `/`.
    pub fn path(&self) -> &str {
        &self.0[SCHEME.len() + self.trust_domain().len()..]
    }
}

impl FromStr for SpiffeId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let refuse = |reason| Error::InvalidSpiffeId { id: s.to_owned(), reason };
        if s.len() > MAX_LEN {
            return Err(refuse("longer than 2048 bytes"));
        }
        let rest = s.strip_prefix(SCHEME).ok_or_else(|| refuse("scheme must be spiffe://"))?;
        let (domain, path) = rest.split_once('/').ok_or_else(|| refuse("path is empty"))?;
        if domain.is_empty() {
            return Err(refuse("trust domain is empty"));
        }
        if !domain.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b)) {
            return Err(refuse("trust domain may only hold a-z, 0-9, '.', '-', '_'"));
        }
        for segment in path.split('/') {
            if segment.is_empty() {
                return Err(refuse("path has an empty segment"));
            }
            if segment == "." || segment == ".." {
                return Err(refuse("path has a '.' or '..' segment"));
            }
            if !segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
                return Err(refuse("path may only hold A-Z, a-z, 0-9, '.', '-', '_' and '/'"));
            }
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lightwell_ids_parse_into_domain_and_path() {
        let id = SpiffeId::new("corp.example", &["machine", "node1.corp.example"]).unwrap();
        assert_eq!(id.as_str(), "spiffe://corp.example/machine/node1.corp.example");
        assert_eq!(id.trust_domain(), "corp.example");
        assert_eq!(id.path(), "/machine/node1.corp.example");
    }

    #[test]
    fn ids_outside_the_spiffe_spec_are_refused() {
        for bad in [
            "https://corp.example/user/alice",
            "spiffe://corp.example",
            "spiffe://corp.example/",
            "spiffe://Corp.example/user/alice",
            "spiffe://corp.example:443/user/alice",
            "spiffe://corp.example/user//alice",
            "spiffe://corp.example/user/../alice",
            "spiffe://corp.example/user/alice?x=1",
            "spiffe://corp.example/user/al ice",
            "spiffe:///user/alice",
            "spiffe://corp.example/user/alicé",
        ] {
            assert!(bad.parse::<SpiffeId>().is_err(), "{bad} was accepted");
        }
    }
}
