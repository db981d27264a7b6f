//! Over real TCP, with the real binary: a client streams, the server is
//! killed (SIGKILL) and restarted on the same port, and the client resumes
//! from its last id, on SSE, WebSocket and polling. Every id from 1 to the
//! target arrives exactly once, in order.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use wire::Message;

const TARGET: u64 = 300;
const KILL_AT: u64 = 100;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server(Child);

impl Server {
    /// Starts the binary on `addr`, publishing the default fixture at 500
    /// events/s, and waits until it answers.
    async fn start(addr: SocketAddr) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_wire-stub"))
            .args(["--addr", &addr.to_string(), "--rate", "500"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wire-stub");
        let server = Server(child);
        for _ in 0..200 {
            if TcpStream::connect(addr).await.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("wire-stub did not come up on {addr}");
    }

    fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn get(
    addr: SocketAddr,
    path: &str,
    last_event_id: Option<u64>,
) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = Request::get(path).header("host", addr.to_string());
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id.to_string());
    }
    Ok(sender
        .send_request(req.body(http_body_util::Empty::<bytes::Bytes>::new())?)
        .await?)
}

/// One SSE session from `last`: sends each event id until the stream ends.
async fn sse_session(
    addr: SocketAddr,
    last: &mut u64,
    out: &mpsc::UnboundedSender<u64>,
) -> anyhow::Result<()> {
    let res = get(addr, "/stream", Some(*last)).await?;
    anyhow::ensure!(res.status() == 200, "status {}", res.status());
    let mut body = res.into_body();
    let mut decoder = sse::Decoder::default();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else { continue };
        decoder.push(&data);
        while let Some(f) = decoder.next_frame() {
            if let sse::Frame::Event(e) = f?
                && let Message::Event(ev) = wire::sse::decode(&e)?
            {
                *last = ev.id;
                out.send(ev.id)?;
            }
        }
    }
    Ok(())
}

async fn ws_session(
    addr: SocketAddr,
    last: &mut u64,
    out: &mpsc::UnboundedSender<u64>,
) -> anyhow::Result<()> {
    let stream = TcpStream::connect(addr).await?;
    let (mut ws, _) =
        tokio_tungstenite::client_async(format!("ws://{addr}/ws?cursor={last}"), stream).await?;
    while let Some(msg) = ws.next().await {
        match msg? {
            tokio_tungstenite::tungstenite::Message::Text(text) => {
                if let Message::Event(ev) = wire::ws::decode(&text)? {
                    *last = ev.id;
                    out.send(ev.id)?;
                }
            }
            tokio_tungstenite::tungstenite::Message::Close(_) => break,
            _ => {}
        }
    }
    let _ = ws.close(None).await;
    Ok(())
}

async fn poll_session(
    addr: SocketAddr,
    last: &mut u64,
    out: &mpsc::UnboundedSender<u64>,
) -> anyhow::Result<()> {
    loop {
        let res = get(
            addr,
            &format!("/events?cursor={last}&limit=50&wait_ms=2000"),
            None,
        )
        .await?;
        anyhow::ensure!(res.status() == 200, "status {}", res.status());
        let body = res.into_body().collect().await?.to_bytes();
        let page: wire::poll::Page = serde_json::from_slice(&body)?;
        for ev in page.events {
            *last = ev.id;
            out.send(ev.id)?;
        }
        if *last >= TARGET {
            return Ok(());
        }
    }
}

#[derive(Clone, Copy)]
enum Transport {
    Sse,
    Ws,
    Poll,
}

/// Runs a client that reconnects from its last id until it has TARGET ids,
/// kills the server at KILL_AT and restarts it; returns every id received.
async fn run(transport: Transport) -> Vec<u64> {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let server = Server::start(addr).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let client = tokio::spawn(async move {
        let mut last = 0;
        while last < TARGET {
            // Whatever ends a session (the kill, an error), resume from the
            // last id received.
            let _ = match transport {
                Transport::Sse => sse_session(addr, &mut last, &tx).await,
                Transport::Ws => ws_session(addr, &mut last, &tx).await,
                Transport::Poll => poll_session(addr, &mut last, &tx).await,
            };
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut ids = Vec::new();
    let mut server = Some(server);
    while let Some(id) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("events keep coming")
    {
        ids.push(id);
        if id == KILL_AT {
            server.take().unwrap().kill();
            tokio::time::sleep(Duration::from_millis(200)).await;
            server = Some(Server::start(addr).await);
        }
        if id >= TARGET {
            break;
        }
    }
    client.abort();
    ids
}

fn check(ids: &[u64]) {
    let expected: Vec<u64> = (1..=TARGET).collect();
    assert_eq!(ids, expected, "every id once, in order, across the restart");
}

#[tokio::test]
async fn sse_resumes_across_a_server_restart() {
    check(&run(Transport::Sse).await);
}

#[tokio::test]
async fn websocket_resumes_across_a_server_restart() {
    check(&run(Transport::Ws).await);
}

#[tokio::test]
async fn polling_resumes_across_a_server_restart() {
    check(&run(Transport::Poll).await);
}
