//! An OpenSSL hashed CApath directory: `HASH.N` for CA certificates and
//! `HASH.rN` for CRLs, the layout `openssl rehash` produces. Files are
//! regular PEM files (not symlinks) written atomically, so a reader never
//! sees a dangling or half-written entry.

use std::collections::BTreeMap;
use std::path::Path;

use lightwell_ca::openssl_hash::{certificate_subject_hash, crl_issuer_hash};
use lightwell_ca::pem;

/// What a CApath directory should hold: file name → PEM contents.
pub fn layout(ca_certs: &[Vec<u8>], crls: &[Vec<u8>]) -> Result<BTreeMap<String, String>, lightwell_ca::Error> {
    let mut files = BTreeMap::new();
    let mut next = |prefix: String, suffix: &str, body: String| {
        // Equal hashes of different names take the next free index, as in `openssl rehash`.
        let mut i = 0;
        while files.contains_key(&format!("{prefix}.{suffix}{i}")) {
            i += 1;
        }
        files.insert(format!("{prefix}.{suffix}{i}"), body);
    };
    for der in ca_certs {
        let h = certificate_subject_hash(der)?;
        next(format!("{h:08x}"), "", pem::encode("CERTIFICATE", der));
    }
    for der in crls {
        let h = crl_issuer_hash(der)?;
        next(format!("{h:08x}"), "r", pem::encode("X509 CRL", der));
    }
    Ok(files)
}

fn is_hash_entry(name: &str) -> bool {
    let Some((hash, index)) = name.split_once('.') else { return false };
    hash.len() == 8
        && hash.bytes().all(|b| b.is_ascii_hexdigit())
        && !index.is_empty()
        && index.trim_start_matches('r').bytes().all(|b| b.is_ascii_digit())
        && !index.trim_start_matches('r').is_empty()
}

/// Makes `dir` hold exactly `files` (among hash-named entries; other files are
/// left alone). Returns the names written or removed.
pub fn sync(dir: &Path, files: &BTreeMap<String, String>) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut changed = Vec::new();
    for (name, body) in files {
        let path = dir.join(name);
        if std::fs::read(&path).ok().as_deref() != Some(body.as_bytes()) {
            crate::files::replace(&path, body.as_bytes(), 0o644, crate::files::Durability::Atomic)?;
            changed.push(name.clone());
        }
    }
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if is_hash_entry(&name) && !files.contains_key(&name) {
            std::fs::remove_file(dir.join(&name))?;
            changed.push(name);
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hash_named_entries_are_managed() {
        for good in ["0a1b2c3d.0", "deadbeef.r0", "deadbeef.12", "DEADBEEF.r3"] {
            assert!(is_hash_entry(good), "{good}");
        }
        for other in ["bundle.pem", "deadbeef.pem", "deadbee.0", "deadbeef.", "deadbeef.r", "README"] {
            assert!(!is_hash_entry(other), "{other}");
        }
    }

    #[test]
    fn sync_writes_new_entries_and_removes_stale_ones_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "x").unwrap();
        std::fs::write(dir.path().join("00000000.r0"), "stale").unwrap();
        let mut want = BTreeMap::new();
        want.insert("11111111.0".to_string(), "cert".to_string());
        let changed = sync(dir.path(), &want).unwrap();
        assert_eq!(changed, vec!["11111111.0".to_string(), "00000000.r0".to_string()]);
        assert!(dir.path().join("keep.txt").exists());
        assert!(sync(dir.path(), &want).unwrap().is_empty(), "idempotent");
    }
}
