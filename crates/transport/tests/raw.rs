//! Conformance of the raw SSE reader (`wire-tail --raw`) over real HTTP on
//! 127.0.0.1, against a scripted server that writes each response in the
//! chunks a test chooses and records every request: chunk boundaries, split
//! CRLF, BOM, status codes, Content-Type, redirects, `Last-Event-ID` on
//! reconnect, `retry:`. One test runs the binary for its output and exit
//! codes.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use transport::TokioConnect;
use transport::raw::{RawConfig, RawEnd, RawEvent};

/// One scripted response: head (status line and headers) and body chunks,
/// each written and flushed on its own.
#[derive(Clone)]
struct Script {
    head: String,
    chunks: Vec<Vec<u8>>,
}

fn ok(content_type: &str, chunks: &[&[u8]]) -> Script {
    Script {
        head: format!("HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\nconnection: close\r\n\r\n"),
        chunks: chunks.iter().map(|c| c.to_vec()).collect(),
    }
}

fn sse(chunks: &[&[u8]]) -> Script {
    ok("text/event-stream", chunks)
}

fn status(line: &str, extra: &str) -> Script {
    Script {
        head: format!("HTTP/1.1 {line}\r\n{extra}content-length: 0\r\nconnection: close\r\n\r\n"),
        chunks: vec![],
    }
}

/// Serves the scripts in order, one per connection; records each request.
async fn server(scripts: Vec<Script>) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        for script in scripts {
            let (mut sock, _) = listener.accept().await.unwrap();
            sock.set_nodelay(true).unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = sock.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
            }
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&req).to_lowercase());
            sock.write_all(script.head.as_bytes()).await.unwrap();
            for chunk in script.chunks {
                sock.write_all(&chunk).await.unwrap();
                sock.flush().await.unwrap();
                // Let each chunk arrive on its own.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let _ = sock.shutdown().await;
        }
    });
    (addr, requests)
}

fn config(addr: SocketAddr, path: &str) -> RawConfig {
    let mut c = RawConfig::new(&format!("http://{addr}{path}"));
    c.reconnect = false;
    c
}

async fn read_all(config: &RawConfig, max: usize) -> (Vec<RawEvent>, RawEnd) {
    let mut events = Vec::new();
    let end = tokio::time::timeout(
        Duration::from_secs(10),
        transport::raw::read(&TokioConnect, config, |e| {
            events.push(e);
            events.len() < max
        }),
    )
    .await
    .expect("the reader finishes");
    (events, end)
}

fn ev(event: &str, data: &str, id: &str) -> RawEvent {
    RawEvent {
        event: event.into(),
        data: data.into(),
        id: id.into(),
    }
}

#[tokio::test]
async fn events_split_at_every_byte_arrive_whole() {
    let stream = b"event: tick\nid: 1\ndata: {\"a\":1}\n\ndata: x\ndata: y\n\n";
    let chunks: Vec<&[u8]> = stream.chunks(1).collect();
    let (addr, _) = server(vec![sse(&chunks)]).await;
    let (events, end) = read_all(&config(addr, "/s"), 10).await;
    assert_eq!(events, [ev("tick", "{\"a\":1}", "1"), ev("message", "x\ny", "1")]);
    assert_eq!(end, RawEnd::Ended);
}

