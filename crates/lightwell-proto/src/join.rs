//! Request and response bodies of domain join and trust sync.

use serde::{Deserialize, Serialize};

request_type! {
    /// `POST /v1/tenants/{tenant}/join-tokens`.
    pub struct CreateJoinTokenRequest {
        /// Lifetime, e.g. `1h`, `30m`, `7d` (default 1h, at most 30 days).
        #[serde(default)]
        pub ttl: Option<String>,
        /// Joins allowed (default 1).
        #[serde(default)]
        pub uses: Option<i64>,
        /// Only this host name may join with the token.
        #[serde(default)]
        pub hostname: Option<String>,
        /// The IP addresses a host joining with the token may have in its
        /// certificate; others it asks for are left out.
        #[serde(default)]
        pub ips: Vec<String>,
        /// Allow re-joining a host name that already has a machine account.
        #[serde(default)]
        pub allow_rejoin: bool,
    }
}

api_type! {
    /// A join token (the secret only in the response that created it).
    pub struct JoinToken {
        /// Id, for `token revoke`.
        pub id: String,
        /// The secret, shown once.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        pub token: Option<String>,
        /// Bound host name.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        pub hostname: Option<String>,
        /// IP addresses a joining host may have in its certificate.
        #[serde(default)]
        pub ips: Vec<String>,
        /// Joins left.
        pub uses_left: i64,
        /// Expiry.
        pub expires_at: String,
        /// Whether it was revoked.
        pub revoked: bool,
        /// Whether it may re-join an existing host name.
        pub allow_rejoin: bool,
        /// Who created it.
        pub created_by: String,
        /// When.
        pub created_at: String,
    }
}

request_type! {
    /// `POST /v1/tenants/{tenant}/join`: a join token, or an administrator's bearer token.
    pub struct JoinRequestBody {
        /// The join token (omit when authenticating as an administrator).
        #[serde(default)]
        pub token: Option<String>,
        /// The host's fully qualified name.
        pub hostname: String,
        /// The host's IP addresses.
        #[serde(default)]
        pub ips: Vec<String>,
        /// PKCS#10 CSR (PEM, or base64 DER) made with a key generated on the host.
        pub csr: String,
    }
}

api_type! {
    /// A CRL of one CA.
    pub struct CrlEntry {
        /// The CA's id (names the agent's `crl/<ca-id>.crl.pem`).
        pub ca_id: String,
        /// The CRL, PEM.
        pub pem: String,
    }
}

api_type! {
    /// `GET /v1/tenants/{tenant}/trust`: what peers should trust, at a revision.
    pub struct TrustStateBody {
        /// Grows with every change of the bundle or a CRL.
        pub revision: i64,
        /// The trust bundle: root certificates, PEM.
        pub bundle: String,
        /// Every CA's latest CRL.
        pub crls: Vec<CrlEntry>,
        /// Every issuing CA's latest delta CRL (RFC 5280 section 5.2.4):
        /// the revocations since a recent complete CRL.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub delta_crls: Vec<CrlEntry>,
    }
}

api_type! {
    /// The result of a join.
    pub struct JoinResponse {
        /// The machine account's name.
        pub machine: String,
        /// The machine certificate, PEM.
        pub certificate: String,
        /// The certificate followed by its intermediates, PEM.
        pub chain: String,
        /// The machine secret (shown once): re-enrols after expiry or revocation.
        pub machine_secret: String,
        /// IP addresses asked for that neither the join token nor an
        /// administrator approved: not in the certificate.
        #[serde(default)]
        pub unapproved_ips: Vec<String>,
        /// Trust bundle and CRLs.
        pub trust: TrustStateBody,
    }
}

request_type! {
    /// `POST /v1/tenants/{tenant}/reenroll`: a machine whose certificate expired or was revoked.
    pub struct ReenrollRequest {
        /// The machine's host name.
        pub hostname: String,
        /// The machine secret from the join.
        pub machine_secret: String,
        /// PKCS#10 CSR (PEM or base64 DER).
        pub csr: String,
    }
}

api_type! {
    /// A new machine certificate and the trust state.
    pub struct EnrollResponse {
        /// The certificate, PEM.
        pub certificate: String,
        /// The certificate followed by its intermediates, PEM.
        pub chain: String,
        /// Trust bundle and CRLs.
        pub trust: TrustStateBody,
    }
}

