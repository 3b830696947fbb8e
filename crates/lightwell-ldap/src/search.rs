//! Search and compare: what the caller may see, scopes, filters, attribute
//! selection, size and time limits and paged results (RFC 2696).
//!
//! A search is checked against the filter limits before anything else,
//! then matched and projected as a [`Job`] under a work budget and the time
//! limit; over a tenant's tree, within the principal's bound on searches in
//! flight and, unless it is small, on a search worker (see `work.rs`).
//!
//! Visibility: anonymous sees the root DSE only. A bound principal sees the
//! root DSE (naming only its own tenant), the subschema entry and its own
//! tenant's tree, read from one service-layer snapshot (which checks the
//! permission). Any other tenant's names answer `noSuchObject`, exactly like
//! names that do not exist.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapCompareRequest, LdapOp, LdapPartialAttribute, LdapResult, LdapResultCode, LdapSearchRequest,
    LdapSearchResultEntry, LdapSearchScope,
};
use lightwell_core::authz::Actor;

use crate::cache::TenantTree;
use crate::dn::Dn;
use crate::entry::{self, Entry};
use crate::filter::{Filter, Node, Tri};
use crate::result::{LdapError, OpResult, success};
use crate::schema::{self, AttrDef};
use crate::session::Session;
use crate::tree::{self, Location};
use crate::work::{Budget, Exhausted, INLINE_STEPS};

/// Paged searches remembered per connection; the oldest is forgotten first.
const MAX_PAGED_SEARCHES: usize = 8;

/// A paged search in progress.
#[derive(Debug)]
struct PageState {
    cookie: Vec<u8>,
    /// The search it continues (base, scope, filter, attributes).
    key: String,
    /// Entries already returned.
    offset: usize,
}

/// The connection's paged searches.
#[derive(Debug, Default)]
pub(crate) struct Paging {
    states: VecDeque<PageState>,
}

/// Entries the caller may see around a base DN.
#[derive(Debug)]
pub(crate) struct View {
    /// Entries outside a tenant's tree (the root DSE, the subschema entry);
    /// they come first.
    head: Vec<Entry>,
    /// The caller's tenant tree, when the request reaches into it.
    tree: Option<Arc<TenantTree>>,
    /// Index of the base entry (counting `head` first, then the tree).
    pub(crate) base: usize,
    /// The principal reading (tenant id and principal id), for the bound
    /// on searches in flight; always set with `tree`.
    reader: Option<String>,
}

impl View {
    fn len(&self) -> usize {
        self.head.len() + self.tree.as_ref().map_or(0, |t| t.entries.len())
    }

    /// The `i`th entry, parents before children.
    pub(crate) fn entry(&self, i: usize) -> &Entry {
        match (i.checked_sub(self.head.len()), &self.tree) {
            (Some(j), Some(t)) => &t.entries[j],
            _ => &self.head[i],
        }
    }

    /// The base entry.
    pub(crate) fn base_entry(&self) -> &Entry {
        self.entry(self.base)
    }

    /// Entries that may match `f`, ascending: the tree's index when it
    /// answers the filter, otherwise every entry.
    fn candidates(&self, f: &Node, budget: &mut Budget) -> Result<Vec<usize>, Exhausted> {
        let n = self.head.len();
        let found = match &self.tree {
            Some(t) => t.candidates(f, budget)?,
            None => None,
        };
        Ok(match found {
            Some(found) => (0..n).chain(found.into_iter().map(|j| j + n)).collect(),
            None => (0..self.len()).collect(),
        })
    }
}

/// Resolves `dn` to the entries visible to the connection's caller.
/// `below`: whether entries below the base are wanted; without them the
/// root DSE is read alone. Anything in a tenant is read from its tree.
pub(crate) async fn view(s: &mut Session, dn: &Dn, below: bool) -> OpResult<View> {
    let location = tree::locate(dn).ok_or_else(|| LdapError::no_such_object(""))?;
    let (actor, version) = s.checked_actor().await?;
    if actor.is_none() && location != Location::RootDse {
        return Err(crate::session::anonymous());
    }
    let (tenant, reader) = match &actor {
        Some(Actor::Principal(p)) => (Some(p.tenant.clone()), Some(format!("{}/{}", p.tenant_id.as_str(), p.id))),
        _ => (None, None),
    };
    match location {
        Location::RootDse => {
            let head = vec![entry::root_dse(tenant.iter().map(|t| tree::base_dn(t)).collect())];
            let tree = match (below, &actor, &tenant) {
                (true, Some(actor), Some(t)) => Some(s.cache().tree(&s.service, actor, t, version).await?),
                _ => None,
            };
            Ok(View { head, tree, base: 0, reader })
        }
        Location::Subschema => Ok(View { head: vec![entry::subschema()], tree: None, base: 0, reader }),
        ref other => {
            let (Some(actor), Some(t)) = (&actor, &tenant) else { return Err(LdapError::no_such_object("")) };
            if other.tenant() != Some(t.as_str()) {
                return Err(LdapError::no_such_object(""));
            }
            let tree = s.cache().tree(&s.service, actor, t, version).await?;
            match tree.find(&dn.normalized()) {
                Some(base) => Ok(View { head: vec![], tree: Some(tree), base, reader }),
                None => Err(LdapError::no_such_object(matched(&tree, dn))),
            }
        }
    }
}

