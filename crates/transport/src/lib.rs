//! tickwire's client: reconnecting SSE, WebSocket and HTTP-polling
//! transports behind one ordered, exactly-once subscription.
//!
//! The network comes in through [`Connect`] (tokio sockets in production,
//! turmoil's in the simulation); the reconnection policy is the sans-IO
//! [`Policy`], fed the time; metrics are atomics with a JSON snapshot and
//! Prometheus text.

mod client;
pub mod http;
mod metrics;
mod net;
pub mod policy;
pub mod raw;

pub use client::{Client, ClientConfig, ClientError, Clock, Subscription, TimelineEntry};
pub use metrics::{Metrics, Snapshot, State};
pub use net::{Connect, Endpoint, TokioConnect};
pub use policy::{Failure, Next, Note, Policy, PolicyConfig, Transport};
