//! The web portal, embedded in the binary (see `build.rs`): its files by path,
//! and `index.html` for every other page path (the app routes in the browser).

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/portal_assets.rs"));

/// Served when the binary was built without the portal.
const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Tessera</title></head>\
<body><main><h1>Tessera</h1><p>This binary was built without its portal (TESSERA_PORTAL_SKIP_BUILD). \
The REST API is at <a href=\"/api/v1/docs/\">/api/v1/docs/</a>.</p></main></body></html>";

/// The portal's pages, for the catalog's fallback (GET and HEAD outside `/api/`).
pub fn router() -> Router {
    Router::new().fallback(serve)
}

async fn serve(request: Request) -> Response {
    let path = request.uri().path().trim_start_matches('/');
    if let Some((name, body)) = ASSETS.iter().find(|(name, _)| *name == path && !path.is_empty()) {
        let mut response = (*body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
        // Vite names assets by content: they never change under one name.
        let cache = if name.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        return response;
    }
    // A missing asset is a 404; any other path is a page of the app.
    if path.starts_with("assets/") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let index = ASSETS
        .iter()
        .find(|(name, _)| *name == "index.html")
        .map_or(NOT_BUILT.as_bytes(), |(_, body)| *body);
    let mut response = index.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
