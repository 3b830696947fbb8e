//! Rewrites the HTTP/2 `:authority` of requests arriving on the Workload
//! API's Unix socket to `localhost`.
//!
//! gRPC's C core (Python, Ruby, C++, PHP clients, py-spiffe among them)
//! and grpc-java send the percent-encoded socket path as `:authority`
//! (`run%2Flightwell%2Fagent.sock`), which is not a valid authority;
//! hyper's `h2` refuses such a request with `PROTOCOL_ERROR`
//! (hyperium/h2#487, open since 2020), so those clients could not use the
//! agent at all. On a Unix socket the authority means nothing, so before
//! `h2` reads a header block, every `:authority` field in it is given the
//! value `localhost`. Written by hand because no crate rewrites HPACK:
//!
//! - Only HEADERS and CONTINUATION frames are touched; every other byte
//!   passes through unchanged.
//! - A field is recognised when its name is the static table's `:authority`
//!   (index 1) or the literal, unencoded name `:authority` — how gRPC
//!   clients send it. Its value becomes `localhost`, or its first letters
//!   when the original is shorter (never longer: see below). Its
//!   representation type is kept, so a field
//!   "with incremental indexing" still adds one entry to the decoder's
//!   dynamic table: the table stays in step with the client's encoder
//!   (the entry is smaller, so the decoder evicts no earlier than the
//!   encoder does, and every index the client sends still names the same
//!   insertion). Later requests that reference that entry get `localhost`.
//! - A header block split over CONTINUATION frames is gathered (up to
//!   [`MAX_BLOCK`]) and sent on as one HEADERS frame, or split again at
//!   16,384 bytes; padding is dropped. Anything that does not parse is
//!   passed through as it came, for `h2` to refuse.

/// The HTTP/2 client connection preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The default SETTINGS_MAX_FRAME_SIZE, which `h2` advertises.
const MAX_FRAME: usize = 16_384;
/// Largest header block gathered for rewriting; larger ones pass unchanged.
const MAX_BLOCK: usize = 256 * 1024;
const LOCALHOST: &[u8] = b"localhost";

/// The read side of one connection: bytes in from the socket, bytes out to `h2`.
#[derive(Debug, Default)]
pub(super) struct AuthorityRewriter {
    input: Vec<u8>,
    preface_done: bool,
    /// Passing this many more payload bytes of a frame through unchanged.
    passthrough: usize,
    /// A HEADERS frame waiting for its CONTINUATIONs: its header (with
    /// flags and stream id), its priority bytes, and the block so far.
    pending: Option<Pending>,
}

#[derive(Debug)]
struct Pending {
    flags: u8,
    stream: [u8; 4],
    priority: Vec<u8>,
    block: Vec<u8>,
    /// The frames as they came, in case the block does not parse.
    raw: Vec<u8>,
}

