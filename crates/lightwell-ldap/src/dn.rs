//! Distinguished names (RFC 4514): parsing with escapes, and a normalized
//! form (lower-case types and values) used for comparisons. Every name in a
//! Lightwell tree compares without regard to case, so one normal form serves.

use std::fmt;

/// One relative distinguished name component (`uid=alice`). Multi-valued
/// RDNs (`a=1+b=2`) are parsed but never name an entry of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ava {
    /// Attribute type, lower case.
    pub(crate) attr: String,
    /// Value, unescaped.
    pub(crate) value: String,
}

/// A parsed DN, leaf first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Dn {
    pub(crate) rdns: Vec<Vec<Ava>>,
}

/// Why a DN did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DnError(pub(crate) &'static str);

impl fmt::Display for DnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Longest DN accepted; ours are far shorter.
const MAX_DN_LEN: usize = 4096;

impl Dn {
    /// Parses an RFC 4514 string. The empty string is the root (no RDNs).
    pub(crate) fn parse(s: &str) -> Result<Dn, DnError> {
        if s.len() > MAX_DN_LEN {
            return Err(DnError("the DN is too long"));
        }
        let s = s.trim();
        if s.is_empty() {
            return Ok(Dn::default());
        }
        let mut rdns = Vec::new();
        let mut rdn = Vec::new();
        let mut chars = s.chars().peekable();
        loop {
            // attribute type
            let mut attr = String::new();
            while let Some(&c) = chars.peek() {
                if c == '=' {
                    break;
                }
                attr.push(c);
                chars.next();
            }
            if chars.next() != Some('=') {
                return Err(DnError("an RDN lacks '='"));
            }
            let attr = attr.trim().to_ascii_lowercase();
            if attr.is_empty() || !attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
                return Err(DnError("invalid attribute type in DN"));
            }
            // value
            let mut value = String::new();
            let mut raw_bytes: Vec<u8> = Vec::new();
            let mut end = None;
            let mut trailing_ws = 0usize;
            let flush = |raw: &mut Vec<u8>, value: &mut String| -> Result<(), DnError> {
                if !raw.is_empty() {
                    value.push_str(std::str::from_utf8(raw).map_err(|_| DnError("escaped bytes are not UTF-8"))?);
                    raw.clear();
                }
                Ok(())
            };
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        let Some(n) = chars.next() else { return Err(DnError("a DN ends in a lone backslash")) };
                        if n.is_ascii_hexdigit() {
                            let Some(m) = chars.next().filter(char::is_ascii_hexdigit) else {
                                return Err(DnError("invalid hex escape in DN"));
                            };
                            let byte = u8::from_str_radix(&format!("{n}{m}"), 16)
                                .map_err(|_| DnError("invalid hex escape in DN"))?;
                            raw_bytes.push(byte);
                        } else if ",+\"\\<>;=# ".contains(n) {
                            flush(&mut raw_bytes, &mut value)?;
                            value.push(n);
                        } else {
                            return Err(DnError("invalid escape in DN"));
                        }
                        trailing_ws = 0;
                    }
                    ',' | ';' | '+' => {
                        end = Some(c);
                        break;
                    }
                    '"' | '<' | '>' => return Err(DnError("unescaped special character in DN")),
                    c => {
                        flush(&mut raw_bytes, &mut value)?;
                        if c == ' ' && value.is_empty() {
                            continue; // leading space
                        }
                        trailing_ws = if c == ' ' { trailing_ws + 1 } else { 0 };
                        value.push(c);
                    }
                }
            }
            flush(&mut raw_bytes, &mut value)?;
            value.truncate(value.len() - trailing_ws);
            rdn.push(Ava { attr, value });
            match end {
                Some('+') => continue,
                Some(_) => {
                    rdns.push(std::mem::take(&mut rdn));
                    if chars.peek().is_none() {
                        return Err(DnError("a DN ends in a separator"));
                    }
                }
                None => {
                    rdns.push(std::mem::take(&mut rdn));
                    break;
                }
            }
        }
        Ok(Dn { rdns })
    }

    /// Whether this is the root (empty) DN.
    pub(crate) fn is_root(&self) -> bool {
        self.rdns.is_empty()
    }

    /// The normalized string: lower case, no optional spaces, values escaped.
    pub(crate) fn normalized(&self) -> String {
        self.rdns
            .iter()
            .map(|rdn| {
                rdn.iter()
                    .map(|a| format!("{}={}", a.attr, escape(&a.value.to_lowercase())))
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The single-valued RDN at `index` (0 = leaf), as (type, value).
    pub(crate) fn single(&self, index: usize) -> Option<(&str, &str)> {
        match self.rdns.get(index).map(Vec::as_slice) {
            Some([a]) => Some((a.attr.as_str(), a.value.as_str())),
            _ => None,
        }
    }
}

/// Normalizes a DN string for comparison; `None` if it does not parse.
pub(crate) fn normalize(s: &str) -> Option<String> {
    Dn::parse(s).ok().map(|d| d.normalized())
}

/// Escapes an attribute value for use in a DN string (RFC 4514 section 2.4).
pub(crate) fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_and_normalizes_with_spaces_case_and_escapes() {
        let dn = Dn::parse("UID=Alice , cn=Users,DC=corp,dc=example").unwrap();
        assert_eq!(dn.normalized(), "uid=alice,cn=users,dc=corp,dc=example");
        assert_eq!(dn.single(0), Some(("uid", "Alice")));
        let dn = Dn::parse(r"cn=a\,b\2Cc,dc=x").unwrap();
        assert_eq!(dn.single(0), Some(("cn", "a,b,c")));
        assert_eq!(dn.normalized(), r"cn=a\,b\,c,dc=x");
        assert!(Dn::parse("").unwrap().is_root());
    }

    #[test]
    fn refuses_malformed_dns() {
        for bad in ["uid", "=x", "cn=a,", "cn=a\\", "cn=a\\zz", "c n=a", "cn=\"q\"", "cn=\\ff"] {
            assert!(Dn::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn multi_valued_rdns_are_not_single() {
        let dn = Dn::parse("cn=a+uid=b,dc=x").unwrap();
        assert_eq!(dn.single(0), None);
        assert_eq!(dn.single(1), Some(("dc", "x")));
    }
}
