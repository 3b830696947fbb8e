//! Workload entries (who a workload is, decided by the directory) and the
//! selectors the agent attests workloads against.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

request_type! {
    /// `POST /v1/tenants/{tenant}/workloads`.
    pub struct CreateWorkloadRequest {
        /// Entry name, unique in the tenant (lower-case letters, digits, `-`).
        pub name: String,
        /// The service whose identity the workload holds.
        pub service: String,
        /// A sub-path under the service's SPIFFE ID (`worker` gives
        /// `spiffe://<tenant>/service/<service>/worker`); none by default.
        #[serde(default)]
        pub path: Option<String>,
        /// Machines (host names) the workload may run on.
        #[serde(default)]
        pub hosts: Vec<String>,
        /// Groups of machines the workload may run on.
        #[serde(default)]
        pub host_groups: Vec<String>,
        /// Selectors (`unix:uid:1000`, `unix:path:/usr/bin/app`, ...); a
        /// workload matches when every one holds.
        pub selectors: Vec<String>,
        /// SVID lifetime (default 1h).
        #[serde(default)]
        pub ttl: Option<String>,
        /// DNS names put into the SVID; each must be registered to the service.
        #[serde(default)]
        pub dns_names: Vec<String>,
    }
}

api_type! {
    /// A workload entry.
    pub struct WorkloadInfo {
        /// Entry name.
        pub name: String,
        /// The SPIFFE ID its workloads get.
        pub spiffe_id: String,
        /// The service it belongs to.
        pub service: String,
        /// Machines it may run on.
        pub hosts: Vec<String>,
        /// Groups of machines it may run on.
        pub host_groups: Vec<String>,
        /// Selectors, all of which a workload must match.
        pub selectors: Vec<String>,
        /// SVID lifetime, seconds.
        pub ttl_secs: i64,
        /// DNS names in its SVIDs.
        pub dns_names: Vec<String>,
        /// Creation time, RFC 3339.
        pub created_at: String,
    }
}

api_type! {
    /// `GET /v1/tenants/{tenant}/workloads/assigned`: what the calling
    /// machine's agent may attest workloads against.
    pub struct AssignedWorkload {
        /// Entry name.
        pub name: String,
        /// The SPIFFE ID.
        pub spiffe_id: String,
        /// Selectors, all of which a workload must match.
        pub selectors: Vec<String>,
        /// SVID lifetime, seconds.
        pub ttl_secs: i64,
    }
}

request_type! {
    /// `POST /v1/tenants/{tenant}/workloads/{name}/svid`: a machine's agent
    /// asks for an X.509-SVID of an entry assigned to it.
    pub struct SvidRequest {
        /// PKCS#10 request carrying the workload's key: PEM, or DER in base64.
        pub csr: String,
    }
}

request_type! {
    /// `POST /v1/tenants/{tenant}/workloads/{name}/jwt-svid`: a machine's
    /// agent asks for a JWT-SVID of an entry assigned to it.
    pub struct JwtSvidRequest {
        /// The audiences (`aud`); at least one.
        pub audience: Vec<String>,
        /// Lifetime (default 5m, at most 1h).
        #[serde(default)]
        pub ttl: Option<String>,
    }
}

api_type! {
    /// A JWT-SVID.
    pub struct JwtSvidInfo {
        /// The compact JWT.
        pub token: String,
        /// Its subject.
        pub spiffe_id: String,
        /// Its `exp`, Unix seconds.
        pub expires_at: i64,
    }
}

/// Audiences one JWT-SVID may name.
pub const MAX_JWT_AUDIENCES: usize = 8;
/// Longest audience, bytes.
pub const MAX_JWT_AUDIENCE_LEN: usize = 256;

