//! The tamper-evident audit log: one chain per tenant plus the system chain.
//!
//! Each record carries an HMAC-SHA256 over its fields and the previous
//! record's MAC. The MAC key is derived from the key-encryption key, so
//! someone with write access to the database but not the KEK can neither
//! edit a record, insert one, nor delete one from the middle without
//! `verify` noticing.
//!
//! The chain head (last sequence number and record MAC) is kept in its own
//! row with a MAC of its own under a second KEK-derived key, so deleting the
//! newest records and moving the head back does not verify either; appends
//! refuse to extend a head whose MAC does not verify, so such a cut cannot
//! be papered over by the next record. What the head MAC cannot stop is a
//! replay: someone who kept an earlier copy of the head row (an old backup)
//! can put it back. Checkpoints bound that: each tenant chain's head is
//! recorded periodically as a record of the system chain
//! ([`AUDIT_CHECKPOINT_ACTION`]), and a tenant chain that ends before, or
//! differs at, its newest checkpoint does not verify. A holder of the KEK can
//! rewrite both chains; only a copy of the checkpoints kept outside the
//! database (the server's checkpoint file) shows that.

use aws_lc_rs::hmac;
use lightwell_ca::kek::Kek;
use lightwell_store::{AUDIT_CHECKPOINT_ACTION, AuditHead, AuditRecord, StoreError, TenantId, Tx};

/// How an audited operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It happened.
    Success,
    /// It was refused.
    Failure,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// An event to append to a chain.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// Who acted.
    pub actor: String,
    /// What was done, as `object.verb` (`user.create`, `login`, ...).
    pub action: &'static str,
    /// What it was done to.
    pub target: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Extra detail; never a secret.
    pub detail: String,
}

impl AuditEvent {
    /// A successful event.
    pub fn success(actor: impl Into<String>, action: &'static str, target: impl Into<String>) -> Self {
        Self { actor: actor.into(), action, target: target.into(), outcome: Outcome::Success, detail: String::new() }
    }

    /// A refused event.
    pub fn failure(actor: impl Into<String>, action: &'static str, target: impl Into<String>) -> Self {
        Self { outcome: Outcome::Failure, ..Self::success(actor, action, target) }
    }

    /// Adds detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// Appends to and verifies audit chains.
#[derive(Debug, Clone)]
pub struct AuditLog {
    /// Keys the record MACs.
    key: hmac::Key,
    /// Keys the head MACs: a key of its own, so no record MAC is ever a valid head MAC.
    head_key: hmac::Key,
}

/// One chain's head as it verified: what a checkpoint records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// The tenant's id, or the system scope.
    pub scope: TenantId,
    /// The tenant's domain; empty for the system chain.
    pub domain: String,
    /// Sequence number of the chain's last record.
    pub seq: i64,
    /// MAC of that record (hex).
    pub hash: String,
}

/// What one checkpoint run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointReport {
    /// Tenant chains newly checkpointed into the system chain.
    pub checkpointed: usize,
    /// Chains whose head did not verify and so were not checkpointed, with why.
    pub refused: Vec<(String, String)>,
    /// Every chain whose head verified (the system chain's after the
    /// checkpoints were appended), for copies kept outside the database.
    pub heads: Vec<ChainHead>,
}

/// Where checkpoints are copied outside the database, so that someone who
/// can rewrite the database and holds the KEK still cannot hide a cut.
pub trait CheckpointSink: Send + Sync + std::fmt::Debug {
    /// Records the verified heads of a checkpoint run taken at `at` (Unix seconds).
    fn record(&self, at: i64, heads: &[ChainHead]) -> std::io::Result<()>;
}

/// A checkpoint read back from the system chain.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Checkpoint {
    /// The system record holding it.
    system_seq: i64,
    seq: i64,
    hash: String,
}

impl Checkpoint {
    fn detail(seq: i64, hash: &str, domain: &str) -> String {
        format!("seq={seq} hash={hash} domain={domain}")
    }

    fn parse(r: &AuditRecord) -> Option<Self> {
        let mut seq = None;
        let mut hash = None;
        for field in r.detail.split_whitespace() {
            if let Some(v) = field.strip_prefix("seq=") {
                seq = v.parse().ok();
            } else if let Some(v) = field.strip_prefix("hash=") {
                hash = Some(v.to_string());
            }
        }
        Some(Self { system_seq: r.seq, seq: seq?, hash: hash? })
    }
}

