//! Name constraints of a CA (RFC 5280 section 4.2.1.10): what Lightwell
//! writes into an issuing CA and reads back from one to lint its leaves.
//!
//! rcgen writes DNS, IP, e-mail and directory-name subtrees but not URI
//! ones, and a CA whose key leaves the server must not be able to sign a
//! SPIFFE ID (a URI), so the extension is encoded here (a few dozen bytes of
//! DER, [`NameConstraints::extension_value`]).

use std::net::IpAddr;

use x509_parser::extensions::{GeneralName, GeneralSubtree};

use crate::Error;
use crate::der::{self, SEQUENCE};

/// A permitted IP address range: an address and a prefix length (CIDR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Parses `10.96.0.0/12` or `fd00::/8`. The address must be the
    /// network's first (no host bits set), so what is written is what was meant.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let refuse = |reason| Error::InvalidName { kind: "IP range", value: s.chars().take(64).collect(), reason };
        let (addr, prefix) = s.split_once('/').ok_or_else(|| refuse("expected ADDRESS/PREFIX"))?;
        let network: IpAddr = addr.parse().map_err(|_| refuse("not an IPv4 or IPv6 address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| refuse("the prefix length is not a number"))?;
        if prefix > width(network) {
            return Err(refuse("the prefix length is longer than the address"));
        }
        let range = Self { network, prefix };
        if mask(network, bits(network), prefix) != bits(network) {
            return Err(refuse("host bits are set; give the network's first address"));
        }
        Ok(range)
    }

    /// Whether `ip` lies in the range (an IPv4 address never lies in an IPv6 range).
    pub fn contains(&self, ip: IpAddr) -> bool {
        width(ip) == width(self.network) && mask(ip, bits(ip), self.prefix) == bits(self.network)
    }

    /// The RFC 5280 iPAddress subtree value: the address followed by its mask.
    fn octets(&self) -> Vec<u8> {
        let all = u128::MAX;
        let (addr, mask_bits): (Vec<u8>, Vec<u8>) = match self.network {
            IpAddr::V4(a) => {
                let m = if self.prefix == 0 { 0 } else { (u32::MAX) << (32 - u32::from(self.prefix)) };
                (a.octets().to_vec(), m.to_be_bytes().to_vec())
            }
            IpAddr::V6(a) => {
                let m = if self.prefix == 0 { 0 } else { all << (128 - u32::from(self.prefix)) };
                (a.octets().to_vec(), m.to_be_bytes().to_vec())
            }
        };
        [addr, mask_bits].concat()
    }

    /// Reads an iPAddress subtree value (address and mask, 8 or 32 octets).
    fn from_octets(octets: &[u8]) -> Option<Self> {
        let (network, mask): (IpAddr, &[u8]) = match octets.len() {
            8 => (IpAddr::from(<[u8; 4]>::try_from(&octets[..4]).ok()?), &octets[4..]),
            32 => (IpAddr::from(<[u8; 16]>::try_from(&octets[..16]).ok()?), &octets[16..]),
            _ => return None,
        };
        let ones: u32 = mask.iter().map(|b| b.count_ones()).sum();
        Some(Self { network, prefix: u8::try_from(ones).ok()? })
    }
}

impl std::fmt::Display for IpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn width(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// `value` with everything after the first `prefix` bits (of the address's width) cleared.
fn mask(ip: IpAddr, value: u128, prefix: u8) -> u128 {
    let host_bits = u32::from(width(ip) - prefix.min(width(ip)));
    if host_bits >= 128 { 0 } else { (value >> host_bits) << host_bits }
}

/// The reserved domain (RFC 6761) a CA that may sign no URI or e-mail name
/// is constrained to: no real name lies inside it.
const NOWHERE: &str = ".invalid";

/// A CA's permitted subtrees. Empty means no nameConstraints extension.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameConstraints {
    /// Permitted DNS subtrees: `corp.example` (the name and every name
    /// under it) or `.corp.example` (only names under it).
    pub dns: Vec<String>,
    /// Permitted IP address ranges.
    pub ip_ranges: Vec<IpRange>,
    /// The CA may sign no URI (so no SPIFFE ID of any trust domain) and no
    /// e-mail name: both are constrained to the reserved `.invalid` domain.
    pub no_uri_or_email: bool,
}

