//! Naming rules, enforced by parsing: a value of these types is valid.
//!
//! - Tenant domains and host names follow DNS rules (RFC 1035 / RFC 1123):
//!   labels of 1–63 characters from `a-z`, `0-9` and `-`, not starting or
//!   ending with `-`, at most 253 characters in all; stored lower case.
//!   A tenant domain has at least two labels and a non-numeric top label.
//! - User, group and service names: 1–64 characters from `A-Z a-z 0-9 . _ -`,
//!   starting with a letter or digit. They compare case-insensitively.

use lightwell_proto::ErrorCode;
use lightwell_store::PrincipalKind;

use crate::Error;

fn invalid(what: &str, value: &str, why: &str) -> Error {
    // Echo at most a short prefix of the value: errors must not amplify hostile input.
    let shown: String = value.chars().take(64).collect();
    Error::new(ErrorCode::InvalidName, format!("invalid {what} {shown:?}: {why}"))
}

fn check_dns(what: &str, value: &str) -> Result<String, Error> {
    let lower = value.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if name.is_empty() {
        return Err(invalid(what, value, "empty"));
    }
    if name.len() > 253 {
        return Err(invalid(what, value, "longer than 253 characters"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(invalid(what, value, "empty label"));
        }
        if label.len() > 63 {
            return Err(invalid(what, value, "label longer than 63 characters"));
        }
        if !label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(invalid(what, value, "only letters, digits and '-' are allowed in a label"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid(what, value, "a label may not start or end with '-'"));
        }
    }
    Ok(name.to_string())
}

/// A tenant's DNS domain, e.g. `corp.example`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

impl DomainName {
    /// Parses and normalizes (lower case, no trailing dot).
    pub fn parse(s: &str) -> Result<Self, Error> {
        let name = check_dns("domain", s)?;
        let labels: Vec<&str> = name.split('.').collect();
        if labels.len() < 2 {
            return Err(invalid("domain", s, "needs at least two labels, e.g. corp.example"));
        }
        if labels.last().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
            return Err(invalid("domain", s, "the top-level label cannot be numeric"));
        }
        Ok(Self(name))
    }

    /// The normalized domain.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The LDAP base DN (`dc=corp,dc=example`).
    pub fn base_dn(&self) -> String {
        self.0.split('.').map(|l| format!("dc={l}")).collect::<Vec<_>>().join(",")
    }
}

/// A DNS host name (no wildcards).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hostname(String);

impl Hostname {
    /// Parses and normalizes (lower case, no trailing dot).
    pub fn parse(s: &str) -> Result<Self, Error> {
        if s.contains('*') {
            return Err(invalid("host name", s, "wildcards are not allowed"));
        }
        Ok(Self(check_dns("host name", s)?))
    }

    /// The normalized name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the name lies strictly inside `domain` (`node1.corp.example`
    /// inside `corp.example`; the domain itself is not inside it).
    pub fn is_inside(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        !domain.is_empty() && self.0.strip_suffix(&domain).is_some_and(|head| head.len() > 1 && head.ends_with('.'))
    }

    /// Consumes into the string.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// A user, group or service name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountName(String);

impl AccountName {
    /// Parses a name (case is kept; comparisons ignore it).
    pub fn parse(s: &str) -> Result<Self, Error> {
        if s.is_empty() || s.len() > 64 {
            return Err(invalid("name", s, "must be 1 to 64 characters"));
        }
        let mut bytes = s.bytes();
        if !bytes.next().is_some_and(|b| b.is_ascii_alphanumeric()) {
            return Err(invalid("name", s, "must start with a letter or digit"));
        }
        if !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
            return Err(invalid("name", s, "only letters, digits, '.', '_' and '-' are allowed"));
        }
        Ok(Self(s.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A principal as front ends name it: `kind/name` (`user/alice`,
/// `machine/node1.corp.example`) or a bare name, which the service resolves
/// when exactly one principal of the tenant has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalRef {
    /// The kind, if given.
    pub kind: Option<PrincipalKind>,
    /// The name (compared case-insensitively).
    pub name: String,
}

impl PrincipalRef {
    /// Parses `kind/name` or a bare name.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let (kind, name) = match s.split_once('/') {
            Some((kind, name)) => {
                let kind = PrincipalKind::parse(kind)
                    .ok_or_else(|| invalid("principal", s, "the kind before '/' is user, group, machine or service"))?;
                (Some(kind), name)
            }
            None => (None, s),
        };
        if name.is_empty() || name.len() > 253 || name.chars().any(|c| c.is_control() || c == '/') {
            return Err(invalid("principal", s, "write kind/name (user/alice) or a name"));
        }
        Ok(Self { kind, name: name.to_string() })
    }

    /// A principal of a known kind.
    pub fn of(kind: PrincipalKind, name: &str) -> Self {
        Self { kind: Some(kind), name: name.to_string() }
    }
}

impl std::fmt::Display for PrincipalRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            Some(k) => write!(f, "{}/{}", k.as_str(), self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Validates an e-mail address (a practical subset of RFC 5321 mailboxes).
pub fn parse_email(s: &str) -> Result<String, Error> {
    let (local, domain) = s.rsplit_once('@').ok_or_else(|| invalid("e-mail address", s, "missing '@'"))?;
    if local.is_empty() || local.len() > 64 {
        return Err(invalid("e-mail address", s, "local part must be 1 to 64 characters"));
    }
    if !local.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'@' | b'"' | b'(' | b')' | b',' | b'<' | b'>')) {
        return Err(invalid("e-mail address", s, "unsupported character in local part"));
    }
    let domain = check_dns("e-mail domain", domain)?;
    Ok(format!("{local}@{domain}"))
}

/// Validates an IP address and returns its canonical text form.
pub fn parse_ip(s: &str) -> Result<String, Error> {
    s.parse::<std::net::IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| invalid("IP address", s, "not an IPv4 or IPv6 address"))
}

