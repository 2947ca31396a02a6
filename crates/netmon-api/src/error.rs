//! Errors: [`ApiError`] for starting and running the server, and the JSON error responses.

use core::net::SocketAddr;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The listening socket could not be opened.
    #[error("cannot bind {addr}: {source} (check api.bind)")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The system's reason.
        source: std::io::Error,
    },
    /// A bind address other than loopback was configured without a token.
    #[error(
        "refusing to serve the API on {0} without a token: binding to an address other than \
         loopback requires api.token (or bind 127.0.0.1)"
    )]
    TokenRequired(SocketAddr),
    /// The configured token is empty or contains characters other than visible ASCII.
    #[error("api.token must be non-empty visible ASCII (no spaces or control characters)")]
    InvalidToken,
    /// Accepting or serving connections failed.
    #[error("API server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// The body of every error response: `{"error": "...", "detail": ...}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct ErrorBody {
    /// What went wrong, in a few words.
    pub(crate) error: String,
    /// Specifics: the parameter, the value and what is allowed; `null` when there is nothing
    /// to add.
    pub(crate) detail: Option<String>,
}

/// An error response.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HttpError {
    pub(crate) status: StatusCode,
    pub(crate) body: ErrorBody,
}

impl HttpError {
    pub(crate) fn new(status: StatusCode, error: &str, detail: Option<String>) -> HttpError {
        HttpError {
            status,
            body: ErrorBody {
                error: error.to_string(),
                detail,
            },
        }
    }

    /// `400` about one query parameter.
    pub(crate) fn param(name: &str, detail: impl Into<String>) -> HttpError {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            &format!("invalid query parameter `{name}`"),
            Some(detail.into()),
        )
    }

    pub(crate) fn unauthorized() -> HttpError {
        HttpError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            Some("send the API token as `Authorization: Bearer <token>`".into()),
        )
    }

    pub(crate) fn internal(detail: impl Into<String>) -> HttpError {
        HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error",
            Some(detail.into()),
        )
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body).unwrap_or_else(|_| {
            br#"{"error":"internal error","detail":"error serialisation failed"}"#.to_vec()
        });
        let mut r = (self.status, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"netmon\""),
            );
        }
        r
    }
}

impl From<crate::BackendError> for HttpError {
    fn from(e: crate::BackendError) -> HttpError {
        use crate::BackendError as B;
        match e {
            B::BadRequest(d) => HttpError::new(StatusCode::BAD_REQUEST, "bad request", Some(d)),
            B::Unavailable(d) => HttpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service unavailable",
                Some(d),
            ),
            B::Internal(d) => HttpError::internal(d),
        }
    }
}
