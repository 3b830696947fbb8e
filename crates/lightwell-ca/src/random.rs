//! Random bytes from the one crypto provider (aws-lc-rs).

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::Error;

/// Fills a fresh array with cryptographically secure random bytes.
pub fn bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut out = [0u8; N];
    SystemRandom::new().fill(&mut out).map_err(|_| Error::Random)?;
    Ok(out)
}
