//! The CRL signer: re-signs the CRLs that revocations marked as pending
//! (large CRLs, see [`Inner::crl_changed`]) outside any write transaction.
//!
//! For each mark it reads the CA, its entries and the mark's generation in
//! one read transaction, signs, then in a short write transaction stores the
//! CRL only if the CA's next CRL Number is still the one it signed with
//! (else someone else signed meanwhile — the hourly refresh, a revocation of
//! a CRL that became small, another replica — and the build is discarded),
//! and clears the mark only if its generation is still the one read:
//! revocations acknowledged during the build keep it, and get one more build
//! between them. Marks live in the database, so a crash between the
//! acknowledgement and the signature loses nothing: every signer scans for
//! marks at start and every `SCAN_INTERVAL`, and on PostgreSQL any
//! replica may sign (the number check makes concurrent signers safe).

use std::time::Duration;

use lightwell_store::{CrlPending, StoreExt, TenantId};
use tokio::sync::watch;

use crate::service::{Inner, Service, Tenant};
use crate::{Error, Result};

/// How often the signer looks for marks nobody woke it for (left by a
/// crashed process, or made on another replica). One indexed query.
const SCAN_INTERVAL: Duration = Duration::from_secs(30);
/// Longest wait after failed passes (the wait doubles from one second).
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Pause between a wake and the pass: the woken signer would otherwise
/// start reading and signing (CPU-bound, for seconds at 1M entries) while
/// the revocation's answer is still being sent, and a burst's marks gather
/// into one build. Small next to any build that takes this path.
const WAKE_DELAY: Duration = Duration::from_millis(10);

/// What one pass of the signer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignerPass {
    /// Marks found at the start of the pass.
    pub pending: usize,
    /// CRLs signed and stored.
    pub signed: usize,
    /// Builds thrown away because someone else signed meanwhile.
    pub discarded: usize,
}

/// The outcome for one mark.
enum Outcome {
    Signed,
    Discarded,
    /// Nothing to do: signed by someone else already, or its CA or tenant is gone.
    Gone,
}

impl Inner {
    /// Re-signs one pending CRL (see the module documentation).
    fn sign_pending_crl(&self, tenant_id: &TenantId, ca_id: &str) -> Result<Outcome> {
        let read = self.store.read(|tx| {
            let Some(mark) = tx.pending_crls(tenant_id)?.into_iter().find(|m| m.ca_id == ca_id) else {
                return Ok(None);
            };
            let Some(t) = tx.tenant(tenant_id)?.map(|r| Tenant::from(&r)) else { return Ok(Some((mark, None))) };
            let ca = tx.ca(&t.id, ca_id)?;
            let now = self.now();
            let revoked = match &ca {
                Some(ca) => self.crl_entries(tx, &t, ca, now)?,
                None => Vec::new(),
            };
            // The CRLs these replace, for the recorded changes and the delta CRL's base (see below).
            let previous = (tx.crl(&t.id, ca_id)?, tx.delta_crl(&t.id, ca_id)?);
            Ok::<_, Error>(Some((mark, Some((t, ca, revoked, now, previous)))))
        })?;
        let (generation, (t, ca, revoked, now, previous)) = match read {
            None => return Ok(Outcome::Gone),
            Some((CrlPending { generation, .. }, Some(found))) => (generation, found),
            // The tenant or the CA went (tenant deletion removes its marks; this is belt and braces).
            Some((CrlPending { generation, .. }, None)) => {
                self.store.write(|tx| tx.clear_crl_pending(tenant_id, ca_id, Some(generation)))?;
                return Ok(Outcome::Gone);
            }
        };
        let Some(ca) = ca else {
            self.store.write(|tx| tx.clear_crl_pending(&t.id, ca_id, Some(generation)))?;
            return Ok(Outcome::Gone);
        };
        let (previous, previous_delta) = previous;
        let signed = self.sign_crl(&t, &ca, &revoked, previous_delta.as_ref(), now)?;
        drop(revoked);
        // The trust changes, deltas from the CRLs read with the CA (in the
        // same transaction), computed here rather than in the write
        // transaction: at a million entries it takes a while. The number
        // check below proves those CRLs are still the ones stored.
        let updates = (
            super::trust::crl_update(previous.as_ref(), &signed.complete),
            signed.delta.as_ref().map(|d| super::trust::delta_crl_update(previous_delta.as_ref(), d)),
        );
        drop(previous);
        self.store.write(|tx| {
            let Some(current) = tx.ca(&t.id, ca_id)? else { return Ok(Outcome::Gone) };
            if current.next_crl_number != signed.complete.number {
                return Ok(Outcome::Discarded);
            }
            self.store_crl(tx, &t, current, &signed, Some(&updates))?;
            tx.clear_crl_pending(&t.id, ca_id, Some(generation))?;
            Ok(Outcome::Signed)
        })
    }

