//! The demo's business rule: what the sample monolith decides for an order webhook. The sample
//! new service implements the same rule (and can be told to disagree), so parity is meaningful.

use serde_json::{json, Value};

/// An order webhook as the demo's generator sends it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Order {
    pub id: String,
    pub customer: String,
    pub amount_cents: u64,
    pub country: String,
}

/// The monolith's decision for a raw body: `(status, JSON body)`.
/// Orders under 500.00 are approved; the risk tier depends on amount and country.
pub fn decide(body: &[u8]) -> (u16, Value) {
    let Ok(order) = serde_json::from_slice::<Order>(body) else {
        return (422, json!({"error": "not an order"}));
    };
    (200, decision(&order))
}

/// The decision body for a parsed order.
pub fn decision(order: &Order) -> Value {
    let risk = match (order.amount_cents, order.country.as_str()) {
        (a, _) if a >= 100_000 => "high",
        (a, "US" | "CA" | "GB" | "DE" | "FR") if a < 20_000 => "low",
        _ => "medium",
    };
    json!({
        "order_id": order.id,
        "approved": order.amount_cents < 50_000,
        "risk": risk,
        "customer": order.customer,
    })
}

/// A deliberately different risk tier, for a new service that disagrees.
pub fn other_risk(risk: &str) -> &'static str {
    match risk {
        "low" => "medium",
        "medium" => "high",
        _ => "low",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_get_a_decision_and_garbage_gets_422() {
        let body = br#"{"id":"o1","customer":"c1","amount_cents":1999,"country":"US"}"#;
        let (status, v) = decide(body);
        assert_eq!(status, 200);
        assert_eq!(v["approved"], true);
        assert_eq!(v["risk"], "low");
        assert_eq!(decide(b"nope").0, 422);
        assert_ne!(other_risk("low"), "low");
    }
}
