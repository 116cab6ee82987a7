//! The operator's client of the admin API (`strangler status`, `dial`, `mode`, `rollback`,
//! `rollout resume`, `audit`, `reload`): one HTTP call per command, every failure sorted into
//! the exit code a script can act on. The tables it prints are pure functions in [`format`].

pub mod format;

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::{json, Value};

/// Where the admin API is when neither `--admin` nor [`ADMIN_ENV`] says.
pub const DEFAULT_ADMIN: &str = "http://127.0.0.1:9090";
/// The admin API's URL, when `--admin` is not given.
pub const ADMIN_ENV: &str = "STRANGLER_ADMIN";
/// The bearer token: from the environment only, so it stays out of shell history and `ps`.
pub const TOKEN_ENV: &str = "STRANGLER_ADMIN_TOKEN";
/// A PEM file of the CA that signed an `https://` admin listener's certificate; without it, the
/// Mozilla roots (webpki-roots) are trusted.
pub const CA_ENV: &str = "STRANGLER_ADMIN_CA";
/// The whole call (connect, send, read the answer) must finish within this.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a command failed; each kind is one exit code.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The operator's mistake, found before any call (a bad URL or token). Exit 2.
    #[error("{0}")]
    Usage(String),
    /// The server answered 4xx or 5xx. `body` is its answer as-is, for `--json`. Exit 1.
    #[error("refused ({}): {message}{}", status_and_code(*status, code), hint(*status))]
    Refused { status: u16, code: Option<String>, message: String, body: Bytes },
    /// The server answered 2xx with something this client cannot read. Exit 1.
    #[error("the admin API at {url} answered {status} with a body this client cannot read: {reason}")]
    Unexpected { url: String, status: u16, reason: String },
    /// No answer: connection refused, DNS, timeout, connection broken. Exit 3.
    #[error("cannot reach the admin API at {url}: {reason}")]
    Unreachable { url: String, reason: String },
}

impl ClientError {
    /// 1 refused, 2 usage, 3 unreachable.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Refused { .. } | ClientError::Unexpected { .. } => 1,
            ClientError::Usage(_) => 2,
            ClientError::Unreachable { .. } => 3,
        }
    }
}

fn status_and_code(status: u16, code: &Option<String>) -> String {
    code.as_ref().map_or_else(|| status.to_string(), |c| format!("{status} {c}"))
}

fn hint(status: u16) -> String {
    if status == 401 {
        format!("\nhint: export {TOKEN_ENV}=<the value of one of the server's [[admin.token]]> (never a flag)")
    } else {
        String::new()
    }
}

/// A dial's PERCENT from the command line: a number from 0 to 100 with at most two decimals
/// (a trailing `%` is allowed). For clap's `value_parser`, so a bad one is a usage error.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let expected = "expected a number from 0 to 100 with at most two decimals";
    let p: f64 = text.trim().trim_end_matches('%').parse().map_err(|_| format!("{expected}, found `{text}`"))?;
    crate::route::assign::Share::from_percent(p).map(|_| p).map_err(|_| format!("{expected}, found `{text}`"))
}

/// The admin API's base URL: `http://host:port` or `https://host:port`, nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminUrl(String);

impl AdminUrl {
    /// `--admin` if given, else [`ADMIN_ENV`] if set and not empty, else [`DEFAULT_ADMIN`].
    pub fn choose(flag: Option<&str>, env: Option<&str>) -> Result<Self, ClientError> {
        match (flag, env.filter(|e| !e.trim().is_empty())) {
            (Some(flag), _) => Self::parse(flag, "--admin"),
            (None, Some(env)) => Self::parse(env, ADMIN_ENV),
            (None, None) => Self::parse(DEFAULT_ADMIN, "the default"),
        }
    }

