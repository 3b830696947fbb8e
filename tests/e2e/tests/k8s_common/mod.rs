//! Shared by the Kubernetes tests: reading certificates field by field.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;

use x509_parser::pem::parse_x509_pem;
use x509_parser::prelude::*;

/// The fields kubeadm fixes for each certificate of its PKI directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fields {
    pub(crate) cn: String,
    pub(crate) o: Vec<String>,
    pub(crate) dns: BTreeSet<String>,
    pub(crate) ips: BTreeSet<String>,
    pub(crate) uris: Vec<String>,
    pub(crate) server_auth: bool,
    pub(crate) client_auth: bool,
    /// keyUsage: digitalSignature and nothing else.
    pub(crate) digital_signature_only: bool,
    pub(crate) is_ca: bool,
    pub(crate) issuer_cn: String,
    pub(crate) serial: String,
}

fn cn_of(name: &X509Name<'_>) -> String {
    name.iter_common_name().next().and_then(|a| a.as_str().ok()).unwrap_or_default().to_string()
}

/// Reads the first certificate of a PEM file.
pub(crate) fn fields(path: &Path) -> Fields {
    let pem_bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    fields_of_pem(&pem_bytes)
}

/// Reads the first certificate of PEM text.
pub(crate) fn fields_of_pem(pem_bytes: &[u8]) -> Fields {
    let (_, pem) = parse_x509_pem(pem_bytes).unwrap();
    let cert = pem.parse_x509().unwrap();
    let mut f = Fields {
        cn: cn_of(cert.subject()),
        o: cert.subject().iter_organization().map(|a| a.as_str().unwrap().to_string()).collect(),
        dns: BTreeSet::new(),
        ips: BTreeSet::new(),
        uris: vec![],
        server_auth: false,
        client_auth: false,
        digital_signature_only: false,
        is_ca: false,
        issuer_cn: cn_of(cert.issuer()),
        serial: cert.raw_serial_as_string().replace(':', ""),
    };
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => {
                    f.dns.insert(d.to_string());
                }
                GeneralName::IPAddress(ip) => {
                    let ip: std::net::IpAddr = match ip.len() {
                        4 => <[u8; 4]>::try_from(*ip).unwrap().into(),
                        _ => <[u8; 16]>::try_from(*ip).unwrap().into(),
                    };
                    f.ips.insert(ip.to_string());
                }
                GeneralName::URI(u) => f.uris.push(u.to_string()),
                other => panic!("unexpected SAN {other:?}"),
            }
        }
    }
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        f.server_auth = eku.value.server_auth;
        f.client_auth = eku.value.client_auth;
    }
    if let Ok(Some(ku)) = cert.key_usage() {
        f.digital_signature_only = ku.critical && ku.value.flags == 1;
    }
    if let Ok(Some(bc)) = cert.basic_constraints() {
        f.is_ca = bc.value.ca;
    }
    f
}

/// A set of strings.
pub(crate) fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The client certificate inside a kubeconfig, as `kubectl config view --raw` shows it.
pub(crate) fn kubeconfig_certificate(path: &Path) -> (String, Vec<u8>) {
    let out = Command::new("kubectl")
        .args(["config", "view", "--raw", "--kubeconfig"])
        .arg(path)
        .args(["-o", "jsonpath={.clusters[0].cluster.server} {.users[0].user.client-certificate-data}"])
        .output()
        .unwrap();
    assert!(out.status.success(), "kubectl config view: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let (server, b64) = text.split_once(' ').unwrap();
    (server.to_string(), base64::engine::general_purpose::STANDARD.decode(b64.trim()).unwrap())
}
