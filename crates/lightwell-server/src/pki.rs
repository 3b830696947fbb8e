//! The plain-HTTP PKI listener: each CA's certificate and latest CRL at the
//! URLs written into certificates (`/pki/{tenant}/ca/{id}.crt` and `.crl`).
//! No authentication; responses are cacheable until the CRL's nextUpdate is near.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lightwell_core::{CaId, Service};

/// The router of the PKI listener.
pub(crate) fn router(service: Service) -> Router {
    Router::new()
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .route("/pki/{tenant}/ca/{file}", get(ca_file))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(service)
}

async fn ca_file(State(service): State<Service>, Path((tenant, file)): Path<(String, String)>) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "not found\n").into_response();
    // The id is parsed here, where it arrives: a name that is no CA id
    // never reaches a query.
    let Some((id, kind)) = file.rsplit_once('.') else { return not_found() };
    let Ok(id) = CaId::parse(id) else { return not_found() };
    let result = match kind {
        "crl" => service.public_crl(&tenant, &id).await.map(|der| ("application/pkix-crl", der)),
        "crt" => service.public_ca_certificate(&tenant, &id).await.map(|der| ("application/pkix-cert", der)),
        _ => return not_found(),
    };
    match result {
        // Short caching: a revocation re-signs the CRL at once, and peers should see it soon.
        Ok((ctype, der)) => {
            ([(header::CONTENT_TYPE, ctype), (header::CACHE_CONTROL, "max-age=60")], der).into_response()
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, format!("{}\n", e.message)).into_response()
        }
    }
}
