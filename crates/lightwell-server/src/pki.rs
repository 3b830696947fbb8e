//! The plain-HTTP PKI listener: each CA's certificate and latest CRL at the
//! URLs written into certificates (`/pki/{tenant}/ca/{id}.crt`, `.crl`, and
//! an issuing CA's delta CRL, `.delta.crl`).
//! No authentication; responses are cacheable until the CRL's nextUpdate is near.
//!
//! The OCSP responder (RFC 6960 appendix A) is here too: `POST
//! /pki/{tenant}/ocsp` with an `application/ocsp-request` body, and `GET
//! /pki/{tenant}/ocsp/{base64}` (standard or URL-safe base64, percent-decoded
//! by the router), answered `application/ocsp-response`; a GET is cacheable
//! until shortly before the response's nextUpdate.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use lightwell_ca::ocsp::MAX_REQUEST_BYTES;
use lightwell_core::{CaId, CrlKind, OcspAnswer, Service};

/// The router of the PKI listener.
pub(crate) fn router(service: Service) -> Router {
    Router::new()
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .route("/pki/{tenant}/ca/{file}", get(ca_file))
        .route("/pki/{tenant}/ocsp", post(ocsp_post).layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES)))
        .route("/pki/{tenant}/ocsp/{*request}", get(ocsp_get))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(service)
}

async fn ca_file(State(service): State<Service>, Path((tenant, file)): Path<(String, String)>) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "not found\n").into_response();
    // The id is parsed here, where it arrives: a name that is no CA id
    // never reaches a query.
    let Some((id, kind)) = file.split_once('.') else { return not_found() };
    let Ok(id) = CaId::parse(id) else { return not_found() };
    let result = match kind {
        "crl" => service.public_crl(&tenant, &id, CrlKind::Complete).await.map(|der| ("application/pkix-crl", der)),
        "delta.crl" => service.public_crl(&tenant, &id, CrlKind::Delta).await.map(|der| ("application/pkix-crl", der)),
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

const OCSP_RESPONSE: &str = "application/ocsp-response";

async fn ocsp_post(
    State(service): State<Service>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_ocsp = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/ocsp-request"))
    });
    if !is_ocsp {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected application/ocsp-request\n").into_response();
    }
    // POST answers are not cached (RFC 5019 section 5).
    let answer = service.ocsp(&tenant, body.to_vec()).await;
    ([(header::CONTENT_TYPE, OCSP_RESPONSE), (header::CACHE_CONTROL, "no-store")], answer.der).into_response()
}

async fn ocsp_get(State(service): State<Service>, Path((tenant, request)): Path<(String, String)>) -> Response {
    // The router has percent-decoded the path; some clients also turn '+'
    // into ' ' or use the URL-safe alphabet, and may leave padding off.
    let text: String =
        request.chars().filter(|c| *c != '\n' && *c != '\r').map(|c| if c == ' ' { '+' } else { c }).collect();
    if text.len() > MAX_REQUEST_BYTES * 4 / 3 + 4 {
        return (StatusCode::URI_TOO_LONG, "OCSP request too large\n").into_response();
    }
    let trimmed = text.trim_end_matches('=');
    let der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed));
    let answer = match der {
        Ok(der) => service.ocsp(&tenant, der).await,
        Err(_) => OcspAnswer {
            der: lightwell_ca::ocsp::error_response(lightwell_ca::ocsp::ErrorStatus::MalformedRequest),
            next_update: None,
        },
    };
    let cache = match answer.next_update {
        // Cacheable until shortly before nextUpdate, at most a day.
        Some(next) => {
            let left = (next - service.clock().now()).whole_seconds() - 60;
            format!("max-age={}, public, no-transform, must-revalidate", left.clamp(0, 60))
        }
        None => "no-store".to_string(),
    };
    ([(header::CONTENT_TYPE, OCSP_RESPONSE.to_string()), (header::CACHE_CONTROL, cache)], answer.der).into_response()
}
