//! How a route maps a webhook onto a CloudEvent: where the id, type, key and subject come from.
//!
//! Built once by config validation; read on every request by [`super::canonicalize`].

use http::HeaderName;

use crate::verify::Scheme;

/// A value taken from the request: a header, a JSON pointer into the body, or a placeholder of
/// the route's path template.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    Header(HeaderName),
    Pointer(String),
    Capture(String),
}

/// Where `ce_type` comes from, before the prefix is applied.
#[derive(Clone, Debug, PartialEq)]
pub enum TypeSource {
    Field(Field),
    Fixed(String),
}

/// The validated `event = { ... }` table of one route, with the scheme's defaults filled in.
#[derive(Clone, Debug)]
pub struct EventSpec {
    /// `ce_source`, e.g. `strangler://github`.
    pub source: String,
    /// Configured id source; `None` means the scheme's delivery id, then a ULID.
    pub id: Option<Field>,
    pub type_source: TypeSource,
    pub type_prefix: String,
    /// Partition key source; `None` (or nothing found) means the event id.
    pub key: Option<Field>,
    pub subject_pointer: Option<String>,
    /// Path placeholders published as CloudEvents extension attributes `ce_<name>`.
    pub path_extensions: Vec<String>,
    /// Original headers copied onto the record as `x-orig-<name>`.
    pub forward_headers: Vec<HeaderName>,
}

/// Used when the type source yields nothing (e.g. a form-encoded Slack command).
pub const FALLBACK_TYPE: &str = "webhook";

/// The scheme's own type source and prefix, used when the route configures none.
pub fn scheme_type_default(scheme: &Scheme) -> (TypeSource, &'static str) {
    let header = |name: &'static str| TypeSource::Field(Field::Header(HeaderName::from_static(name)));
    let pointer = |p: &str| TypeSource::Field(Field::Pointer(p.to_string()));
    match scheme {
        Scheme::Github => (header("x-github-event"), "com.github."),
        Scheme::Stripe => (pointer("/type"), "com.stripe."),
        Scheme::Shopify => (header("x-shopify-topic"), "com.shopify."),
        Scheme::Slack => (pointer("/event/type"), "com.slack."),
        Scheme::StandardWebhooks => (pointer("/type"), ""),
        Scheme::Hmac(_) => (TypeSource::Fixed(FALLBACK_TYPE.to_string()), ""),
    }
}

impl EventSpec {
    /// Whether mapping an event reads the request path's captures.
    pub fn needs_captures(&self) -> bool {
        !self.path_extensions.is_empty() || matches!(self.key, Some(Field::Capture(_)))
    }
}
