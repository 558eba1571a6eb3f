//! Extractors and responders that speak problem+json on every failure.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::authz::Caller;

/// A JSON body: `application/json` only, unknown fields refused, every failure a
/// problem (400 syntax, 413 too large, 415 wrong media type, 422 wrong shape).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|essence| {
                let essence = essence.trim().to_ascii_lowercase();
                essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "the request body must be application/json".into(),
            ));
        }
        let bytes = body_bytes(req, state).await?;
        // serde would read a struct from an array of its fields too: only objects.
        if bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b != b'{')
        {
            return Err(ApiError::field("", "the request body must be a JSON object"));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        let value = T::deserialize(&mut deserializer).map_err(|e| json_error(&e))?;
        deserializer.end().map_err(|e| json_error(&e))?;
        Ok(Self(value))
    }
}

fn json_error(e: &serde_json::Error) -> ApiError {
    match e.classify() {
        serde_json::error::Category::Data => ApiError::field("", e.to_string()),
        _ => ApiError::BadRequest(format!("the request body is not valid JSON: {e}")),
    }
}

/// Reads a whole body within the configured limit.
pub async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e: BytesRejection| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest(e.body_text())
        }
    })
}

/// Query parameters, with a problem on failure.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e: QueryRejection| ApiError::BadRequest(e.body_text()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("missing credentials".into()))
    }
}

/// The revision an update expects, from `If-Match` (`"3"`, `W/"3"` or `*`).
/// A value that matches no revision this API issues fails with 412.
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parse_if_match(&parts.headers)))
    }
}

fn parse_if_match(headers: &HeaderMap) -> Option<i64> {
    let value = headers.get(header::IF_MATCH)?;
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return None;
    }
    let tag = text.strip_prefix("W/").unwrap_or(text);
    Some(
        tag.strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(-1),
    )
}

/// A JSON resource with its ETag (its revision).
pub struct Tagged<T> {
    pub status: StatusCode,
    pub revision: i64,
    pub location: Option<String>,
    pub body: T,
}

impl<T> Tagged<T> {
    pub fn ok(revision: i64, body: T) -> Self {
        Self {
            status: StatusCode::OK,
            revision,
            location: None,
            body,
        }
    }

    pub fn created(revision: i64, location: String, body: T) -> Self {
        Self {
            status: StatusCode::CREATED,
            revision,
            location: Some(location),
            body,
        }
    }
}

impl<T: Serialize> IntoResponse for Tagged<T> {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", self.revision)) {
            headers.insert(header::ETAG, v);
        }
        if let Some(location) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, location);
        }
        response
    }
}
