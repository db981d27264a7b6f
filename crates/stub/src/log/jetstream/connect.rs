//! Reaching NATS: the server list `--nats-url` names (one URL or several,
//! comma-separated), and the client's options: its name, retrying the
//! first connection, and a reconnect wait jittered by the node's seed.

use std::sync::Arc;
use std::time::Duration;

use async_nats::ServerAddr;
use tokio::sync::watch;

use super::{JetStreamOptions, unavailable};
use crate::log::LogError;

/// Connects to any of the servers, retrying until one answers; async-nats
/// reconnects (to any server it knows, the cluster's included) from then on.
/// The receiver counts the connections made.
pub(super) async fn client(
    options: &JetStreamOptions,
) -> Result<(async_nats::Client, watch::Receiver<u64>), LogError> {
    let servers = server_addrs(&options.url)?;
    let seed = options.node;
    let (connects, counted) = watch::channel(0u64);
    let connects = Arc::new(connects);
    let urls: Arc<str> = options.url.as_str().into();
    let client = async_nats::ConnectOptions::new()
        .name(format!("wire-stub-{:012x}", options.node & 0xffff_ffff_ffff))
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .reconnect_delay_callback(move |attempts| reconnect_delay(seed, attempts))
        .event_callback(move |event| {
            let (connects, urls) = (connects.clone(), urls.clone());
            async move {
                match event {
                    async_nats::Event::Connected => {
                        tracing::info!("connected to NATS");
                        connects.send_modify(|n| *n += 1);
                    }
                    other => tracing::warn!(
                        %urls,
                        event = %other,
                        "NATS connection: retrying, 1 s doubling to 16 s (ingest answers 503 meanwhile)"
                    ),
                }
            }
        })
        .connect(servers)
        .await
        .map_err(|e| unavailable(format!("connecting to {}: {e}", options.url)))?;
    Ok((client, counted))
}

/// Each of the comma-separated URLs (async-nats parses one URL per string:
/// `nats://a:4222,nats://b:4222` whole is an invalid port).
fn server_addrs(urls: &str) -> Result<Vec<ServerAddr>, LogError> {
    let servers = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            u.parse::<ServerAddr>().map_err(|e| LogError::Setup {
                reason: format!("NATS URL {u:?}: {e}"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() {
        return Err(LogError::Setup {
            reason: format!("no NATS URL in {urls:?}"),
        });
    }
    Ok(servers)
}

/// async-nats's reconnect wait: 1 s doubling to 16 s, with up to 25% of
/// jitter drawn from the node's seed (no two nodes in step).
fn reconnect_delay(seed: u64, attempts: usize) -> Duration {
    let base = Duration::from_secs(1) * 2u32.saturating_pow(attempts.saturating_sub(1).min(4) as u32);
    let base = base.min(Duration::from_secs(16));
    let mut x = seed ^ (attempts as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    let jitter = base.mul_f64((x % 1000) as f64 / 4000.0);
    if attempts == 0 {
        Duration::ZERO
    } else {
        base - jitter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_comma_separated_urls_are_several_servers() {
        let servers = server_addrs("nats://127.0.0.1:4222, nats://127.0.0.1:4223,127.0.0.1:4224").unwrap();
        let ports: Vec<u16> = servers.iter().map(|s| s.port()).collect();
        assert_eq!(ports, [4222, 4223, 4224]);
        assert!(server_addrs(" , ").is_err());
        assert!(server_addrs("nats://127.0.0.1:4222,nats://:x").is_err());
    }

    #[test]
    fn reconnects_wait_one_to_sixteen_seconds() {
        assert_eq!(reconnect_delay(7, 0), Duration::ZERO);
        for attempts in 1..20 {
            let d = reconnect_delay(7, attempts);
            assert!(
                d >= Duration::from_millis(750) && d <= Duration::from_secs(16),
                "{attempts}: {d:?}"
            );
        }
        assert!(reconnect_delay(7, 9) >= Duration::from_secs(12));
    }
}