#[tokio::test]
async fn a_crlf_split_across_chunks_is_one_line_end() {
    let (addr, _) = server(vec![sse(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"])]).await;
    let (events, _) = read_all(&config(addr, "/s"), 10).await;
    assert_eq!(events, [ev("message", "a\nb", "")]);
}

#[tokio::test]
async fn a_bom_split_across_chunks_is_dropped_once() {
    let (addr, _) = server(vec![sse(&[
        b"\xEF",
        b"\xBB",
        b"\xBFdata: x\n\n\xEF\xBB\xBFdata: y\n\n",
    ])])
    .await;
    let (events, _) = read_all(&config(addr, "/s"), 10).await;
    // The second BOM is content: it makes an unknown field name, so no "y".
    assert_eq!(events, [ev("message", "x", "")]);
}

#[tokio::test]
async fn the_request_asks_for_an_event_stream_without_cache() {
    let (addr, requests) = server(vec![sse(&[b"data: x\n\n"])]).await;
    read_all(&config(addr, "/s?q=1"), 10).await;
    let req = requests.lock().unwrap()[0].clone();
    assert!(req.starts_with("get /s?q=1 http/1.1\r\n"), "{req}");
    assert!(req.contains("accept: text/event-stream\r\n"), "{req}");
    assert!(req.contains("cache-control: no-cache\r\n"), "{req}");
    assert!(
        !req.contains("last-event-id"),
        "no Last-Event-ID on the first request: {req}"
    );
}

#[tokio::test]
async fn every_status_but_200_fails_without_a_retry() {
    for (line, extra) in [
        ("204 No Content", ""),
        ("500 Internal Server Error", ""),
        ("503 Service Unavailable", "retry-after: 1\r\n"),
        ("404 Not Found", ""),
        ("401 Unauthorized", ""),
    ] {
        let (addr, requests) = server(vec![status(line, extra), sse(&[b"data: x\n\n"])]).await;
        let mut c = config(addr, "/s");
        c.reconnect = true;
        let (events, end) = read_all(&c, 10).await;
        assert!(events.is_empty());
        assert!(
            matches!(&end, RawEnd::Failed(r) if r.contains(&line[..3])),
            "{line}: {end:?}"
        );
        assert_eq!(requests.lock().unwrap().len(), 1, "{line}: not retried");
    }
}

#[tokio::test]
async fn only_a_text_event_stream_content_type_opens_the_stream() {
    let (addr, _) = server(vec![ok("text/event-stream; charset=utf-8", &[b"data: x\n\n"])]).await;
    assert_eq!(
        read_all(&config(addr, "/s"), 10).await.0,
        [ev("message", "x", "")]
    );
    for ct in ["text/plain", "application/json", "text/event-streams"] {
        let (addr, _) = server(vec![ok(ct, &[b"data: x\n\n"])]).await;
        let (events, end) = read_all(&config(addr, "/s"), 10).await;
        assert!(events.is_empty(), "{ct}");
        assert!(
            matches!(&end, RawEnd::Failed(r) if r.contains("Content-Type")),
            "{ct}: {end:?}"
        );
    }
}

#[tokio::test]
async fn redirects_are_followed_and_one_without_location_fails() {
    let (addr, requests) = server(vec![
        status("307 Temporary Redirect", "location: /moved\r\n"),
        sse(&[b"data: x\n\n"]),
    ])
    .await;
    assert_eq!(
        read_all(&config(addr, "/s"), 10).await.0,
        [ev("message", "x", "")]
    );
    assert!(requests.lock().unwrap()[1].starts_with("get /moved "));
    let (addr, _) = server(vec![status("302 Found", "")]).await;
    let (_, end) = read_all(&config(addr, "/s"), 10).await;
    assert!(
        matches!(&end, RawEnd::Failed(r) if r.contains("Location")),
        "{end:?}"
    );
}

#[tokio::test]
async fn a_reconnect_sends_the_last_event_id_and_honours_retry() {
    let (addr, requests) = server(vec![
        sse(&[b"retry: 300\nid: 7\ndata: a\n\n"]),
        // An id-only block moves the resume point; the unfinished one does not.
        sse(&[b"id: 9\n\nid: 10\ndata: lost"]),
        sse(&[b"data: b\n\n"]),
    ])
    .await;
    let mut c = config(addr, "/s");
    c.reconnect = true;
    let started = tokio::time::Instant::now();
    let (events, end) = read_all(&c, 2).await;
    assert_eq!(end, RawEnd::Stopped);
    // "b" has no id field: it reports the id persisted from connection 2.
    assert_eq!(events, [ev("message", "a", "7"), ev("message", "b", "9")]);
    let requests = requests.lock().unwrap();
    assert!(requests[1].contains("last-event-id: 7\r\n"), "{}", requests[1]);
    assert!(requests[2].contains("last-event-id: 9\r\n"), "{}", requests[2]);
    // Two reconnects at the 300 ms the server asked for, not the default 3 s.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_millis(2500),
        "{took:?}"
    );
}

#[tokio::test]
async fn an_empty_last_event_id_is_never_sent() {
    let (addr, requests) = server(vec![
        sse(&[b"retry: 50\nid: 3\ndata: a\n\nid\ndata: b\n\n"]),
        sse(&[b"data: c\n\n"]),
    ])
    .await;
    let mut c = config(addr, "/s");
    c.reconnect = true;
    let (events, _) = read_all(&c, 3).await;
    assert_eq!(events[1], ev("message", "b", ""));
    assert!(!requests.lock().unwrap()[1].contains("last-event-id"));
}

#[tokio::test]
async fn the_last_event_id_persists_across_connections() {
    let (addr, requests) = server(vec![
        // An id-only block, then the server closes.
        sse(&[b"retry: 50\nid: 7\n\n"]),
        // No id field: the event reports the persisted id.
        sse(&[b"data: a\n\n"]),
        // Still no id: the reconnect sends the persisted one again.
        sse(&[b"data: b\n\n"]),
        // A BOM first, split, then an id-less event: still 7, BOM dropped.
        sse(&[b"\xEF\xBB", b"\xBFdata: c\n\n"]),
        // An empty id field clears it, as in a browser.
        sse(&[b"id\ndata: d\n\n"]),
        sse(&[b"data: e\n\n"]),
    ])
    .await;
    let mut c = config(addr, "/s");
    c.reconnect = true;
    let (events, end) = read_all(&c, 5).await;
    assert_eq!(end, RawEnd::Stopped);
    assert_eq!(
        events,
        [
            ev("message", "a", "7"),
            ev("message", "b", "7"),
            ev("message", "c", "7"),
            ev("message", "d", ""),
            ev("message", "e", ""),
        ]
    );
    let requests = requests.lock().unwrap();
    for (i, req) in requests.iter().enumerate().take(5).skip(1) {
        assert!(req.contains("last-event-id: 7\r\n"), "request {i}: {req}");
    }
    assert!(!requests[5].contains("last-event-id"), "{}", requests[5]);
}

/// Log lines, captured.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn what_the_decoder_drops_is_logged_and_reading_goes_on() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let long = format!("data: {}\n\n", "x".repeat(100));
    let (addr, _) = server(vec![sse(&[long.as_bytes(), b"data: ok\n\n"])]).await;
    let mut c = config(addr, "/s");
    c.limits.max_line = 64;
    let (events, end) = read_all(&c, 10).await;
    assert_eq!(events, [ev("message", "ok", "")]);
    assert_eq!(end, RawEnd::Ended);
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("WARN") && text.contains("dropped") && text.contains("64-byte limit"),
        "{text}"
    );
}

