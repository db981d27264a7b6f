//! Subscribes to a wire with `transport::Client` and prints each event as a
//! JSON line: `cargo run -p transport --example tail -- http://127.0.0.1:8091 10`
//! (the URL, then how many events; default: the stub's address, forever).

use std::sync::Arc;

use transport::{Client, ClientConfig, TokioConnect};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:8091".into());
    let max: Option<u64> = args.next().and_then(|n| n.parse().ok());

    // Microseconds since the Unix epoch, for the latency figures.
    let config = ClientConfig::new(&url, Arc::new(cli::system_clock_us));
    let mut client = match Client::connect(TokioConnect, config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tail: {e}");
            std::process::exit(2);
        }
    };
    let mut events = client.subscribe().expect("the first subscription");
    let mut seen = 0;
    while max.is_none_or(|m| seen < m) {
        match events.next().await {
            Some(Ok(event)) => println!("{}", event.to_json()),
            // The client retries what can be retried; this is for good.
            Some(Err(e)) => {
                eprintln!("tail: {e}");
                std::process::exit(1);
            }
            None => break,
        }
        seen += 1;
    }
    let m = client.metrics().snapshot();
    eprintln!(
        "tail: {} events, live p50 {:.3} ms, {} replayed, {} reconnects",
        m.messages_received, m.p50_latency_ms, m.messages_replayed, m.reconnects
    );
    client.close().await;
}
