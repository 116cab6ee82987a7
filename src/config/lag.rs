//! `[lag]`: the consumer groups whose lag strangler reports, parsed and then validated.
//!
//! Read once at start-up (a reload that changes it says a restart is needed).

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// `[lag]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLag {
    /// Refresh period.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Add a `partition` label to the lag gauges.
    #[serde(default)]
    pub per_partition: bool,
    /// Also report the comparator's own group on the outcomes topic, when the comparator runs.
    #[serde(default = "default_true")]
    pub comparator: bool,
    /// `[[lag.group]]`.
    #[serde(default, rename = "group")]
    pub groups: Vec<RawLagGroup>,
}

impl Default for RawLag {
    fn default() -> Self {
        Self { interval_ms: default_interval_ms(), per_partition: false, comparator: true, groups: Vec::new() }
    }
}

/// `[[lag.group]]`: one consumer group and the topics it consumes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLagGroup {
    pub name: String,
    pub topics: Vec<String>,
}

const fn default_interval_ms() -> u64 {
    5_000
}

const fn default_true() -> bool {
    true
}

/// The refresh period's bounds, in milliseconds.
pub const INTERVAL_MS: std::ops::RangeInclusive<u64> = 1_000..=300_000;

/// `[lag]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Lag {
    pub interval: Duration,
    pub per_partition: bool,
    pub comparator: bool,
    /// The configured groups, in file order.
    pub groups: Vec<LagGroup>,
}

/// One configured group.
#[derive(Debug, Clone, PartialEq)]
pub struct LagGroup {
    pub name: String,
    pub topics: Vec<String>,
}

/// Checks `[lag]`; pushes one error per bad key.
pub(super) fn validate(raw: &RawLag, errs: &mut Vec<ConfigError>) -> Lag {
    if !INTERVAL_MS.contains(&raw.interval_ms) {
        let expected = format!("a refresh period in milliseconds from {} to {}", INTERVAL_MS.start(), INTERVAL_MS.end());
        errs.push(ConfigError::new("lag.interval_ms", expected, raw.interval_ms.to_string()));
    }
    let mut names = HashSet::new();
    let mut groups = Vec::new();
    for (i, g) in raw.groups.iter().enumerate() {
        let at = format!("lag.group[{i}]");
        let name_ok = !g.name.is_empty() && g.name.len() <= 255 && !g.name.chars().any(|c| c.is_whitespace() || c.is_control());
        if !name_ok {
            let expected = "a consumer group id (1 to 255 characters, no spaces or control characters)";
            errs.push(ConfigError::new(format!("{at}.name"), expected, format!("`{}`", g.name)));
        } else if !names.insert(g.name.as_str()) {
            errs.push(ConfigError::new(format!("{at}.name"), "a group not listed before", format!("duplicate `{}`", g.name)));
        }
        if g.topics.is_empty() {
            errs.push(ConfigError::new(format!("{at}.topics"), "at least one topic the group consumes", "an empty list"));
        }
        let mut seen = HashSet::new();
        for (j, t) in g.topics.iter().enumerate() {
            if !super::validate::topic_name_ok(t) {
                errs.push(ConfigError::new(format!("{at}.topics[{j}]"), super::validate::TOPIC_EXPECTED, format!("`{t}`")));
            } else if !seen.insert(t.as_str()) {
                errs.push(ConfigError::new(format!("{at}.topics[{j}]"), "a topic not listed before", format!("duplicate `{t}`")));
            }
        }
        groups.push(LagGroup { name: g.name.clone(), topics: g.topics.clone() });
    }
    Lag {
        interval: Duration::from_millis(raw.interval_ms.clamp(*INTERVAL_MS.start(), *INTERVAL_MS.end())),
        per_partition: raw.per_partition,
        comparator: raw.comparator,
        groups,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;

    const HEAD: &str = "[legacy]\nurl = \"http://127.0.0.1:3000\"\n";

    fn errors(lag: &str) -> String {
        match load_str(&format!("{HEAD}{lag}"), "f.toml", &|_| None) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_and_a_valid_section() {
        let cfg = load_str(HEAD, "f.toml", &|_| None).unwrap();
        assert_eq!((cfg.lag.interval.as_millis(), cfg.lag.per_partition, cfg.lag.comparator), (5000, false, true));
        assert!(cfg.lag.groups.is_empty());
        let src = format!(
            "{HEAD}[lag]\ninterval_ms = 1000\nper_partition = true\ncomparator = false\n\
             [[lag.group]]\nname = \"order-service\"\ntopics = [\"webhooks.orders\", \"webhooks.refunds\"]\n"
        );
        let cfg = load_str(&src, "f.toml", &|_| None).unwrap();
        assert_eq!((cfg.lag.interval.as_millis(), cfg.lag.per_partition, cfg.lag.comparator), (1000, true, false));
        assert_eq!(cfg.lag.groups[0].name, "order-service");
        assert_eq!(cfg.lag.groups[0].topics, ["webhooks.orders", "webhooks.refunds"]);
    }

    #[test]
    fn each_mistake_names_file_line_and_key() {
        let group = |name: &str, topics: &str| format!("[[lag.group]]\nname = \"{name}\"\ntopics = [{topics}]\n");
        let cases = [
            (
                "[lag]\ninterval_ms = 999\n".to_string(),
                "f.toml:4:1: key `lag.interval_ms`: expected a refresh period in milliseconds from 1000 to 300000, found 999",
            ),
            ("[lag]\ninterval_ms = 300001\n".to_string(), "key `lag.interval_ms`"),
            (group("", "\"t\""), "f.toml:4:1: key `lag.group[0].name`: expected a consumer group id"),
            (group("a b", "\"t\""), "found `a b`"),
            (
                format!("{}{}", group("svc", "\"t\""), group("svc", "\"u\"")),
                "f.toml:7:1: key `lag.group[1].name`: expected a group not listed before, found duplicate `svc`",
            ),
            (group("svc", ""), "key `lag.group[0].topics`: expected at least one topic the group consumes, found an empty list"),
            (group("svc", "\"ok\", \"bad topic\""), "f.toml:5:17: key `lag.group[0].topics[1]`: expected a Kafka topic name"),
            (group("svc", "\"t\", \"t\""), "key `lag.group[0].topics[1]`: expected a topic not listed before"),
            ("[[lag.group]]\nname = \"svc\"\n".to_string(), "missing field `topics`"),
            ("[lag]\nintervall_ms = 1000\n".to_string(), "unknown field `intervall_ms`"),
        ];
        for (lag, want) in cases {
            let got = errors(&lag);
            assert!(got.contains(want), "{lag}\nwant: {want}\ngot:  {got}");
        }
    }
}