request_type! {
    /// `POST /v1/tenants/{tenant}/machine-secret`: the machine's current secret,
    /// proved beside its certificate.
    pub struct RotateMachineSecretRequest {
        /// The current machine secret.
        pub machine_secret: String,
        /// The new secret, made on the host (`lwm_` and 43 to 128 URL-safe
        /// characters): a retry after a lost answer is then idempotent.
        /// The server makes one when absent.
        #[serde(default)]
        pub new_machine_secret: Option<String>,
    }
}

request_type! {
    /// `POST /v1/tenants/{tenant}/leave`: a machine leaving, by its secret.
    pub struct LeaveRequest {
        /// The machine's host name.
        pub hostname: String,
        /// Its machine secret.
        pub machine_secret: String,
    }
}

api_type! {
    /// `POST /v1/tenants/{tenant}/leave`: what leaving revoked.
    pub struct LeaveResponse {
        /// Serials of the certificates revoked (the machine's, and those it
        /// obtained for services it hosts).
        pub revoked: Vec<String>,
    }
}

request_type! {
    /// `GET`/`PUT /v1/tenants/{tenant}/machine-domains`: the DNS domains,
    /// besides the tenant's own, that machines' host names may lie inside.
    pub struct MachineDomains {
        /// The domains, e.g. `hosts.corp.example` or `corp.internal`.
        pub domains: Vec<String>,
    }
}

api_type! {
    /// `POST /v1/tenants/{tenant}/machine-secret`: a machine's new secret.
    pub struct MachineSecret {
        /// The secret, shown once.
        pub machine_secret: String,
    }
}

api_type! {
    /// `GET /v1/tenants/{tenant}/trust/watch`: the current trust revision.
    pub struct TrustRevision {
        /// The revision.
        pub revision: i64,
    }
}

api_type! {
    /// `GET /v1/tenants/{tenant}/trust/changes?since=N`: what changed after
    /// revision N (a long poll: answered once there is something), or that
    /// the caller must fetch the whole trust state (`GET .../trust`).
    pub struct TrustChangesBody {
        /// The revision the changes lead to (the current one).
        pub revision: i64,
        /// N is older than the changes the server keeps, or not a revision
        /// it had: fetch the whole trust state.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pub snapshot_required: bool,
        /// One change per revision after N, oldest first.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub changes: Vec<TrustChangeBody>,
    }
}

api_type! {
    /// One trust change. `kind` `ca`: a CA was added or changed
    /// (`certificate`, `bundle`, `crl_cas`). `kind` `crl`: a CA's CRL was
    /// re-signed (`number` and either `crl` or `delta`). `kind`
    /// `delta_crl`: a CA's delta CRL was signed (`number`, `base_number` and
    /// either `crl` or `delta`, from the delta CRL before it). `kind`
    /// `token_keys`: the tenant's token keys changed (no other member; the
    /// JWK Set is fetched again). Binary values are base64 DER.
    pub struct TrustChangeBody {
        /// `ca`, `crl`, `delta_crl` or `token_keys`.
        pub kind: String,
        /// The CA (empty for `token_keys`).
        #[serde(default)]
        pub ca_id: String,
        /// `ca`: the CA certificate.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub certificate: Option<String>,
        /// `ca`: the trust bundle after the change (root certificates).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub bundle: Option<Vec<String>>,
        /// `ca`: the CAs whose CRLs the trust state lists, in its order.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub crl_cas: Option<Vec<String>>,
        /// `crl`, `delta_crl`: the new CRL Number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub number: Option<i64>,
        /// `delta_crl`: the CRL Number of the complete CRL it applies to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub base_number: Option<i64>,
        /// `crl`, `delta_crl`: the new CRL whole.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub crl: Option<String>,
        /// `crl`, `delta_crl`: else the patch from the CRL of the same kind
        /// held before (lightwell-ca's `CrlDelta`, DER).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub delta: Option<String>,
    }
}

request_type! {
    /// `POST /v1/tenants/{tenant}/services/{name}/hosts`: let a machine hold the service's identity.
    pub struct AddServiceHostRequest {
        /// The machine's host name.
        pub machine: String,
    }
}
