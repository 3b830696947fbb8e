//! Password hashing (argon2id) behind one bounded gate, and the password
//! policy check.
//!
//! argon2id is memory-hard on purpose: each hash or verification fills
//! 19 MiB (the `argon2` crate's defaults: m=19 MiB, t=2, p=1). Unbounded,
//! a burst of logins for unknown users made `lightwelld` grow by 19 MiB per
//! login in flight, and glibc kept the freed memory. So:
//!
//! - every computation needs a [`HashPermit`] from the server's
//!   [`HashGate`], which hands out a few permits (twice the CPUs, at most
//!   16) and refuses with `overloaded` (503, `Retry-After`) a caller that
//!   waited for one for longer than a short wait — the peak is bounded by
//!   the permits, not by the callers;
//! - each computation works in memory of its own, reserved above glibc's
//!   largest dynamic mmap threshold (32 MiB on 64-bit), so the allocator
//!   maps it on its own and unmaps it when the computation ends, instead
//!   of keeping it in an arena: memory comes back after a burst.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use lightwell_proto::ErrorCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use zeroize::Zeroizing;

use crate::policy::PasswordPolicy;
use crate::{Error, Result};

/// The most permits a [`HashGate`] hands out by default, whatever the CPU
/// count: 16 computations in flight are about 300 MiB.
pub const MAX_DEFAULT_CONCURRENCY: usize = 16;

/// How long [`HashGate::enter`] waits for a permit by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(2);

/// The `Retry-After` (seconds) of an `overloaded` refusal.
const OVERLOADED_RETRY_AFTER_SECS: u64 = 1;

/// Work memory reserved per computation, in 1 KiB blocks (40 MiB, of which
/// a default hash touches 19): above glibc's largest dynamic mmap threshold,
/// so the block is always mapped alone and unmapped when freed.
const RESERVED_BLOCKS: usize = 40 * 1024;

/// The largest memory cost (KiB) of a stored hash that is computed (256 MiB):
/// a corrupted or hostile hash cannot make the server allocate more.
const MAX_M_COST: u32 = 256 * 1024;

/// Bounds how many argon2id computations run at once. Cheap to clone; the
/// clones share the permits.
#[derive(Debug, Clone)]
pub struct HashGate {
    permits: Arc<Semaphore>,
    /// The permits it hands out in all.
    concurrency: Arc<AtomicUsize>,
    wait: Duration,
}

/// Leave to compute one password hash (or several, one after the other);
/// the permit returns to its [`HashGate`] when dropped.
#[derive(Debug)]
pub struct HashPermit {
    _permit: OwnedSemaphorePermit,
}

impl Default for HashGate {
    fn default() -> Self {
        Self::new(Self::default_concurrency(), DEFAULT_WAIT)
    }
}

impl HashGate {
    /// A gate with `concurrency` permits (at least 1) whose callers wait at
    /// most `wait` for one.
    pub fn new(concurrency: usize, wait: Duration) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            concurrency: Arc::new(AtomicUsize::new(concurrency)),
            wait,
        }
    }

    /// Hands out `concurrency` permits (at least 1) from now on. Meant for
    /// start-up: lowering it while permits are out takes effect only as far
    /// as permits are free.
    pub fn set_concurrency(&self, concurrency: usize) {
        let want = concurrency.max(1);
        let have = self.concurrency.swap(want, Ordering::AcqRel);
        if want > have {
            self.permits.add_permits(want - have);
        } else {
            self.permits.forget_permits(have - want);
        }
    }

    /// The permits it hands out in all.
    pub fn concurrency(&self) -> usize {
        self.concurrency.load(Ordering::Acquire)
    }

    /// Twice the available CPUs, at most [`MAX_DEFAULT_CONCURRENCY`]: one
    /// computation per CPU plus as many whose holders are reading or writing
    /// the database around it.
    pub fn default_concurrency() -> usize {
        let cpus = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
        (2 * cpus).min(MAX_DEFAULT_CONCURRENCY)
    }

    /// Waits (at most the gate's wait) for a permit; `overloaded` with a
    /// retry delay if none came free.
    pub async fn enter(&self) -> Result<HashPermit> {
        match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(HashPermit { _permit: permit }),
            _ => Err(overloaded()),
        }
    }

    /// A permit if one is free now; `overloaded` otherwise.
    pub fn try_enter(&self) -> Result<HashPermit> {
        self.permits.clone().try_acquire_owned().map(|permit| HashPermit { _permit: permit }).map_err(|_| overloaded())
    }

    /// Permits free now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

