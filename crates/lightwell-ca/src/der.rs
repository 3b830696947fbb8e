//! The little DER Lightwell writes or rearranges itself: names, the AIA
//! extension, and splitting rcgen's output so names can be swapped and the
//! to-be-signed bytes signed by the real key. Input here is always DER this
//! crate produced, but it is still parsed defensively.
use crate::Error;

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;
pub(crate) const UTF8_STRING: u8 = 0x0c;
pub(crate) const BIT_STRING: u8 = 0x03;
/// `[6] IMPLICIT IA5String`: a URI in a GeneralName.
pub(crate) const GENERAL_NAME_URI: u8 = 0x86;

/// Encodes one TLV with a low-number tag.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Encodes a SEQUENCE of already-encoded elements.
pub(crate) fn sequence(elements: &[&[u8]]) -> Vec<u8> {
    tlv(SEQUENCE, &elements.concat())
}

/// Reads one TLV from the front of `input`: (tag, whole TLV, rest).
fn read_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), Error> {
    let (&tag, rest) = input.split_first().ok_or(Error::Encoding("empty DER"))?;
    if tag & 0x1f == 0x1f {
        return Err(Error::Encoding("high-number DER tag"));
    }
    let (&first, rest) = rest.split_first().ok_or(Error::Encoding("truncated DER"))?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(Error::Encoding("unsupported DER length"));
        }
        let len_bytes = rest.get(..n).ok_or(Error::Encoding("truncated DER"))?;
        (len_bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), 2 + n)
    };
    let end = header.checked_add(len).ok_or(Error::Encoding("DER length overflow"))?;
    let whole = input.get(..end).ok_or(Error::Encoding("truncated DER"))?;
    Ok((tag, whole, &input[end..]))
}

/// Splits a DER SEQUENCE (which must be all of `der`) into its raw elements.
pub(crate) fn sequence_elements(der: &[u8]) -> Result<Vec<&[u8]>, Error> {
    let (tag, whole, rest) = read_tlv(der)?;
    if tag != SEQUENCE || !rest.is_empty() {
        return Err(Error::Encoding("expected exactly one SEQUENCE"));
    }
    let header = whole.len() - content_len(whole)?;
    let mut content = &whole[header..];
    let mut out = Vec::new();
    while !content.is_empty() {
        let (_, element, rest) = read_tlv(content)?;
        out.push(element);
        content = rest;
    }
    Ok(out)
}

fn content_len(whole: &[u8]) -> Result<usize, Error> {
    let first = *whole.get(1).ok_or(Error::Encoding("truncated DER"))?;
    let header = if first < 0x80 { 2 } else { 2 + usize::from(first & 0x7f) };
    whole.len().checked_sub(header).ok_or(Error::Encoding("truncated DER"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let inner = tlv(0x04, &vec![7u8; len]);
            let seq = sequence(&[&inner, &inner]);
            assert_eq!(sequence_elements(&seq).unwrap(), vec![&inner[..], &inner[..]]);
        }
    }

    #[test]
    fn truncated_or_trailing_input_is_an_error() {
        let seq = sequence(&[&tlv(0x04, b"abc")]);
        assert!(sequence_elements(&seq[..seq.len() - 1]).is_err());
        let mut trailing = seq.clone();
        trailing.push(0);
        assert!(sequence_elements(&trailing).is_err());
        assert!(sequence_elements(&[]).is_err());
        assert!(sequence_elements(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
    }
}
