//! Validation of a route's signature and event mapping: the scheme, its secrets from the
//! environment, and where the event id, type, key and subject come from.

use http::HeaderName;

use super::raw::{RawEvent, RawRoute, RawSignature};
use super::validate::EnvLookup;
use super::ConfigError;
use crate::event::spec::{scheme_type_default, EventSpec, Field, TypeSource};
use crate::route::Route;
use crate::verify::{strength, Algorithm, Encoding, HmacScheme, Scheme, Secret, Strength, Verifier};
use std::time::Duration;

pub(super) fn verifier(at: &str, s: &RawSignature, env: EnvLookup<'_>, errs: &mut Vec<ConfigError>) -> Option<Verifier> {
    let scheme = match s.scheme.as_str() {
        "github" => Scheme::Github,
        "stripe" => Scheme::Stripe,
        "shopify" => Scheme::Shopify,
        "slack" => Scheme::Slack,
        "standard-webhooks" => Scheme::StandardWebhooks,
        "hmac" => Scheme::Hmac(hmac_scheme(at, s, errs)?),
        other => {
            let expected = "one of github, stripe, shopify, slack, standard-webhooks, hmac";
            errs.push(ConfigError::new(format!("{at}.scheme"), expected, format!("`{other}`")));
            return None;
        }
    };
    if !matches!(scheme, Scheme::Hmac(_)) {
        let generic = [
            ("header", s.header.is_some()),
            ("algorithm", s.algorithm.is_some()),
            ("encoding", s.encoding.is_some()),
            ("prefix", s.prefix.is_some()),
            ("timestamp_header", s.timestamp_header.is_some()),
            ("timestamp_separator", s.timestamp_separator.is_some()),
        ];
        for (key, _) in generic.iter().filter(|(_, set)| *set) {
            let found = format!("it set with scheme = \"{}\"", s.scheme);
            errs.push(ConfigError::new(format!("{at}.{key}"), "this key only with scheme = \"hmac\"", found));
        }
    }
    let mut secrets = Vec::new();
    for (j, var) in s.secrets_env.iter().enumerate() {
        match env(var).map(|v| (v.is_empty(), Secret::new(v))) {
            Some((empty, secret)) => match strength(&scheme, &secret) {
                Strength::Blank => errs.push(ConfigError::new(
                    format!("{at}.secrets_env[{j}]"),
                    format!("environment variable {var} to hold a secret"),
                    if empty { "it empty" } else { "only whitespace" },
                )),
                Strength::TooShort { bytes, min } => errs.push(ConfigError::new(
                    format!("{at}.secrets_env[{j}]"),
                    format!("a `whsec_` secret in environment variable {var} whose key decodes to at least {min} bytes (the Standard Webhooks minimum)"),
                    format!("a key of {bytes} bytes"),
                )),
                Strength::Ok | Strength::Weak { .. } => secrets.push(secret),
            },
            None => errs.push(ConfigError::new(
                format!("{at}.secrets_env[{j}]"),
                format!("environment variable {var} to be set"),
                "it unset",
            )),
        }
    }
    if secrets.len() != s.secrets_env.len() {
        return None;
    }
    let tolerance = Duration::from_secs(s.tolerance_secs);
    match Verifier::new(scheme, secrets, tolerance, s.mode) {
        Ok(v) => Some(v),
        Err(msg) => {
            let found = if s.secrets_env.is_empty() { "none" } else { "a secret the scheme cannot use" };
            errs.push(ConfigError::new(format!("{at}.secrets_env"), msg, found));
            None
        }
    }
}

/// Accepted but weak secrets of a valid file's routes (`raw[i]` built `routes[i]`): HMAC secrets
/// shorter than [`crate::verify::HMAC_WEAK_BELOW_BYTES`]. Says the length, never the secret.
pub(super) fn secret_warnings(raw: &[RawRoute], routes: &[Route], env: EnvLookup<'_>) -> Vec<ConfigError> {
    let mut warnings = Vec::new();
    for (i, (r, route)) in raw.iter().zip(routes).enumerate() {
        for (j, var) in r.signature.secrets_env.iter().enumerate() {
            let Some(value) = env(var) else { continue };
            if let Strength::Weak { bytes, recommended } = strength(route.verifier.scheme(), &Secret::new(value)) {
                warnings.push(ConfigError::new(
                    format!("route[{i}].signature.secrets_env[{j}]"),
                    format!("an HMAC secret of at least {recommended} bytes (32 random bytes or more is better)"),
                    format!("{bytes} bytes in environment variable {var}"),
                ));
            }
        }
    }
    warnings
}

fn hmac_scheme(at: &str, s: &RawSignature, errs: &mut Vec<ConfigError>) -> Option<HmacScheme> {
    let Some(header) = s.header.as_deref() else {
        errs.push(ConfigError::new(
            format!("{at}.header"),
            "the name of the signature header (required with scheme = \"hmac\")",
            "no header",
        ));
        return None;
    };
    let header = header_name(&format!("{at}.header"), header, errs)?;
    let timestamp_header = match s.timestamp_header.as_deref() {
        Some(h) => Some(header_name(&format!("{at}.timestamp_header"), h, errs)?),
        None => None,
    };
    Some(HmacScheme {
        header,
        algorithm: s.algorithm.unwrap_or(Algorithm::Sha256),
        encoding: s.encoding.unwrap_or(Encoding::Hex),
        prefix: s.prefix.clone().filter(|p| !p.is_empty()),
        timestamp_header,
        timestamp_separator: s.timestamp_separator.clone().unwrap_or_else(|| ".".into()),
    })
}

