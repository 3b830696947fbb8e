//! RFC 4515 filter evaluation with RFC 4511's three-valued logic (a filter
//! on an unknown attribute, or with a matching rule the attribute lacks, is
//! Undefined; NOT of Undefined is Undefined). Values compare per the
//! attribute's syntax (see `schema::Syntax::normalize`).
//!
//! A request's filter is compiled once ([`Filter::compile`]): its size is
//! checked against the limits before anything else happens, attribute
//! names are resolved and assertion values normalized. Entries carry their
//! values normalized too, so one term on one entry costs a comparison per
//! value, and each evaluation is charged to the search's [`Budget`].

use ldap3_proto::proto::{LdapFilter, LdapResultCode};

use crate::Limits;
use crate::entry::Entry;
use crate::result::{LdapError, OpResult};
use crate::schema::{self, AttrDef, Syntax};
use crate::work::{Budget, Exhausted};

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

/// A filter within the limits, ready to evaluate.
#[derive(Debug)]
pub(crate) struct Filter {
    pub(crate) root: Node,
}

/// One node of a compiled filter.
#[derive(Debug)]
pub(crate) enum Node {
    /// Every one matches.
    And(Vec<Node>),
    /// Some one matches.
    Or(Vec<Node>),
    /// Negation.
    Not(Box<Node>),
    /// The same outcome on every entry (an unknown attribute, an
    /// unsupported extensible match).
    Const(Tri),
    /// The attribute is present.
    Present(&'static AttrDef),
    /// An assertion the attribute has no matching rule for: False where the
    /// attribute is absent, Undefined where it is present.
    NoRule(&'static AttrDef),
    /// Equality with a normalized value.
    Equality(&'static AttrDef, String),
    /// Approximate match: normalized, then only letters and digits.
    Approx(&'static AttrDef, String),
    /// `>=` (`ge`) or `<=`.
    Ordering {
        /// The attribute.
        def: &'static AttrDef,
        /// The normalized bound.
        target: Bound,
        /// `>=` rather than `<=`.
        ge: bool,
    },
    /// A substring match with normalized components.
    Substring(&'static AttrDef, Substrings),
}

/// The bound of an ordering match.
#[derive(Debug)]
pub(crate) enum Bound {
    /// Compared as normalized strings.
    Text(String),
    /// Compared as integers; `None` (not an integer) matches nothing.
    Integer(Option<i64>),
}

/// The normalized components of a substring assertion.
#[derive(Debug)]
pub(crate) struct Substrings {
    initial: Option<String>,
    any: Vec<String>,
    final_: Option<String>,
    /// Shortest value that could match (the components' total length).
    min_len: usize,
}

impl Filter {
    /// Checks `f` against the limits — nesting depth and number of terms —
    /// before looking at anything else, then compiles it.
    ///
    /// Every node counts as a term (AND, OR and NOT too, as each costs an
    /// evaluation on every entry), and a substring assertion counts one per
    /// component.
    pub(crate) fn compile(f: &LdapFilter, limits: &Limits) -> OpResult<Self> {
        let mut terms = 0;
        size(f, 1, limits, &mut terms)?;
        Ok(Self { root: node(f) })
    }

    /// Evaluates the filter on `e`, charging `budget`.
    pub(crate) fn eval(&self, e: &Entry, budget: &mut Budget) -> Result<Tri, Exhausted> {
        self.root.eval(e, budget)
    }
}

/// Walks `f` at `depth`, adding its terms to `terms`; stops at the first limit passed.
fn size(f: &LdapFilter, depth: usize, limits: &Limits, terms: &mut usize) -> OpResult<()> {
    if depth > limits.max_filter_depth {
        return Err(LdapError::new(
            LdapResultCode::AdminLimitExceeded,
            format!("the filter is nested deeper than {} levels", limits.max_filter_depth),
        ));
    }
    *terms += match f {
        LdapFilter::Substring(_, s) => {
            (usize::from(s.initial.is_some()) + s.any.len() + usize::from(s.final_.is_some())).max(1)
        }
        _ => 1,
    };
    if *terms > limits.max_filter_terms {
        return Err(LdapError::new(
            LdapResultCode::AdminLimitExceeded,
            format!(
                "the filter has more than {} terms (AND, OR, NOT, assertions and substring components \
                 all count); split the search",
                limits.max_filter_terms
            ),
        ));
    }
    match f {
        LdapFilter::And(v) | LdapFilter::Or(v) => v.iter().try_for_each(|x| size(x, depth + 1, limits, terms)),
        LdapFilter::Not(x) => size(x, depth + 1, limits, terms),
        _ => Ok(()),
    }
}

/// The attribute an assertion compares, or the constant outcome when it
/// cannot compare: Undefined for an unknown attribute and for one whose
/// values are never compared (userPassword, certificates).
fn comparable(attr: &str) -> Result<&'static AttrDef, Node> {
    match schema::attr(attr) {
        Some(def) if def.syntax.comparable() => Ok(def),
        _ => Err(Node::Const(Tri::Undefined)),
    }
}

fn node(f: &LdapFilter) -> Node {
    let compiled = match f {
        LdapFilter::And(v) => return Node::And(v.iter().map(node).collect()),
        LdapFilter::Or(v) => return Node::Or(v.iter().map(node).collect()),
        LdapFilter::Not(x) => return Node::Not(Box::new(node(x))),
        LdapFilter::Present(a) => return schema::attr(a).map_or(Node::Const(Tri::False), Node::Present),
        // Extensible matching (`:dn:`, explicit rules) is not implemented.
        LdapFilter::Extensible(_) => return Node::Const(Tri::Undefined),
        LdapFilter::Equality(a, v) => comparable(a).map(|def| Node::Equality(def, def.syntax.normalize(v))),
        LdapFilter::Approx(a, v) => comparable(a).map(|def| Node::Approx(def, squash(&def.syntax.normalize(v)))),
        LdapFilter::GreaterOrEqual(a, v) => comparable(a).map(|def| ordering(def, v, true)),
        LdapFilter::LessOrEqual(a, v) => comparable(a).map(|def| ordering(def, v, false)),
        LdapFilter::Substring(a, sub) => comparable(a).map(|def| {
            if !def.syntax.has_substrings() {
                return Node::NoRule(def);
            }
            let norm = |s: &String| def.syntax.normalize(s);
            let initial = sub.initial.as_ref().map(norm);
            let any: Vec<String> = sub.any.iter().map(norm).collect();
            let final_ = sub.final_.as_ref().map(norm);
            let min_len = initial.iter().chain(&any).chain(&final_).map(String::len).sum();
            Node::Substring(def, Substrings { initial, any, final_, min_len })
        }),
    };
    compiled.unwrap_or_else(|constant| constant)
}

fn ordering(def: &'static AttrDef, v: &str, ge: bool) -> Node {
    if !def.syntax.has_ordering() {
        return Node::NoRule(def);
    }
    let v = def.syntax.normalize(v);
    let target = if def.syntax == Syntax::Integer { Bound::Integer(v.parse().ok()) } else { Bound::Text(v) };
    Node::Ordering { def, target, ge }
}

/// The approximate form of a normalized value: its letters and digits.
fn squash(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).collect()
}

/// Steps charged per this many bytes a comparison scans.
const BYTES_PER_STEP: u64 = 64;

fn scan_cost(bytes: usize) -> u64 {
    1 + u64::try_from(bytes).unwrap_or(u64::MAX) / BYTES_PER_STEP
}

impl Node {
    /// Evaluates the node on `e`: one step for the node, and for an
    /// assertion one more per value compared (plus the bytes scanned).
    fn eval(&self, e: &Entry, b: &mut Budget) -> Result<Tri, Exhausted> {
        b.charge(1)?;
        let values = |def: &AttrDef| e.normalized(def);
        Ok(match self {
            Node::And(v) => {
                let mut out = Tri::True;
                for x in v {
                    match x.eval(e, b)? {
                        Tri::False => return Ok(Tri::False),
                        Tri::Undefined => out = Tri::Undefined,
                        Tri::True => {}
                    }
                }
                out
            }
            Node::Or(v) => {
                let mut out = Tri::False;
                for x in v {
                    match x.eval(e, b)? {
                        Tri::True => return Ok(Tri::True),
                        Tri::Undefined => out = Tri::Undefined,
                        Tri::False => {}
                    }
                }
                out
            }
            Node::Not(x) => match x.eval(e, b)? {
                Tri::True => Tri::False,
                Tri::False => Tri::True,
                Tri::Undefined => Tri::Undefined,
            },
            Node::Const(t) => *t,
            Node::Present(def) => e.has(def).into(),
            Node::NoRule(def) => {
                if values(def).is_some() {
                    Tri::Undefined
                } else {
                    Tri::False
                }
            }
            Node::Equality(def, want) => match values(def) {
                None => Tri::False,
                Some(vs) => {
                    b.charge(vs.len() as u64)?;
                    vs.iter().any(|v| v == want).into()
                }
            },
            Node::Approx(def, want) => match values(def) {
                None => Tri::False,
                Some(vs) => {
                    for v in vs {
                        b.charge(scan_cost(v.len()))?;
                        if squash(v) == *want {
                            return Ok(Tri::True);
                        }
                    }
                    Tri::False
                }
            },
            Node::Ordering { def, target, ge } => match values(def) {
                None => Tri::False,
                Some(vs) => {
                    b.charge(vs.len() as u64)?;
                    vs.iter()
                        .any(|v| {
                            let ord = match target {
                                Bound::Text(t) => v.as_str().cmp(t.as_str()),
                                Bound::Integer(t) => match (v.parse::<i64>(), t) {
                                    (Ok(a), Some(b)) => a.cmp(b),
                                    _ => return false,
                                },
                            };
                            if *ge { ord.is_ge() } else { ord.is_le() }
                        })
                        .into()
                }
            },
            Node::Substring(def, sub) => match values(def) {
                None => Tri::False,
                Some(vs) => {
                    for v in vs {
                        // A value shorter than the components cannot hold them.
                        if v.len() < sub.min_len {
                            b.charge(1)?;
                        } else {
                            b.charge(scan_cost(v.len() + sub.min_len))?;
                            if sub.matches(v) {
                                return Ok(Tri::True);
                            }
                        }
                    }
                    Tri::False
                }
            },
        })
    }
}

impl Substrings {
    /// Whether the normalized `value` matches.
    fn matches(&self, value: &str) -> bool {
        let mut rest = value;
        if let Some(initial) = &self.initial {
            match rest.strip_prefix(initial.as_str()) {
                Some(r) => rest = r,
                None => return false,
            }
        }
        for any in &self.any {
            match rest.find(any.as_str()) {
                Some(i) => rest = &rest[i + any.len()..],
                None => return false,
            }
        }
        match &self.final_ {
            Some(fin) => rest.ends_with(fin.as_str()),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use ldap3_proto::parse_ldap_filter_str;
    use ldap3_proto::proto::LdapSubstringFilter;

    use std::time::{Duration, Instant};

    use super::*;
    use crate::entry::{root_dse, tenant_entries};

    fn budget() -> Budget {
        Budget::new(u64::MAX, Instant::now() + Duration::from_secs(60))
    }

    fn eval(f: &LdapFilter, e: &Entry) -> Tri {
        Filter::compile(f, &Limits::default()).unwrap().eval(e, &mut budget()).unwrap()
    }

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

    fn or_of(n: usize) -> LdapFilter {
        LdapFilter::Or((0..n).map(|i| LdapFilter::Equality("entryDN".into(), format!("cn=g{i},dc=x"))).collect())
    }

    fn refusal(f: &LdapFilter) -> Option<String> {
        Filter::compile(f, &Limits::default()).err().map(|e| {
            assert_eq!(e.code, LdapResultCode::AdminLimitExceeded);
            e.message
        })
    }

    #[test]
    fn filters_past_the_term_limit_are_refused_counting_every_node() {
        assert_eq!(refusal(&or_of(511)), None, "512 terms with the OR");
        let message = refusal(&or_of(512)).unwrap();
        assert!(message.contains("more than 512 terms"), "{message}");
        assert!(refusal(&or_of(8000)).is_some());
        // Spread over nested ANDs, ORs and NOTs, they add up across the tree.
        let nested = |n| LdapFilter::And((0..n).map(|_| LdapFilter::Not(Box::new(or_of(6)))).collect());
        assert_eq!(refusal(&nested(63)), None, "1 + 63 * 8 = 505");
        assert!(refusal(&nested(64)).is_some(), "1 + 64 * 8 = 513");
        // Each substring component is a term of its own.
        let sub = |any: usize| {
            LdapFilter::Substring(
                "cn".into(),
                LdapSubstringFilter { initial: Some("a".into()), any: vec!["b".into(); any], final_: Some("c".into()) },
            )
        };
        assert_eq!(refusal(&sub(510)), None);
        assert!(refusal(&sub(511)).is_some());
    }

    #[test]
    fn filters_past_the_depth_limit_are_refused() {
        let mut f = LdapFilter::Present("objectClass".into());
        for _ in 0..63 {
            f = LdapFilter::Not(Box::new(f));
        }
        assert_eq!(refusal(&f), None, "64 levels");
        let message = refusal(&LdapFilter::Not(Box::new(f))).unwrap();
        assert!(message.contains("deeper than 64"), "{message}");
    }

    #[test]
    fn evaluation_is_charged_per_term_and_value_and_stops_when_the_budget_ends() {
        let f = Filter::compile(&or_of(100), &Limits::default()).unwrap();
        let mut b = Budget::new(u64::MAX, Instant::now() + Duration::from_secs(60));
        let mut tight = Budget::new(150, Instant::now() + Duration::from_secs(60));
        assert_eq!(f.eval(&alice(), &mut b), Ok(Tri::False));
        // The OR, then 100 terms of 1 step plus 1 per entryDN value.
        assert_eq!(f.eval(&alice(), &mut tight), Err(Exhausted::Work));
        let mut enough = Budget::new(201, Instant::now() + Duration::from_secs(60));
        assert_eq!(f.eval(&alice(), &mut enough), Ok(Tri::False));
        assert_eq!(enough.charge(1), Err(Exhausted::Work), "exactly 201 steps");
    }

    #[test]
    fn a_long_substring_costs_in_proportion_to_the_bytes_it_scans() {
        let long = "x".repeat(64 * 100);
        let f = |initial: &str| {
            let sub = LdapSubstringFilter { initial: Some(initial.into()), any: vec![], final_: None };
            Filter::compile(&LdapFilter::Substring("cn".into(), sub), &Limits::default()).unwrap()
        };
        let mut e = alice();
        // Longer than alice's cn: one step for the node, one for the value.
        let mut b = Budget::new(2, Instant::now() + Duration::from_secs(60));
        assert_eq!(f(&long).eval(&e, &mut b), Ok(Tri::False));
        e = e.replaced("cn", vec![long.clone()]);
        let mut b = Budget::new(100, Instant::now() + Duration::from_secs(60));
        assert_eq!(f(&long).eval(&e, &mut b), Err(Exhausted::Work), "a 6,400-byte scan costs more than 100 steps");
        assert_eq!(f(&long).eval(&e, &mut budget()), Ok(Tri::True));
    }
}