fn mac_of(key: &hmac::Key, fields: &[&str]) -> String {
    let mut ctx = hmac::Context::with_key(key);
    // Length-prefixed fields: no two different inputs encode the same.
    for field in fields {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field.as_bytes());
    }
    hex::encode(ctx.sign().as_ref())
}

/// Compares two MACs (hex) in constant time.
fn same_mac(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

impl AuditLog {
    /// An audit log keyed with subkeys of the key-encryption key.
    pub fn new(kek: &Kek) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &*kek.derive("lightwell audit chain v1")),
            head_key: hmac::Key::new(hmac::HMAC_SHA256, &*kek.derive("lightwell audit head v1")),
        }
    }

    fn mac(&self, r: &AuditRecord) -> String {
        let seq = r.seq.to_string();
        let at = r.at.to_string();
        mac_of(
            &self.key,
            &[r.scope.as_str(), &seq, &at, &r.actor, &r.action, &r.target, &r.outcome, &r.detail, &r.prev_hash],
        )
    }

    /// The MAC of a chain head: binds the scope, the last sequence number and
    /// that record's MAC, so a head moved back to an earlier record needs a new one.
    pub fn head_mac(&self, scope: &TenantId, seq: i64, hash: &str) -> String {
        mac_of(&self.head_key, &[scope.as_str(), &seq.to_string(), hash])
    }

    /// Why a stored head does not verify, if it does not.
    fn head_problem(&self, scope: &TenantId, h: &AuditHead) -> Option<&'static str> {
        if h.mac.is_empty() {
            Some("the chain head carries no MAC (cleared, or written before heads had one and not sealed)")
        } else if !same_mac(&h.mac, &self.head_mac(scope, h.seq, &h.hash)) {
            Some("the chain head's MAC does not verify: the head was moved back (newer records deleted) or edited")
        } else {
            None
        }
    }

    /// Whether the system chain was written under this key: its first
    /// record (written at `lightwelld init`) verifies. `None` while the chain
    /// is empty. A server given another installation's KEK would otherwise
    /// start, then fail every audited change and every CA key unsealing.
    pub fn keys_system_chain(&self, tx: &mut dyn Tx) -> Result<Option<bool>, StoreError> {
        let first = tx.list_audit(&TenantId::system(), 0, 1)?.into_iter().next();
        Ok(first.map(|r| same_mac(&r.hash, &self.mac(&r))))
    }

    /// Appends an event to `scope`'s chain inside the caller's transaction.
    /// Refuses (`Corrupt`) to extend a head whose MAC does not verify: the
    /// new record would otherwise hide that records were cut off.
    pub fn append(&self, tx: &mut dyn Tx, scope: &TenantId, at: i64, ev: AuditEvent) -> Result<(), StoreError> {
        let (seq, prev_hash) = match tx.audit_head(scope)? {
            None => (1, String::new()),
            Some(h) => {
                if let Some(problem) = self.head_problem(scope, &h) {
                    return Err(StoreError::Corrupt(format!(
                        "audit chain {:?} (record {}): {problem}; refusing to append",
                        scope.as_str(),
                        h.seq
                    )));
                }
                (h.seq + 1, h.hash)
            }
        };
        let mut rec = AuditRecord {
            scope: scope.clone(),
            seq,
            at,
            actor: ev.actor,
            action: ev.action.to_string(),
            target: ev.target,
            outcome: ev.outcome.as_str().to_string(),
            detail: ev.detail,
            prev_hash,
            hash: String::new(),
        };
        rec.hash = self.mac(&rec);
        let head_mac = self.head_mac(scope, rec.seq, &rec.hash);
        tx.insert_audit(&rec, &head_mac)
    }

    /// Verifies a whole chain inside the caller's (read) transaction: every
    /// record, the head and its MAC, and (for a tenant) that the chain holds
    /// its newest checkpoint in the system chain.
    pub fn verify(&self, tx: &mut dyn Tx, scope: &TenantId) -> Result<Verification, StoreError> {
        self.verify_chain(tx, scope, true)
    }

    /// [`Self::verify`], optionally without the head's MAC (to seal a head
    /// that has none).
    fn verify_chain(&self, tx: &mut dyn Tx, scope: &TenantId, head_mac: bool) -> Result<Verification, StoreError> {
        const PAGE: u32 = 1000;
        let checkpoint = match self.newest_checkpoint(tx, scope)? {
            Ok(cp) => cp,
            Err(reason) => {
                return Ok(Verification {
                    valid: false,
                    records: 0,
                    broken_at: None,
                    reason: Some(reason),
                    checkpoint: None,
                });
            }
        };
        let mut expected_seq = 1;
        let mut prev_hash = String::new();
        let mut count = 0;
        loop {
            let page = tx.list_audit(scope, expected_seq - 1, PAGE)?;
            let page_len = page.len();
            for r in page {
                let broken = |reason: &str| Verification::broken(count, r.seq, reason);
                if r.seq != expected_seq {
                    return Ok(Verification::broken(
                        count,
                        expected_seq,
                        &format!("record {expected_seq} is missing (next is {})", r.seq),
                    ));
                }
                if r.prev_hash != prev_hash {
                    return Ok(broken("does not link to the previous record"));
                }
                if !same_mac(&r.hash, &self.mac(&r)) {
                    return Ok(broken("its contents do not match its MAC (modified)"));
                }
                if let Some(cp) = &checkpoint
                    && cp.seq == r.seq
                    && cp.hash != r.hash
                {
                    return Ok(broken(&format!(
                        "differs from its checkpoint in system record {} (the chain was rewritten)",
                        cp.system_seq
                    )));
                }
                prev_hash = r.hash;
                expected_seq += 1;
                count += 1;
            }
            if page_len < PAGE as usize {
                break;
            }
        }
        if let Some(cp) = &checkpoint
            && count < cp.seq
        {
            return Ok(Verification::broken(
                count,
                count + 1,
                &format!(
                    "the chain ends at record {count} but its checkpoint in system record {} names record {} \
                     (records deleted)",
                    cp.system_seq, cp.seq
                ),
            ));
        }
        match tx.audit_head(scope)? {
            None if count == 0 => {}
            Some(h) if h.seq == count && h.hash == prev_hash => {
                if let Some(problem) = self.head_problem(scope, &h).filter(|_| head_mac) {
                    return Ok(Verification::broken(count, count + 1, problem));
                }
            }
            Some(h) => {
                return Ok(Verification::broken(
                    count,
                    count + 1,
                    &format!("the chain head names record {} but the chain ends at {count} (records deleted)", h.seq),
                ));
            }
            None => return Ok(Verification::broken(count, 1, "the chain head is missing")),
        }
        Ok(Verification {
            valid: true,
            records: count,
            broken_at: None,
            reason: None,
            checkpoint: checkpoint.map(|c| c.seq),
        })
    }

    /// The newest checkpoint of a tenant chain (`None` for the system chain
    /// or a tenant never checkpointed); `Err` with why if the system record
    /// holding it is not genuine.
    fn newest_checkpoint(
        &self,
        tx: &mut dyn Tx,
        scope: &TenantId,
    ) -> Result<Result<Option<Checkpoint>, String>, StoreError> {
        if scope.is_system() {
            return Ok(Ok(None));
        }
        let Some(r) = tx.last_audit_checkpoint(scope)? else { return Ok(Ok(None)) };
        let cp = Checkpoint::parse(&r).filter(|_| same_mac(&r.hash, &self.mac(&r)));
        Ok(cp.map(Some).ok_or_else(|| {
            format!("the chain's newest checkpoint, system record {}, is not genuine (modified)", r.seq)
        }))
    }

    /// Appends to the system chain a checkpoint of every tenant chain whose
    /// head moved since its newest checkpoint. A head that does not verify
    /// cheaply (its MAC; still holding the record its newest checkpoint
    /// names) is not checkpointed: that would bless a cut chain.
    pub fn checkpoint(&self, tx: &mut dyn Tx, at: i64) -> Result<CheckpointReport, StoreError> {
        let domains: std::collections::HashMap<String, String> =
            tx.list_tenants()?.into_iter().map(|t| (t.id.as_str().to_string(), t.domain)).collect();
        let mut report = CheckpointReport::default();
        let system = TenantId::system();
        for (scope, head) in tx.audit_heads()? {
            if scope.is_system() {
                continue;
            }
            // A chain left behind by a deleted tenant has no domain; nothing to keep.
            let Some(domain) = domains.get(scope.as_str()) else { continue };
            if let Some(problem) = self.head_problem(&scope, &head) {
                report.refused.push((domain.clone(), problem.to_string()));
                continue;
            }
            let checkpoint = match self.newest_checkpoint(tx, &scope)? {
                Ok(cp) => cp,
                Err(problem) => {
                    report.refused.push((domain.clone(), problem));
                    continue;
                }
            };
            let moved = match &checkpoint {
                None => true,
                Some(cp) if cp.seq == head.seq && cp.hash == head.hash => false,
                Some(cp) => {
                    let at_cp = tx.list_audit(&scope, cp.seq - 1, 1)?.into_iter().next();
                    if cp.seq > head.seq || at_cp.is_none_or(|r| r.seq != cp.seq || r.hash != cp.hash) {
                        report.refused.push((
                            domain.clone(),
                            format!("the chain no longer holds record {} of its checkpoint", cp.seq),
                        ));
                        continue;
                    }
                    true
                }
            };
            if moved {
                let ev = AuditEvent::success("system", AUDIT_CHECKPOINT_ACTION, scope.as_str())
                    .with_detail(Checkpoint::detail(head.seq, &head.hash, domain));
                self.append(tx, &system, at, ev)?;
                report.checkpointed += 1;
            }
            report.heads.push(ChainHead { scope, domain: domain.clone(), seq: head.seq, hash: head.hash });
        }
        if let Some(h) = tx.audit_head(&system)? {
            match self.head_problem(&system, &h) {
                None => report.heads.push(ChainHead { scope: system, domain: String::new(), seq: h.seq, hash: h.hash }),
                Some(problem) => report.refused.push(("system".to_string(), problem.to_string())),
            }
        }
        Ok(report)
    }

    /// Seals `scope`'s head if it carries no MAC (written before heads had
    /// one) and its chain otherwise verifies, recording the sealing in the
    /// system chain (unless `scope` is the system chain). Whether it sealed;
    /// `Err` with why a head without a MAC was left unsealed.
    pub fn seal_head(&self, tx: &mut dyn Tx, scope: &TenantId, at: i64) -> Result<Result<bool, String>, StoreError> {
        let Some(head) = tx.audit_head(scope)? else { return Ok(Ok(false)) };
        if !head.mac.is_empty() {
            return Ok(Ok(false));
        }
        let v = self.verify_chain(tx, scope, false)?;
        if !v.valid {
            return Ok(Err(v.reason.unwrap_or_default()));
        }
        tx.seal_audit_head(scope, head.seq, &self.head_mac(scope, head.seq, &head.hash))?;
        if !scope.is_system() {
            let ev = AuditEvent::success("system", "audit.head_sealed", scope.as_str())
                .with_detail(format!("seq={} (the head carried no MAC)", head.seq));
            self.append(tx, &TenantId::system(), at, ev)?;
        }
        Ok(Ok(true))
    }
}