    /// One pass over every mark. A failure on one CA does not stop the
    /// others; the first error is returned after all were tried.
    fn sign_pending_crls(&self) -> Result<SignerPass> {
        let tenants = self.store.read(|tx| tx.tenants_with_pending_crls())?;
        let mut pass = SignerPass::default();
        let mut first_error = None;
        for tenant in tenants {
            let marks = self.store.read(|tx| tx.pending_crls(&tenant))?;
            for mark in marks {
                pass.pending += 1;
                match self.sign_pending_crl(&tenant, &mark.ca_id) {
                    Ok(Outcome::Signed) => {
                        pass.signed += 1;
                        self.observer.crl_signed_in_background();
                    }
                    Ok(Outcome::Discarded) => {
                        pass.discarded += 1;
                        self.observer.crl_build_discarded();
                    }
                    Ok(Outcome::Gone) => {}
                    Err(e) => {
                        tracing::warn!(tenant = tenant.as_str(), ca = %mark.ca_id, error = %e, "re-signing a CRL");
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        self.observer.crls_pending(pass.pending.saturating_sub(pass.signed));
        match first_error {
            Some(e) => Err(e),
            None => Ok(pass),
        }
    }
}

impl Service {
    /// One pass of the CRL signer over every pending CRL (what
    /// [`Service::run_crl_signer`] repeats).
    pub async fn sign_pending_crls(&self) -> Result<SignerPass> {
        self.blocking(|inner| inner.sign_pending_crls()).await
    }

    /// The CRL signer of this process, until `stop` fires: a pass at start,
    /// then whenever a revocation here marked a CRL, and every
    /// 30 s (`SCAN_INTERVAL`). Passes repeat while they find marks (revocations
    /// during a build leave one, so many revocations cost one more build,
    /// not one each). Errors are logged and retried with back-off.
    pub async fn run_crl_signer(self, mut stop: watch::Receiver<bool>) {
        let mut backoff = Duration::ZERO;
        loop {
            let wait = match self.sign_pending_crls().await {
                Ok(pass) if pass.signed + pass.discarded > 0 => {
                    backoff = Duration::ZERO;
                    tracing::debug!(signed = pass.signed, discarded = pass.discarded, "CRL signer pass");
                    Duration::ZERO
                }
                Ok(_) => {
                    backoff = Duration::ZERO;
                    SCAN_INTERVAL
                }
                Err(e) => {
                    backoff = (backoff * 2).clamp(Duration::from_secs(1), MAX_BACKOFF);
                    tracing::warn!(error = %e, retry_in_secs = backoff.as_secs(), "CRL signer");
                    backoff
                }
            };
            if *stop.borrow() {
                return;
            }
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                // Not while backing off: a burst of revocations during an outage would retry at their rate.
                _ = self.inner.crl_wake.notified(), if backoff.is_zero() => {
                    tokio::time::sleep(WAKE_DELAY).await;
                }
                _ = stop.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;
    use std::sync::Arc;
    use std::time::Instant;

    use lightwell_ca::kek::Kek;
    use lightwell_store::sqlite::SqliteStore;
    use lightwell_store::{CertificateRecord, PrincipalKind, Store};
    use zeroize::Zeroizing;

    use super::*;
    use crate::authz::Actor;
    use crate::clock::SystemClock;
    use crate::{LoginScope, NoopObserver, ServiceConfig};

    const LOCALHOST: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    const DOMAIN: &str = "corp.example";
    const PASSWORD: &str = "Admin-Passw0rd!";

    /// A service over the SQLite file `db`, as `lightwelld` builds it.
    fn service(db: &Path, kek: &Kek, crl_sync_limit: u64) -> (Service, Arc<dyn Store>) {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(db).unwrap());
        let config = ServiceConfig { crl_sync_limit, ..ServiceConfig::default() };
        let service = Service::new(store.clone(), Arc::new(SystemClock), kek, Arc::new(NoopObserver), config).unwrap();
        (service, store)
    }

    /// Creates the tenant; returns its administrator and its default issuing CA's id.
    async fn tenant(service: &Service) -> (Actor, crate::CaId) {
        let operator = Actor::Operator { id: crate::PrincipalId::stored("operator") };
        service.create_tenant(&operator, DOMAIN, Some(Zeroizing::new(PASSWORD.into())), None).await.unwrap();
        let admin = service
            .login(
                LoginScope::Tenant(DOMAIN.into()),
                "administrator".into(),
                Zeroizing::new(PASSWORD.into()),
                LOCALHOST,
            )
            .await
            .unwrap()
            .actor;
        let ca = service.list_cas(&admin, DOMAIN).await.unwrap().into_iter().find(|c| c.info.is_default).unwrap();
        (admin, ca.info.id)
    }

    /// Records `n` certificates of the administrator issued by `ca_id` (rows
    /// only: nothing here reads a certificate's DER); returns their serials.
    fn certificates(store: &dyn Store, admin: &Actor, ca_id: &crate::CaId, n: usize) -> Vec<String> {
        let Actor::Principal(p) = admin else { unreachable!() };
        let now = crate::clock::Clock::unix(&SystemClock);
        let serials: Vec<String> = (0..n).map(|_| lightwell_ca::Serial::random().unwrap().to_hex()).collect();
        store
            .write(|tx| {
                for serial in &serials {
                    tx.insert_certificate(&CertificateRecord {
                        serial: serial.clone(),
                        tenant_id: p.tenant_id.clone(),
                        ca_id: ca_id.to_string(),
                        principal_id: p.id.to_string(),
                        principal_kind: PrincipalKind::User,
                        principal_name: p.name.clone(),
                        profile: "client".into(),
                        der: vec![0x30, 0],
                        not_before: now,
                        not_after: now + 86_400,
                        requester: "user:administrator".into(),
                        created_at: now,
                        revoked_at: None,
                        revocation_reason: None,
                    })?;
                }
                Ok::<_, lightwell_store::StoreError>(())
            })
            .unwrap();
        serials
    }

    /// The CRL Number and the serials (lower-case hex) of the CRL served for `ca_id`.
    async fn served(service: &Service, ca_id: &crate::CaId) -> (u64, Vec<String>) {
        let der = service.public_crl(DOMAIN, ca_id, crate::CrlKind::Complete).await.unwrap();
        let (_, crl) = x509_parser::parse_x509_crl(&der).unwrap();
        let number = crl.crl_number().unwrap().to_u64_digits().first().copied().unwrap_or(0);
        let serials = crl.iter_revoked_certificates().map(|r| key(&hex::encode(r.raw_serial()))).collect();
        (number, serials)
    }

    /// How far an issuing CA's CRL Number moves per signing: its complete
    /// and delta CRLs share one sequence (RFC 5280 section 5.2.4).
    const STEP: u64 = 2;

    /// A hex serial without leading zeros (DER may add one).
    fn key(hex: &str) -> String {
        hex.trim_start_matches('0').to_string()
    }

    fn pending(store: &dyn Store, admin: &Actor) -> Vec<CrlPending> {
        let Actor::Principal(p) = admin else { unreachable!() };
        store.read(|tx| tx.pending_crls(&p.tenant_id)).unwrap()
    }

    /// The two changes recorded after `since`, which must be a patch of
    /// `ca`'s CRL and then its new delta CRL; returns the patch and the
    /// delta CRL, rebuilt from `previous_delta_crl` when recorded as a patch.
    async fn recorded_delta(
        service: &Service,
        ca: &crate::CaId,
        since: i64,
        previous_delta_crl: &[u8],
    ) -> (Vec<u8>, Vec<u8>) {
        let crate::TrustChanges::Changes { changes, .. } = service.trust_changes(DOMAIN, since).await.unwrap() else {
            panic!("snapshot required after {since}")
        };
        let [
            crate::TrustUpdate::Crl { ca_id, crl: None, delta: Some(delta), number },
            crate::TrustUpdate::DeltaCrl {
                ca_id: delta_ca,
                crl: delta_crl,
                delta: delta_patch,
                number: delta_number,
                ..
            },
        ] = &changes[..]
        else {
            panic!("not a CRL patch and a delta CRL: {changes:?}")
        };
        assert_eq!((ca_id.as_str(), delta_ca.as_str()), (ca.as_str(), ca.as_str()));
        assert_eq!(*delta_number, number + 1, "the delta CRL is numbered right after its complete CRL");
        let delta_crl = match (delta_crl, delta_patch) {
            (Some(whole), None) => whole.clone(),
            (None, Some(patch)) => {
                lightwell_ca::crl::delta::CrlDelta::from_der(patch).unwrap().apply(previous_delta_crl).unwrap()
            }
            other => panic!("a delta CRL change is whole or a patch: {other:?}"),
        };
        (delta.clone(), delta_crl)
    }

    #[tokio::test]
    async fn a_re_signed_crl_is_recorded_as_a_delta_that_rebuilds_the_served_crl_inline_and_in_the_signer() {
        let dir = tempfile::tempdir().unwrap();
        let (service, store) = service(&dir.path().join("lw.db"), &Kek::generate().unwrap(), 101);
        let (admin, ca) = tenant(&service).await;
        let serials = certificates(&*store, &admin, &ca, 102);
        for serial in &serials[..100] {
            service.revoke_certificate(&admin, DOMAIN, serial, None).await.unwrap();
        }
        service.sign_pending_crls().await.unwrap();
        // Inline (101 entries, the limit), then past it (the signer).
        for (serial, by_signer) in serials[100..].iter().zip([0, 1]) {
            let base = service.public_crl(DOMAIN, &ca, crate::CrlKind::Complete).await.unwrap();
            let base_delta = service.public_crl(DOMAIN, &ca, crate::CrlKind::Delta).await.unwrap();
            let (_, since) = service.trust_revision(DOMAIN).await.unwrap();
            service.revoke_certificate(&admin, DOMAIN, serial, None).await.unwrap();
            assert_eq!(service.sign_pending_crls().await.unwrap().signed, by_signer);
            let (patch, delta_crl) = recorded_delta(&service, &ca, since, &base_delta).await;
            let delta = lightwell_ca::crl::delta::CrlDelta::from_der(&patch).unwrap();
            let served = service.public_crl(DOMAIN, &ca, crate::CrlKind::Complete).await.unwrap();
            assert!(base.len() > 2048);
            assert!(delta.apply(&base).unwrap() == served, "the delta rebuilds the served CRL");
            assert!(delta.to_der().len() < 300);
            // The delta CRL served is the one recorded, and lists the revocation (all 102 are recent).
            assert!(service.public_crl(DOMAIN, &ca, crate::CrlKind::Delta).await.unwrap() == delta_crl);
            let (_, parsed) = x509_parser::parse_x509_crl(&delta_crl).unwrap();
            assert!(parsed.iter_revoked_certificates().any(|r| key(&hex::encode(r.raw_serial())) == key(serial)));
        }
    }

    #[tokio::test]
    async fn small_crls_are_still_re_signed_inside_the_revoking_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let (service, store) = service(&dir.path().join("lw.db"), &Kek::generate().unwrap(), 1000);
        let (admin, ca) = tenant(&service).await;
        let serial = certificates(&*store, &admin, &ca, 1).remove(0);
        let (before, _) = served(&service, &ca).await;
        service.revoke_certificate(&admin, DOMAIN, &serial, None).await.unwrap();
        let (number, serials) = served(&service, &ca).await;
        assert_eq!((number, serials), (before + STEP, vec![key(&serial)]), "the next CRL served lists it");
        assert!(pending(&*store, &admin).is_empty());
    }

    #[tokio::test]
    async fn revocations_of_a_large_crl_are_acknowledged_at_once_and_one_signer_pass_lists_them_all() {
        let dir = tempfile::tempdir().unwrap();
        let (service, store) = service(&dir.path().join("lw.db"), &Kek::generate().unwrap(), 2);
        let (admin, ca) = tenant(&service).await;
        let serials = certificates(&*store, &admin, &ca, 6);
        let (first, _) = served(&service, &ca).await;
        for serial in &serials {
            service.revoke_certificate(&admin, DOMAIN, serial, Some("key-compromise")).await.unwrap();
        }
        // Up to the limit (two entries) the CRL was re-signed in the transaction; beyond it, only marked.
        let (number, listed) = served(&service, &ca).await;
        assert_eq!((number, listed.len()), (first + 2 * STEP, 2));
        let marks = pending(&*store, &admin);
        assert_eq!((marks.len(), marks[0].generation), (1, 4), "four revocations marked the CA four times");

        // No signer ran; one pass signs once for the four of them.
        let pass = service.sign_pending_crls().await.unwrap();
        assert_eq!(pass, SignerPass { pending: 1, signed: 1, discarded: 0 });
        let (number, mut listed) = served(&service, &ca).await;
        let mut wanted: Vec<String> = serials.iter().map(|s| key(s)).collect();
        wanted.sort();
        listed.sort();
        assert_eq!((number, listed), (first + 3 * STEP, wanted));
        assert!(pending(&*store, &admin).is_empty());
        assert_eq!(service.sign_pending_crls().await.unwrap(), SignerPass::default(), "nothing left to sign");
    }

    #[tokio::test]
    async fn a_crl_left_pending_by_a_stopped_server_is_signed_when_the_next_one_starts() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("lw.db");
        let kek = Kek::generate().unwrap();
        let (service_a, store) = service(&db, &kek, 0);
        let (admin, ca) = tenant(&service_a).await;
        let serial = certificates(&*store, &admin, &ca, 1).remove(0);
        let (before, _) = served(&service_a, &ca).await;
        // Acknowledged and committed; the process goes away before any signer ran.
        service_a.revoke_certificate(&admin, DOMAIN, &serial, None).await.unwrap();
        assert_eq!(pending(&*store, &admin).len(), 1);
        drop((service_a, store));

        let (service_b, store) = service(&db, &kek, 0);
        let (stop_tx, stop) = watch::channel(false);
        let signer = tokio::spawn(service_b.clone().run_crl_signer(stop));
        let started = Instant::now();
        let listed = loop {
            let (number, serials) = served(&service_b, &ca).await;
            if serials.contains(&key(&serial)) {
                break number;
            }
            // Well inside SCAN_INTERVAL: only the pass at start can have signed it.
            assert!(started.elapsed() < Duration::from_secs(5), "the CRL never listed the revocation");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(listed, before + STEP);
        assert!(pending(&*store, &admin).is_empty());
        stop_tx.send(true).unwrap();
        signer.await.unwrap();
    }
}
