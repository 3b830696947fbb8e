//! Group membership resolved over a tenant's whole directory: nested
//! membership (member-of, transitively) and cycle detection.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use lightwell_store::{Membership, PrincipalKind, PrincipalRecord, StoreError, TenantId, Tx};

/// A tenant's principals and membership edges.
pub(super) struct Graph {
    principals: HashMap<String, PrincipalRecord>,
    /// The membership edges indexed both ways (group ids by member id, member
    /// ids by group id), so resolving one principal costs what its answer
    /// costs, not the size of the tenant.
    groups_of: HashMap<String, Vec<String>>,
    members_of: HashMap<String, Vec<String>>,
}

impl Graph {
    /// Loads a tenant's directory.
    pub(super) fn load(tx: &mut dyn Tx, tenant: &TenantId) -> Result<Self, StoreError> {
        let principals = tx.list_principals(tenant, None)?.into_iter().map(|p| (p.id.clone(), p)).collect();
        Ok(Self::new(principals, tx.memberships(tenant)?))
    }

    /// Loads only what resolving `id`'s groups needs: the edges up from it
    /// and the principals they reach. Costs `id`'s ancestry, not the tenant.
    pub(super) fn load_ancestry(tx: &mut dyn Tx, tenant: &TenantId, id: &str) -> Result<Self, StoreError> {
        let (mut principals, mut edges) = (HashMap::new(), Vec::new());
        let mut queue = VecDeque::from([id.to_string()]);
        while let Some(cur) = queue.pop_front() {
            for edge in tx.memberships_of(tenant, &cur)? {
                if !principals.contains_key(&edge.group_id)
                    && let Some(p) = tx.principal_by_id(tenant, &edge.group_id)?
                {
                    principals.insert(p.id.clone(), p);
                    queue.push_back(edge.group_id.clone());
                }
                edges.push(edge);
            }
        }
        Ok(Self::new(principals, edges))
    }

    fn new(principals: HashMap<String, PrincipalRecord>, edges: Vec<Membership>) -> Self {
        let (mut groups_of, mut members_of) = (HashMap::<_, Vec<_>>::new(), HashMap::<_, Vec<_>>::new());
        for e in edges {
            groups_of.entry(e.member_id.clone()).or_default().push(e.group_id.clone());
            members_of.entry(e.group_id).or_default().push(e.member_id);
        }
        Self { principals, groups_of, members_of }
    }

    /// Ids of the groups `id` belongs to, directly or through nesting. Only
    /// groups confer membership: the edge from a service to a machine that
    /// hosts it is not followed, so a machine never inherits the groups of
    /// the services it runs.
    fn ancestors(&self, id: &str) -> HashSet<&str> {
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([id]);
        while let Some(cur) = queue.pop_front() {
            for g in self.groups_of.get(cur).into_iter().flatten() {
                let is_group = self.principals.get(g).is_some_and(|p| p.kind == PrincipalKind::Group);
                if is_group && seen.insert(g.as_str()) {
                    queue.push_back(g.as_str());
                }
            }
        }
        seen
    }

    /// Names of the groups `id` belongs to, directly or through nesting.
    pub(super) fn member_of(&self, id: &str) -> BTreeSet<String> {
        self.ancestors(id).into_iter().filter_map(|g| self.principals.get(g)).map(|g| g.name.clone()).collect()
    }

    /// Whether `id` is a member of the group with id `group`, directly or through nesting.
    pub(super) fn is_member_of(&self, id: &str, group: &str) -> bool {
        self.ancestors(id).contains(group)
    }

    /// Whether making `member` a member of `group` would create a cycle.
    pub(super) fn would_cycle(&self, group: &str, member: &str) -> bool {
        group == member || self.ancestors(group).contains(member)
    }

    /// Direct members of a group, as (kind, name), ordered.
    pub(super) fn members(&self, group: &str) -> Vec<(PrincipalKind, String)> {
        let mut out: Vec<_> = self
            .members_of
            .get(group)
            .into_iter()
            .flatten()
            .filter_map(|m| self.principals.get(m))
            .map(|p| (p.kind, p.name.clone()))
            .collect();
        out.sort();
        out
    }

    /// All principals, ordered by kind and name.
    pub(super) fn principals(&self) -> Vec<&PrincipalRecord> {
        let mut out: Vec<_> = self.principals.values().collect();
        out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        out
    }
}
