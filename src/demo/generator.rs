//! The demo's webhook sender: correctly signed Stripe-style order webhooks at a steady rate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;
use tokio::sync::watch;

use super::decision::Order;

/// Sends `rate` webhooks a second to `url`, signed with `secret`, until `shutdown`.
pub async fn run(url: String, secret: String, rate: u32, mut shutdown: watch::Receiver<bool>) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    let mut seed: u64 = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1;
    let countries = ["US", "GB", "DE", "FR", "BR", "IN", "JP", "CA"];
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let order = Order {
            id: format!("evt_{}", ulid::Ulid::new()),
            customer: format!("cus_{:03}", next() % 500),
            amount_cents: next() % 150_000,
            country: countries[(next() % countries.len() as u64) as usize].to_string(),
        };
        let mut body = serde_json::to_value(&order).unwrap_or_default();
        body["type"] = "order.created".into();
        let body = body.to_string();
        let t = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return };
        mac.update(format!("{t}.{body}").as_bytes());
        let signature = format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()));
        let req = Request::post(&url)
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(Full::new(Bytes::from(body)));
        let Ok(req) = req else { continue };
        let client = client.clone();
        tokio::spawn(async move {
            if let Err(e) = client.request(req).await {
                tracing::warn!(error = %e, "demo webhook not delivered");
            }
        });
    }
}