/// Validates a display name: at most 256 characters, no control characters.
pub fn parse_display_name(s: &str) -> Result<String, Error> {
    if s.chars().count() > 256 {
        return Err(invalid("display name", s, "longer than 256 characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid("display name", s, "control characters are not allowed"));
    }
    Ok(s.to_string())
}

/// A name made of lower-case letters, digits and `-`, starting with a
/// letter, not ending with `-`, at most `max` bytes: Kubernetes cluster and
/// workload entry names. `what` names it in the error.
pub(crate) fn label_name(what: &str, name: &str, max: usize) -> Result<String, Error> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        let shown: String = name.chars().take(64).collect();
        return Err(Error::new(
            ErrorCode::InvalidName,
            format!("invalid {what} {shown:?}: 1 to {max} lower-case letters, digits and '-', starting with a letter"),
        ));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_follow_dns_rules() {
        assert_eq!(DomainName::parse("Corp.Example.").unwrap().as_str(), "corp.example");
        assert_eq!(DomainName::parse("corp.example").unwrap().base_dn(), "dc=corp,dc=example");
        for bad in ["", "example", "-a.example", "a-.example", "a..example", "a_b.example", "a.123", "é.example"] {
            assert_eq!(DomainName::parse(bad).unwrap_err().code, ErrorCode::InvalidName, "{bad}");
        }
        let long_label = format!("{}.example", "a".repeat(64));
        assert!(DomainName::parse(&long_label).is_err());
        let long_name = format!("{}example", "abcdefghi.".repeat(26));
        assert!(DomainName::parse(&long_name).is_err());
    }

    #[test]
    fn hostnames_refuse_wildcards_and_bad_labels() {
        assert_eq!(Hostname::parse("Node1.Corp.Example").unwrap().as_str(), "node1.corp.example");
        assert!(Hostname::parse("*.corp.example").is_err());
        assert!(Hostname::parse("node 1.corp.example").is_err());
    }

    #[test]
    fn inside_means_a_strict_subdomain() {
        let h = Hostname::parse("node1.corp.example").unwrap();
        assert!(h.is_inside("corp.example") && h.is_inside("example") && h.is_inside("corp.example."));
        for not in ["node1.corp.example", "rp.example", "other.example", "xcorp.example", ""] {
            assert!(!h.is_inside(not), "{not}");
        }
        assert!(!Hostname::parse("administrator").unwrap().is_inside("corp.example"));
    }

    #[test]
    fn account_names_use_the_documented_charset() {
        for good in ["alice", "Administrators", "svc-payments", "a.b_c", "9lives"] {
            AccountName::parse(good).unwrap();
        }
        for bad in ["", "-alice", ".x", "al ice", "alice@corp", "a/b", &"x".repeat(65), "ü"] {
            assert!(AccountName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn principals_are_named_with_or_without_their_kind() {
        assert_eq!(PrincipalRef::parse("user/alice").unwrap(), PrincipalRef::of(PrincipalKind::User, "alice"));
        assert_eq!(PrincipalRef::parse("payments").unwrap(), PrincipalRef { kind: None, name: "payments".into() });
        assert_eq!(PrincipalRef::parse("machine/n1.corp.example").unwrap().to_string(), "machine/n1.corp.example");
        for bad in ["", "user/", "robot/x", "user/a/b", "a\nb"] {
            assert!(PrincipalRef::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails_and_ips_are_checked() {
        assert_eq!(parse_email("Alice@Corp.Example").unwrap(), "Alice@corp.example");
        for bad in ["alice", "@corp.example", "alice@", "a b@corp.example", "alice@corp..example"] {
            assert!(parse_email(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_ip("::0001").unwrap(), "::1");
        assert!(parse_ip("10.0.0.256").is_err());
    }
}
