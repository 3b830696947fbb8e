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

use ldap3_proto::proto::LdapFilter;
use lightwell_core::authz::Actor;
use lightwell_core::{DirectoryVersion, Service};

use crate::entry::{self, Entry};
use crate::result::{LdapError, OpResult};
use crate::schema::{self, AttrDef};

/// Tenants whose trees are kept; the least recently used goes first.
const MAX_TENANTS: usize = 64;

/// Attributes with an equality index: the names clients look entries up by,
/// and group membership both ways.
const INDEXED: [&str; 5] = ["uid", "cn", "mail", "memberOf", "member"];

/// The trees of the tenants recently searched. Cheap to clone; clones share.
#[derive(Clone, Default)]
pub struct DirectoryCache {
    trees: Arc<Mutex<HashMap<String, Cached>>>,
    /// Held while a tree is built, so a burst of searches after a change
    /// builds it once.
    building: Arc<tokio::sync::Mutex<()>>,
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
                for v in e.get(def).into_iter().flatten() {
                    let list = index.entry((def.name, def.syntax.normalize(v))).or_default();
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
    /// the matches: the filter is still evaluated on each candidate.
    pub(crate) fn candidates(&self, f: &LdapFilter) -> Option<Vec<usize>> {
        match f {
            LdapFilter::Equality(attr, value) => {
                let def: &AttrDef = schema::attr(attr)?;
                INDEXED
                    .contains(&def.name)
                    .then(|| self.index.get(&(def.name, def.syntax.normalize(value))).cloned().unwrap_or_default())
            }
            // Every conjunct must match: the smallest indexed one bounds the result.
            LdapFilter::And(fs) => fs.iter().filter_map(|f| self.candidates(f)).min_by_key(Vec::len),
            // Some disjunct must match: only when each is indexed.
            LdapFilter::Or(fs) => {
                let mut all = Vec::new();
                for f in fs {
                    all.extend(self.candidates(f)?);
                }
                all.sort_unstable();
                all.dedup();
                Some(all)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::filter::{self, Tri};

    fn tree() -> TenantTree {
        TenantTree::build(&crate::testdata::snapshot())
    }

    /// What a scan of every entry would select.
    fn scan(t: &TenantTree, f: &LdapFilter) -> Vec<usize> {
        (0..t.entries.len()).filter(|&i| filter::eval(f, &t.entries[i]) == Tri::True).collect()
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
        ];
        for f in &filters {
            let candidates = t.candidates(f).unwrap_or_else(|| panic!("{f:?} is indexed"));
            let found: Vec<usize> =
                candidates.into_iter().filter(|&i| filter::eval(f, &t.entries[i]) == Tri::True).collect();
            assert_eq!(found, scan(&t, f), "{f:?}");
        }
        assert!(!scan(&t, &filters[3]).is_empty(), "the membership filter matches someone");
    }

    #[test]
    fn unindexed_filters_fall_back_to_a_scan() {
        let t = tree();
        assert_eq!(t.candidates(&eq("objectClass", "inetOrgPerson")), None);
        assert_eq!(t.candidates(&LdapFilter::Present("uid".into())), None);
        assert_eq!(t.candidates(&LdapFilter::Or(vec![eq("uid", "alice"), eq("sn", "alice")])), None);
        assert_eq!(t.candidates(&LdapFilter::Not(Box::new(eq("uid", "alice")))), None);
        assert_eq!(t.candidates(&eq("nonesuch", "x")), None);
    }

    #[test]
    fn dns_are_found_normalized() {
        let t = tree();
        let i = t.find(&crate::dn::normalize("UID=alice, CN=Users,DC=corp,DC=example").unwrap()).unwrap();
        assert_eq!(t.entries[i].dn, "uid=alice,cn=Users,dc=corp,dc=example");
    }
}
