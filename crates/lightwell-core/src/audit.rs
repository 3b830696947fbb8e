//! The tamper-evident audit log: one chain per tenant plus the system chain.
//!
//! Each record carries an HMAC-SHA256 over its fields and the previous
//! record's MAC. The MAC key is derived from the key-encryption key, so
//! someone with write access to the database but not the KEK can neither
//! edit a record, insert one, nor delete one from the middle without
//! `verify` noticing. The chain head is kept in its own row, so deleting
//! the newest record is noticed as well.

use aws_lc_rs::hmac;
use lightwell_store::{AuditRecord, StoreError, TenantId, Tx};

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
    key: hmac::Key,
}

impl AuditLog {
    /// An audit log keyed with a 32-byte MAC key.
    pub fn new(mac_key: &[u8; 32]) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, mac_key) }
    }

    fn mac(&self, r: &AuditRecord) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        // Length-prefixed fields: no two different records encode the same.
        let seq = r.seq.to_string();
        let at = r.at.to_string();
        for field in [r.scope.as_str(), &seq, &at, &r.actor, &r.action, &r.target, &r.outcome, &r.detail, &r.prev_hash]
        {
            ctx.update(&(field.len() as u64).to_be_bytes());
            ctx.update(field.as_bytes());
        }
        hex::encode(ctx.sign().as_ref())
    }

    /// Appends an event to `scope`'s chain inside the caller's transaction.
    pub fn append(&self, tx: &mut dyn Tx, scope: &TenantId, at: i64, ev: AuditEvent) -> Result<(), StoreError> {
        let head = tx.audit_head(scope)?;
        let (seq, prev_hash) = head.map(|h| (h.seq + 1, h.hash)).unwrap_or((1, String::new()));
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
        tx.insert_audit(&rec)
    }

    /// Verifies a whole chain inside the caller's (read) transaction.
    pub fn verify(&self, tx: &mut dyn Tx, scope: &TenantId) -> Result<Verification, StoreError> {
        const PAGE: u32 = 1000;
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
                if r.hash != self.mac(&r) {
                    return Ok(broken("its contents do not match its MAC (modified)"));
                }
                prev_hash = r.hash;
                expected_seq += 1;
                count += 1;
            }
            if page_len < PAGE as usize {
                break;
            }
        }
        match tx.audit_head(scope)? {
            None if count == 0 => {}
            Some(h) if h.seq == count && h.hash == prev_hash => {}
            Some(h) => {
                return Ok(Verification::broken(
                    count,
                    count + 1,
                    &format!("the chain head names record {} but the chain ends at {count} (records deleted)", h.seq),
                ));
            }
            None => return Ok(Verification::broken(count, 1, "the chain head is missing")),
        }
        Ok(Verification { valid: true, records: count, broken_at: None, reason: None })
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
}

impl Verification {
    fn broken(records: i64, at: i64, reason: &str) -> Self {
        Self { valid: false, records, broken_at: Some(at), reason: Some(format!("record {at}: {reason}")) }
    }
}
