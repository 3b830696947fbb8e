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

/// Decodes the first PEM block labelled with one of `labels` (text around the
/// block is ignored, as RFC 7468 allows). The error says what is wrong.
pub(crate) fn decode(input: &str, labels: &[&str]) -> Result<Vec<u8>, &'static str> {
    use base64::Engine as _;
    for label in labels {
        let begin = format!("-----BEGIN {label}-----");
        let Some(start) = input.find(&begin) else { continue };
        let body_and_rest = &input[start + begin.len()..];
        let end = format!("-----END {label}-----");
        let stop = body_and_rest.find(&end).ok_or("PEM block has no matching END line")?;
        // The body may be a private key: do not leave a copy behind.
        let body: zeroize::Zeroizing<String> =
            zeroize::Zeroizing::new(body_and_rest[..stop].chars().filter(|c| !c.is_ascii_whitespace()).collect());
        return base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| "PEM body is not valid base64");
    }
    Err("no PEM block with the expected label")
}

#[cfg(test)]
mod tests {
    #[test]
    fn decoding_finds_the_labelled_block_and_rejects_bad_base64() {
        let pem = format!("explanatory text\n{}", super::encode("CERTIFICATE REQUEST", b"foobar"));
        assert_eq!(super::decode(&pem, &["NEW CERTIFICATE REQUEST", "CERTIFICATE REQUEST"]).unwrap(), b"foobar");
        assert!(super::decode(&pem, &["CERTIFICATE"]).is_err());
        assert!(super::decode("-----BEGIN X-----\n!!!\n-----END X-----\n", &["X"]).is_err());
        assert!(super::decode("-----BEGIN X-----\nZm9v\n", &["X"]).is_err());
    }

    #[test]
    fn encoding_matches_known_base64() {
        assert_eq!(super::encode("X", b"foobar"), "-----BEGIN X-----\nZm9vYmFy\n-----END X-----\n");
        assert_eq!(super::encode("X", b"fo"), "-----BEGIN X-----\nZm8=\n-----END X-----\n");
    }
}
