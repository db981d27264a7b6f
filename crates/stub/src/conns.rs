//! The registry of live clients: who is connected, over what, how far behind.
//! Entries leave the registry when their stream ends (a guard's `Drop`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use tokio_util::sync::CancellationToken;
pub use wire::Transport;

#[derive(Debug)]
pub struct Conn {
    pub id: u64,
    pub transport: Transport,
    /// Shared with the connection's other requests.
    pub peer: Arc<str>,
    /// `HTTP/1.1`, `HTTP/1.1 over TLS` or `HTTP/2 over TLS`.
    pub protocol: &'static str,
    /// Microseconds since the Unix epoch, by the stub's clock.
    pub since_us: u64,
    pub last_sent: AtomicU64,
    pub events_sent: AtomicU64,
    /// Drops the client's TCP connection; a child of the shutdown token.
    pub kill: CancellationToken,
    /// The sweeper's view of `last_sent` last time, to spot stalled clients.
    pub(crate) swept: AtomicU64,
    pub(crate) stalled_sweeps: AtomicU64,
}

/// What `GET /connections` shows for one client.
#[derive(Debug, Clone, Serialize)]
pub struct ConnView {
    pub id: u64,
    pub transport: Transport,
    pub peer: String,
    /// `HTTP/1.1`, `HTTP/1.1 over TLS` or `HTTP/2 over TLS`.
    pub protocol: String,
    pub connected_since: String,
    pub last_id_sent: u64,
    pub lag: u64,
    pub events_sent: u64,
}

#[derive(Debug, Default)]
pub struct Conns {
    next: AtomicU64,
    map: Mutex<BTreeMap<u64, Arc<Conn>>>,
}

/// Keeps a client listed; unlists it when dropped.
#[derive(Debug)]
pub struct Registration {
    conns: Arc<Conns>,
    pub conn: Arc<Conn>,
}

impl Registration {
    /// Records that events up to `last` were handed to the socket.
    pub fn sent(&self, last: u64, count: u64) {
        self.conn.last_sent.store(last, Ordering::Relaxed);
        self.conn.events_sent.fetch_add(count, Ordering::Relaxed);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.conns.lock().remove(&self.conn.id);
    }
}

impl Conns {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn register(
        self: &Arc<Self>,
        transport: Transport,
        peer: Arc<str>,
        protocol: &'static str,
        since_us: u64,
        cursor: u64,
        kill: CancellationToken,
    ) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let conn = Arc::new(Conn {
            id,
            transport,
            peer,
            protocol,
            since_us,
            last_sent: AtomicU64::new(cursor),
            events_sent: AtomicU64::new(0),
            kill,
            swept: AtomicU64::new(cursor),
            stalled_sweeps: AtomicU64::new(0),
        });
        self.lock().insert(id, conn.clone());
        Registration {
            conns: self.clone(),
            conn,
        }
    }

    /// Every live client, by id.
    pub fn all(&self) -> Vec<Arc<Conn>> {
        self.lock().values().cloned().collect()
    }

    pub fn count(&self, transport: Transport) -> usize {
        self.lock().values().filter(|c| c.transport == transport).count()
    }

    /// Drops one client; false when there is no such id.
    pub fn kill(&self, id: u64) -> bool {
        match self.lock().get(&id) {
            Some(conn) => {
                conn.kill.cancel();
                true
            }
            None => false,
        }
    }
}

impl Conn {
    pub fn view(&self, head: u64) -> ConnView {
        let last = self.last_sent.load(Ordering::Relaxed);
        let since = i64::try_from(self.since_us)
            .ok()
            .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
            .map(|t| t.to_string())
            .unwrap_or_default();
        ConnView {
            id: self.id,
            transport: self.transport,
            peer: self.peer.to_string(),
            protocol: self.protocol.to_owned(),
            connected_since: since,
            last_id_sent: last,
            lag: head.saturating_sub(last),
            events_sent: self.events_sent.load(Ordering::Relaxed),
        }
    }
}