/// The audiences of a JWT-SVID request, checked (at least one, at most
/// [`MAX_JWT_AUDIENCES`], each 1 to [`MAX_JWT_AUDIENCE_LEN`] bytes without
/// control characters) and sorted and deduplicated, so that equal sets
/// name one token. The agent and the server check alike.
pub fn jwt_audiences(asked: &[String]) -> Result<Vec<String>, String> {
    if asked.is_empty() {
        return Err("a JWT-SVID needs at least one audience".into());
    }
    if asked.len() > MAX_JWT_AUDIENCES {
        return Err(format!("a JWT-SVID names at most {MAX_JWT_AUDIENCES} audiences"));
    }
    if asked.iter().any(|a| a.is_empty() || a.len() > MAX_JWT_AUDIENCE_LEN || a.chars().any(char::is_control)) {
        return Err(format!("an audience is 1 to {MAX_JWT_AUDIENCE_LEN} bytes without control characters"));
    }
    let mut out = asked.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

/// What a selector is about: each names one fact the kernel tells the agent
/// about a workload process, or, for a pod's namespace, service account and
/// labels, that the kubelet tells it about the process's pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SelectorKind {
    /// `unix:uid:N`, the effective user id.
    Uid,
    /// `unix:user:NAME`, the name of the effective user.
    User,
    /// `unix:gid:N`, the effective group id.
    Gid,
    /// `unix:group:NAME`, the name of the effective group.
    Group,
    /// `unix:supplementary-gid:N`, one of the supplementary group ids.
    SupplementaryGid,
    /// `unix:supplementary-group:NAME`, one of the supplementary groups by name.
    SupplementaryGroup,
    /// `unix:path:/ABS/PATH`, the executable.
    Path,
    /// `unix:sha256:HEX`, the SHA-256 of the executable.
    Sha256,
    /// `cgroup:container-id:HEX`, the container (containerd, CRI-O, Docker).
    ContainerId,
    /// `k8s:pod-uid:UID`, the Kubernetes pod.
    PodUid,
    /// `k8s:ns:NAMESPACE`, the namespace of the Kubernetes pod (from the kubelet).
    Namespace,
    /// `k8s:sa:NAME`, the service account of the pod (from the kubelet).
    ServiceAccount,
    /// `k8s:pod-label:KEY:VALUE`, a label of the pod (from the kubelet).
    PodLabel,
}

impl SelectorKind {
    /// Every kind.
    pub const ALL: [Self; 13] = [
        Self::Uid,
        Self::User,
        Self::Gid,
        Self::Group,
        Self::SupplementaryGid,
        Self::SupplementaryGroup,
        Self::Path,
        Self::Sha256,
        Self::ContainerId,
        Self::PodUid,
        Self::Namespace,
        Self::ServiceAccount,
        Self::PodLabel,
    ];

    /// The prefix before the value, `unix:uid` for [`SelectorKind::Uid`].
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Uid => "unix:uid",
            Self::User => "unix:user",
            Self::Gid => "unix:gid",
            Self::Group => "unix:group",
            Self::SupplementaryGid => "unix:supplementary-gid",
            Self::SupplementaryGroup => "unix:supplementary-group",
            Self::Path => "unix:path",
            Self::Sha256 => "unix:sha256",
            Self::ContainerId => "cgroup:container-id",
            Self::PodUid => "k8s:pod-uid",
            Self::Namespace => "k8s:ns",
            Self::ServiceAccount => "k8s:sa",
            Self::PodLabel => "k8s:pod-label",
        }
    }

    /// Whether the agent learns this fact from the kubelet rather than the
    /// kernel: it asks the kubelet only when an entry selects by one.
    pub fn from_kubelet(self) -> bool {
        matches!(self, Self::Namespace | Self::ServiceAccount | Self::PodLabel)
    }

    /// Whether a process has exactly one value of this kind, so two
    /// selectors of the kind with different values can never both hold.
    pub fn single_valued(self) -> bool {
        !matches!(self, Self::SupplementaryGid | Self::SupplementaryGroup | Self::PodLabel)
    }
}

/// A selector: a kind and a value, valid by construction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Selector {
    kind: SelectorKind,
    value: String,
}

impl Selector {
    /// What it is about.
    pub fn kind(&self) -> SelectorKind {
        self.kind
    }

    /// The value it requires.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The label key and value of a [`SelectorKind::PodLabel`] selector.
    pub fn label(&self) -> Option<(&str, &str)> {
        match self.kind {
            SelectorKind::PodLabel => self.value.split_once(':'),
            _ => None,
        }
    }
}

/// A selector that does not parse, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorError(pub String);

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SelectorError {}

