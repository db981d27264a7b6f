//! tickwire's client: reconnecting SSE, WebSocket and HTTP-polling
//! transports behind one ordered, exactly-once subscription.
//!
//! The network comes in through [`Connect`] (tokio sockets in production,
//! turmoil's in the simulation), with TLS ([`Tls`]) layered over it for
//! `https://` and `wss://`; the reconnection [`Policy`] and the
//! exactly-once [`Gate`] are sans-IO state machines the driver feeds; each
//! transport has its own module; metrics are `prometheus-client` metrics
//! with a JSON snapshot; the lifecycle is a typed timeline.

mod client;
mod driver;
mod epoch;
mod error;
pub mod gate;
pub mod http;
mod metrics;
mod net;
pub mod policy;
mod poll;
mod preference;
pub mod raw;
mod sse;
mod stream;
mod timeline;
mod tls;
mod ws;

pub use client::{Client, ClientConfig, Clock, Subscription};
pub use error::ClientError;
pub use gate::{Gate, Offer, PageRequest, Repaired, Stalled};
pub use metrics::{Metrics, Snapshot, State};
pub use net::{Connect, Endpoint, Scheme, TokioConnect};
pub use policy::{
    BadStart, Failure, FallbackReason, Next, Note, Policy, PolicyConfig, Preference, Start, Transport,
    UnknownPreference, UrlOrder,
};
pub use timeline::{Lifecycle, TimelineEntry};
pub use tls::Tls;
