//! `application/problem+json` (RFC 9457) errors with field-level detail, and the JSON body
//! extractor that produces them: wrong content type → 415, too large → 413, malformed or
//! unknown fields → 400 naming the field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One failing field and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON path of the field, e.g. `lines[1].quantity`.
    pub field: String,
    /// Stable rule name, e.g. `required`, `range`, `format`.
    pub rule: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, rule: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            rule: rule.to_owned(),
            message: message.into(),
        }
    }
}

/// An error answer. Internal details never go in here; log them and send a generic 500.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extra members, e.g. the id of an existing order on a 409.
    #[serde(flatten, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: impl Into<String>) -> Self {
        Problem {
            kind: format!("https://orderflow.dev/problems/{slug}"),
            title: title.into(),
            status: status.as_u16(),
            detail: None,
            errors: Vec::new(),
            extra: serde_json::Map::new(),
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        self.extra.insert(
            key.to_owned(),
            serde_json::to_value(value).unwrap_or(serde_json::Value::Null),
        );
        self
    }

    /// 422 listing every failing field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let mut p = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "the request is not valid",
        );
        p.detail = Some(format!("{} field(s) failed validation", errors.len()));
        p.errors = errors;
        p
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", "malformed request").detail(detail)
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "not found").detail(what)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::CONFLICT, "conflict", "conflict").detail(detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "unauthorized").detail(detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", "forbidden").detail(detail)
    }

    /// Logs `error` with its chain and answers a 500 that reveals nothing, unless the database
    /// refused a value the request carried (see [`refused_value`]): that is the client's 400.
    pub fn internal(error: &anyhow::Error) -> Self {
        if let Some(problem) = refused_value(error) {
            return problem;
        }
        tracing::error!(error = format!("{error:#}"), "request failed");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; it has been logged",
        )
    }
}

/// PostgreSQL's data exceptions for values it cannot hold — text with a NUL character or
/// invalid encoding (22021, 22P05), a malformed value (22P02), a number or date out of range
/// (22003, 22008) — come from a value in the request no validation stopped: a 400, not a 500.
fn refused_value(error: &anyhow::Error) -> Option<Problem> {
    let code = error.chain().find_map(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .and_then(|e| e.as_database_error())
            .and_then(|e| e.code().map(|c| c.into_owned()))
    })?;
    let detail = match code.as_str() {
        "22021" | "22P05" => "a text in the request contains a NUL character or cannot be encoded",
        "22P02" => "a value in the request is not of the expected form",
        "22003" | "22008" => "a number or date in the request is out of range",
        _ => return None,
    };
    tracing::warn!(
        error = format!("{error:#}"),
        "request refused by the database"
    );
    Some(Problem::bad_request(detail))
}

impl From<anyhow::Error> for Problem {
    fn from(error: anyhow::Error) -> Self {
        Problem::internal(&error)
    }
}

impl From<sqlx::Error> for Problem {
    fn from(error: sqlx::Error) -> Self {
        Problem::internal(&anyhow::Error::new(error))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(&self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

/// A JSON request body parsed into `T`, with errors as [`Problem`]s that name the field.
/// Put `#[serde(deny_unknown_fields)]` on `T` to have unknown fields reported.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime == "application/json" || mime.ends_with("+json")
            });
        if !is_json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "unsupported media type",
            )
            .detail("send the body as `Content-Type: application/json`"));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(status, "payload-too-large", "request body too large")
                    .detail(rejection.body_text())
            } else {
                Problem::bad_request(rejection.body_text())
            }
        })?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de)
            .map(JsonBody)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let rule = if inner.is_syntax() || inner.is_eof() {
                    "json"
                } else {
                    "schema"
                };
                let field = if path == "." { "body".to_owned() } else { path };
                let mut p = Problem::new(
                    StatusCode::BAD_REQUEST,
                    "malformed-body",
                    "the body does not match the expected shape",
                );
                p.errors = vec![FieldError::new(field, rule, inner.to_string())];
                p
            })
    }
}
