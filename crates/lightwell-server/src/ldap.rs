//! Wiring of the LDAP listeners (`lightwell-ldap`): LDAPS and LDAP with
//! StartTLS share the API's certificate (without its ALPN protocols) and
//! stop with the rest of the server.

use std::sync::Arc;

use lightwell_core::Service;
use lightwell_ldap::{DirectoryCache, LdapConfig, Limits, Transport};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Starts the LDAPS and StartTLS listeners; the future ends when both have shut down.
pub(crate) fn spawn(
    [ldaps, ldap]: [TcpListener; 2],
    allow_plaintext_bind: bool,
    api_tls: &Arc<rustls::ServerConfig>,
    service: &Service,
    stop: &watch::Receiver<bool>,
) -> impl Future<Output = ()> + use<> {
    let mut tls = (**api_tls).clone();
    tls.alpn_protocols.clear();
    let tls = Arc::new(tls);
    // Both listeners share the tenants' trees.
    let cache = DirectoryCache::default();
    let config =
        |transport| LdapConfig { transport, allow_plaintext_bind, limits: Limits::default(), cache: cache.clone() };
    let ldaps_task = tokio::spawn(lightwell_ldap::serve(
        ldaps,
        config(Transport::Ldaps),
        tls.clone(),
        service.clone(),
        stop.clone(),
    ));
    let ldap_task =
        tokio::spawn(lightwell_ldap::serve(ldap, config(Transport::StartTls), tls, service.clone(), stop.clone()));
    async move {
        let _ = tokio::join!(ldaps_task, ldap_task);
    }
}
