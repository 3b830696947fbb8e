//! Each tenant's tree, built once per directory version and shared by every
//! connection, with the indexes that answer the common filters without a
//! scan.
//!
//! Reading and building a tenant's whole directory costs what the tenant
//! costs (all principals, memberships, certificates); doing it per search
//! does not scale. So the tree is kept, and before every use the service
//! layer is asked for the tenant's current [`DirectoryVersion`] — one small
//! read that also checks the caller's permission. The revision is bumped in
//! the same transaction as every directory write, so a search right after a
//! write (REST or LDAP, on this replica or another) sees it. A tree also
//! goes stale when the first certificate it holds expires.
//!
//! Trees are keyed by tenant domain and carry the tenant id: a caller only
//! ever gets the tree of its own tenant (the service answers the version
//! for the caller's tenant only), and a tenant deleted and created again
//! never sees the old one's tree.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use lightwell_core::authz::Actor;
use lightwell_core::{DirectoryVersion, Service};

use crate::entry::{self, Entry};
use crate::filter::Node;
use crate::result::{LdapError, OpResult};
use crate::schema;
use crate::work::{Budget, Exhausted, SearchGate};

/// Tenants whose trees are kept; the least recently used goes first.
const MAX_TENANTS: usize = 64;

/// Attributes with an equality index: the names clients look entries up by,
/// group membership both ways, and the entry's id. (`entryDN` is answered
/// by the DN map.)
const INDEXED: [&str; 6] = ["uid", "cn", "mail", "memberOf", "member", "entryUUID"];

/// The trees of the tenants recently searched, and the search workers that
/// read them (see `work.rs`). Cheap to clone; clones share. Give every
/// listener of a server the same one: the bound on each principal's
/// searches in flight and the bound on search workers are kept here.
#[derive(Clone, Default)]
pub struct DirectoryCache {
    trees: Arc<Mutex<HashMap<String, Cached>>>,
    /// Held while a tree is built, so a burst of searches after a change
    /// builds it once.
    building: Arc<tokio::sync::Mutex<()>>,
    gate: Arc<SearchGate>,
}

impl std::fmt::Debug for DirectoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryCache").field("tenants", &self.lock().len()).finish()
    }
}

#[derive(Clone)]
struct Cached {
    tree: Arc<TenantTree>,
    used: Instant,
}

