//! `route.contract`: the JSON Schemas a route's events are judged by at the edge, read and
//! compiled at validation (so start-up, `check-config` and every reload refuse a bad schema with
//! file, line and key), and checked for compatibility with the `previous` version.
//!
//! Paths are taken from the working directory, like the TLS files.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::ConfigError;
use crate::contract::{cli, compat, Contract, OnInvalid, Schema, WhenNewOwned};

/// `route.contract` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContract {
    /// The route-level schema: judges events of every type not under `types`.
    pub schema: Option<String>,
    #[serde(default = "default_on_invalid")]
    pub on_invalid: OnInvalid,
    pub previous: Option<String>,
    #[serde(default = "default_compatibility")]
    pub compatibility: Compatibility,
    /// `dead_letter` only.
    pub when_new_owned: Option<WhenNewOwned>,
    /// Per event type (the full `ce_type`).
    #[serde(default)]
    pub types: BTreeMap<String, RawTypeContract>,
}

/// `route.contract.types."<ce_type>"` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTypeContract {
    pub schema: String,
    pub previous: Option<String>,
    /// Defaults to the route-level `compatibility`.
    pub compatibility: Option<Compatibility>,
}

/// `compatibility`: the mode `previous` → `schema` is checked in, or `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compatibility {
    Backward,
    Forward,
    Full,
    None,
}

impl Compatibility {
    fn mode(self) -> Option<compat::Mode> {
        match self {
            Compatibility::Backward => Some(compat::Mode::Backward),
            Compatibility::Forward => Some(compat::Mode::Forward),
            Compatibility::Full => Some(compat::Mode::Full),
            Compatibility::None => None,
        }
    }
}

const fn default_on_invalid() -> OnInvalid {
    OnInvalid::Observe
}
const fn default_compatibility() -> Compatibility {
    Compatibility::Backward
}

/// Validates `<at>` (`route[i].contract`); `None` when it is wrong (errors pushed).
pub(super) fn validate(at: &str, raw: &RawContract, errs: &mut Vec<ConfigError>) -> Option<Contract> {
    let before = errs.len();
    if raw.schema.is_none() && raw.types.is_empty() {
        errs.push(ConfigError::new(format!("{at}.schema"), "a schema path, or at least one `types` entry", "neither"));
    }
    if raw.schema.is_none() && raw.previous.is_some() {
        errs.push(ConfigError::new(format!("{at}.previous"), "no `previous` without a route-level `schema`", "`previous`"));
    }
    if raw.on_invalid != OnInvalid::DeadLetter && raw.when_new_owned.is_some() {
        let expected = "no `when_new_owned` unless on_invalid = \"dead_letter\" (an observed event is published as usual)";
        errs.push(ConfigError::new(format!("{at}.when_new_owned"), expected, "`when_new_owned`"));
    }
    let default = raw.schema.as_deref().and_then(|path| {
        let previous = raw.previous.as_deref();
        schema(at, path, previous, raw.compatibility, errs)
    });
    let types = raw
        .types
        .iter()
        .filter_map(|(ty, t)| {
            let compatibility = t.compatibility.unwrap_or(raw.compatibility);
            let at = format!("{at}.types.{ty}");
            if ty.trim().is_empty() || ty == crate::contract::ANY_TYPE {
                errs.push(ConfigError::new(&at, "an event type (the full ce_type)", format!("`{ty}`")));
            }
            Some((ty.clone(), schema(&at, &t.schema, t.previous.as_deref(), compatibility, errs)?))
        })
        .collect();
    if errs.len() != before {
        return None;
    }
    let when_new_owned = raw.when_new_owned.unwrap_or(WhenNewOwned::Legacy);
    Some(Contract { on_invalid: raw.on_invalid, when_new_owned, default, types })
}

/// Reads and compiles `<at>.schema`, and checks it against `<at>.previous` in `compatibility`.
fn schema(
    at: &str,
    path: &str,
    previous: Option<&str>,
    compatibility: Compatibility,
    errs: &mut Vec<ConfigError>,
) -> Option<Schema> {
    let key = format!("{at}.schema");
    let value = read(&key, path, errs)?;
    let id = match value.get("$id").and_then(Value::as_str) {
        Some(id) if absolute_uri(id) => id.to_string(),
        found => {
            let expected = "a schema whose `$id` is an absolute URI, versioned (e.g. https://schemas.example.com/github-push/v2.json): it becomes ce_dataschema";
            let found = match found {
                Some(id) => format!("`{path}` with `$id` `{id}`"),
                None => format!("`{path}` without a `$id`"),
            };
            errs.push(ConfigError::new(&key, expected, found));
            return None;
        }
    };
    let validator = match jsonschema::validator_for(&value) {
        Ok(v) => v,
        Err(e) => {
            let found = format!("`{path}`: {e} (at {})", e.instance_path().as_str());
            errs.push(ConfigError::new(&key, "a valid JSON Schema (remote `$ref`s are not fetched)", found));
            return None;
        }
    };
    if let (Some(prev_path), Some(mode)) = (previous, compatibility.mode()) {
        let old = read(&format!("{at}.previous"), prev_path, errs)?;
        for b in compat::check(&old, &value, mode) {
            let expected = format!("a schema {mode}-compatible with previous `{prev_path}` (or compatibility = \"none\")");
            let found = format!("`{path}` breaks it at `{}` ({}): {}", b.pointer, b.rule, b.message);
            errs.push(ConfigError::new(&key, expected, found));
        }
    }
    Some(Schema { path: path.to_string(), id, validator })
}

/// A schema file as JSON (an object or a boolean); errors name the file and a syntax error's line and column.
fn read(key: &str, path: &str, errs: &mut Vec<ConfigError>) -> Option<Value> {
    if path.trim().is_empty() {
        errs.push(ConfigError::new(key, "a file path", "an empty string"));
        return None;
    }
    cli::load(Path::new(path)).map_err(|found| errs.push(ConfigError::new(key, "a readable JSON Schema file", found))).ok()
}

/// `scheme:rest`, as RFC 3986 has it, with no fragment but an empty one and no spaces.
fn absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else { return false };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    scheme_ok && !rest.is_empty() && !s.contains(char::is_whitespace) && s.split_once('#').is_none_or(|(_, f)| f.is_empty())
}

#[cfg(test)]
#[path = "contract_tests.rs"]
mod tests;
