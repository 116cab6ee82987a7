//! `[admin]` bearer tokens: each named, its value from an environment variable or a file.
//!
//! The one place validation reads a file: a token file (a Kubernetes secret mount) is read here
//! so that a reload picks up a rotated token, and a missing or empty one is a config error.

use std::collections::HashSet;

use super::raw::{RawAdmin, RawToken};
use super::validate::EnvLookup;
use super::ConfigError;
use crate::control::auth::Token;

/// Shortest token accepted: a guessable token on an API that moves traffic is a misconfiguration.
const MIN_TOKEN_LEN: usize = 16;

pub(super) fn tokens(raw: &[RawToken], env: EnvLookup<'_>, errs: &mut Vec<ConfigError>) -> Vec<Token> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let at = format!("admin.token[{i}]");
        let name_ok = !t.name.is_empty() && t.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            errs.push(ConfigError::new(format!("{at}.name"), "letters, digits, `-`, `_` or `.`", format!("`{}`", t.name)));
            continue;
        }
        if matches!(t.name.as_str(), "guard" | "rollout" | "reload" | "config") || !names.insert(t.name.clone()) {
            let found = format!("`{}` (used by another token, or by strangler itself)", t.name);
            errs.push(ConfigError::new(format!("{at}.name"), "a name of its own", found));
            continue;
        }
        let value = match (&t.env, &t.file) {
            (Some(var), None) => match env(var) {
                Some(v) if !v.trim().is_empty() => Some((format!("{at}.env"), v.trim().to_string())),
                _ => {
                    errs.push(ConfigError::new(
                        format!("{at}.env"),
                        format!("environment variable {var} to be set"),
                        "it unset or empty",
                    ));
                    None
                }
            },
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(v) if !v.trim().is_empty() => Some((format!("{at}.file"), v.trim().to_string())),
                Ok(_) => {
                    errs.push(ConfigError::new(format!("{at}.file"), "a file holding the token", format!("{path} empty")));
                    None
                }
                Err(e) => {
                    errs.push(ConfigError::new(
                        format!("{at}.file"),
                        "a readable file holding the token",
                        format!("{path}: {e}"),
                    ));
                    None
                }
            },
            _ => {
                errs.push(ConfigError::new(at.clone(), "exactly one of `env` or `file`", "both or neither"));
                None
            }
        };
        if let Some((key, value)) = value {
            if value.len() < MIN_TOKEN_LEN {
                errs.push(ConfigError::new(
                    key,
                    format!("a token of at least {MIN_TOKEN_LEN} characters"),
                    format!("{} characters", value.len()),
                ));
                continue;
            }
            out.push(Token::new(&t.name, &value));
        }
    }
    out
}

/// `admin.ready_requires_kafka`: as set, else true only without a spool (events then have nowhere
/// to wait while Kafka is down).
pub(super) fn ready_requires_kafka(raw: &RawAdmin, has_spool: bool) -> bool {
    raw.ready_requires_kafka.unwrap_or(!has_spool)
}