fn overloaded() -> Error {
    Error::new(ErrorCode::Overloaded, "the server is busy checking other passwords; try again in a second")
        .with_retry_after(OVERLOADED_RETRY_AFTER_SECS)
}

impl HashPermit {
    /// Hashes a password with argon2id (default parameters) and a random
    /// salt; returns the PHC string.
    pub fn hash(&self, password: &str) -> Result<String> {
        let params = Params::default();
        let salt = lightwell_ca::random::bytes::<16>().map_err(Error::internal)?;
        let salt = Salt::new(&salt).map_err(Error::internal)?;
        let mut out = Zeroizing::new([0u8; Params::DEFAULT_OUTPUT_LEN]);
        compute(Algorithm::Argon2id, Version::V0x13, &params, password, &salt, out.as_mut_slice())
            .map_err(Error::internal)?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(Error::internal)?,
            salt: Some(salt),
            hash: Some(Output::new(out.as_slice()).map_err(Error::internal)?),
        };
        Ok(phc.to_string())
    }

    /// Verifies a password against a PHC string (argon2id, argon2i or
    /// argon2d, any parameters up to 256 MiB), comparing in constant time.
    /// Malformed hashes never verify.
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else { return false };
        let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else { return false };
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else { return false };
        let version = match parsed.version.map(Version::try_from) {
            None => Version::default(),
            Some(Ok(v)) => v,
            Some(Err(_)) => return false,
        };
        let Ok(params) = Params::try_from(&parsed) else { return false };
        if params.m_cost() > MAX_M_COST {
            return false;
        }
        let mut out = Zeroizing::new(vec![0u8; expected.len()]);
        if compute(algorithm, version, &params, password, salt, &mut out).is_err() {
            return false;
        }
        // `Output`'s equality is constant-time.
        Output::new(&out).is_ok_and(|computed| computed == *expected)
    }
}

/// One argon2 computation in memory of its own (see the module docs).
fn compute(
    algorithm: Algorithm,
    version: Version,
    params: &Params,
    password: &str,
    salt: &[u8],
    out: &mut [u8],
) -> std::result::Result<(), argon2::Error> {
    let blocks = params.block_count();
    let mut memory: Vec<Block> = Vec::with_capacity(blocks.max(RESERVED_BLOCKS));
    memory.resize(blocks, Block::new());
    Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        out,
        &mut memory,
    )
}

/// Checks a candidate password against the policy; the error says which rule failed.
pub fn check_policy(policy: &PasswordPolicy, user_name: &str, password: &str) -> Result<()> {
    let weak = |why: &str| Err(Error::new(ErrorCode::WeakPassword, format!("password {why}")));
    let len = password.chars().count();
    if len < policy.min_length {
        return weak(&format!("must be at least {} characters", policy.min_length));
    }
    if len > policy.max_length {
        return weak(&format!("must be at most {} characters", policy.max_length));
    }
    if policy.require_upper && !password.chars().any(char::is_uppercase) {
        return weak("needs an upper-case letter");
    }
    if policy.require_lower && !password.chars().any(char::is_lowercase) {
        return weak("needs a lower-case letter");
    }
    if policy.require_digit && !password.chars().any(|c| c.is_ascii_digit()) {
        return weak("needs a digit");
    }
    if policy.require_special && !password.chars().any(|c| !c.is_alphanumeric()) {
        return weak("needs a special character");
    }
    if !user_name.is_empty() && password.to_lowercase().contains(&user_name.to_lowercase()) {
        return weak("must not contain the user name");
    }
    Ok(())
}