/// The binary: JSON lines on stdout, nothing on stdout and a non-zero exit
/// when the response fails, exit 0 when the stream ends (--no-reconnect).
#[tokio::test]
async fn wire_tail_raw_prints_json_lines_and_exits_as_promised() {
    let bin = env!("CARGO_BIN_EXE_wire-tail");
    let (addr, _) = server(vec![sse(&[
        b"event: tick\nid: 1\ndata: {\"x\":1}\n\ndata: two\n\n",
    ])])
    .await;
    let out = tokio::process::Command::new(bin)
        .args(["--raw", "--no-reconnect", "--url", &format!("http://{addr}/s")])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"event\":\"tick\",\"data\":\"{\\\"x\\\":1}\",\"id\":\"1\"}\n{\"event\":\"message\",\"data\":\"two\",\"id\":\"1\"}\n"
    );

    let (addr, _) = server(vec![status("503 Service Unavailable", "")]).await;
    let out = tokio::process::Command::new(bin)
        .args(["--raw", "--no-reconnect", "--url", &format!("http://{addr}/s")])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("503"), "{out:?}");

    let (addr, _) = server(vec![sse(&[b"data: 1\n\ndata: 2\n\ndata: 3\n\n"])]).await;
    let out = tokio::process::Command::new(bin)
        .args(["--raw", "--max-events", "2", "--url", &format!("http://{addr}/s")])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 2);
}
