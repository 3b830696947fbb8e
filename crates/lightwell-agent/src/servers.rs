//! The servers an agent talks to, with failover: each call starts at this
//! agent's preferred server (chosen at random, so agents spread over
//! replicas) and moves to the next one when a server does not answer. A
//! server that comes back gets its share again on the next call.

use lightwell_client::{Client, ClientError, ClientIdentity, Trust};

/// A set of equivalent servers.
#[derive(Debug, Clone)]
pub struct Servers {
    clients: Vec<Client>,
    start: usize,
}

/// Whether an error means "this server did not answer" (try another).
fn unreachable(e: &ClientError) -> bool {
    match e {
        ClientError::Transport(_) => true,
        ClientError::Api { code, .. } => *code == lightwell_proto::ErrorCode::Unavailable,
        _ => false,
    }
}

impl Servers {
    /// Clients for every URL, optionally presenting a client certificate.
    pub fn new(urls: &[String], trust: &Trust, identity: Option<&ClientIdentity>) -> Result<Self, ClientError> {
        let clients = urls.iter().map(|u| Client::with_identity(u, trust, identity)).collect::<Result<Vec<_>, _>>()?;
        let start = lightwell_ca::random::bytes::<2>().map(|b| usize::from(u16::from_le_bytes(b))).unwrap_or(0);
        Ok(Self { start: start % clients.len().max(1), clients })
    }

    /// Runs `f` against the servers in turn until one answers.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, ClientError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let n = self.clients.len();
        let mut last = ClientError::Transport("no server configured".into());
        for i in 0..n {
            let client = self.clients[(self.start + i) % n].clone();
            match f(client).await {
                Err(e) if unreachable(&e) => {
                    tracing::warn!(error = %e, "server did not answer; trying the next one");
                    last = e;
                }
                other => return other,
            }
        }
        Err(last)
    }
}