impl AuthorityRewriter {
    /// Takes bytes read from the socket; returns what `h2` should read.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.input.extend_from_slice(bytes);
        let mut out = Vec::with_capacity(self.input.len());
        if !self.preface_done {
            let n = PREFACE.len().min(self.input.len());
            if self.input[..n] != PREFACE[..n] {
                // Not HTTP/2 with prior knowledge: leave it all to h2.
                self.preface_done = true;
                self.passthrough = usize::MAX;
            } else if self.input.len() < PREFACE.len() {
                return out;
            } else {
                out.extend(self.input.drain(..PREFACE.len()));
                self.preface_done = true;
            }
        }
        loop {
            if self.passthrough > 0 {
                let n = self.passthrough.min(self.input.len());
                out.extend(self.input.drain(..n));
                self.passthrough -= n;
                if self.passthrough > 0 {
                    return out;
                }
            }
            if self.input.len() < 9 {
                return out;
            }
            let len = usize::from(self.input[0]) << 16 | usize::from(self.input[1]) << 8 | usize::from(self.input[2]);
            let (kind, flags) = (self.input[3], self.input[4]);
            let gather = kind == HEADERS || (kind == CONTINUATION && self.pending.is_some());
            if !gather || len > MAX_FRAME {
                if let Some(p) = self.pending.take() {
                    out.extend(p.raw);
                }
                out.extend(self.input.drain(..9));
                self.passthrough = len;
                continue;
            }
            if self.input.len() < 9 + len {
                return out;
            }
            let frame: Vec<u8> = self.input.drain(..9 + len).collect();
            if kind == HEADERS
                && let Some(p) = self.pending.take()
            {
                // A new block before the last one ended: h2 refuses it; pass both as they came.
                out.extend(p.raw);
            }
            if let Some(done) = self.header_frame(kind, flags, &frame) {
                out.extend(done);
            }
        }
    }

    /// At the end of the stream: whatever is still held, as it came.
    pub(super) fn finish(&mut self) -> Vec<u8> {
        let mut out = self.pending.take().map(|p| p.raw).unwrap_or_default();
        out.append(&mut self.input);
        out
    }

    /// A complete HEADERS or CONTINUATION frame; returns bytes once the block is complete.
    fn header_frame(&mut self, kind: u8, flags: u8, frame: &[u8]) -> Option<Vec<u8>> {
        let payload = &frame[9..];
        if kind == HEADERS {
            let mut body = payload;
            let mut pad = 0;
            if flags & PADDED != 0 {
                let Some((&p, rest)) = body.split_first() else { return Some(frame.to_vec()) };
                pad = usize::from(p);
                body = rest;
            }
            let mut priority = Vec::new();
            if flags & PRIORITY != 0 {
                if body.len() < 5 {
                    return Some(frame.to_vec());
                }
                priority = body[..5].to_vec();
                body = &body[5..];
            }
            if pad > body.len() {
                return Some(frame.to_vec());
            }
            let block = body[..body.len() - pad].to_vec();
            let stream = [frame[5], frame[6], frame[7], frame[8]];
            self.pending = Some(Pending { flags, stream, priority, block, raw: frame.to_vec() });
        } else if let Some(p) = &mut self.pending {
            p.block.extend_from_slice(payload);
            p.raw.extend_from_slice(frame);
            if p.block.len() > MAX_BLOCK {
                return self.pending.take().map(|p| p.raw);
            }
        }
        if flags & END_HEADERS == 0 {
            return None;
        }
        let p = self.pending.take()?;
        match rewrite_block(&p.block) {
            Some(block) => Some(frames(&p, &block)),
            None => Some(p.raw),
        }
    }
}

/// The block as HEADERS (+ CONTINUATION) frames of at most [`MAX_FRAME`] bytes, unpadded.
fn frames(p: &Pending, block: &[u8]) -> Vec<u8> {
    let mut body = p.priority.clone();
    body.extend_from_slice(block);
    let mut out = Vec::with_capacity(body.len() + 18);
    let chunks: Vec<&[u8]> = if body.is_empty() { vec![&[]] } else { body.chunks(MAX_FRAME).collect() };
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        let kind = if i == 0 { HEADERS } else { CONTINUATION };
        let mut flags = if i == 0 { p.flags & !(PADDED | END_HEADERS) } else { 0 };
        if i == last {
            flags |= END_HEADERS;
        }
        let n = chunk.len();
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8, kind, flags]);
        out.extend_from_slice(&p.stream);
        out.extend_from_slice(chunk);
    }
    out
}

/// An HPACK integer with an `n`-bit prefix at `b[*i]` (RFC 7541 §5.1).
fn integer(b: &[u8], i: &mut usize, n: u32) -> Option<usize> {
    let max = (1usize << n) - 1;
    let mut v = usize::from(*b.get(*i)?) & max;
    *i += 1;
    if v < max {
        return Some(v);
    }
    let mut shift = 0;
    loop {
        let byte = *b.get(*i)?;
        *i += 1;
        v = v.checked_add(usize::from(byte & 0x7f).checked_shl(shift)?)?;
        if byte & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
    }
}

/// A string literal at `b[*i]` (RFC 7541 §5.2): (Huffman-coded, bytes).
fn string<'a>(b: &'a [u8], i: &mut usize) -> Option<(bool, &'a [u8])> {
    let huffman = b.get(*i)? & 0x80 != 0;
    let len = integer(b, i, 7)?;
    let s = b.get(*i..i.checked_add(len)?)?;
    *i += len;
    Some((huffman, s))
}