pub(super) fn event_spec(
    at: &str,
    route: &str,
    e: &RawEvent,
    scheme: &Scheme,
    params: &[&str],
    errs: &mut Vec<ConfigError>,
) -> EventSpec {
    let (default_type, default_prefix) = scheme_type_default(scheme);
    let type_choices = [e.type_from_header.is_some(), e.type_pointer.is_some(), e.fixed_type.is_some()];
    if type_choices.iter().filter(|set| **set).count() > 1 {
        errs.push(ConfigError::new(format!("{at}.type"), "at most one of type_from_header, type_pointer, type", "several"));
    }
    let type_source = if let Some(t) = &e.fixed_type {
        TypeSource::Fixed(t.clone())
    } else {
        field(at, ("type_from_header", &e.type_from_header), ("type_pointer", &e.type_pointer), errs)
            .map(TypeSource::Field)
            .unwrap_or(default_type)
    };
    let forward_headers = e
        .forward_headers
        .iter()
        .enumerate()
        .filter_map(|(j, h)| header_name(&format!("{at}.forward_headers[{j}]"), h, errs))
        .collect();
    let subject_pointer = e.subject_pointer.as_ref().and_then(|p| pointer(&format!("{at}.subject_pointer"), p, errs));
    EventSpec {
        source: format!("strangler://{route}"),
        id: field(at, ("id_header", &e.id_header), ("id_pointer", &e.id_pointer), errs),
        type_source,
        type_prefix: e.type_prefix.clone().unwrap_or_else(|| default_prefix.to_string()),
        key: key(at, e, params, errs),
        subject_pointer,
        path_extensions: path_extensions(at, e, params, errs),
        forward_headers,
    }
}

/// `key_header`, `key_pointer` or `key_path`: at most one.
fn key(at: &str, e: &RawEvent, params: &[&str], errs: &mut Vec<ConfigError>) -> Option<Field> {
    let from_request = field(at, ("key_header", &e.key_header), ("key_pointer", &e.key_pointer), errs);
    let Some(name) = &e.key_path else { return from_request };
    if e.key_header.is_some() || e.key_pointer.is_some() {
        errs.push(ConfigError::new(format!("{at}.key_path"), "at most one of key_header, key_pointer, key_path", "several"));
        return from_request;
    }
    if !params.contains(&name.as_str()) {
        errs.push(ConfigError::new(format!("{at}.key_path"), placeholder_expected(params), format!("`{name}`")));
        return None;
    }
    Some(Field::Capture(name.clone()))
}

/// Context attributes a path capture may not take, and strangler's own prefix.
const RESERVED_ATTRIBUTES: &[&str] =
    &["specversion", "id", "source", "type", "time", "subject", "datacontenttype", "dataschema", "data", "partitionkey"];

/// `path_extensions`: placeholders of the template, named as CloudEvents attributes may be.
fn path_extensions(at: &str, e: &RawEvent, params: &[&str], errs: &mut Vec<ConfigError>) -> Vec<String> {
    let mut out = Vec::new();
    for (j, name) in e.path_extensions.iter().enumerate() {
        let key = format!("{at}.path_extensions[{j}]");
        if !params.contains(&name.as_str()) {
            errs.push(ConfigError::new(key, placeholder_expected(params), format!("`{name}`")));
        } else if name.is_empty()
            || name.len() > 20
            || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            || RESERVED_ATTRIBUTES.contains(&name.as_str())
            || name.starts_with("strangler")
            || out.contains(name)
        {
            let expected = "a placeholder named as a CloudEvents extension may be (a-z, 0-9, at most 20), not a context attribute, not strangler*, listed once";
            errs.push(ConfigError::new(key, expected, format!("`{name}`")));
        } else {
            out.push(name.clone());
        }
    }
    out
}

fn placeholder_expected(params: &[&str]) -> String {
    if params.is_empty() {
        "a `{placeholder}` of match.path (this route's path has none)".to_string()
    } else {
        format!("a `{{placeholder}}` of match.path: one of {}", params.join(", "))
    }
}

/// A header-or-pointer pair of keys, of which at most one may be set.
fn field(at: &str, header: (&str, &Option<String>), ptr: (&str, &Option<String>), errs: &mut Vec<ConfigError>) -> Option<Field> {
    match (header.1, ptr.1) {
        (Some(_), Some(_)) => {
            errs.push(ConfigError::new(format!("{at}.{}", ptr.0), format!("either {} or {}", header.0, ptr.0), "both"));
            None
        }
        (Some(h), None) => header_name(&format!("{at}.{}", header.0), h, errs).map(Field::Header),
        (None, Some(p)) => pointer(&format!("{at}.{}", ptr.0), p, errs).map(Field::Pointer),
        (None, None) => None,
    }
}

fn pointer(key: &str, p: &str, errs: &mut Vec<ConfigError>) -> Option<String> {
    if p.starts_with('/') {
        Some(p.to_string())
    } else {
        errs.push(ConfigError::new(key, "a JSON pointer starting with `/`, e.g. /repository/full_name", format!("`{p}`")));
        None
    }
}

fn header_name(key: &str, h: &str, errs: &mut Vec<ConfigError>) -> Option<HeaderName> {
    HeaderName::from_bytes(h.as_bytes())
        .map_err(|_| errs.push(ConfigError::new(key, "a valid HTTP header name", format!("`{h}`"))))
        .ok()
}
