//! SHA-256 fingerprints in the `sha256:HEX` form the CLI pins servers by.

use aws_lc_rs::digest;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// `sha256:` followed by the lower-case hex SHA-256 of a DER certificate.
pub fn cert_fingerprint(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha256(der)))
}

/// Parses `sha256:HEX` (colons between hex pairs tolerated, any case) into the digest.
pub fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let hex_part = s.strip_prefix("sha256:").or_else(|| s.strip_prefix("SHA256:"))?;
    let cleaned: String = hex_part.chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(cleaned).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_round_trips_and_tolerates_openssl_colons() {
        let fp = cert_fingerprint(b"hello");
        let raw = parse_fingerprint(&fp).expect("parses");
        assert_eq!(raw, sha256(b"hello"));
        let openssl_style = format!("SHA256:{}", raw.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":"));
        assert_eq!(parse_fingerprint(&openssl_style), Some(raw));
    }

    #[test]
    fn malformed_fingerprints_are_refused() {
        assert_eq!(parse_fingerprint("md5:00"), None);
        assert_eq!(parse_fingerprint("sha256:zz"), None);
        assert_eq!(parse_fingerprint("sha256:00"), None);
    }
}
