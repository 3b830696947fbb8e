//! The key-encryption key (KEK): seals private keys and other secrets at rest
//! with AES-256-GCM, and derives purpose-bound subkeys (for example the audit
//! chain's MAC key) with HKDF-SHA256.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf;
use zeroize::{Zeroize, Zeroizing};

use crate::{Error, random};

/// Sealed blobs start with this tag so the format can evolve.
const SEAL_V1: &[u8; 4] = b"LWK1";

/// A 256-bit key-encryption key, zeroized when dropped.
pub struct Kek {
    bytes: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

impl Kek {
    /// Generates a fresh random KEK.
    pub fn generate() -> Result<Self, Error> {
        Ok(Self { bytes: Zeroizing::new(random::bytes::<32>()?) })
    }

    /// Reads a KEK from its file form: 64 hex characters, surrounding whitespace ignored.
    pub fn from_file_contents(contents: &str) -> Result<Self, Error> {
        let mut raw = hex::decode(contents.trim()).map_err(|_| Error::Malformed("KEK is not hex"))?;
        let result = <[u8; 32]>::try_from(raw.as_slice())
            .map(|b| Self { bytes: Zeroizing::new(b) })
            .map_err(|_| Error::Malformed("KEK must be 32 bytes (64 hex characters)"));
        raw.zeroize();
        result
    }

    /// The file form of the KEK (64 hex characters and a newline).
    pub fn to_file_contents(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{}\n", hex::encode(*self.bytes)))
    }

    fn aead(&self) -> LessSafeKey {
        // AES_256_GCM accepts exactly 32 bytes, which the type guarantees.
        #[allow(clippy::unwrap_used)]
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &*self.bytes).unwrap())
    }

    /// Encrypts `plaintext`, binding it to `context` (for example a CA id) so a
    /// sealed blob cannot be moved to another record.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let nonce_bytes = random::bytes::<NONCE_LEN>()?;
        let mut buf = plaintext.to_vec();
        self.aead()
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce_bytes), Aad::from(context), &mut buf)
            .map_err(|_| Error::Random)?;
        let mut out = Vec::with_capacity(SEAL_V1.len() + NONCE_LEN + buf.len());
        out.extend_from_slice(SEAL_V1);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&buf);
        buf.zeroize();
        Ok(out)
    }

    /// Decrypts a blob made by [`Kek::seal`] with the same `context`.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        let rest = sealed.strip_prefix(SEAL_V1.as_slice()).ok_or(Error::Malformed("unknown sealed format"))?;
        if rest.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(Error::Malformed("sealed data too short"));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::Unseal)?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let plain_len =
            self.aead().open_in_place(nonce, Aad::from(context), &mut buf).map_err(|_| Error::Unseal)?.len();
        buf.truncate(plain_len);
        Ok(buf)
    }

    /// Derives a 32-byte subkey for one purpose (HKDF-SHA256, `info` = purpose).
    pub fn derive(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        struct Len32;
        impl hkdf::KeyType for Len32 {
            fn len(&self) -> usize {
                32
            }
        }
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"lightwell kek v1");
        let prk = salt.extract(&*self.bytes);
        let info = [purpose.as_bytes()];
        let mut out = Zeroizing::new([0u8; 32]);
        // A 32-byte output is far below HKDF-SHA256's limit of 255 * 32 bytes.
        #[allow(clippy::unwrap_used)]
        prk.expand(&info, Len32).unwrap().fill(&mut *out).unwrap();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_with_same_key_and_context() {
        let kek = Kek::generate().unwrap();
        let sealed = kek.seal(b"ca-1", b"secret key").unwrap();
        assert_eq!(&**kek.open(b"ca-1", &sealed).unwrap(), b"secret key");
        assert!(matches!(kek.open(b"ca-2", &sealed), Err(Error::Unseal)));
        let other = Kek::generate().unwrap();
        assert!(matches!(other.open(b"ca-1", &sealed), Err(Error::Unseal)));
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(kek.open(b"ca-1", &tampered), Err(Error::Unseal)));
        assert!(matches!(kek.open(b"ca-1", b"LWK1short"), Err(Error::Malformed(_))));
    }

    #[test]
    fn file_form_round_trips_and_rejects_garbage() {
        let kek = Kek::generate().unwrap();
        let again = Kek::from_file_contents(&kek.to_file_contents()).unwrap();
        assert_eq!(*kek.derive("audit"), *again.derive("audit"));
        assert_ne!(*kek.derive("audit"), *kek.derive("other"));
        assert!(Kek::from_file_contents("not hex").is_err());
        assert!(Kek::from_file_contents("abcd").is_err());
    }
}