    /// Parses `text`; `source` names where it came from, for the message.
    pub fn parse(text: &str, source: &str) -> Result<Self, ClientError> {
        let text = text.trim();
        let expected = "expected http://host:port or https://host:port, e.g. http://127.0.0.1:9090";
        let bad = |why: &str| ClientError::Usage(format!("{source}: {why}, found `{text}`"));
        let uri: Uri = text.parse().map_err(|_| bad(expected))?;
        let scheme = match uri.scheme_str() {
            Some(s @ ("http" | "https")) => s,
            _ => return Err(bad(expected)),
        };
        let Some(authority) = uri.authority().filter(|a| !a.host().is_empty()) else { return Err(bad(expected)) };
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad(&format!("{expected}, without a path")));
        }
        Ok(Self(format!("{scheme}://{authority}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The bearer token. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct BearerToken(String);

impl BearerToken {
    /// The token from [`TOKEN_ENV`]'s value, if it is set and not blank.
    pub fn from_env_value(value: Option<String>) -> Option<Self> {
        value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).map(Self)
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

/// One command, as the call it makes.
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    Status,
    Share { route: String, percent: f64, reason: String, expected_version: Option<u64> },
    Mode { route: String, mode: String, reason: String, expected_version: Option<u64> },
    Rollback { route: String, reason: String },
    Resume { route: String, reason: Option<String> },
    Audit { route: Option<String>, limit: Option<usize> },
    Reload,
}

impl Call {
    /// Method, path and query, and JSON body of the call.
    pub fn request(&self) -> (Method, String, Option<Value>) {
        let route_path = |route: &str, tail: &str| format!("/api/routes/{}{tail}", encode(route));
        let with_version = |mut body: Value, expected: &Option<u64>| {
            if let Some(v) = expected {
                body["expected_version"] = json!(v);
            }
            Some(body)
        };
        match self {
            Call::Status => (Method::GET, "/api/routes".into(), None),
            Call::Share { route, percent, reason, expected_version } => (
                Method::PUT,
                route_path(route, "/share"),
                with_version(json!({"percent": percent, "reason": reason}), expected_version),
            ),
            Call::Mode { route, mode, reason, expected_version } => {
                (Method::PUT, route_path(route, "/mode"), with_version(json!({"mode": mode, "reason": reason}), expected_version))
            }
            Call::Rollback { route, reason } => (Method::POST, route_path(route, "/rollback"), Some(json!({"reason": reason}))),
            Call::Resume { route, reason } => {
                let body = reason.as_ref().map_or_else(|| json!({}), |r| json!({"reason": r}));
                (Method::POST, route_path(route, "/rollout/resume"), Some(body))
            }
            Call::Audit { route, limit } => {
                let mut query: Vec<String> = route.iter().map(|r| format!("route={}", encode(r))).collect();
                query.extend(limit.map(|l| format!("limit={l}")));
                let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
                (Method::GET, format!("/api/audit{query}"), None)
            }
            Call::Reload => (Method::POST, "/api/reload".into(), Some(json!({}))),
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters (for a path segment or a query value).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A client of one admin API.
pub struct Admin {
    url: AdminUrl,
    token: Option<BearerToken>,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Admin {
    /// A client trusting the Mozilla roots for an `https://` URL.
    pub fn new(url: AdminUrl, token: Option<BearerToken>) -> Self {
        Self::with_ca(url, token, None).expect("the built-in roots always make a client")
    }

    /// A client trusting only the CA in the PEM file `ca` (when given) for an `https://` URL.
    pub fn with_ca(url: AdminUrl, token: Option<BearerToken>, ca: Option<&str>) -> Result<Self, ClientError> {
        let roots = match ca {
            None => None,
            Some(path) => {
                let bad = |why: String| ClientError::Usage(format!("{CA_ENV}: {path}: {why}"));
                let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
                let certs =
                    CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().map_err(|e| bad(e.to_string()))?;
                if certs.is_empty() {
                    return Err(bad("no CERTIFICATE block".into()));
                }
                Some(certs)
            }
        };
        let tls = crate::legacy::tls::client_config(crate::legacy::tls::Material { roots, identity: None })
            .map_err(|e| ClientError::Usage(format!("{CA_ENV}: {e}")))?;
        let connector = HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        Ok(Self { url, token, http: Client::builder(TokioExecutor::new()).build(connector) })
    }

    /// The URL from `--admin`, else [`ADMIN_ENV`], else the default; the token from [`TOKEN_ENV`];
    /// the CA of an `https://` admin listener from [`CA_ENV`].
    pub fn from_env(flag: Option<&str>) -> Result<Self, ClientError> {
        let url = AdminUrl::choose(flag, std::env::var(ADMIN_ENV).ok().as_deref())?;
        let ca = std::env::var(CA_ENV).ok().filter(|v| !v.trim().is_empty());
        Self::with_ca(url, BearerToken::from_env_value(std::env::var(TOKEN_ENV).ok()), ca.as_deref())
    }

    /// Makes the call and answers what the operator sees: the answer as-is with `json`, else
    /// the table or the line for it.
    pub async fn run(&self, call: &Call, json: bool) -> Result<String, ClientError> {
        let (method, path, body) = call.request();
        let answer = self.call(method, &path, body).await?;
        if json {
            return Ok(String::from_utf8_lossy(&answer).trim_end().to_string());
        }
        let value: Value = serde_json::from_slice(&answer).map_err(|e| ClientError::Unexpected {
            url: self.url.as_str().to_string(),
            status: 200,
            reason: format!("not JSON: {e}"),
        })?;
        Ok(match call {
            Call::Status => format::status_table(&value),
            Call::Audit { .. } => format::audit_table(&value),
            Call::Reload => format::reload_report(&value),
            Call::Share { .. } | Call::Mode { .. } | Call::Rollback { .. } | Call::Resume { .. } => format::change_line(&value),
        })
    }

    /// One request; the body of a 2xx answer, or the refusal.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Bytes, ClientError> {
        let url = format!("{}{path}", self.url.as_str());
        let mut req = Request::builder().method(method).uri(&url);
        if let Some(token) = &self.token {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.0))
                .map_err(|_| ClientError::Usage(format!("{TOKEN_ENV} holds characters a header cannot carry")))?;
            value.set_sensitive(true);
            req = req.header(header::AUTHORIZATION, value);
        }
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(body)).map_err(|e| ClientError::Usage(format!("{url}: {e}")))?;
        let unreachable = |reason: String| ClientError::Unreachable { url: self.url.as_str().to_string(), reason };
        let exchange = async {
            let resp = self.http.request(req).await.map_err(|e| unreachable(chain(&e)))?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.map_err(|e| unreachable(format!("reading the answer: {}", chain(&e))))?;
            Ok::<_, ClientError>((parts.status, body.to_bytes()))
        };
        let (status, body) = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| unreachable(format!("no answer within {}s", TIMEOUT.as_secs())))??;
        if status.is_success() {
            return Ok(body);
        }
        Err(refusal(status.as_u16(), body))
    }
}

/// A 4xx/5xx answer: the API's `{"error":{"code","message"}}`, or whatever else answered.
pub fn refusal(status: u16, body: Bytes) -> ClientError {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let error = parsed.as_ref().map(|v| &v["error"]);
    let code = error.and_then(|e| e["code"].as_str()).map(str::to_string);
    let message = match error.and_then(|e| e["message"].as_str()) {
        Some(m) => m.to_string(),
        None => {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            if text.is_empty() {
                "(no message)".to_string()
            } else {
                text.chars().take(300).collect()
            }
        }
    };
    ClientError::Refused { status, code, message, body }
}

/// An error and its causes on one line (hyper's own message alone says only "client error").
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut next = e.source();
    while let Some(cause) = next {
        parts.push(cause.to_string());
        next = cause.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    parts.join(": ")
}

#[cfg(test)]
#[path = "client/tests.rs"]
mod tests;
