//! A bare `FetchX509SVID` client of the SPIFFE Workload API: HTTP/2 (`h2`)
//! over the agent's Unix socket and the two protobuf messages it needs,
//! written out here. A full gRPC client would parse and validate every SVID
//! before handing it over; this one stamps each message the moment its last
//! frame arrives, keeps only what the bench compares (hints, leaf serials, a
//! digest of the CRLs), and skips the private key when decoding, so the
//! bench holds no workload keys.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, bail};
use bytes::{Buf, Bytes, BytesMut};
use prost::Message as _;

const PATH: &str = "http://localhost/SpiffeWorkloadAPI/FetchX509SVID";
/// An empty `X509SVIDRequest`: uncompressed, length 0.
const EMPTY_REQUEST: &[u8] = &[0, 0, 0, 0, 0];

/// `X509SVIDResponse` without `federated_bundles`.
#[derive(Clone, PartialEq, prost::Message)]
struct X509SvidResponse {
    #[prost(message, repeated, tag = "1")]
    svids: Vec<X509Svid>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    crl: Vec<Vec<u8>>,
}

/// `X509SVID` without `x509_svid_key` (3) and `bundle` (4).
#[derive(Clone, PartialEq, prost::Message)]
struct X509Svid {
    #[prost(bytes = "vec", tag = "2")]
    x509_svid: Vec<u8>,
    #[prost(string, tag = "5")]
    hint: String,
}

/// One message of a stream, as the bench compares it.
#[derive(Debug, Clone)]
pub(crate) struct Update {
    /// When its last byte arrived.
    pub(crate) at: Instant,
    /// The same moment on the wall clock, to compare with the agent's log.
    pub(crate) wall: SystemTime,
    /// (entry name, leaf serial in lower-case hex without leading zeros) per SVID.
    pub(crate) svids: Vec<(String, String)>,
    /// A digest of the CRLs it carried.
    pub(crate) crl_digest: u64,
    /// The CRLs (DER).
    pub(crate) crls: Vec<Vec<u8>>,
}

impl Update {
    /// The serial of the SVID of entry `hint`, if the message has one.
    pub(crate) fn serial(&self, hint: &str) -> Option<&str> {
        self.svids.iter().find(|(h, _)| h == hint).map(|(_, s)| s.as_str())
    }
}

/// An open `FetchX509SVID` stream on its own connection, as one workload holds it.
#[derive(Debug)]
pub(crate) struct X509Stream {
    body: h2::RecvStream,
    buffer: BytesMut,
    /// Kept so that the connection stays open while the stream does.
    _send: h2::client::SendRequest<Bytes>,
}

/// A serial in hex as the agent logs it: lower case, no leading zeros.
pub(crate) fn normal_serial(hex: &str) -> String {
    let serial = hex.trim_start_matches('0').to_ascii_lowercase();
    if serial.is_empty() { "0".into() } else { serial }
}

fn leaf_serial(chain: &[u8]) -> Result<String> {
    let (_, leaf) = x509_parser::parse_x509_certificate(chain).context("the SVID does not parse")?;
    Ok(normal_serial(&hex::encode(leaf.raw_serial())))
}

/// The status a gRPC error carries in headers or trailers, `None` for OK.
fn grpc_error(headers: &http::HeaderMap) -> Option<String> {
    let status = headers.get("grpc-status")?.to_str().unwrap_or("?");
    (status != "0").then(|| {
        let message = headers.get("grpc-message").and_then(|m| m.to_str().ok()).unwrap_or("");
        format!("grpc-status {status}: {message}")
    })
}

impl X509Stream {
    /// Connects to the agent's socket and asks for the caller's X.509-SVIDs.
    pub(crate) async fn open(socket: &Path) -> Result<Self> {
        let io = tokio::net::UnixStream::connect(socket).await.with_context(|| format!("{}", socket.display()))?;
        let (send, connection) = h2::client::handshake(io).await.context("HTTP/2 handshake")?;
        tokio::spawn(async move {
            // Ends when the agent or the stream closes the connection.
            let _ = connection.await;
        });
        let mut send = send.ready().await?;
        let request = http::Request::post(PATH)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            // The Workload API refuses a request without it.
            .header("workload.spiffe.io", "true")
            .body(())?;
        let (response, mut request_body) = send.send_request(request, false)?;
        request_body.send_data(Bytes::from_static(EMPTY_REQUEST), true)?;
        let response = response.await.context("no answer from the agent")?;
        if let Some(error) = grpc_error(response.headers()) {
            bail!("the agent refused: {error}");
        }
        Ok(Self { body: response.into_body(), buffer: BytesMut::new(), _send: send })
    }

    /// The next message; `None` when the stream ended without an error.
    pub(crate) async fn next(&mut self) -> Result<Option<Update>> {
        loop {
            if let Some(message) = self.take_message()? {
                return Ok(Some(message));
            }
            match self.body.data().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    let _ = self.body.flow_control().release_capacity(chunk.len());
                    self.buffer.extend_from_slice(&chunk);
                }
                None => {
                    let trailers = self.body.trailers().await?.unwrap_or_default();
                    return match grpc_error(&trailers) {
                        Some(error) => Err(anyhow::anyhow!("the stream ended: {error}")),
                        None => Ok(None),
                    };
                }
            }
        }
    }

    /// A whole length-prefixed message from the buffer, if one is there.
    fn take_message(&mut self) -> Result<Option<Update>> {
        if self.buffer.len() < 5 {
            return Ok(None);
        }
        let length = u32::from_be_bytes([self.buffer[1], self.buffer[2], self.buffer[3], self.buffer[4]]) as usize;
        if self.buffer.len() < 5 + length {
            return Ok(None);
        }
        let (at, wall) = (Instant::now(), SystemTime::now());
        if self.buffer[0] != 0 {
            bail!("a compressed message (not asked for)");
        }
        self.buffer.advance(5);
        let decoded = X509SvidResponse::decode(self.buffer.split_to(length).freeze())?;
        let svids = decoded
            .svids
            .iter()
            .map(|s| Ok((s.hint.clone(), leaf_serial(&s.x509_svid)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut digest = DefaultHasher::new();
        decoded.crl.hash(&mut digest);
        Ok(Some(Update { at, wall, svids, crl_digest: digest.finish(), crls: decoded.crl }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_and_bundle_are_skipped_when_a_message_is_decoded() {
        // Field 3 (the key) and 4 (the bundle) of an X509SVID, then the hint.
        let svid = [&[0x1a, 2, 0xaa, 0xbb][..], &[0x22, 1, 0xcc], &[0x2a, 1, b'h']].concat();
        let response = [&[0x0a, svid.len() as u8][..], &svid, &[0x12, 1, 0xdd]].concat();
        let decoded = X509SvidResponse::decode(&response[..]).unwrap();
        assert_eq!(decoded.svids.len(), 1);
        assert_eq!(decoded.svids[0].hint, "h");
        assert!(decoded.svids[0].x509_svid.is_empty());
        assert_eq!(decoded.crl, vec![vec![0xdd]]);
    }
}
