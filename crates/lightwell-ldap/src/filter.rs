//! RFC 4515 filter evaluation with RFC 4511's three-valued logic (a filter
//! on an unknown attribute, or with a matching rule the attribute lacks, is
//! Undefined; NOT of Undefined is Undefined). Values compare per the
//! attribute's syntax (see `schema::Syntax::normalize`).

use ldap3_proto::proto::{LdapFilter, LdapSubstringFilter};

use crate::entry::Entry;
use crate::schema::{self, AttrDef, Syntax};

/// The outcome of a filter on an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tri {
    /// Matches.
    True,
    /// Does not match.
    False,
    /// Cannot be decided; does not match.
    Undefined,
}

impl From<bool> for Tri {
    fn from(b: bool) -> Self {
        if b { Tri::True } else { Tri::False }
    }
}

/// Nesting depth of a filter (a leaf is 1), stopping early past `limit`.
pub(crate) fn depth(f: &LdapFilter, limit: usize) -> usize {
    fn walk(f: &LdapFilter, d: usize, limit: usize) -> usize {
        if d > limit {
            return d;
        }
        match f {
            LdapFilter::And(v) | LdapFilter::Or(v) => v.iter().map(|x| walk(x, d + 1, limit)).max().unwrap_or(d),
            LdapFilter::Not(x) => walk(x, d + 1, limit),
            _ => d,
        }
    }
    walk(f, 1, limit)
}

/// Evaluates `f` against `e`.
pub(crate) fn eval(f: &LdapFilter, e: &Entry) -> Tri {
    match f {
        LdapFilter::And(v) => {
            let mut out = Tri::True;
            for x in v {
                match eval(x, e) {
                    Tri::False => return Tri::False,
                    Tri::Undefined => out = Tri::Undefined,
                    Tri::True => {}
                }
            }
            out
        }
        LdapFilter::Or(v) => {
            let mut out = Tri::False;
            for x in v {
                match eval(x, e) {
                    Tri::True => return Tri::True,
                    Tri::Undefined => out = Tri::Undefined,
                    Tri::False => {}
                }
            }
            out
        }
        LdapFilter::Not(x) => match eval(x, e) {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Undefined => Tri::Undefined,
        },
        LdapFilter::Present(a) => match schema::attr(a) {
            Some(def) => e.has(def).into(),
            None => Tri::False,
        },
        LdapFilter::Equality(a, v) => compare(e, a, |def, stored| {
            let want = def.syntax.normalize(v);
            Some(stored.iter().any(|s| def.syntax.normalize(s) == want))
        }),
        LdapFilter::Approx(a, v) => compare(e, a, |def, stored| {
            let squash = |s: &str| def.syntax.normalize(s).chars().filter(|c| c.is_alphanumeric()).collect::<String>();
            let want = squash(v);
            Some(stored.iter().any(|s| squash(s) == want))
        }),
        LdapFilter::GreaterOrEqual(a, v) => ordering(e, a, v, |o| o.is_ge()),
        LdapFilter::LessOrEqual(a, v) => ordering(e, a, v, |o| o.is_le()),
        LdapFilter::Substring(a, sub) => compare(e, a, |def, stored| {
            def.syntax.has_substrings().then(|| stored.iter().any(|s| substring_match(def.syntax, s, sub)))
        }),
        // Extensible matching (`:dn:`, explicit rules) is not implemented.
        LdapFilter::Extensible(_) => Tri::Undefined,
    }
}

/// Runs `test` on the entry's values of `attr`; an unknown attribute or a
/// test that returns `None` (rule not defined) is Undefined, an absent one False.
fn compare(e: &Entry, attr: &str, test: impl Fn(&AttrDef, &[String]) -> Option<bool>) -> Tri {
    let Some(def) = schema::attr(attr) else { return Tri::Undefined };
    if !def.syntax.comparable() {
        return Tri::Undefined;
    }
    match e.get(def) {
        None => Tri::False,
        Some(values) => test(def, values).map_or(Tri::Undefined, Tri::from),
    }
}

fn ordering(e: &Entry, attr: &str, v: &str, want: impl Fn(std::cmp::Ordering) -> bool) -> Tri {
    compare(e, attr, |def, stored| {
        if !def.syntax.has_ordering() {
            return None;
        }
        let target = def.syntax.normalize(v);
        Some(stored.iter().any(|s| {
            let s = def.syntax.normalize(s);
            let ord = if def.syntax == Syntax::Integer {
                match (s.parse::<i64>(), target.parse::<i64>()) {
                    (Ok(a), Ok(b)) => a.cmp(&b),
                    _ => return false,
                }
            } else {
                s.as_str().cmp(target.as_str())
            };
            want(ord)
        }))
    })
}

