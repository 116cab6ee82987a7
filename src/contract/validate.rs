//! Judging one event against its route's contract: pure, no I/O. The proxy calls [`judge`] once
//! per request, after the event is canonicalized and before it is published.

use serde::Serialize;

use super::model::Contract;

/// At most this many errors are kept per event (in the sample, `dlq_error` and the 422 answer).
pub const MAX_ERRORS: usize = 10;

/// A longer error message is cut to this many bytes (a message can quote the failing value).
const MAX_MESSAGE: usize = 300;

/// One way an event fails its schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// JSON pointer into the event's data (the instance path); `""` is the whole body.
    pub pointer: String,
    /// JSON pointer to the schema keyword that failed, e.g. `/properties/ref/type`.
    pub schema_pointer: String,
    pub message: String,
}

/// What the contract says about one event.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<'c> {
    /// The route has no contract, or none for this event type.
    NoContract,
    Valid {
        dataschema: &'c str,
    },
    Invalid {
        dataschema: &'c str,
        /// The configured type key of the schema that judged it (`*` for the route-level one).
        type_key: &'c str,
        /// At least one, at most [`MAX_ERRORS`].
        errors: Vec<Violation>,
    },
}

/// Judges the body of an event of `ce_type`.
pub fn judge<'c>(contract: Option<&'c Contract>, ce_type: &str, body: &[u8]) -> Verdict<'c> {
    judge_parsed(contract, ce_type, body, None)
}

/// [`judge`] with the body already parsed as JSON, when it was (`parsed` must be `body`'s JSON).
pub fn judge_parsed<'c>(
    contract: Option<&'c Contract>,
    ce_type: &str,
    body: &[u8],
    parsed: Option<&serde_json::Value>,
) -> Verdict<'c> {
    let Some((type_key, schema)) = contract.and_then(|c| c.schema_for(ce_type)) else {
        return Verdict::NoContract;
    };
    let dataschema = schema.id.as_str();
    let owned;
    let instance: &serde_json::Value = match parsed {
        Some(v) => v,
        None => match serde_json::from_slice(body) {
            Ok(v) => {
                owned = v;
                &owned
            }
            Err(e) => {
                let message = format!("the body is not JSON ({e})");
                let errors = vec![Violation { pointer: String::new(), schema_pointer: String::new(), message }];
                return Verdict::Invalid { dataschema, type_key, errors };
            }
        },
    };
    // The common case first: `is_valid` stops at the first failure and builds no error.
    if schema.validator.is_valid(instance) {
        return Verdict::Valid { dataschema };
    }
    let errors: Vec<Violation> = schema
        .validator
        .iter_errors(instance)
        .take(MAX_ERRORS)
        .map(|e| Violation {
            pointer: e.instance_path().as_str().to_string(),
            schema_pointer: e.schema_path().as_str().to_string(),
            message: cut(e.to_string()),
        })
        .collect();
    if errors.is_empty() {
        // Not expected (`is_valid` said no); judged valid rather than invalid without a reason.
        Verdict::Valid { dataschema }
    } else {
        Verdict::Invalid { dataschema, type_key, errors }
    }
}

fn cut(mut s: String) -> String {
    if s.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::contract::model::{OnInvalid, Schema, WhenNewOwned};

    fn schema(id: &str, v: serde_json::Value) -> Schema {
        Schema { path: format!("{id}.json"), id: id.into(), validator: jsonschema::validator_for(&v).unwrap() }
    }

    fn contract() -> Contract {
        let push = json!({"type": "object", "required": ["ref"], "properties": {"ref": {"type": "string"}, "size": {"$ref": "#/$defs/n"}}, "$defs": {"n": {"type": "integer", "minimum": 0}}});
        let issues = json!({"type": "object", "required": ["action"]});
        Contract {
            on_invalid: OnInvalid::Observe,
            when_new_owned: WhenNewOwned::Legacy,
            default: Some(schema("https://e.test/push/v2.json", push)),
            types: vec![("com.github.issues".into(), schema("https://e.test/issues/v1.json", issues))],
        }
    }

    #[test]
    fn verdicts() {
        let c = contract();
        assert_eq!(judge(None, "x", b"{}"), Verdict::NoContract);
        assert_eq!(
            judge(Some(&c), "com.github.push", br#"{"ref":"main","size":1}"#),
            Verdict::Valid { dataschema: "https://e.test/push/v2.json" }
        );
        // The per-type schema wins over the route-level one.
        assert_eq!(
            judge(Some(&c), "com.github.issues", br#"{"action":"opened"}"#),
            Verdict::Valid { dataschema: "https://e.test/issues/v1.json" }
        );
        let Verdict::Invalid { dataschema, type_key, errors } = judge(Some(&c), "com.github.push", br#"{"ref":7,"size":-1}"#)
        else {
            panic!("invalid expected")
        };
        assert_eq!((dataschema, type_key), ("https://e.test/push/v2.json", "*"));
        let pointers: Vec<_> = errors.iter().map(|e| (e.pointer.as_str(), e.schema_pointer.as_str())).collect();
        assert!(pointers.contains(&("/ref", "/properties/ref/type")), "{pointers:?}");
        // A local `$ref` is followed.
        let size = errors.iter().find(|e| e.pointer == "/size").expect("the $ref'd minimum");
        // The schema pointer is where the keyword is written: in `$defs`, not through the `$ref`.
        assert_eq!(
            (size.schema_pointer.as_str(), size.message.as_str()),
            ("/$defs/n/minimum", "-1 is less than the minimum of 0")
        );
        let Verdict::Invalid { type_key, errors, .. } = judge(Some(&c), "com.github.issues", b"{}") else { panic!() };
        assert_eq!(type_key, "com.github.issues");
        assert_eq!(errors[0].pointer, "");
        assert!(errors[0].message.contains("action"), "{}", errors[0].message);
    }

    #[test]
    fn a_body_parsed_before_is_judged_as_the_bytes_are() {
        let c = contract();
        for body in [&br#"{"ref":"main","size":1}"#[..], br#"{"ref":7,"size":-1}"#] {
            let parsed: serde_json::Value = serde_json::from_slice(body).unwrap();
            // The bytes are not read again when the parsed body comes along.
            let reused = judge_parsed(Some(&c), "com.github.push", b"", Some(&parsed));
            assert_eq!(reused, judge(Some(&c), "com.github.push", body));
        }
    }

    #[test]
    fn a_body_that_is_not_json_is_one_error_at_the_root() {
        let c = contract();
        let Verdict::Invalid { errors, .. } = judge(Some(&c), "t", b"ref=main") else { panic!() };
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0].pointer.as_str(), errors[0].schema_pointer.as_str()), ("", ""));
        assert!(errors[0].message.starts_with("the body is not JSON"), "{}", errors[0].message);
    }

    #[test]
    fn no_schema_for_the_type_means_no_contract_and_errors_are_capped() {
        let mut c = contract();
        c.default = None;
        assert_eq!(judge(Some(&c), "com.github.push", b"not json"), Verdict::NoContract);
        let many = json!({"type": "array", "items": {"type": "string"}});
        c.default = Some(schema("https://e.test/many.json", many));
        let body = serde_json::to_vec(&(0..50).collect::<Vec<_>>()).unwrap();
        let Verdict::Invalid { errors, .. } = judge(Some(&c), "x", &body) else { panic!() };
        assert_eq!(errors.len(), MAX_ERRORS);
        assert_eq!(errors[0].pointer, "/0");
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let s = cut("é".repeat(400));
        assert!(s.len() <= MAX_MESSAGE + 3 && s.ends_with('…'));
    }
}
