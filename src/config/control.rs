//! Validation of a route's control-plane tables: `guard` (when it dials back by itself) and
//! `rollout` (the steps it climbs by itself). Pure; one error per bad key.

use std::time::Duration;

use super::raw_route::{RawGuard, RawRollout};
use super::ConfigError;
use crate::route::assign::Share;
use crate::route::{GuardSpec, RolloutSpec};

/// Checks `{at}.guard`; `None` (with errors pushed) when any key is wrong.
pub(super) fn guard(at: &str, raw: &RawGuard, errs: &mut Vec<ConfigError>) -> Option<GuardSpec> {
    let before = errs.len();
    let at = format!("{at}.guard");
    ratio(&format!("{at}.min_parity"), raw.min_parity, errs);
    ratio(&format!("{at}.max_new_error_rate"), raw.max_new_error_rate, errs);
    if raw.min_samples == 0 {
        errs.push(ConfigError::new(format!("{at}.min_samples"), "a count of 1 or more", "0"));
    }
    let window = duration(&format!("{at}.window"), &raw.window, errs);
    if errs.len() > before {
        return None;
    }
    Some(GuardSpec {
        min_parity: raw.min_parity,
        min_samples: raw.min_samples,
        window: window?,
        max_new_error_rate: raw.max_new_error_rate,
        action: raw.action,
    })
}

/// Checks `{at}.rollout`: steps are percents above 0, strictly rising, at least one.
pub(super) fn rollout(at: &str, raw: &RawRollout, errs: &mut Vec<ConfigError>) -> Option<RolloutSpec> {
    let before = errs.len();
    let at = format!("{at}.rollout");
    if raw.steps.is_empty() {
        errs.push(ConfigError::new(format!("{at}.steps"), "at least one step, e.g. [1, 5, 25, 50, 100]", "an empty list"));
    }
    let mut steps = Vec::with_capacity(raw.steps.len());
    for (j, &percent) in raw.steps.iter().enumerate() {
        let key = format!("{at}.steps[{j}]");
        let last = steps.last().copied();
        match Share::from_percent(percent) {
            Ok(share) if share == Share::ZERO => {
                errs.push(ConfigError::new(key, "a percent above 0 (a rollout starts from its first step)", "0"))
            }
            Ok(share) if last.is_some_and(|last| share <= last) => {
                let before = last.map_or(0.0, Share::percent);
                let expected = format!("a step above the one before it, {before} (steps rise strictly)");
                errs.push(ConfigError::new(key, expected, percent.to_string()));
            }
            Ok(share) => steps.push(share),
            Err(found) => errs.push(ConfigError::new(key, "a percent from 0 to 100 with at most two decimals", found)),
        }
    }
    let interval = duration(&format!("{at}.interval"), &raw.interval, errs);
    if errs.len() > before {
        return None;
    }
    Some(RolloutSpec { steps, interval: interval? })
}

/// A ratio such as 0.99: finite, from 0 to 1.
fn ratio(key: &str, x: f64, errs: &mut Vec<ConfigError>) {
    if !(0.0..=1.0).contains(&x) {
        errs.push(ConfigError::new(key, "a ratio from 0 to 1", x.to_string()));
    }
}

/// A humantime duration above zero, such as `"5m"` or `"90s"`.
fn duration(key: &str, text: &str, errs: &mut Vec<ConfigError>) -> Option<Duration> {
    let expected = "a duration above 0 such as \"30s\", \"5m\" or \"1h 30m\"";
    match humantime::parse_duration(text) {
        Ok(d) if !d.is_zero() => Some(d),
        Ok(_) => {
            errs.push(ConfigError::new(key, expected, format!("`{text}`")));
            None
        }
        Err(why) => {
            errs.push(ConfigError::new(key, expected, format!("`{text}` ({why})")));
            None
        }
    }
}
