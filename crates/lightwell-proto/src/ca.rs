//! Request and response bodies of the certificate authority (CAs, issued
//! certificates, revocation, trust bundle). Times are RFC 3339 strings (UTC).

use serde::{Deserialize, Serialize};

api_type! {
    /// A CA of a tenant (never its private key).
    pub struct CaInfo {
        /// Stable id; part of its plain-HTTP URLs.
        pub id: String,
        /// Name, unique in the tenant.
        pub name: String,
        /// `root` or `intermediate`.
        pub role: String,
        /// `active`, `pending` (a rotation's new CA, trusted but not issuing), `superseded`
        /// (replaced by a rotation, trusted until its certificates expire), `retired` or `revoked`.
        pub status: String,
        /// Whether new certificates are issued by this CA by default.
        pub is_default: bool,
        /// Name of the CA that signed this one (absent for a root).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        pub parent: Option<String>,
        /// Key algorithm (`p256`, `p384`, `ed25519`, `rsa3072`, `rsa4096`).
        pub key_type: String,
        /// Serial, lower-case hex.
        pub serial: String,
        /// `sha256:HEX` of the certificate.
        pub fingerprint: String,
        /// Start of validity.
        pub not_before: String,
        /// End of validity.
        pub not_after: String,
        /// DNS name constraints (permitted subtrees).
        #[serde(default)]
        pub name_constraints: Vec<String>,
        /// basicConstraints pathLenConstraint.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        pub path_len: Option<u32>,
        /// Plain-HTTP URL of the certificate (DER).
        pub certificate_url: String,
        /// Plain-HTTP URL of the CA's CRL (DER).
        pub crl_url: String,
        /// The certificate, PEM.
        pub pem: String,
        /// When it was revoked.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        pub revoked_at: Option<String>,
    }
}

request_type! {
    /// `POST /v1/tenants/{tenant}/cas`: a new issuing CA under the tenant's active root.
    pub struct CreateIntermediateRequest {
        /// Name, unique in the tenant.
        pub name: String,
        /// DNS name constraints (permitted subtrees).
        #[serde(default)]
        pub name_constraints: Vec<String>,
        /// basicConstraints pathLenConstraint (default 0: signs leaves only).
        #[serde(default)]
        pub path_len: Option<u8>,
        /// Make it the tenant's default issuing CA.
        #[serde(default)]
        pub make_default: bool,
    }
}

request_type! {
    /// Revoking a CA, a certificate, or every certificate of a principal.
    pub struct RevokeRequest {
        /// RFC 5280 reason: `unspecified`, `key-compromise`, `ca-compromise`, `affiliation-changed`,
        /// `superseded`, `cessation-of-operation`, `certificate-hold`, `privilege-withdrawn`, `aa-compromise`.
        #[serde(default)]
        pub reason: Option<String>,
        /// For `POST /v1/tenants/{tenant}/certificates/revoke`: the principal as `kind/name` (`user/alice`).
        #[serde(default)]
        pub principal: Option<String>,
    }
}

api_type! {
    /// The outcome of a revocation.
    pub struct RevokeResponse {
        /// Serials of the certificates revoked by this request.
        pub revoked: Vec<String>,
    }
}

request_type! {
    /// `POST /v1/tenants/{tenant}/cas/rotate`: a new root and default issuing CA
    /// (`pending`: trusted, not yet issuing), or with `activate` the move of
    /// issuance to them (of a new rotation, or of the one already pending).
    pub struct RotateRequest {
        /// Move issuance to the new hierarchy now.
        #[serde(default)]
        pub activate: bool,
        /// Key type of the new CAs (default: that of the current root).
        #[serde(default)]
        pub key_type: Option<String>,
    }
}

/// `POST /v1/tenants/{tenant}/cas/import`: an existing CA with its private key.
/// `Debug` leaves the key out.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ImportCaRequest {
    /// The CA certificate, PEM (a root or an intermediate).
    pub certificate: String,
    /// Its private key, PEM PKCS#8 (`PRIVATE KEY`). Sealed under the KEK; never returned.
    pub key: String,
    /// Name in the tenant (default `imported-` and the start of the fingerprint).
    #[serde(default)]
    pub name: Option<String>,
    /// Make it the default issuing CA (intermediates only).
    #[serde(default)]
    pub make_default: bool,
}

