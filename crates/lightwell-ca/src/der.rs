//! The little DER Lightwell writes or rearranges itself: names, the AIA
//! extension, CRL entry lists, and splitting rcgen's output so names can be
//! swapped and the to-be-signed bytes signed by the real key. Input here is
//! always DER this crate produced, but it is still read strictly: the CRL
//! lint walks entry lists with [`read`].
use crate::Error;

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;
pub(crate) const UTF8_STRING: u8 = 0x0c;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const BOOLEAN: u8 = 0x01;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const OCTET_STRING: u8 = 0x04;
/// `[6] IMPLICIT IA5String`: a URI in a GeneralName.
pub(crate) const GENERAL_NAME_URI: u8 = 0x86;

/// Encodes one TLV with a low-number tag.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header_len(content.len()) + content.len());
    write_header(&mut out, tag, content.len());
    out.extend_from_slice(content);
    out
}

/// Encodes a non-negative INTEGER in the fewest octets.
pub(crate) fn unsigned_integer(n: u64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len() - 1);
    let mut content = Vec::with_capacity(9);
    if bytes[first] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(&bytes[first..]);
    tlv(INTEGER, &content)
}

/// Encodes a SEQUENCE of already-encoded elements.
pub(crate) fn sequence(elements: &[&[u8]]) -> Vec<u8> {
    tlv(SEQUENCE, &elements.concat())
}

/// Octets of the tag and length of a TLV with `len` content octets.
pub(crate) fn header_len(len: usize) -> usize {
    if len < 0x80 { 2 } else { 2 + significant_octets(len) }
}

/// Appends the tag and the (minimal, DER) length of a TLV with `len` content
/// octets; the caller appends the content.
pub(crate) fn write_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let n = significant_octets(len);
        out.push(0x80 | n as u8);
        out.extend_from_slice(&len.to_be_bytes()[size_of::<usize>() - n..]);
    }
}

fn significant_octets(len: usize) -> usize {
    size_of::<usize>() - len.leading_zeros() as usize / 8
}

/// One TLV read from the front of some input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    /// Tag, length and content.
    pub(crate) whole: &'a [u8],
    pub(crate) content: &'a [u8],
}

/// Reads one TLV from the front of `input`, returning it and the rest.
/// Strict DER: a low-number tag, a definite length in the fewest octets
/// (at most four), and all of its content present.
pub(crate) fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), Error> {
    let [tag, first, rest @ ..] = input else {
        return Err(Error::Encoding("truncated DER"));
    };
    if tag & 0x1f == 0x1f {
        return Err(Error::Encoding("high-number DER tag"));
    }
    let (len, header) = if *first < 0x80 {
        (usize::from(*first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(Error::Encoding("unsupported DER length"));
        }
        let len_bytes = rest.get(..n).ok_or(Error::Encoding("truncated DER"))?;
        let len = len_bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if len < 0x80 || len_bytes[0] == 0 {
            return Err(Error::Encoding("DER length not in the fewest octets"));
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len).ok_or(Error::Encoding("DER length overflow"))?;
    let whole = input.get(..end).ok_or(Error::Encoding("truncated DER"))?;
    Ok((Tlv { tag: *tag, whole, content: &whole[header..] }, &input[end..]))
}

/// Reads a TLV that must carry `tag`.
pub(crate) fn expect<'a>(input: &'a [u8], tag: u8, what: &'static str) -> Result<(&'a [u8], &'a [u8]), Error> {
    let (tlv, rest) = read(input)?;
    if tlv.tag != tag {
        return Err(Error::Encoding(what));
    }
    Ok((tlv.content, rest))
}

/// Splits a DER SEQUENCE (which must be all of `der`) into its raw elements.
pub(crate) fn sequence_elements(der: &[u8]) -> Result<Vec<&[u8]>, Error> {
    let (tlv, rest) = read(der)?;
    if tlv.tag != SEQUENCE || !rest.is_empty() {
        return Err(Error::Encoding("expected exactly one SEQUENCE"));
    }
    let mut content = tlv.content;
    let mut out = Vec::new();
    while !content.is_empty() {
        let (element, rest) = read(content)?;
        out.push(element.whole);
        content = rest;
    }
    Ok(out)
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

    #[test]
    fn lengths_are_written_and_read_in_the_fewest_octets() {
        for (len, header) in
            [(0usize, 2), (127, 2), (128, 3), (255, 3), (256, 4), (65_535, 4), (65_536, 5), (1 << 24, 6)]
        {
            let encoded = tlv(0x04, &vec![0; len]);
            assert_eq!(header_len(len), header);
            assert_eq!(encoded.len(), header + len);
            let (read_back, rest) = read(&encoded).unwrap();
            assert_eq!((read_back.content.len(), rest.len()), (len, 0));
        }
        assert!(read(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]).is_err(), "short length in long form");
        assert!(read(&[0x04, 0x82, 0x00, 0x80]).is_err(), "leading zero length octet");
        assert!(read(&[0x04, 0x80]).is_err(), "indefinite length");
    }
}