const MAX_SELECTOR: usize = 512;

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let shown: String = s.chars().take(64).collect();
        if s.len() > MAX_SELECTOR {
            return Err(SelectorError(format!("selector {shown:?}... is longer than {MAX_SELECTOR} bytes")));
        }
        let Some((kind, value)) =
            SelectorKind::ALL.into_iter().find_map(|k| Some((k, s.strip_prefix(k.prefix())?.strip_prefix(':')?)))
        else {
            let known: Vec<&str> = SelectorKind::ALL.iter().map(|k| k.prefix()).collect();
            return Err(SelectorError(format!("unknown selector {shown:?}; known kinds: {}", known.join(", "))));
        };
        let bad = |why: &str| SelectorError(format!("selector {shown:?}: {why}"));
        if value.is_empty() {
            return Err(bad("the value is empty"));
        }
        if value.chars().any(char::is_control) {
            return Err(bad("the value holds control characters"));
        }
        let value = match kind {
            SelectorKind::Uid | SelectorKind::Gid | SelectorKind::SupplementaryGid => {
                value.parse::<u32>().map_err(|_| bad("the value must be a number"))?.to_string()
            }
            SelectorKind::User | SelectorKind::Group | SelectorKind::SupplementaryGroup => {
                if value.contains(':') || value.contains(char::is_whitespace) {
                    return Err(bad("a user or group name holds no ':' or spaces"));
                }
                value.to_string()
            }
            SelectorKind::Path => {
                if !value.starts_with('/') {
                    return Err(bad("the path must be absolute"));
                }
                value.to_string()
            }
            SelectorKind::Sha256 => {
                if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad("the value must be 64 hex digits"));
                }
                value.to_ascii_lowercase()
            }
            SelectorKind::ContainerId => {
                if !value.bytes().all(|b| b.is_ascii_hexdigit()) || value.len() < 12 {
                    return Err(bad("a container id is at least 12 hex digits"));
                }
                value.to_ascii_lowercase()
            }
            SelectorKind::PodUid => {
                if !value.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') || value.len() != 36 {
                    return Err(bad("a pod UID has the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"));
                }
                value.to_ascii_lowercase()
            }
            SelectorKind::Namespace => {
                if !is_dns_label(value) {
                    return Err(bad("a namespace is at most 63 lower-case letters, digits and '-', \
                                    starting and ending with a letter or digit"));
                }
                value.to_string()
            }
            SelectorKind::ServiceAccount => {
                if !is_dns_subdomain(value) {
                    return Err(bad("a service account name is at most 253 lower-case letters, digits, '-' and '.', \
                                    starting and ending with a letter or digit"));
                }
                value.to_string()
            }
            SelectorKind::PodLabel => {
                let Some((key, label)) = value.split_once(':') else {
                    return Err(bad("a pod label selector is k8s:pod-label:KEY:VALUE"));
                };
                if !is_label_key(key) {
                    return Err(bad("a label key is an optional DNS subdomain prefix and '/', then at most 63 \
                                    letters, digits, '-', '_' and '.', starting and ending with a letter or digit"));
                }
                if !(label.is_empty() || is_label_name(label)) {
                    return Err(bad("a label value is empty or at most 63 letters, digits, '-', '_' and '.', \
                                    starting and ending with a letter or digit"));
                }
                value.to_string()
            }
        };
        Ok(Self { kind, value })
    }
}

/// A DNS-1123 label, as Kubernetes namespaces are.
fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') && alnum_ends(s)
}

/// A DNS-1123 subdomain, as Kubernetes service account names and label key prefixes are.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A label key: `[PREFIX/]NAME`, the prefix a DNS subdomain.
fn is_label_key(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(s),
    }
}

/// A label name or a non-empty label value: at most 63 letters, digits,
/// `-`, `_` and `.`, starting and ending with a letter or digit.
fn is_label_name(s: &str) -> bool {
    s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) && alnum_ends(s)
}

fn alnum_ends(s: &str) -> bool {
    let ok = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    ok(s.as_bytes().first()) && ok(s.as_bytes().last())
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.prefix(), self.value)
    }
}