/// Generates a random password that satisfies the default policy (24 characters).
pub fn generate() -> Result<Zeroizing<String>> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.!@%+=";
    loop {
        let bytes = Zeroizing::new(lightwell_ca::random::bytes::<24>().map_err(Error::internal)?);
        let pw: Zeroizing<String> =
            Zeroizing::new(bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect());
        if check_policy(&PasswordPolicy::default(), "", &pw).is_ok() {
            return Ok(pw);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permit() -> HashPermit {
        HashGate::new(1, Duration::ZERO).try_enter().unwrap()
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let p = permit();
        let h = p.hash("Correct-Horse-1").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(p.verify("Correct-Horse-1", &h));
        assert!(!p.verify("correct-horse-1", &h));
        assert!(!p.verify("x", "not a phc string"));
        assert_ne!(h, p.hash("Correct-Horse-1").unwrap(), "salted");
    }

    #[test]
    fn hashes_match_the_argon2_crate_both_ways() {
        // Hashes stored by earlier versions (the crate's own hasher) verify, and ours verify there.
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let p = permit();
        let theirs = Argon2::default().hash_password(b"Correct-Horse-1").unwrap().to_string();
        assert!(p.verify("Correct-Horse-1", &theirs));
        assert!(!p.verify("Correct-Horse-2", &theirs));
        let ours = p.hash("Correct-Horse-1").unwrap();
        assert!(Argon2::default().verify_password(b"Correct-Horse-1", ours.as_str()).is_ok());
        let cheap = Argon2::new(Algorithm::Argon2i, Version::V0x10, Params::new(64, 1, 1, Some(16)).unwrap())
            .hash_password(b"pw")
            .unwrap()
            .to_string();
        assert!(p.verify("pw", &cheap), "other variants and parameters: {cheap}");
    }

    #[test]
    fn hashes_asking_for_too_much_memory_never_verify() {
        let huge = "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(!permit().verify("pw", huge));
    }

    #[tokio::test]
    async fn the_gate_bounds_concurrent_permits_and_refuses_after_its_wait() {
        let gate = HashGate::new(2, Duration::from_millis(20));
        let a = gate.enter().await.unwrap();
        let _b = gate.try_enter().unwrap();
        assert_eq!(gate.available(), 0);
        let refused = gate.enter().await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::Overloaded);
        assert_eq!(refused.retry_after_secs, Some(1));
        assert_eq!(gate.try_enter().unwrap_err().code, ErrorCode::Overloaded);
        drop(a);
        gate.enter().await.unwrap();
    }

    #[tokio::test]
    async fn a_waiting_caller_gets_the_permit_another_returns() {
        let gate = HashGate::new(1, Duration::from_secs(30));
        let held = gate.enter().await.unwrap();
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter().await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        drop(held);
        waiter.await.unwrap().unwrap();
    }

    #[test]
    fn the_concurrency_can_be_set_at_start() {
        let gate = HashGate::new(4, Duration::ZERO);
        gate.set_concurrency(1);
        assert_eq!((gate.concurrency(), gate.available()), (1, 1));
        let _one = gate.try_enter().unwrap();
        assert!(gate.try_enter().is_err());
        gate.set_concurrency(3);
        assert_eq!(gate.available(), 2);
    }

    #[test]
    fn default_concurrency_is_twice_the_cpus_capped() {
        let cpus = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
        assert_eq!(HashGate::default_concurrency(), (2 * cpus).min(MAX_DEFAULT_CONCURRENCY));
    }

    #[test]
    fn policy_names_the_rule_that_failed() {
        let p = PasswordPolicy::default();
        let cases = [
            ("Sh0rt!", "at least 8"),
            ("alllower1!", "upper-case"),
            ("ALLUPPER1!", "lower-case"),
            ("NoDigits!!", "digit"),
            ("NoSpecial11", "special"),
            ("xAlice-2024", "user name"),
        ];
        for (pw, why) in cases {
            let e = check_policy(&p, "alice", pw).unwrap_err();
            assert_eq!(e.code, ErrorCode::WeakPassword);
            assert!(e.message.contains(why), "{pw}: {}", e.message);
        }
        check_policy(&p, "alice", "Str0ng-Pass").unwrap();
    }

    #[test]
    fn generated_passwords_satisfy_the_policy() {
        for _ in 0..20 {
            let pw = generate().unwrap();
            check_policy(&PasswordPolicy::default(), "administrator", &pw).unwrap();
        }
    }
}
