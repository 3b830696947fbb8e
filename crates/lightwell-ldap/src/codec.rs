//! Framing of LDAP messages on the wire, with limits applied before any
//! allocation the peer controls: a message's length is read from its BER
//! header and refused when over the limit, without buffering it.
//!
//! A message that frames and parses as BER but is not a valid request still
//! gets an answer: its message id and operation tag are read from the raw
//! structure so the client receives a `protocolError` result of the right
//! response type. Only input that cannot be framed at all ends the
//! connection (with a notice of disconnection).

use bytes::{Buf, BytesMut};
use ldap3_lber::common::TagClass;
use ldap3_lber::parse::Parser;
use ldap3_lber::structure::{PL, StructureTag};
use ldap3_proto::proto::LdapMsg;

/// BER nesting accepted on the wire. A search filter 10,000 deep fails here
/// (the parser is recursive, so this also bounds its stack use).
const MAX_BER_DEPTH: usize = 128;

/// What the buffer holds.
#[derive(Debug)]
pub(crate) enum Frame {
    /// Not a whole message yet.
    Incomplete,
    /// A request.
    Message(LdapMsg),
    /// A well-framed message that is not a valid request: answer it with
    /// `protocolError` (`op` is the request's operation tag, if any).
    Rejected {
        /// The request's message id.
        msgid: i32,
        /// The request's APPLICATION tag number.
        op: Option<u64>,
        /// Why.
        reason: String,
    },
    /// Unframeable input: send a notice of disconnection and close.
    Fatal(&'static str),
}

/// Length of the next message as (header length, content length), if its
/// header is complete; `Err` when it can never be a valid LDAP message.
fn header(buf: &[u8]) -> Result<Option<(usize, usize)>, &'static str> {
    let Some(&tag) = buf.first() else { return Ok(None) };
    if tag != 0x30 {
        return Err("an LDAP message must be a BER SEQUENCE");
    }
    let Some(&first) = buf.get(1) else { return Ok(None) };
    if first < 0x80 {
        return Ok(Some((2, usize::from(first))));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 {
        return Err("indefinite BER lengths are not allowed in LDAP");
    }
    if n > 4 {
        return Err("message too large");
    }
    let Some(bytes) = buf.get(2..2 + n) else { return Ok(None) };
    let len = bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Ok(Some((2 + n, len)))
}

/// Takes the next message out of `buf`, applying `max_bytes` to its size.
pub(crate) fn decode(buf: &mut BytesMut, max_bytes: usize) -> Frame {
    let (head, len) = match header(buf) {
        Ok(Some(h)) => h,
        Ok(None) => return Frame::Incomplete,
        Err(why) => return Frame::Fatal(why),
    };
    let total = head.saturating_add(len);
    if total > max_bytes {
        return Frame::Fatal("message over the size limit");
    }
    if buf.len() < total {
        return Frame::Incomplete;
    }
    let frame = buf.split_to(total);
    let tag = match Parser::new(MAX_BER_DEPTH).parse(&frame) {
        Ok(([], tag)) => tag,
        _ => return Frame::Fatal("malformed or too deeply nested BER"),
    };
    let Some((msgid, op)) = envelope(&tag) else {
        return Frame::Fatal("not an LDAP message");
    };
    if !matches!(op, Some(0 | 2 | 3 | 6 | 8 | 10 | 12 | 14 | 16 | 23)) {
        return Frame::Rejected { msgid, op, reason: "unknown or unsupported operation".into() };
    }
    match LdapMsg::try_from(tag) {
        Ok(msg) => Frame::Message(msg),
        Err(e) => Frame::Rejected { msgid, op, reason: format!("malformed request: {e}") },
    }
}

/// The message id and the operation's APPLICATION tag of a raw message.
fn envelope(tag: &StructureTag) -> Option<(i32, Option<u64>)> {
    let PL::C(items) = &tag.payload else { return None };
    let id = items.first()?;
    if id.class != TagClass::Universal || id.id != 2 {
        return None;
    }
    let PL::P(bytes) = &id.payload else { return None };
    if bytes.is_empty() || bytes.len() > 4 || bytes[0] & 0x80 != 0 {
        return None;
    }
    let msgid = bytes.iter().fold(0i64, |acc, b| (acc << 8) | i64::from(*b));
    let msgid = i32::try_from(msgid).ok()?;
    let op = items.get(1).filter(|t| t.class == TagClass::Application).map(|t| t.id);
    Some((msgid, op))
}

/// Encodes a message for the wire.
pub(crate) fn encode(msg: LdapMsg, out: &mut BytesMut) {
    let tag: StructureTag = msg.into();
    // Writing into memory cannot fail; an error would mean an unencodable tag.
    if let Err(e) = ldap3_lber::write::encode_into(out, tag) {
        tracing::error!(error = %e, "encoding an LDAP response");
    }
}

/// Drops buffered bytes that can never form a message (after a fatal frame).
pub(crate) fn discard(buf: &mut BytesMut) {
    let n = buf.len();
    buf.advance(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_over_the_limit_are_refused_from_the_header_alone() {
        let mut buf = BytesMut::from(&[0x30, 0x84, 0x7f, 0xff, 0xff, 0xff][..]);
        assert!(matches!(decode(&mut buf, 1 << 20), Frame::Fatal(_)));
        let mut buf = BytesMut::from(&[0x30, 0x83, 0x10][..]);
        assert!(matches!(decode(&mut buf, 1 << 20), Frame::Incomplete));
    }

    #[test]
    fn garbage_is_fatal_and_unknown_operations_are_rejected_with_their_id() {
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
        assert!(matches!(decode(&mut buf, 1 << 20), Frame::Fatal(_)));
        // SEQUENCE { INTEGER 7, [APPLICATION 30] {} }
        let mut buf = BytesMut::from(&[0x30, 0x05, 0x02, 0x01, 0x07, 0x7e, 0x00][..]);
        match decode(&mut buf, 1 << 20) {
            Frame::Rejected { msgid: 7, op: Some(30), .. } => {}
            other => panic!("{other:?}"),
        }
        assert!(buf.is_empty());
    }
}
