//! Errors of the admin API, always answered as JSON `{"error": "...", "detail": "..."}` with the
//! matching status, and the body/query extractors whose rejections use the same shape (axum's own
//! answer plain text).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::directory::DirectoryError;

/// Why an admin request failed. The `String` is the detail shown to the caller: never a secret.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Short reason: `bad request`, `unauthorized`, `forbidden`, `not found`, `conflict`, ...
    pub error: String,
    /// What exactly went wrong.
    pub detail: String,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn body(&self) -> ErrorBody {
        let status = self.status();
        let error = status.canonical_reason().unwrap_or("error").to_ascii_lowercase();
        ErrorBody { error, detail: self.to_string() }
    }

    pub fn not_found(what: impl std::fmt::Display) -> ApiError {
        ApiError::NotFound(format!("{what} not found"))
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if matches!(self, ApiError::Internal(_)) {
            tracing::error!(detail = %self, "admin API internal error");
        }
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        if matches!(self, ApiError::Unauthorized(_)) {
            response
                .headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<DirectoryError> for ApiError {
    fn from(e: DirectoryError) -> ApiError {
        match e {
            DirectoryError::NotFound(_) => ApiError::NotFound(e.to_string()),
            DirectoryError::Conflict(m) => ApiError::Conflict(m),
            DirectoryError::Invalid(m) => ApiError::Unprocessable(m),
            DirectoryError::Store(_) | DirectoryError::Secret(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<crate::directory::store::StoreError> for ApiError {
    fn from(e: crate::directory::store::StoreError) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl From<crate::actions::ActionError> for ApiError {
    fn from(e: crate::actions::ActionError) -> ApiError {
        use crate::actions::ActionError as A;
        let detail = e.to_string();
        match e {
            A::NotFound(_) => ApiError::NotFound(detail),
            A::Invalid(_) => ApiError::Unprocessable(detail),
            A::Conflict(_) => ApiError::Conflict(detail),
            A::Internal(_) => ApiError::Internal(detail),
        }
    }
}

/// A JSON request body; a body that is not JSON, or not of the expected shape, is a 400 with a JSON
/// error. The `Content-Type` is not insisted on (curl users forget it).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("could not read the body: {e}")))?;
        let body: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        serde_json::from_slice(body).map(ApiJson).map_err(|e| ApiError::BadRequest(format!("bad JSON body: {e}")))
    }
}

/// Query parameters; a malformed query is a 400 with a JSON error.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::BadRequest(format!("bad query: {}", e.body_text())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::store::StoreError;

    #[test]
    fn directory_errors_map_to_statuses() {
        let cases = [
            (DirectoryError::NotFound("user x".into()), 404),
            (DirectoryError::Conflict("taken".into()), 409),
            (DirectoryError::Invalid("bad".into()), 422),
            (DirectoryError::Store(StoreError::WriterGone), 500),
        ];
        for (e, status) in cases {
            assert_eq!(ApiError::from(e).status().as_u16(), status);
        }
    }

    #[test]
    fn body_has_reason_and_detail() {
        let body = ApiError::from(DirectoryError::NotFound("user bob".into())).body();
        assert_eq!(body.error, "not found");
        assert_eq!(body.detail, "user bob not found");
        assert_eq!(ApiError::Unprocessable("x".into()).body().error, "unprocessable entity");
    }

    #[tokio::test]
    async fn bad_json_is_a_400() {
        let req = Request::builder().body(axum::body::Body::from("{not json")).unwrap();
        let err = ApiJson::<serde_json::Value>::from_request(req, &()).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let req = Request::builder().body(axum::body::Body::from(" ")).unwrap();
        let ok = ApiJson::<serde_json::Value>::from_request(req, &()).await.unwrap();
        assert!(ok.0.is_object());
    }
}