/// The DN of the closest existing ancestor of `dn`.
fn matched(tree: &TenantTree, dn: &Dn) -> String {
    (1..dn.rdns.len())
        .find_map(|i| tree.find(&Dn { rdns: dn.rdns[i..].to_vec() }.normalized()))
        .map(|i| tree.entries[i].dn.clone())
        .unwrap_or_default()
}

/// Whether entry `i` is in the scope of the search; `suffix` is `,` and
/// the base's normalized DN.
fn in_scope(view: &View, i: usize, scope: &LdapSearchScope, suffix: &str) -> bool {
    let base = view.base_entry();
    let e = view.entry(i);
    match scope {
        LdapSearchScope::Base => i == view.base,
        LdapSearchScope::OneLevel => e.parent.as_deref() == Some(base.norm.as_str()),
        // The root DSE is not part of any subtree (RFC 4512 section 5.1).
        LdapSearchScope::Subtree | LdapSearchScope::Children if base.norm.is_empty() && base.parent.is_none() => {
            e.parent.is_some()
        }
        LdapSearchScope::Subtree => i == view.base || e.norm.ends_with(suffix),
        LdapSearchScope::Children => e.norm.ends_with(suffix),
    }
}

/// Which attributes to return.
#[derive(Debug, Default)]
struct Selection {
    user: bool,
    operational: bool,
    named: Vec<&'static AttrDef>,
}

impl Selection {
    fn new(attrs: &[String]) -> Self {
        let mut sel = Selection { user: attrs.is_empty(), ..Default::default() };
        for a in attrs {
            match a.as_str() {
                "*" => sel.user = true,
                "+" => sel.operational = true,
                "1.1" => {}
                name => sel.named.extend(schema::attr(name)),
            }
        }
        sel
    }

    fn wants(&self, def: &AttrDef) -> bool {
        (if def.operational { self.operational } else { self.user }) || self.named.iter().any(|n| std::ptr::eq(*n, def))
    }

    fn project(&self, e: &Entry, types_only: bool) -> LdapSearchResultEntry {
        let text = e.attrs.iter().filter(|(def, _)| self.wants(def)).map(|(def, values)| LdapPartialAttribute {
            atype: def.name.to_string(),
            vals: if types_only { vec![] } else { values.iter().map(|v| v.as_bytes().to_vec()).collect() },
        });
        // Certificates and CRLs travel with the `;binary` transfer option (RFC 4522).
        let binary = e.binary.iter().filter(|(def, _)| self.wants(def)).map(|(def, values)| LdapPartialAttribute {
            atype: format!("{};binary", def.name),
            vals: if types_only { vec![] } else { values.clone() },
        });
        LdapSearchResultEntry { dn: e.dn.clone(), attributes: text.chain(binary).collect() }
    }
}

/// Runs a search; returns the responses (entries, then the done message)
/// and the controls for the done message.
pub(crate) async fn search(
    s: &mut Session,
    req: LdapSearchRequest,
    ctrl: &[LdapControl],
) -> (Vec<LdapOp>, Vec<LdapControl>) {
    match run(s, &req, ctrl).await {
        Ok((entries, result, controls)) => {
            let mut out: Vec<LdapOp> = entries.into_iter().map(LdapOp::SearchResultEntry).collect();
            out.push(LdapOp::SearchResultDone(result));
            (out, controls)
        }
        Err(e) => (vec![LdapOp::SearchResultDone(e.into_result())], vec![]),
    }
}

/// Which of the matches to return.
#[derive(Debug, Clone, Copy)]
enum Window {
    /// A page: `size` matches from `offset` (size 0 ends the paged search).
    Page { offset: usize, size: usize },
    /// At most `limit`; more is `sizeLimitExceeded`.
    Limit(usize),
}

