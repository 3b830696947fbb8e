//! Certificate profiles: what a leaf may be used for. Each profile fixes the
//! key usage and extended key usage; the subject rules live in the service
//! layer's issuance policy.
use std::fmt;
use std::str::FromStr;

use rcgen::{ExtendedKeyUsagePurpose, KeyUsagePurpose};

use crate::Error;
use crate::public_key::PublicKeyAlgorithm;

/// What a leaf certificate is for.
///
/// More profiles (Kubernetes nodes and users, whose subjects carry `O=`
/// values) will be added, so matches need a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Profile {
    /// A TLS server (EKU serverAuth).
    Server,
    /// A TLS client (EKU clientAuth); the default for users.
    Client,
    /// Both; the default for machines and services.
    ServerClient,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Self; 3] = [Self::Server, Self::Client, Self::ServerClient];

    /// The stable name used in the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Client => "client",
            Self::ServerClient => "server-client",
        }
    }

    /// Whether the leaf gets EKU id-kp-serverAuth.
    pub fn server_auth(self) -> bool {
        matches!(self, Self::Server | Self::ServerClient)
    }

    /// Whether the leaf gets EKU id-kp-clientAuth.
    pub fn client_auth(self) -> bool {
        matches!(self, Self::Client | Self::ServerClient)
    }

    /// Whether the leaf gets keyEncipherment besides digitalSignature: only
    /// RSA server keys, for TLS 1.2 RSA key exchange (RFC 5246 section 7.4.2).
    pub fn key_encipherment(self, key: PublicKeyAlgorithm) -> bool {
        self.server_auth() && key.is_rsa()
    }

    pub(crate) fn key_usages(self, key: PublicKeyAlgorithm) -> Vec<KeyUsagePurpose> {
        let mut usages = vec![KeyUsagePurpose::DigitalSignature];
        if self.key_encipherment(key) {
            usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        usages
    }

    pub(crate) fn extended_key_usages(self) -> Vec<ExtendedKeyUsagePurpose> {
        let mut usages = Vec::new();
        if self.server_auth() {
            usages.push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if self.client_auth() {
            usages.push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        usages
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Profile {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| Error::UnknownProfile(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for profile in Profile::ALL {
            assert_eq!(profile.as_str().parse::<Profile>().unwrap(), profile);
        }
        assert!(matches!("k8s-node".parse::<Profile>(), Err(Error::UnknownProfile(_))));
    }

    #[test]
    fn only_rsa_server_keys_get_key_encipherment() {
        let rsa = PublicKeyAlgorithm::Rsa { bits: 2048 };
        assert!(Profile::Server.key_encipherment(rsa));
        assert!(Profile::ServerClient.key_encipherment(rsa));
        assert!(!Profile::Client.key_encipherment(rsa));
        assert!(!Profile::Server.key_encipherment(PublicKeyAlgorithm::EcdsaP256));
    }

    #[test]
    fn extended_key_usage_follows_the_profile() {
        assert!(Profile::Server.server_auth() && !Profile::Server.client_auth());
        assert!(!Profile::Client.server_auth() && Profile::Client.client_auth());
        assert!(Profile::ServerClient.server_auth() && Profile::ServerClient.client_auth());
    }
}
