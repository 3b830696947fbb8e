//! Kubernetes webhook token authentication: `POST /k8s/{tenant}/token-review`
//! takes the `TokenReview` (`authentication.k8s.io/v1`) a cluster's API
//! server sends (`--authentication-token-webhook-config-file`, the file
//! `lightwell k8s webhook-config` writes) and answers it, per the
//! Kubernetes webhook token authentication protocol: HTTP 200 with
//! `status.authenticated` and the user, or `authenticated: false` and an
//! error; a request that is not a `TokenReview` gets 400. The service
//! decides (`Service::token_review`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::{ApiError, ApiPath};

/// Largest token reviewed (tokens here are well under 8 KiB).
const MAX_TOKEN: usize = 16 * 1024;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review {
    api_version: String,
    kind: String,
    spec: ReviewSpec,
}

#[derive(Deserialize)]
struct ReviewSpec {
    #[serde(default)]
    token: String,
    #[serde(default)]
    audiences: Vec<String>,
}

fn bad(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": message }))).into_response()
}

/// `POST /k8s/{tenant}/token-review`.
pub(crate) async fn review(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Ok(review) = serde_json::from_slice::<Review>(&body) else {
        return Ok(bad("the body is not a TokenReview"));
    };
    if review.kind != "TokenReview"
        || !matches!(review.api_version.as_str(), "authentication.k8s.io/v1" | "authentication.k8s.io/v1beta1")
    {
        return Ok(bad("the body is not an authentication.k8s.io/v1 TokenReview"));
    }
    let status = if review.spec.token.is_empty() || review.spec.token.len() > MAX_TOKEN {
        json!({ "authenticated": false, "error": "no token, or one too long" })
    } else {
        match state.service.token_review(&tenant, review.spec.token, review.spec.audiences).await? {
            Ok(user) => json!({
                "authenticated": true,
                "user": {
                    "username": user.username,
                    "uid": user.uid,
                    "groups": user.groups,
                    "extra": { "lightwell.io/tenant": [tenant] },
                },
                "audiences": user.audiences,
            }),
            Err(why) => json!({ "authenticated": false, "error": why }),
        }
    };
    Ok(axum::Json(json!({ "apiVersion": review.api_version, "kind": "TokenReview", "status": status })).into_response())
}
