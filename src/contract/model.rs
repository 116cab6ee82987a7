//! A route's event contract as loaded and compiled (`route.contract`): which schema judges which
//! event type, and what happens to an event that fails it.

use std::fmt;

use serde::Deserialize;

/// What an event that fails its contract does (`route.contract.on_invalid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnInvalid {
    /// Published as usual, flagged `ce_stranglercontract=invalid`.
    Observe,
    /// Not published to the route's topic: written to the dead-letter topic with `dlq_reason=contract`.
    DeadLetter,
}

impl OnInvalid {
    pub fn as_str(self) -> &'static str {
        match self {
            OnInvalid::Observe => "observe",
            OnInvalid::DeadLetter => "dead_letter",
        }
    }
}

/// What a new-owned request whose event failed a `dead_letter` contract gets
/// (`route.contract.when_new_owned`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenNewOwned {
    /// Forwarded to the monolith instead; counted as a fallback with reason `contract`.
    Legacy,
    /// `422 contract_violation` with the errors.
    Reject,
}

/// The type key of the route-level schema: in `strangler_contract_violations_total{type}` and the API.
pub const ANY_TYPE: &str = "*";

/// One compiled JSON Schema.
pub struct Schema {
    /// The path as configured (relative to the working directory).
    pub path: String,
    /// The schema's `$id`: the events it judges carry it as `ce_dataschema`.
    pub id: String,
    pub validator: jsonschema::Validator,
}

/// Paths and ids only: a reload compares settings by their `Debug` text.
impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schema").field("path", &self.path).field("id", &self.id).finish()
    }
}

/// A route's contract.
#[derive(Debug)]
pub struct Contract {
    pub on_invalid: OnInvalid,
    /// Only with [`OnInvalid::DeadLetter`]; `Legacy` otherwise.
    pub when_new_owned: WhenNewOwned,
    /// The route-level schema: judges events of every type not in `types`.
    pub default: Option<Schema>,
    /// Per event type (the full `ce_type`), sorted by type.
    pub types: Vec<(String, Schema)>,
}

impl Contract {
    /// The schema that judges an event of `ce_type`, with its type key (`*` for the route-level one).
    pub fn schema_for(&self, ce_type: &str) -> Option<(&str, &Schema)> {
        match self.types.iter().find(|(t, _)| t == ce_type) {
            Some((t, s)) => Some((t.as_str(), s)),
            None => self.default.as_ref().map(|s| (ANY_TYPE, s)),
        }
    }

    /// Every schema with its type key, the route-level one first.
    pub fn schemas(&self) -> impl Iterator<Item = (&str, &Schema)> {
        self.default.iter().map(|s| (ANY_TYPE, s)).chain(self.types.iter().map(|(t, s)| (t.as_str(), s)))
    }
}
