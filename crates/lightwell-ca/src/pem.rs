//! PEM encoding (RFC 7468) of DER structures.

/// PEM-encodes DER with the given label (64-column lines, RFC 7468).
pub fn encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encoding_matches_known_base64() {
        assert_eq!(super::encode("X", b"foobar"), "-----BEGIN X-----\nZm9vYmFy\n-----END X-----\n");
        assert_eq!(super::encode("X", b"fo"), "-----BEGIN X-----\nZm8=\n-----END X-----\n");
    }
}
