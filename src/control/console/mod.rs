//! The operator console: one page and its assets, built into the binary and served by the admin
//! listener at `/` and `/console/<version>/<file>`, under a strict Content-Security-Policy.
//!
//! The page only calls the admin API (see `assets/app.js`); it needs no token to load, and sends
//! the token the operator types with every change (and with reads under `admin.read_requires_token`).

use std::sync::LazyLock;

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use sha2::{Digest, Sha256};

use super::api::ApiError;

/// Every console answer carries this policy: no inline script or style, nothing from elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const INDEX: &str = include_str!("assets/index.html");
/// The assets under `/console/<version>/`: name, content type, bytes.
const ASSETS: [(&str, &str, &str); 7] = [
    ("app.js", JS, include_str!("assets/app.js")),
    ("api.js", JS, include_str!("assets/api.js")),
    ("dom.js", JS, include_str!("assets/dom.js")),
    ("kafka.js", JS, include_str!("assets/kafka.js")),
    ("samples.js", JS, include_str!("assets/samples.js")),
    ("trend.js", JS, include_str!("assets/trend.js")),
    ("app.css", "text/css; charset=utf-8", include_str!("assets/app.css")),
];
const JS: &str = "text/javascript; charset=utf-8";

/// The crate version and a short hash of the assets: a new build's assets get a new path.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    for (name, _, body) in ASSETS {
        hash.update(name.as_bytes());
        hash.update(body.as_bytes());
    }
    format!("{}-{}", env!("CARGO_PKG_VERSION"), &hex::encode(hash.finalize())[..10])
});

/// The page with its asset paths filled in, and its ETag.
static PAGE: LazyLock<(String, String)> = LazyLock::new(|| {
    let page = INDEX.replace("{{version}}", &VERSION);
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(page.as_bytes()))[..16]);
    (page, etag)
});

/// The headers every console answer has.
fn secured(mut resp: Response, content_type: &'static str) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

/// `GET /`: the page; `no-cache` with an ETag, 304 when `If-None-Match` has it.
pub async fn page(headers: HeaderMap) -> Response {
    let (page, etag) = &*PAGE;
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == etag || t.trim() == "*");
    let mut resp = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { page.clone().into_response() };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::ETAG, HeaderValue::from_str(etag).expect("hex etag"));
    secured(resp, "text/html; charset=utf-8")
}

/// `GET /console/{version}/{file}`: an asset, cached for a year; 404 for another version or file.
pub async fn asset(Path((version, file)): Path<(String, String)>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) if version == *VERSION => {
            let mut resp = body.into_response();
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
            secured(resp, content_type)
        }
        _ => {
            let error = ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such console asset").into_response();
            let mut resp = secured(error, "application/json");
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_loaded_by_the_page_or_imported_by_a_module() {
        let (page, _) = &*PAGE;
        assert!(!page.contains("{{"), "every placeholder filled");
        for (name, _, _) in ASSETS {
            let by_page = page.contains(&format!("/console/{}/{name}", *VERSION));
            let imported = ASSETS.iter().any(|(_, _, body)| body.contains(&format!("from \"./{name}\"")));
            assert!(by_page || imported, "{name} is served but nothing loads it");
        }
    }
}
