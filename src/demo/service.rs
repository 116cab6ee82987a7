//! The demo's new service, built on the consumer kit: it implements the monolith's order rule
//! and disagrees on purpose, in the `risk` field, for a chosen share of events.

use serde_json::Value;

use super::decision::{decision, other_risk, Order};
use crate::consumer::{Decision, Effects, Event, Handler, HandlerError};
use crate::route::assign::bucket;

/// Salt of the hash that picks the events the service disagrees on.
const DISAGREE_SALT: &str = "strangler-demo-disagree";

/// True when the sample service disagrees on `event_id`, at `bp` basis points of events.
pub fn disagrees(event_id: &str, bp: u32) -> bool {
    bucket(DISAGREE_SALT, event_id) < bp
}

/// The order service. `disagree_bp` of events (by id hash) get a different risk tier.
pub struct OrderService {
    pub disagree_bp: u32,
}

impl Handler for OrderService {
    async fn handle(&self, event: &Event, effects: &Effects) -> Result<Decision, HandlerError> {
        let Ok(order) = event.json::<Order>() else {
            return Decision::json(422, &serde_json::json!({"error": "not an order"}));
        };
        let mut decided = decision(&order);
        if disagrees(&event.id, self.disagree_bp) {
            let risk = decided["risk"].as_str().unwrap_or("medium").to_string();
            decided["risk"] = Value::from(other_risk(&risk));
        }
        // The real side effect; in shadow the kit skips it.
        effects
            .perform("reserve stock", || async {
                tracing::debug!(order = %order.id, "stock reserved");
            })
            .await;
        Decision::json(200, &decided)
    }
}