/// Parses a set of selectors that could hold together: at least one, and
/// no two different values of a kind a process has only one of
/// (`unix:uid:1000` and `unix:uid:1001`), nor of one pod label key.
/// Sorted, duplicates removed.
pub fn parse_selectors<S: AsRef<str>>(list: &[S]) -> Result<Vec<Selector>, SelectorError> {
    let mut out = list.iter().map(|s| s.as_ref().trim().parse::<Selector>()).collect::<Result<Vec<_>, _>>()?;
    if out.is_empty() {
        return Err(SelectorError("an entry needs at least one selector".into()));
    }
    out.sort();
    out.dedup();
    for pair in out.windows(2) {
        if pair[0].kind == pair[1].kind && pair[0].kind.single_valued() {
            return Err(SelectorError(format!(
                "selectors {} and {} contradict each other: a process has one {}",
                pair[0],
                pair[1],
                pair[0].kind.prefix()
            )));
        }
        // Sorted, the selectors of one label key are adjacent.
        if let (Some((key, _)), Some((other, _))) = (pair[0].label(), pair[1].label())
            && key == other
        {
            return Err(SelectorError(format!(
                "selectors {} and {} contradict each other: a pod has one value of label {key}",
                pair[0], pair[1]
            )));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_audiences_are_checked_sorted_and_deduplicated() {
        let a = |v: &[&str]| jwt_audiences(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(a(&["db", "api", "db"]).unwrap(), ["api", "db"]);
        assert!(a(&[]).is_err());
        assert!(a(&[""]).is_err());
        assert!(a(&["a\nb"]).is_err());
        assert!(a(&[&"x".repeat(MAX_JWT_AUDIENCE_LEN + 1)]).is_err());
        assert!(a(&["1", "2", "3", "4", "5", "6", "7", "8", "9"]).is_err());
    }

    #[test]
    fn selectors_parse_and_print_back() {
        for s in [
            "unix:uid:1000",
            "unix:user:www-data",
            "unix:gid:0",
            "unix:group:adm",
            "unix:supplementary-gid:27",
            "unix:supplementary-group:docker",
            "unix:path:/usr/bin/python3",
            "unix:sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            "cgroup:container-id:0123456789abcdef",
            "k8s:pod-uid:12345678-1234-1234-1234-123456789abc",
            "k8s:ns:payments",
            "k8s:sa:worker",
            "k8s:sa:system.build-bot",
            "k8s:pod-label:app:payments",
            "k8s:pod-label:app.kubernetes.io/name:payments-api",
            "k8s:pod-label:tier:",
        ] {
            assert_eq!(s.parse::<Selector>().unwrap().to_string(), s);
        }
        assert_eq!("unix:uid:007".parse::<Selector>().unwrap().to_string(), "unix:uid:7");
    }

    #[test]
    fn malformed_selectors_are_refused_with_the_reason() {
        for (s, why) in [
            ("unix:uid:-1", "number"),
            ("unix:uid:", "empty"),
            ("unix:uid:99999999999", "number"),
            ("unix:path:relative/bin", "absolute"),
            ("unix:sha256:abc", "64 hex"),
            ("unix:user:a b", "spaces"),
            ("k8s:ns:Payments", "a namespace is"),
            ("k8s:ns:-x", "a namespace is"),
            ("k8s:ns:a.b", "a namespace is"),
            ("k8s:sa:worker_1", "a service account"),
            ("k8s:pod-label:app", "k8s:pod-label:KEY:VALUE"),
            ("k8s:pod-label::x", "a label key"),
            ("k8s:pod-label:a/b/c:x", "a label key"),
            ("k8s:pod-label:Example.com/app:x", "a label key"),
            ("k8s:pod-label:app:pay ments", "a label value"),
            ("k8s:pod-label:app:a:b", "a label value"),
            ("k8s:pod-label:app:-x", "a label value"),
            ("k8s:node:n1", "unknown selector"),
            ("docker:label:x", "unknown selector"),
            ("unix:uidx:1", "unknown selector"),
            ("unix:path:/bin/\u{7}", "control"),
        ] {
            let err = s.parse::<Selector>().unwrap_err().to_string();
            assert!(err.contains(why), "{s}: {err}");
        }
        let long = format!("unix:path:/{}", "a".repeat(600));
        assert!(long.parse::<Selector>().is_err());
    }

    #[test]
    fn contradictory_selectors_are_refused_and_compatible_ones_kept() {
        let err = parse_selectors(&["unix:uid:1000", "unix:uid:1001"]).unwrap_err().to_string();
        assert!(err.contains("contradict"), "{err}");
        assert!(parse_selectors::<&str>(&[]).is_err());
        let ok = parse_selectors(&["unix:supplementary-gid:1", "unix:supplementary-gid:2", "unix:uid:5", "unix:uid:5"])
            .unwrap();
        assert_eq!(ok.len(), 3);
        let err = parse_selectors(&["k8s:ns:a", "k8s:ns:b"]).unwrap_err().to_string();
        assert!(err.contains("contradict"), "{err}");
        let err = parse_selectors(&["k8s:pod-label:app:a", "k8s:pod-label:app.x:c", "k8s:pod-label:app:b"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("one value of label app"), "{err}");
        let ok = parse_selectors(&["k8s:pod-label:app:a", "k8s:pod-label:tier:web", "k8s:ns:a", "k8s:sa:b"]).unwrap();
        assert_eq!(ok.len(), 4);
        assert_eq!(ok[0].label(), None);
        assert_eq!(ok[2].label(), Some(("app", "a")));
    }
}

request_type! {
    /// `POST /v1/tenants/{tenant}/federations`: trust a foreign trust
    /// domain. Give its SPIFFE bundle endpoint (the `https_web` profile,
    /// read again as its refresh hint says) or a bundle to keep as it is.
    pub struct CreateFederationRequest {
        /// The foreign trust domain (`partner.example`), lower-case.
        pub trust_domain: String,
        /// Its SPIFFE bundle endpoint, an `https://` URL.
        #[serde(default)]
        pub bundle_endpoint_url: Option<String>,
        /// CA certificates (PEM) the endpoint's TLS certificate must chain
        /// to; without them, the system's web roots.
        #[serde(default)]
        pub endpoint_ca_pem: Option<String>,
        /// A SPIFFE bundle document to trust as it is, instead of an endpoint.
        #[serde(default)]
        pub bundle: Option<String>,
    }
}

api_type! {
    /// A foreign trust domain the tenant trusts.
    pub struct FederationInfo {
        /// The trust domain.
        pub trust_domain: String,
        /// Its bundle endpoint; none for a bundle given as it is.
        pub bundle_endpoint_url: Option<String>,
        /// Whether the endpoint is checked against CA certificates given at registration.
        pub endpoint_ca: bool,
        /// `spiffe_sequence` of the bundle held.
        pub sequence: Option<i64>,
        /// X.509 authorities in the bundle held.
        pub x509_authorities: usize,
        /// JWT authorities in the bundle held.
        pub jwt_authorities: usize,
        /// When the bundle held was fetched, RFC 3339.
        pub fetched_at: Option<String>,
        /// When the endpoint is read next, RFC 3339.
        pub next_fetch_at: Option<String>,
        /// Why the last read failed, if it did (the bundle held stays in use).
        pub last_error: Option<String>,
        /// Registration time, RFC 3339.
        pub created_at: String,
    }
}

api_type! {
    /// `GET /v1/tenants/{tenant}/federated-bundles`: one foreign trust
    /// domain's bundle, as the agents hand it to workloads.
    pub struct FederatedBundle {
        /// The trust domain.
        pub trust_domain: String,
        /// Its SPIFFE bundle document.
        pub bundle: String,
    }
}

request_type! {
    /// `POST /v1/tenants/{tenant}/oidc/clients`: register a client of the
    /// tenant's OpenID provider, acting as a service or a machine.
    pub struct CreateOidcClientRequest {
        /// Client name, unique in the tenant (lower-case letters, digits, `-`).
        pub name: String,
        /// The service or machine it acts as (`service/web`).
        pub principal: String,
        /// `client_secret` (default; HTTP Basic or form) or `tls_client_auth`
        /// (a TLS client certificate this tenant issued to the principal).
        #[serde(default)]
        pub auth_method: Option<String>,
        /// `aud` of its access tokens (default `lightwell`).
        #[serde(default)]
        pub audience: Vec<String>,
        /// Scopes it may ask for.
        #[serde(default)]
        pub scopes: Vec<String>,
        /// Access token lifetime (default 10m, at most 1h).
        #[serde(default)]
        pub access_token_ttl: Option<String>,
    }
}

api_type! {
    /// A client of the tenant's OpenID provider.
    pub struct OidcClientInfo {
        /// `client_id`.
        pub client_id: String,
        /// Name.
        pub name: String,
        /// The principal it acts as, `kind/name`.
        pub principal: String,
        /// `client_secret` or `tls_client_auth`.
        pub auth_method: String,
        /// Grants it may use.
        pub grants: Vec<String>,
        /// `aud` of its access tokens.
        pub audience: Vec<String>,
        /// Scopes it may ask for.
        pub scopes: Vec<String>,
        /// Access token lifetime, seconds.
        pub access_token_ttl_secs: i64,
        /// Creation time, RFC 3339.
        pub created_at: String,
        /// Its secret: only in the answer that created or rotated it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub client_secret: Option<String>,
    }
}