/// The CPU-bound part of a search: matching and building the entries.
#[derive(Debug)]
struct Job {
    view: View,
    filter: Filter,
    scope: LdapSearchScope,
    selection: Selection,
    types_only: bool,
    window: Window,
}

/// What a job found.
#[derive(Debug)]
struct Found {
    /// The entries to return.
    entries: Vec<LdapSearchResultEntry>,
    /// How many entries matched.
    total: usize,
    /// The index (among the matches) after the last entry returned.
    end: usize,
    /// Matches beyond the size limit were left out.
    truncated: bool,
}

impl Job {
    /// Matches and projects, charging every step to `budget`.
    fn execute(&self, budget: &mut Budget) -> Result<Found, Exhausted> {
        let view = &self.view;
        let suffix = format!(",{}", view.base_entry().norm);
        let mut matches = Vec::new();
        for i in view.candidates(&self.filter.root, budget)? {
            budget.charge(1)?;
            if in_scope(view, i, &self.scope, &suffix) && self.filter.eval(view.entry(i), budget)? == Tri::True {
                matches.push(i);
            }
        }
        let total = matches.len();
        let (range, truncated) = match self.window {
            Window::Page { size: 0, .. } => (0..0, false),
            Window::Page { offset, size } => {
                let end = offset.saturating_add(size).min(total);
                (offset.min(end)..end, false)
            }
            Window::Limit(limit) if total > limit => (0..limit, true),
            Window::Limit(_) => (0..total, false),
        };
        let end = range.end;
        let mut entries = Vec::with_capacity(range.len());
        for &i in &matches[range] {
            let e = view.entry(i);
            budget.charge(1 + (e.attrs.len() + e.binary.len()) as u64)?;
            entries.push(self.selection.project(e, self.types_only));
        }
        Ok(Found { entries, total, end, truncated })
    }
}

async fn run(
    s: &mut Session,
    req: &LdapSearchRequest,
    ctrl: &[LdapControl],
) -> OpResult<(Vec<LdapSearchResultEntry>, LdapResult, Vec<LdapControl>)> {
    let limits = s.config.limits;
    // First of all: a filter past the limits is refused before any work.
    let filter = Filter::compile(&req.filter, &limits)?;
    let client_time = u64::try_from(req.timelimit).ok().filter(|t| *t > 0).map(Duration::from_secs);
    let time = client_time.map_or(limits.max_time, |t| t.min(limits.max_time));
    let deadline = Instant::now() + time;
    let base = Dn::parse(&req.base).map_err(|e| LdapError::new(LdapResultCode::InvalidDNSyntax, e.to_string()))?;
    let below = req.scope != LdapSearchScope::Base;
    let view = match tokio::time::timeout_at(deadline.into(), view(s, &base, below)).await {
        Ok(v) => v?,
        Err(_) => return Err(Exhausted::Time.into()),
    };

    let paged = ctrl.iter().find_map(|c| match c {
        LdapControl::SimplePagedResults { size, cookie } => Some((*size, cookie.clone())),
        _ => None,
    });
    let mut page_key = None;
    let window = match paged {
        Some((size, cookie)) => {
            let key =
                format!("{}|{:?}|{:?}|{}|{:?}", base.normalized(), req.scope, req.filter, req.typesonly, req.attrs);
            let offset = if cookie.is_empty() {
                0
            } else {
                let pos = s.paging.states.iter().position(|p| p.cookie == cookie && p.key == key).ok_or_else(|| {
                    LdapError::new(LdapResultCode::ProtocolError, "the paged results cookie is invalid")
                })?;
                s.paging.states.remove(pos).map_or(0, |p| p.offset)
            };
            page_key = Some(key);
            Window::Page { offset, size: usize::try_from(size).unwrap_or(0).min(limits.max_entries) }
        }
        None => {
            let client = usize::try_from(req.sizelimit).ok().filter(|n| *n > 0);
            Window::Limit(client.map_or(limits.max_entries, |n| n.min(limits.max_entries)))
        }
    };
    let job = Job {
        filter,
        scope: req.scope.clone(),
        selection: Selection::new(&req.attrs),
        types_only: req.typesonly,
        window,
        view,
    };
    let found = match job.view.reader.clone() {
        // A principal's search: within its bound, on a worker unless small.
        Some(reader) => {
            let work = limits.max_search_work;
            s.cache()
                .gate()
                .run(&reader, limits.max_searches_per_principal, work, deadline, move |b| job.execute(b))
                .await?
        }
        // Anonymous (or the operator): the root DSE alone, never more than
        // the work a search may do on the connection's task.
        None => job.execute(&mut Budget::new(limits.max_search_work.min(INLINE_STEPS), deadline))?,
    };

    let result = if found.truncated {
        LdapError::new(LdapResultCode::SizeLimitExceeded, "size limit exceeded").into_result()
    } else {
        success()
    };
    let controls = match (window, page_key) {
        (Window::Page { size, .. }, Some(key)) => {
            let mut next_cookie = Vec::new();
            if size > 0 && found.end < found.total {
                next_cookie = uuid::Uuid::new_v4().as_bytes().to_vec();
                if s.paging.states.len() >= MAX_PAGED_SEARCHES {
                    s.paging.states.pop_front();
                }
                s.paging.states.push_back(PageState { cookie: next_cookie.clone(), key, offset: found.end });
            }
            let total = i64::try_from(found.total).unwrap_or(i64::MAX);
            vec![LdapControl::SimplePagedResults { size: total, cookie: next_cookie }]
        }
        _ => vec![],
    };
    Ok((found.entries, result, controls))
}

