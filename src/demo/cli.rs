//! `strangler sample-monolith`: the demo's sample monolith on its own, for the compose stack.
//!
//! Serves until SIGTERM or SIGINT. Every request is answered with the demo's business decision
//! (`super::decision::decide`: `200` and `{"order_id","approved","risk","customer"}` for an order
//! body, `422 {"error":"not an order"}` otherwise); nothing is recorded, so memory stays flat.

use std::net::SocketAddr;

use super::monolith::{Behaviour, Monolith};

/// Runs the sample monolith on `listen` until a stop signal.
pub async fn sample_monolith(listen: SocketAddr) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let monolith = Monolith::start_with(listen, Behaviour { decide: true, record: false }).await?;
    println!("sample monolith listening on {}", monolith.url());
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    monolith.shutdown();
    Ok(())
}