/// One tenant's entries at one version, with their indexes.
#[derive(Debug)]
pub(crate) struct TenantTree {
    version: DirectoryVersion,
    /// From this time (Unix seconds) the tree is stale: a certificate in it expired.
    valid_until: Option<i64>,
    /// Every entry of the tenant, parents before children.
    pub(crate) entries: Vec<Entry>,
    /// Entry by normalized DN.
    by_dn: HashMap<String, usize>,
    /// Entries by (attribute, normalized value), ascending.
    index: HashMap<(&'static str, String), Vec<usize>>,
}

impl DirectoryCache {
    /// Where searches over trees run.
    pub(crate) fn gate(&self) -> &Arc<SearchGate> {
        &self.gate
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.trees.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached tree of `tenant` if it is at `version` or newer (a
    /// search that waited while another built a later state may use it) and
    /// not expired.
    fn current(&self, tenant: &str, version: &DirectoryVersion, now: i64) -> Option<Arc<TenantTree>> {
        let mut trees = self.lock();
        let c = trees.get_mut(tenant)?;
        let v = &c.tree.version;
        if v.tenant_id != version.tenant_id
            || v.revision < version.revision
            || c.tree.valid_until.is_some_and(|t| now >= t)
        {
            return None;
        }
        c.used = Instant::now();
        Some(c.tree.clone())
    }

    fn store(&self, tenant: &str, tree: Arc<TenantTree>) {
        let mut trees = self.lock();
        // Never replace a newer tree by an older one (a slow build racing a fast one).
        if let Some(c) = trees.get(tenant)
            && c.tree.version.tenant_id == tree.version.tenant_id
            && c.tree.version.revision > tree.version.revision
        {
            return;
        }
        if !trees.contains_key(tenant) && trees.len() >= MAX_TENANTS {
            let oldest = trees.iter().min_by_key(|(_, c)| c.used).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                trees.remove(&k);
            }
        }
        trees.insert(tenant.to_string(), Cached { tree, used: Instant::now() });
    }

    /// The tree of the caller's tenant, current as of this call. `version`:
    /// the tenant's version if the caller has just read it (with the
    /// permission checked) in this operation; otherwise it is read here.
    pub(crate) async fn tree(
        &self,
        service: &Service,
        actor: &Actor,
        tenant: &str,
        version: Option<DirectoryVersion>,
    ) -> OpResult<Arc<TenantTree>> {
        let version = match version {
            Some(v) => v,
            None => service.directory_version(actor, tenant).await?,
        };
        let now = service.clock().unix();
        if let Some(tree) = self.current(tenant, &version, now) {
            return Ok(tree);
        }
        let _building = self.building.lock().await;
        // Another search may have built it while this one waited.
        if let Some(tree) = self.current(tenant, &version, now) {
            return Ok(tree);
        }
        let started = Instant::now();
        let snap = service.directory_snapshot(actor, tenant).await?;
        let read = started.elapsed();
        let tree = tokio::task::spawn_blocking(move || TenantTree::build(&snap))
            .await
            .map_err(|_| LdapError::new(ldap3_proto::proto::LdapResultCode::Other, "building the directory failed"))?;
        // Once per change of a tenant's directory: its cost is worth seeing.
        tracing::info!(
            tenant,
            revision = tree.version.revision,
            entries = tree.entries.len(),
            read_ms = read.as_millis(),
            total_ms = started.elapsed().as_millis(),
            "LDAP tree rebuilt"
        );
        let tree = Arc::new(tree);
        self.store(tenant, tree.clone());
        Ok(tree)
    }
}

impl TenantTree {
    /// Builds the entries of a snapshot and indexes them.
    pub(crate) fn build(snap: &lightwell_core::DirectorySnapshot) -> Self {
        let entries = entry::tenant_entries(snap);
        let by_dn = entries.iter().enumerate().map(|(i, e)| (e.norm.clone(), i)).collect();
        let mut index: HashMap<(&'static str, String), Vec<usize>> = HashMap::new();
        for name in INDEXED {
            let def = schema::known(name);
            for (i, e) in entries.iter().enumerate() {
                for v in e.normalized(def).into_iter().flatten() {
                    let list = index.entry((def.name, v.clone())).or_default();
                    // An entry with two values normalizing alike is listed once.
                    if list.last() != Some(&i) {
                        list.push(i);
                    }
                }
            }
        }
        Self { version: snap.version.clone(), valid_until: snap.valid_until, entries, by_dn, index }
    }

    /// The entry with this normalized DN.
    pub(crate) fn find(&self, norm: &str) -> Option<usize> {
        self.by_dn.get(norm).copied()
    }

    /// Entries that may match `f`, ascending, or `None` when the filter is
    /// not answered by an index (every entry is a candidate). A superset of
    /// the matches: the filter is still evaluated on each candidate. Every
    /// candidate listed is charged to `budget`, so an OR of many indexed
    /// terms costs what it collects.
    pub(crate) fn candidates(&self, f: &Node, budget: &mut Budget) -> Result<Option<Vec<usize>>, Exhausted> {
        budget.charge(1)?;
        Ok(match f {
            Node::Equality(def, value) if def.name == "entryDN" => Some(self.find(value).into_iter().collect()),
            Node::Equality(def, value) if INDEXED.contains(&def.name) => {
                let found = self.index.get(&(def.name, value.clone())).cloned().unwrap_or_default();
                budget.charge(found.len() as u64)?;
                Some(found)
            }
            // Every conjunct must match: the smallest indexed one bounds the result.
            Node::And(fs) => {
                let mut best: Option<Vec<usize>> = None;
                for f in fs {
                    if let Some(c) = self.candidates(f, budget)?
                        && best.as_ref().is_none_or(|b| c.len() < b.len())
                    {
                        best = Some(c);
                    }
                }
                best
            }
            // Some disjunct must match: only when each is indexed.
            Node::Or(fs) => {
                let mut all = Vec::new();
                for f in fs {
                    let Some(c) = self.candidates(f, budget)? else { return Ok(None) };
                    all.extend(c);
                }
                // Sorting costs about log2(n) steps per candidate.
                budget.charge(all.len() as u64 * u64::from(usize::BITS - all.len().leading_zeros()))?;
                all.sort_unstable();
                all.dedup();
                Some(all)
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::{Duration, Instant};

    use ldap3_proto::proto::LdapFilter;

    use super::*;
    use crate::Limits;
    use crate::filter::{Filter, Tri};

    fn tree() -> TenantTree {
        TenantTree::build(&crate::testdata::snapshot())
    }

    fn budget() -> Budget {
        Budget::new(u64::MAX, Instant::now() + Duration::from_secs(60))
    }

    fn compile(f: &LdapFilter) -> Filter {
        Filter::compile(f, &Limits::default()).unwrap()
    }

    fn candidates(t: &TenantTree, f: &LdapFilter) -> Option<Vec<usize>> {
        t.candidates(&compile(f).root, &mut budget()).unwrap()
    }

    /// What a scan of every entry would select.
    fn scan(t: &TenantTree, f: &LdapFilter) -> Vec<usize> {
        let f = compile(f);
        (0..t.entries.len()).filter(|&i| f.eval(&t.entries[i], &mut budget()) == Ok(Tri::True)).collect()
    }

    fn eq(a: &str, v: &str) -> LdapFilter {
        LdapFilter::Equality(a.into(), v.into())
    }

    #[test]
    fn indexed_filters_select_what_a_scan_selects() {
        let t = tree();
        let engineers = "CN=Engineers, cn=groups,dc=corp,dc=example";
        let filters = [
            eq("uid", "ALICE"),
            eq("cn", "bob"),
            eq("mail", "alice@corp.example"),
            eq("memberOf", engineers),
            eq("memberOf", "cn=CAAdmins,cn=Groups,dc=corp,dc=example"),
            eq("member", "uid=alice,cn=users,dc=corp,dc=example"),
            eq("uid", "nobody"),
            LdapFilter::And(vec![eq("objectClass", "inetOrgPerson"), eq("memberOf", engineers)]),
            LdapFilter::Or(vec![eq("uid", "alice"), eq("uid", "bob")]),
            LdapFilter::And(vec![eq("uid", "alice"), LdapFilter::Not(Box::new(eq("cn", "alice")))]),
            eq("entryDN", "UID=alice, cn=Users,dc=corp,dc=example"),
            eq("entryDN", "uid=nobody,cn=Users,dc=corp,dc=example"),
            LdapFilter::Or(vec![
                eq("entryDN", "uid=bob,cn=users,dc=corp,dc=example"),
                eq("entryDN", "cn=Users,dc=corp,dc=example"),
            ]),
            eq("entryUUID", &t.entries[0].get(schema::known("entryUUID")).unwrap()[0].to_uppercase()),
        ];
        for f in &filters {
            let candidates = candidates(&t, f).unwrap_or_else(|| panic!("{f:?} is indexed"));
            let compiled = compile(f);
            let found: Vec<usize> = candidates
                .into_iter()
                .filter(|&i| compiled.eval(&t.entries[i], &mut budget()) == Ok(Tri::True))
                .collect();
            assert_eq!(found, scan(&t, f), "{f:?}");
        }
        assert_eq!(scan(&t, &filters[12]).len(), 2, "both DNs found");
        assert_eq!(scan(&t, &filters[13]), [0], "the base by its entryUUID");
        assert!(!scan(&t, &filters[3]).is_empty(), "the membership filter matches someone");
    }

    #[test]
    fn unindexed_filters_fall_back_to_a_scan() {
        let t = tree();
        assert_eq!(candidates(&t, &eq("objectClass", "inetOrgPerson")), None);
        assert_eq!(candidates(&t, &LdapFilter::Present("uid".into())), None);
        assert_eq!(candidates(&t, &LdapFilter::Or(vec![eq("uid", "alice"), eq("sn", "alice")])), None);
        assert_eq!(candidates(&t, &LdapFilter::Not(Box::new(eq("uid", "alice")))), None);
        assert_eq!(candidates(&t, &eq("nonesuch", "x")), None);
    }

    #[test]
    fn collecting_candidates_is_charged_to_the_budget() {
        let t = tree();
        let users = "cn=Users,dc=corp,dc=example";
        let f = compile(&LdapFilter::Or((0..100).map(|_| eq("memberOf", users)).collect()));
        let mut b = budget();
        assert_eq!(t.candidates(&f.root, &mut b), Ok(Some(vec![])));
        let mut tight = Budget::new(100, Instant::now() + Duration::from_secs(60));
        assert_eq!(t.candidates(&f.root, &mut tight), Err(Exhausted::Work), "the OR and 100 lookups");
    }

    #[test]
    fn dns_are_found_normalized() {
        let t = tree();
        let i = t.find(&crate::dn::normalize("UID=alice, CN=Users,DC=corp,DC=example").unwrap()).unwrap();
        assert_eq!(t.entries[i].dn, "uid=alice,cn=Users,dc=corp,dc=example");
    }
}
