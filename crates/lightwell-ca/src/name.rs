//! Distinguished names as Lightwell writes them: single-valued RDNs in a
//! fixed order, every value a UTF8String (RFC 5280 section 4.1.2.6).
//!
//! rcgen keeps at most one value per attribute type, which cannot express a
//! Kubernetes user's several `O=` groups, so subject names are encoded here.
use crate::Error;
use crate::der::{self, SEQUENCE, SET, UTF8_STRING};

/// RFC 5280 appendix A: ub-common-name, ub-organization-name and
/// ub-organizational-unit-name are all 64.
const MAX_VALUE_CHARS: usize = 64;

/// The attribute types Lightwell puts in subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attribute {
    Organization,
    OrganizationalUnit,
    CommonName,
}

impl Attribute {
    /// DER of the attribute type OID (id-at-*).
    fn oid_der(self) -> &'static [u8] {
        match self {
            Self::Organization => &[0x06, 0x03, 0x55, 0x04, 0x0a],
            Self::OrganizationalUnit => &[0x06, 0x03, 0x55, 0x04, 0x0b],
            Self::CommonName => &[0x06, 0x03, 0x55, 0x04, 0x03],
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Organization => "subject O",
            Self::OrganizationalUnit => "subject OU",
            Self::CommonName => "subject CN",
        }
    }
}

/// An ordered distinguished name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Name {
    attributes: Vec<(Attribute, String)>,
}

impl Name {
    /// Appends one RDN, refusing values that are empty or too long.
    pub(crate) fn push(&mut self, attribute: Attribute, value: &str) -> Result<(), Error> {
        let refuse = |reason| Error::InvalidName { kind: attribute.label(), value: value.to_owned(), reason };
        if value.is_empty() {
            return Err(refuse("empty"));
        }
        if value.chars().count() > MAX_VALUE_CHARS {
            return Err(refuse("longer than 64 characters"));
        }
        if value.chars().any(char::is_control) {
            return Err(refuse("contains control characters"));
        }
        self.attributes.push((attribute, value.to_owned()));
        Ok(())
    }

    /// `O=Lightwell, OU=<tenant>, CN=<name>`: the subject of every Lightwell CA.
    pub(crate) fn lightwell_ca(tenant: &str, common_name: &str) -> Result<Self, Error> {
        let mut name = Self::default();
        name.push(Attribute::Organization, "Lightwell")?;
        name.push(Attribute::OrganizationalUnit, tenant)?;
        name.push(Attribute::CommonName, common_name)?;
        Ok(name)
    }

    pub(crate) fn to_der(&self) -> Vec<u8> {
        let rdns: Vec<Vec<u8>> = self
            .attributes
            .iter()
            .map(|(attribute, value)| {
                let atv = der::sequence(&[attribute.oid_der(), &der::tlv(UTF8_STRING, value.as_bytes())]);
                der::tlv(SET, &atv)
            })
            .collect();
        der::tlv(SEQUENCE, &rdns.concat())
    }

    /// The same name for rcgen, which lays out the certificate before the name
    /// is replaced by [`Name::to_der`]. rcgen only needs to know whether the
    /// subject is empty (it decides the SAN extension's criticality from that).
    pub(crate) fn to_rcgen(&self) -> rcgen::DistinguishedName {
        let mut dn = rcgen::DistinguishedName::new();
        for (attribute, value) in &self.attributes {
            let ty = match attribute {
                Attribute::Organization => rcgen::DnType::OrganizationName,
                Attribute::OrganizationalUnit => rcgen::DnType::OrganizationalUnitName,
                Attribute::CommonName => rcgen::DnType::CommonName,
            };
            dn.push(ty, value.as_str());
        }
        dn
    }
}

#[cfg(test)]
mod tests {
    use x509_parser::prelude::FromDer;

    use super::*;

    #[test]
    fn names_keep_repeated_organizations_in_order() {
        let mut name = Name::default();
        name.push(Attribute::Organization, "system:masters").unwrap();
        name.push(Attribute::Organization, "dev").unwrap();
        name.push(Attribute::CommonName, "alice").unwrap();
        let der = name.to_der();
        let (_, parsed) = x509_parser::x509::X509Name::from_der(&der).unwrap();
        let orgs: Vec<_> = parsed.iter_organization().map(|a| a.as_str().unwrap()).collect();
        assert_eq!(orgs, ["system:masters", "dev"]);
        assert_eq!(parsed.to_string(), "O=system:masters, O=dev, CN=alice");
    }

    #[test]
    fn empty_name_is_an_empty_sequence() {
        assert_eq!(Name::default().to_der(), [0x30, 0x00]);
    }

    #[test]
    fn empty_and_oversized_values_are_refused() {
        let mut name = Name::default();
        assert!(name.push(Attribute::CommonName, "").is_err());
        assert!(name.push(Attribute::CommonName, &"a".repeat(65)).is_err());
        assert!(name.push(Attribute::CommonName, "a\nb").is_err());
    }
}
