//! A TCP relay in front of a real broker that can cut every open connection on cue: transport
//! faults (a request lost or answered into a closed socket) against a broker that really applies
//! idempotent-producer sequence checks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Relay {
    cuts: watch::Sender<u64>,
    /// Connections cut so far.
    pub severed: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Relay {
    /// Relays every connection accepted on `listener` to `target`.
    pub fn start(listener: std::net::TcpListener, target: String) -> Relay {
        listener.set_nonblocking(true).unwrap();
        let listener = TcpListener::from_std(listener).unwrap();
        let (cuts, generation) = watch::channel(0u64);
        let severed = Arc::new(AtomicU64::new(0));
        let counted = severed.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let (target, mut generation, counted) = (target.clone(), generation.clone(), counted.clone());
                generation.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut upstream) = TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                        _ = generation.changed() => { counted.fetch_add(1, Ordering::Relaxed); }
                    }
                    // Both sockets drop here: the client sees its connection reset mid-flight.
                });
            }
        });
        Relay { cuts, severed, task }
    }

    /// Closes every connection open right now; new ones are relayed as before.
    pub fn cut(&self) {
        self.cuts.send_modify(|g| *g += 1);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}