impl NameConstraints {
    /// Whether there is nothing to constrain.
    pub fn is_empty(&self) -> bool {
        self.dns.is_empty() && self.ip_ranges.is_empty() && !self.no_uri_or_email
    }

    /// The DER of the extension's value: `NameConstraints ::= SEQUENCE {
    /// permittedSubtrees [0] GeneralSubtrees }`, each subtree a `SEQUENCE {
    /// base GeneralName }` (minimum 0 and no maximum, as RFC 5280 requires).
    pub(crate) fn extension_value(&self) -> Result<Vec<u8>, Error> {
        let mut subtrees = Vec::new();
        for d in &self.dns {
            subtrees.push(der::tlv(SEQUENCE, &der::tlv(0x82, dns_constraint(d)?.as_bytes())));
        }
        for r in &self.ip_ranges {
            subtrees.push(der::tlv(SEQUENCE, &der::tlv(0x87, &r.octets())));
        }
        if self.no_uri_or_email {
            subtrees.push(der::tlv(SEQUENCE, &der::tlv(0x81, NOWHERE.as_bytes())));
            subtrees.push(der::tlv(SEQUENCE, &der::tlv(der::GENERAL_NAME_URI, NOWHERE.as_bytes())));
        }
        Ok(der::tlv(SEQUENCE, &der::tlv(0xa0, &subtrees.concat())))
    }

    /// Reads the permitted subtrees Lightwell checks leaves against.
    pub(crate) fn from_subtrees(permitted: &[GeneralSubtree<'_>]) -> Self {
        let mut out = Self::default();
        for s in permitted {
            match &s.base {
                GeneralName::DNSName(d) => out.dns.push((*d).to_owned()),
                GeneralName::IPAddress(octets) => out.ip_ranges.extend(IpRange::from_octets(octets)),
                GeneralName::URI(u) if *u == NOWHERE => out.no_uri_or_email = true,
                _ => {}
            }
        }
        out
    }
}

/// Checks a DNS name constraint can be encoded (ASCII, no spaces or wildcards).
pub(crate) fn dns_constraint(domain: &str) -> Result<String, Error> {
    let refuse = |reason| Error::InvalidName { kind: "DNS name constraint", value: domain.to_owned(), reason };
    if domain.is_empty() {
        return Err(refuse("empty"));
    }
    if !domain.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
        return Err(refuse("may only hold letters, digits, '-', '_' and '.'"));
    }
    Ok(domain.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_ranges_parse_and_contain() {
        let r = IpRange::parse("10.96.0.0/12").unwrap();
        assert!(r.contains("10.96.0.1".parse().unwrap()) && r.contains("10.111.255.255".parse().unwrap()));
        assert!(!r.contains("10.112.0.0".parse().unwrap()) && !r.contains("::1".parse().unwrap()));
        assert_eq!(r.to_string(), "10.96.0.0/12");
        assert_eq!(IpRange::from_octets(&r.octets()), Some(r));
        let v6 = IpRange::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()) && !v6.contains("fe80::1".parse().unwrap()));
        assert_eq!(IpRange::from_octets(&v6.octets()), Some(v6));
        assert!(IpRange::parse("0.0.0.0/0").unwrap().contains("192.0.2.1".parse().unwrap()));
        for bad in ["10.96.0.1/12", "10.0.0.0", "10.0.0.0/33", "10.0.0.0/x", "nope/8", "::/129"] {
            assert!(IpRange::parse(bad).is_err(), "{bad}");
        }
    }
}