impl std::fmt::Debug for ImportCaRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportCaRequest")
            .field("name", &self.name)
            .field("make_default", &self.make_default)
            .finish_non_exhaustive()
    }
}

request_type! {
    /// `POST /v1/tenants/{tenant}/ca-requests`: an intermediate whose key is generated and kept
    /// server-side, and whose CSR an enterprise CA signs.
    pub struct CreateCaRequestRequest {
        /// Name the CA will have, unique in the tenant.
        pub name: String,
        /// basicConstraints pathLenConstraint asked for (default 0: signs leaves only).
        #[serde(default)]
        pub path_len: Option<u8>,
        /// Key type (default: that of the tenant's root).
        #[serde(default)]
        pub key_type: Option<String>,
    }
}

api_type! {
    /// An intermediate waiting for an enterprise CA's signature.
    pub struct CaRequestInfo {
        /// Id; the CA keeps it once installed.
        pub id: String,
        /// Name.
        pub name: String,
        /// The PKCS#10 request, PEM.
        pub csr_pem: String,
    }
}

request_type! {
    /// `POST /v1/tenants/{tenant}/ca-requests/{name}/install`: the certificate an enterprise CA signed.
    pub struct InstallCaRequest {
        /// The signed CA certificate, PEM.
        pub certificate: String,
        /// Make it the default issuing CA.
        #[serde(default)]
        pub make_default: bool,
    }
}

request_type! {
    /// `POST /v1/tenants/{tenant}/certificates`.
    pub struct IssueCertificateRequest {
        /// PKCS#10 request: PEM, or DER in base64.
        pub csr: String,
        /// `server`, `client` or `server-client` (default by principal kind: users `client`, others `server-client`).
        #[serde(default)]
        pub profile: Option<String>,
        /// Lifetime: seconds, or a number with `s`, `m`, `h` or `d` (default by tenant policy).
        #[serde(default)]
        pub ttl: Option<String>,
        /// Administrators only: issue for this principal (`kind/name`, e.g. `machine/node1.corp.example`).
        #[serde(default)]
        pub principal: Option<String>,
        /// A Kubernetes cluster: issue from its CA with profile `k8s-node` (kubelet client),
        /// `k8s-node-serving` (kubelet serving) or `k8s-user` (a user's kubeconfig).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cluster: Option<String>,
    }
}

api_type! {
    /// An issued certificate.
    pub struct CertificateInfo {
        /// Serial, lower-case hex.
        pub serial: String,
        /// Principal kind.
        pub principal_kind: String,
        /// Principal name.
        pub principal_name: String,
        /// Profile.
        pub profile: String,
        /// Name of the issuing CA.
        pub ca: String,
        /// Start of validity.
        pub not_before: String,
        /// End of validity.
        pub not_after: String,
        /// Who requested it.
        pub requester: String,
        /// When it was revoked.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        pub revoked_at: Option<String>,
        /// Why.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        pub revocation_reason: Option<String>,
        /// `sha256:HEX` of the certificate.
        pub fingerprint: String,
        /// The certificate, PEM.
        pub pem: String,
        /// The certificate followed by its intermediates, PEM (what TLS servers send).
        pub chain_pem: String,
    }
}

api_type! {
    /// One root of a trust bundle.
    pub struct TrustAnchor {
        /// CA id.
        pub id: String,
        /// CA name.
        pub name: String,
        /// `active`, or during a rotation `pending` (the new root) or `superseded` (the old one).
        pub status: String,
        /// `sha256:HEX` of the certificate.
        pub fingerprint: String,
        /// End of validity.
        pub not_after: String,
        /// The certificate, PEM.
        pub pem: String,
    }
}

api_type! {
    /// `GET /v1/tenants/{tenant}/trust-bundle` as JSON.
    pub struct TrustBundle {
        /// Tenant domain.
        pub tenant: String,
        /// The roots peers should trust.
        pub roots: Vec<TrustAnchor>,
        /// All roots concatenated, PEM.
        pub pem: String,
    }
}