/// The outcome of verifying a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Whether the chain is intact.
    pub valid: bool,
    /// Records that verified before any break.
    pub records: i64,
    /// Sequence number where the chain breaks.
    pub broken_at: Option<i64>,
    /// Why it breaks.
    pub reason: Option<String>,
    /// The sequence number of the tenant chain's newest checkpoint, which
    /// the chain was checked to hold.
    pub checkpoint: Option<i64>,
}

impl Verification {
    fn broken(records: i64, at: i64, reason: &str) -> Self {
        Self {
            valid: false,
            records,
            broken_at: Some(at),
            reason: Some(format!("record {at}: {reason}")),
            checkpoint: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use lightwell_store::sqlite::SqliteStore;
    use lightwell_store::{StoreExt, TenantRecord};

    use super::*;

    /// A store with tenant `t` (corp.example), its chain of `n` records, and
    /// a connection to the file for tampering behind the store's back.
    struct Fixture {
        _dir: tempfile::TempDir,
        store: SqliteStore,
        raw: rusqlite::Connection,
        log: AuditLog,
        t: TenantId,
    }

    fn fixture(n: i64) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lw.db");
        let store = SqliteStore::open(&path).unwrap();
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        let log = AuditLog::new(&Kek::generate().unwrap());
        let t = TenantId::new("t");
        let tenant = TenantRecord { id: t.clone(), domain: "corp.example".into(), policy: "{}".into(), created_at: 1 };
        store.write(|tx| tx.insert_tenant(&tenant)).unwrap();
        let f = Fixture { _dir: dir, store, raw, log, t };
        f.append(n);
        f
    }

    impl Fixture {
        fn append(&self, n: i64) {
            for i in 0..n {
                let ev = AuditEvent::success("user:admin", "user.create", format!("u{i}"));
                self.store.write(|tx| self.log.append(tx, &self.t, 100 + i, ev.clone())).unwrap();
            }
        }

        fn verify(&self, scope: &TenantId) -> Verification {
            self.store.read(|tx| self.log.verify(tx, scope)).unwrap()
        }

        fn checkpoint(&self) -> CheckpointReport {
            self.store.write(|tx| self.log.checkpoint(tx, 1000)).unwrap()
        }

        fn head(&self) -> AuditHead {
            self.store.read(|tx| tx.audit_head(&self.t)).unwrap().unwrap()
        }

        fn sql(&self, sql: &str, params: impl rusqlite::Params) {
            self.raw.execute(sql, params).unwrap();
        }

        /// Deletes the records after `seq` and points the head at record `seq`
        /// with `mac`.
        fn cut_to(&self, seq: i64, mac: &str) {
            self.sql("DELETE FROM audit WHERE scope = 't' AND seq > ?1", [seq]);
            self.sql(
                "UPDATE audit_heads SET seq = ?1, hash = (SELECT hash FROM audit WHERE scope = 't' AND seq = ?1), \
                 mac = ?2 WHERE scope = 't'",
                rusqlite::params![seq, mac],
            );
        }
    }

    #[test]
    fn a_chain_of_appends_verifies_and_its_head_carries_a_mac() {
        let f = fixture(5);
        let v = f.verify(&f.t);
        assert_eq!(v, Verification { valid: true, records: 5, broken_at: None, reason: None, checkpoint: None });
        let h = f.head();
        assert_eq!(h.mac, f.log.head_mac(&f.t, 5, &h.hash));
        assert_ne!(h.mac, h.hash, "the head MAC is not the record MAC");
    }

    #[test]
    fn deleting_the_newest_records_and_moving_the_head_back_does_not_verify() {
        let f = fixture(5);
        let stale = f.head().mac;
        f.cut_to(3, &stale);
        let v = f.verify(&f.t);
        assert!(!v.valid);
        assert_eq!((v.records, v.broken_at), (3, Some(4)));
        assert!(v.reason.unwrap().contains("MAC does not verify"));
        // Without the KEK no head MAC is at hand: a record's MAC is not one either.
        let record_mac = f.head().hash;
        f.cut_to(3, &record_mac);
        assert!(!f.verify(&f.t).valid);
    }

    #[test]
    fn appends_refuse_to_extend_a_head_that_does_not_verify() {
        let f = fixture(5);
        f.cut_to(3, &f.head().mac);
        let err = f
            .store
            .write(|tx| f.log.append(tx, &f.t, 200, AuditEvent::success("user:admin", "login", "admin")))
            .unwrap_err();
        assert!(matches!(&err, StoreError::Corrupt(m) if m.contains("refusing to append")), "{err:?}");
        assert_eq!(f.head().seq, 3, "nothing appended");
    }

    #[test]
    fn an_old_head_put_back_is_caught_by_the_newest_checkpoint() {
        let f = fixture(3);
        let old = f.head();
        f.append(2);
        assert_eq!(f.checkpoint().checkpointed, 1);
        // A genuine head row from an earlier copy of the database verifies on its own...
        f.cut_to(3, &old.mac);
        assert_eq!(f.head(), old);
        // ...but the system chain's checkpoint says the chain had five records.
        let v = f.verify(&f.t);
        assert!(!v.valid);
        assert_eq!(v.broken_at, Some(4));
        let reason = v.reason.unwrap();
        assert!(reason.contains("checkpoint in system record 1 names record 5"), "{reason}");
    }

    #[test]
    fn a_chain_rewritten_with_the_kek_differs_from_its_checkpoint() {
        let f = fixture(5);
        f.checkpoint();
        // The KEK holder cuts the chain, seals the new head, and appends anew.
        let h3: String =
            f.raw.query_row("SELECT hash FROM audit WHERE scope = 't' AND seq = 3", [], |r| r.get(0)).unwrap();
        f.cut_to(3, &f.log.head_mac(&f.t, 3, &h3));
        f.append(2);
        let v = f.verify(&f.t);
        assert!(!v.valid);
        assert_eq!(v.broken_at, Some(5));
        assert!(v.reason.unwrap().contains("differs from its checkpoint"));
    }

    #[test]
    fn a_valid_chain_reports_the_checkpoint_it_holds() {
        let f = fixture(4);
        f.checkpoint();
        f.append(2);
        let v = f.verify(&f.t);
        assert!(v.valid, "{v:?}");
        assert_eq!((v.records, v.checkpoint), (6, Some(4)));
        let system = f.verify(&TenantId::system());
        assert!(system.valid && system.records == 1, "{system:?}");
    }

    #[test]
    fn checkpoints_record_only_chains_that_moved() {
        let f = fixture(2);
        let first = f.checkpoint();
        assert_eq!(first.checkpointed, 1);
        let heads: Vec<(&str, i64)> = first.heads.iter().map(|h| (h.domain.as_str(), h.seq)).collect();
        assert_eq!(heads, [("corp.example", 2), ("", 1)], "the tenant chain, then the system chain");
        assert_eq!(f.checkpoint().checkpointed, 0);
        f.append(1);
        assert_eq!(f.checkpoint().checkpointed, 1);
        let cp = f.store.read(|tx| tx.last_audit_checkpoint(&f.t)).unwrap().unwrap();
        assert_eq!(cp.detail, format!("seq=3 hash={} domain=corp.example", f.head().hash));
    }

    #[test]
    fn a_cut_chain_is_not_checkpointed() {
        let f = fixture(5);
        f.checkpoint();
        let h3: String =
            f.raw.query_row("SELECT hash FROM audit WHERE scope = 't' AND seq = 3", [], |r| r.get(0)).unwrap();
        f.cut_to(3, &f.log.head_mac(&f.t, 3, &h3));
        let r = f.checkpoint();
        assert_eq!(r.checkpointed, 0);
        assert_eq!(r.refused.len(), 1);
        assert_eq!(r.refused[0].0, "corp.example");
        assert!(r.heads.iter().all(|h| h.scope.is_system()), "the cut head is not copied out");
        f.cut_to(3, "forged");
        assert_eq!(f.checkpoint().refused.len(), 1);
    }

    #[test]
    fn an_edited_checkpoint_does_not_verify() {
        let f = fixture(5);
        f.checkpoint();
        f.sql("UPDATE audit SET detail = replace(detail, 'seq=5', 'seq=2') WHERE scope = ''", []);
        let v = f.verify(&f.t);
        assert!(!v.valid);
        assert!(v.reason.unwrap().contains("not genuine"));
    }

    #[test]
    fn a_head_without_a_mac_is_sealed_only_if_its_chain_verifies() {
        let f = fixture(3);
        f.sql("UPDATE audit_heads SET mac = '' WHERE scope = 't'", []);
        assert!(f.verify(&f.t).reason.unwrap().contains("carries no MAC"));
        assert_eq!(f.store.write(|tx| f.log.seal_head(tx, &f.t, 500)).unwrap(), Ok(true));
        assert!(f.verify(&f.t).valid);
        let sys = f.store.read(|tx| tx.list_audit(&TenantId::system(), 0, 10)).unwrap();
        assert_eq!(sys.len(), 1);
        assert_eq!((sys[0].action.as_str(), sys[0].target.as_str()), ("audit.head_sealed", "t"));
        assert_eq!(f.store.write(|tx| f.log.seal_head(tx, &f.t, 500)).unwrap(), Ok(false), "sealed once");

        f.sql("UPDATE audit SET actor = 'mallory' WHERE scope = 't' AND seq = 2", []);
        f.sql("UPDATE audit_heads SET mac = '' WHERE scope = 't'", []);
        let refused = f.store.write(|tx| f.log.seal_head(tx, &f.t, 500)).unwrap();
        assert!(refused.unwrap_err().contains("record 2"));
        assert_eq!(f.head().mac, "", "left unsealed");
    }
}