fn substring_match(syntax: Syntax, value: &str, sub: &LdapSubstringFilter) -> bool {
    let value = syntax.normalize(value);
    let mut rest = value.as_str();
    if let Some(initial) = &sub.initial {
        let initial = syntax.normalize(initial);
        match rest.strip_prefix(initial.as_str()) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    for any in &sub.any {
        let any = syntax.normalize(any);
        match rest.find(any.as_str()) {
            Some(i) => rest = &rest[i + any.len()..],
            None => return false,
        }
    }
    match &sub.final_ {
        Some(fin) => rest.ends_with(syntax.normalize(fin).as_str()),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use ldap3_proto::parse_ldap_filter_str;

    use super::*;
    use crate::entry::{root_dse, tenant_entries};

    fn alice() -> Entry {
        let snap = crate::testdata::snapshot();
        tenant_entries(&snap).into_iter().find(|e| e.dn.starts_with("uid=alice")).unwrap()
    }

    fn check(filter: &str) -> Tri {
        eval(&parse_ldap_filter_str(filter).unwrap(), &alice())
    }

    #[test]
    fn equality_substrings_and_presence_ignore_case_where_the_syntax_does() {
        assert_eq!(check("(uid=ALICE)"), Tri::True);
        assert_eq!(check("(mail=Alice@Corp.Example)"), Tri::True);
        assert_eq!(check("(cn=al*)"), Tri::True);
        assert_eq!(check("(cn=*LI*e)"), Tri::True);
        assert_eq!(check("(cn=*x*)"), Tri::False);
        let spaced = LdapFilter::Equality("displayName".into(), "alice   LIDDELL ".into());
        assert_eq!(eval(&spaced, &alice()), Tri::True, "spaces collapse");
        assert_eq!(check("(objectClass=inetorgperson)"), Tri::True);
        assert_eq!(check("(mail=*)"), Tri::True);
        assert_eq!(check("(member=*)"), Tri::False);
    }

    #[test]
    fn memberof_compares_as_a_dn_and_includes_nested_groups() {
        let spaced = LdapFilter::Equality("memberOf".into(), "CN=engineers, cn=groups,dc=corp,dc=example".into());
        assert_eq!(eval(&spaced, &alice()), Tri::True);
        // (ldap3_proto's string parser refuses '=' in values; wire filters carry them fine.)
        let member_of =
            |g: &str| LdapFilter::Equality("memberOf".into(), format!("cn={g},cn=Groups,dc=corp,dc=example"));
        assert_eq!(eval(&member_of("CAAdmins"), &alice()), Tri::True, "nested");
        assert_eq!(eval(&member_of("Administrators"), &alice()), Tri::False);
    }

    #[test]
    fn boolean_logic_is_three_valued() {
        assert_eq!(check("(&(uid=alice)(|(cn=bob)(mail=alice@corp.example)))"), Tri::True);
        assert_eq!(check("(!(uid=alice))"), Tri::False);
        assert_eq!(check("(nonesuch=1)"), Tri::Undefined);
        assert_eq!(check("(!(nonesuch=1))"), Tri::Undefined);
        assert_eq!(check("(|(nonesuch=1)(uid=alice))"), Tri::True);
        assert_eq!(check("(&(nonesuch=1)(uid=bob))"), Tri::False);
        assert_eq!(check("(member>=a)"), Tri::False, "absent attribute");
        assert_eq!(check("(memberOf>=a)"), Tri::Undefined, "DNs have no ordering");
    }

    #[test]
    fn ordering_and_approximate_matches() {
        assert_eq!(check("(createTimestamp>=20200101000000Z)"), Tri::True);
        assert_eq!(check("(createTimestamp<=20200101000000Z)"), Tri::False);
        assert_eq!(check("(cn>=a)"), Tri::True);
        assert_eq!(check("(displayName~=Alice-Liddell)"), Tri::True);
        let dse = root_dse(vec![]);
        assert_eq!(eval(&parse_ldap_filter_str("(supportedLDAPVersion>=3)").unwrap(), &dse), Tri::True);
    }

    #[test]
    fn depth_counts_nesting() {
        let f = parse_ldap_filter_str("(&(a=1)(!(|(b=2)(c=3))))").unwrap();
        assert_eq!(depth(&f, 64), 4);
    }
}