/// Handles a compare request.
pub(crate) async fn compare(s: &mut Session, req: LdapCompareRequest) -> LdapResult {
    let run = async {
        let dn = Dn::parse(&req.dn).map_err(|e| LdapError::new(LdapResultCode::InvalidDNSyntax, e.to_string()))?;
        let view = view(s, &dn, false).await?;
        let def = schema::attr(&req.atype)
            .ok_or_else(|| LdapError::new(LdapResultCode::UndefinedAttributeType, "unknown attribute type"))?;
        if !def.syntax.comparable() {
            return Err(LdapError::new(LdapResultCode::InappropriateMatching, "the attribute cannot be compared"));
        }
        let value = String::from_utf8(req.val.clone())
            .map_err(|_| LdapError::new(LdapResultCode::InvalidAttributeSyntax, "the value is not UTF-8"))?;
        let want = def.syntax.normalize(&value);
        let found = view
            .base_entry()
            .get(def)
            .ok_or_else(|| LdapError::new(LdapResultCode::NoSuchAttribute, "the entry has no such attribute"))?
            .iter()
            .any(|v| def.syntax.normalize(v) == want);
        Ok(found)
    };
    match run.await {
        Ok(true) => LdapResult { code: LdapResultCode::CompareTrue, ..success() },
        Ok(false) => LdapResult { code: LdapResultCode::CompareFalse, ..success() },
        Err(e) => e.into_result(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use ldap3_proto::proto::{LdapFilter, LdapSubstringFilter};

    use super::*;

    fn view_at(dn: &str) -> View {
        let tree = TenantTree::build(&crate::testdata::snapshot());
        let base = tree.find(&crate::dn::normalize(dn).unwrap_or_default()).unwrap_or(0);
        View { head: vec![], tree: Some(Arc::new(tree)), base, reader: None }
    }

    fn scoped(v: &View, scope: LdapSearchScope) -> Vec<&str> {
        let suffix = format!(",{}", v.base_entry().norm);
        (0..v.len()).filter(|&i| in_scope(v, i, &scope, &suffix)).map(|i| v.entry(i).dn.as_str()).collect()
    }

    #[test]
    fn scopes_select_the_base_its_children_or_its_subtree() {
        let v = view_at("cn=Users,dc=corp,dc=example");
        assert_eq!(scoped(&v, LdapSearchScope::Base), ["cn=Users,dc=corp,dc=example"]);
        assert_eq!(
            scoped(&v, LdapSearchScope::OneLevel),
            ["uid=alice,cn=Users,dc=corp,dc=example", "uid=bob,cn=Users,dc=corp,dc=example"]
        );
        assert_eq!(scoped(&v, LdapSearchScope::Subtree).len(), 3);
        assert_eq!(scoped(&v, LdapSearchScope::Children).len(), 2);
        let all = view_at("dc=corp,dc=example");
        assert_eq!(scoped(&all, LdapSearchScope::Subtree).len(), all.len());
    }

    #[test]
    fn attribute_selection_understands_star_plus_and_1_1() {
        let v = view_at("uid=alice,cn=Users,dc=corp,dc=example");
        let alice = v.base_entry();
        let names = |attrs: &[&str], types_only: bool| {
            let sel = Selection::new(&attrs.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            let e = sel.project(alice, types_only);
            assert!(!types_only || e.attributes.iter().all(|a| a.vals.is_empty()));
            e.attributes.into_iter().map(|a| a.atype).collect::<Vec<_>>()
        };
        let user = names(&[], false);
        assert!(user.contains(&"mail".to_string()) && !user.contains(&"entryUUID".to_string()), "{user:?}");
        assert_eq!(names(&["*"], false), user);
        let op = names(&["+"], false);
        assert!(op.contains(&"entryUUID".to_string()) && !op.contains(&"mail".to_string()), "{op:?}");
        assert!(names(&["1.1"], false).is_empty());
        assert_eq!(names(&["RFC822MAILBOX", "createTimestamp"], true), ["mail", "createTimestamp"]);
        assert!(!names(&["*", "+"], false).iter().any(|a| a == "userPassword"), "passwords are never returned");
    }

    /// A search over a tree of 3,000 groups with `filter`, run with `steps`
    /// of work and `time` to do it.
    fn execute(filter: LdapFilter, steps: u64, time: Duration) -> Result<Found, Exhausted> {
        let tree = Arc::new(TenantTree::build(&crate::testdata::with_groups(3000)));
        let view = View { head: vec![], tree: Some(tree), base: 0, reader: None };
        let job = Job {
            view,
            filter: Filter::compile(&filter, &crate::Limits::default()).unwrap(),
            scope: LdapSearchScope::Subtree,
            selection: Selection::new(&["1.1".to_string()]),
            types_only: false,
            window: Window::Limit(10_000),
        };
        job.execute(&mut Budget::new(steps, Instant::now() + time))
    }

    /// An OR of `n` substring terms that match nothing: every term on every entry.
    fn substrings(n: usize) -> LdapFilter {
        LdapFilter::Or(
            (0..n)
                .map(|i| {
                    let any = vec![format!("zz{i}")];
                    LdapFilter::Substring("cn".into(), LdapSubstringFilter { initial: None, any, final_: None })
                })
                .collect(),
        )
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_search_that_needs_more_than_its_budget_is_abandoned() {
        // 500 terms on 3,000 entries: about 1.5 million evaluations.
        assert_eq!(execute(substrings(500), 1_000_000, MINUTE).unwrap_err(), Exhausted::Work);
        let found = execute(substrings(500), 10_000_000, MINUTE).unwrap();
        assert_eq!((found.total, found.entries.len()), (0, 0));
    }

    #[test]
    fn a_search_past_its_time_limit_is_abandoned_during_matching() {
        assert_eq!(execute(substrings(500), u64::MAX, Duration::ZERO).unwrap_err(), Exhausted::Time);
    }

    #[test]
    fn an_or_of_entry_dns_is_answered_from_the_index_not_by_scanning() {
        let dn = |i: usize| LdapFilter::Equality("entryDN".into(), format!("CN=group{i},cn=Groups,dc=corp,dc=example"));
        let filter = LdapFilter::Or((0..500).map(|i| dn(i * 3)).collect());
        // A scan would evaluate 500 terms on each of 3,000 entries; the index
        // finds 500 candidates, and only those are evaluated.
        let found = execute(filter, 500 * 600, MINUTE).unwrap();
        assert_eq!((found.total, found.entries.len()), (500, 500));
        assert_eq!(found.entries[1].dn, "cn=group3,cn=Groups,dc=corp,dc=example");
    }

    #[test]
    fn the_size_limit_and_pages_cut_the_matches() {
        let all = LdapFilter::Present("objectClass".into());
        let found = execute(all.clone(), u64::MAX, MINUTE).unwrap();
        assert!(found.total > 3000 && !found.truncated, "{}", found.total);
        let job = |window| {
            let tree = Arc::new(TenantTree::build(&crate::testdata::with_groups(30)));
            let view = View { head: vec![], tree: Some(tree), base: 0, reader: None };
            let filter = Filter::compile(&all, &crate::Limits::default()).unwrap();
            let selection = Selection::new(&[]);
            let job = Job { view, filter, scope: LdapSearchScope::Subtree, selection, types_only: false, window };
            job.execute(&mut Budget::new(u64::MAX, Instant::now() + MINUTE)).unwrap()
        };
        let limited = job(Window::Limit(5));
        assert!(limited.truncated && limited.entries.len() == 5);
        let page = job(Window::Page { offset: 5, size: 10 });
        assert_eq!((page.entries.len(), page.end, page.truncated), (10, 15, false));
        assert_eq!(job(Window::Page { offset: 5, size: 0 }).entries.len(), 0);
    }
}