/// The header block with every `:authority` value replaced by `localhost`;
/// `None` if it does not parse.
fn rewrite_block(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let first = b[i];
        let prefix = match first {
            f if f & 0x80 != 0 => {
                integer(b, &mut i, 7)?;
                out.extend_from_slice(&b[start..i]);
                continue;
            }
            f if f & 0xc0 == 0x40 => 6,
            f if f & 0xe0 == 0x20 => {
                integer(b, &mut i, 5)?;
                out.extend_from_slice(&b[start..i]);
                continue;
            }
            _ => 4,
        };
        let index = integer(b, &mut i, prefix)?;
        let name_literal = if index == 0 { Some(string(b, &mut i)?) } else { None };
        let value_start = i;
        let (huffman, value) = string(b, &mut i)?;
        // The decoded length, at least: Huffman codes are at most 30 bits a character.
        let decoded = if huffman { value.len() * 8 / 30 } else { value.len() };
        let authority = index == 1 || name_literal == Some((false, b":authority".as_slice()));
        if authority && decoded > 0 {
            // Never longer than the original, so the decoder's table never
            // evicts before the encoder's does.
            let new = &LOCALHOST[..decoded.min(LOCALHOST.len())];
            out.extend_from_slice(&b[start..value_start]);
            out.push(new.len() as u8);
            out.extend_from_slice(new);
        } else {
            out.extend_from_slice(&b[start..i]);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let n = payload.len();
        let mut f = vec![(n >> 16) as u8, (n >> 8) as u8, n as u8, kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn lit(s: &[u8]) -> Vec<u8> {
        let mut v = vec![s.len() as u8];
        v.extend_from_slice(s);
        v
    }

    /// `:method POST` (indexed 3), `:authority` with incremental indexing
    /// (name index 1) and a percent-encoded path, `te: trailers` as a
    /// literal new name without indexing.
    fn block(authority: &[u8]) -> Vec<u8> {
        let mut b = vec![0x83, 0x41];
        b.extend(lit(authority));
        b.push(0x00);
        b.extend(lit(b"te"));
        b.extend(lit(b"trailers"));
        b
    }

    #[test]
    fn the_authority_becomes_localhost_and_everything_else_stays() {
        let settings = frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]);
        let headers = frame(HEADERS, END_HEADERS, 1, &block(b"run%2Flightwell%2Fagent.sock"));
        let data = frame(0x0, 0x1, 1, b"\x00\x00\x00\x00\x00");
        let input = [PREFACE, &settings, &headers, &data].concat();
        let expected = [PREFACE, &settings, &frame(HEADERS, END_HEADERS, 1, &block(b"localhost")), &data].concat();
        assert_eq!(AuthorityRewriter::default().feed(&input), expected);
        // Byte by byte, the same.
        let mut r = AuthorityRewriter::default();
        let out: Vec<u8> = input.iter().flat_map(|b| r.feed(&[*b])).collect();
        assert_eq!(out, expected);
        // A shorter value gets as many letters of `localhost`, never more.
        let short = [PREFACE, &frame(HEADERS, END_HEADERS, 1, &block(b"a%2"))].concat();
        let want = [PREFACE, &frame(HEADERS, END_HEADERS, 1, &block(b"loc"))].concat();
        assert_eq!(AuthorityRewriter::default().feed(&short), want);
    }

    #[test]
    fn continuations_and_padding_and_literal_names_are_handled() {
        let mut b = vec![0x40];
        b.extend(lit(b":authority"));
        b.extend(lit(b"x%2Fy"));
        b.extend([0x82, 0xbe]);
        let padded = [&[3u8][..], &b[..4], &[0, 0, 0]].concat();
        let input =
            [PREFACE, &frame(HEADERS, PADDED, 3, &padded), &frame(CONTINUATION, END_HEADERS, 3, &b[4..])].concat();
        let mut want = vec![0x40];
        want.extend(lit(b":authority"));
        want.extend(lit(b"local"));
        want.extend([0x82, 0xbe]);
        let expected = [PREFACE, &frame(HEADERS, END_HEADERS, 3, &want)].concat();
        assert_eq!(AuthorityRewriter::default().feed(&input), expected);
    }

    #[test]
    fn what_does_not_parse_passes_unchanged_and_nothing_panics() {
        let bad = frame(HEADERS, END_HEADERS, 1, &[0x41, 0x7f, 0xff, 0xff]);
        let input = [PREFACE, &bad].concat();
        assert_eq!(AuthorityRewriter::default().feed(&input), input);
        assert_eq!(AuthorityRewriter::default().feed(b"GET / HTTP/1.1\r\n\r\n"), b"GET / HTTP/1.1\r\n\r\n");
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut junk = PREFACE.to_vec();
            for _ in 0..(seed % 300) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                junk.push(seed as u8);
            }
            let _ = AuthorityRewriter::default().feed(&junk);
        }
    }
}
