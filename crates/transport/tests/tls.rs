//! The client over TLS, on real TCP, with a CA and a server certificate
//! made at test time (`rcgen`, for `localhost` and `127.0.0.1`). In front
//! of the plain in-process stub stands a TLS terminator that records what
//! each client offered and got in ALPN, and every request's HTTP version:
//! with `h2` negotiated it serves HTTP/2 and forwards each request to the
//! stub over HTTP/1.1; otherwise it copies bytes. `wire-tail` runs as the
//! real binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use stub::{Config, Log, Source, Stub};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use transport::raw::{RawConfig, RawEnd};
use transport::{Client, ClientConfig, ClientError, Tls, TokioConnect, Transport};

/// A CA and a server certificate it signed.
struct Pki {
    ca_pem: String,
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

fn pki() -> Pki {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "tickwire test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        cert: cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(key.serialize_der()),
    }
}

fn temp(name: &str, text: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("tickwire-tls-{}-{name}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

/// What one TLS connection offered and got, and the requests on it.
#[derive(Debug, Clone, Default)]
struct Seen {
    offered: Vec<String>,
    chosen: Option<String>,
    /// `HTTP/2.0 /stream?...` or, for copied bytes, the first request line.
    requests: Vec<String>,
}

/// The plain stub, with `events` events published.
async fn plain_stub(events: usize) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stub = Stub::new(
        Config::default(),
        Log::new(100_000, wire::Epoch::from_random(0x5eed)),
        Arc::new(|| 1),
    );
    let payloads: Vec<_> = wire::fixture::parse("default", wire::fixture::DEFAULT)
        .unwrap()
        .into_iter()
        .take(events)
        .collect();
    stub.publish(Source::Fixture, &payloads).await.unwrap();
    tokio::spawn(stub::serve(listener, stub, std::future::pending()));
    addr
}

/// A TLS front for `backend`, choosing among `alpn` (server preference).
async fn front(pki: &Pki, alpn: &[&[u8]], backend: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.cert.clone()], PrivateKeyDer::Pkcs8(pki.key.clone_key()))
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let config = Arc::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (config, log) = (config.clone(), log.clone());
            tokio::spawn(async move {
                let acceptor =
                    tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
                let Ok(start) = acceptor.await else { return };
                let offered = start
                    .client_hello()
                    .alpn()
                    .map(|a| a.map(|p| String::from_utf8_lossy(p).into_owned()).collect())
                    .unwrap_or_default();
                let index = {
                    let mut log = log.lock().unwrap();
                    log.push(Seen {
                        offered,
                        ..Seen::default()
                    });
                    log.len() - 1
                };
                let Ok(tls) = start.into_stream(config).await else {
                    return;
                };
                let chosen = tls
                    .get_ref()
                    .1
                    .alpn_protocol()
                    .map(|p| String::from_utf8_lossy(p).into_owned());
                log.lock().unwrap()[index].chosen = chosen.clone();
                if chosen.as_deref() == Some("h2") {
                    serve_h2(tls, backend, log, index).await;
                } else {
                    copy(tls, backend, log, index).await;
                }
            });
        }
    });
    (addr, seen)
}

/// HTTP/2 in front, each request forwarded to the stub over HTTP/1.1.
async fn serve_h2(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    backend: SocketAddr,
    log: Arc<Mutex<Vec<Seen>>>,
    index: usize,
) {
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let log = log.clone();
        async move {
            let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
            log.lock().unwrap()[index]
                .requests
                .push(format!("{:?} {path}", req.version()));
            let tcp = tokio::net::TcpStream::connect(backend)
                .await
                .map_err(anyhow::Error::from)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
            tokio::spawn(conn);
            let mut forward = hyper::Request::get(path).header("host", backend.to_string());
            for (name, value) in req.headers() {
                forward = forward.header(name, value);
            }
            let forward = forward
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap();
            anyhow::Ok(sender.send_request(forward).await?)
        }
    });
    let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
        .await;
}

/// Bytes both ways; the first request line recorded.
async fn copy(
    mut tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    backend: SocketAddr,
    log: Arc<Mutex<Vec<Seen>>>,
    index: usize,
) {
    let mut first = vec![0u8; 4096];
    let Ok(n) = tls.read(&mut first).await else { return };
    let line = String::from_utf8_lossy(&first[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    log.lock().unwrap()[index].requests.push(line);
    let Ok(mut tcp) = tokio::net::TcpStream::connect(backend).await else {
        return;
    };
    if tcp.write_all(&first[..n]).await.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut tls, &mut tcp).await;
    }
}

/// Runs `wire-tail` with `args`, within 20 s.
async fn wire_tail(args: &[&str]) -> std::process::Output {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_wire-tail"))
        .args(args)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("wire-tail ends by itself")
        .unwrap()
}

/// The ids of the JSON lines `wire-tail` printed.
fn ids(out: &std::process::Output) -> Vec<u64> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn wire_tail_streams_sse_over_https_on_http1_when_the_server_picks_it() {
    let pki = pki();
    let ca = temp("ca-h1.pem", &pki.ca_pem);
    let (addr, seen) = front(&pki, &[b"http/1.1"], plain_stub(20).await).await;
    let url = format!("https://localhost:{}", addr.port());
    let out = wire_tail(&[
        "--url",
        &url,
        "--ca-cert",
        ca.to_str().unwrap(),
        "--max-events",
        "20",
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(ids(&out), (1..=20).collect::<Vec<_>>());
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].offered, ["h2", "http/1.1"], "SSE offers both");
    assert_eq!(seen[0].chosen.as_deref(), Some("http/1.1"));
    assert!(
        seen[0].requests[0].starts_with("GET /stream?cursor=0 HTTP/1.1"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn wire_tail_speaks_http2_when_the_server_picks_h2_for_sse_and_polling() {
    let pki = pki();
    let ca = temp("ca-h2.pem", &pki.ca_pem);
    let (addr, seen) = front(&pki, &[b"h2", b"http/1.1"], plain_stub(30).await).await;
    let url = format!("https://127.0.0.1:{}", addr.port());
    for (transport, path) in [("sse", "/stream?cursor=0"), ("http", "/events?cursor=0")] {
        let args = [
            "--url",
            &url,
            "--ca-cert",
            ca.to_str().unwrap(),
            "--max-events",
            "30",
        ];
        let out = wire_tail(&[&args[..], &["--transport", transport]].concat()).await;
        assert!(out.status.success(), "{out:?}");
        assert_eq!(ids(&out), (1..=30).collect::<Vec<_>>());
        let seen = seen.lock().unwrap().clone();
        let last = seen.last().unwrap();
        assert_eq!(last.chosen.as_deref(), Some("h2"), "{seen:?}");
        assert!(
            last.requests[0].starts_with(&format!("HTTP/2.0 {path}")),
            "{seen:?}"
        );
    }
}

#[tokio::test]
async fn a_wss_url_means_websocket_offering_only_http1() {
    let pki = pki();
    let ca = temp("ca-ws.pem", &pki.ca_pem);
    // The server would pick h2 if offered it.
    let (addr, seen) = front(&pki, &[b"h2", b"http/1.1"], plain_stub(25).await).await;
    let url = format!("wss://localhost:{}", addr.port());
    let out = wire_tail(&[
        "--url",
        &url,
        "--ca-cert",
        ca.to_str().unwrap(),
        "--max-events",
        "25",
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(ids(&out), (1..=25).collect::<Vec<_>>());
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].offered, ["http/1.1"], "{seen:?}");
    assert!(
        seen[0].requests[0].starts_with("GET /ws?cursor=0 HTTP/1.1"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn an_explicit_transport_wins_over_a_ws_url_with_one_warning() {
    let stub = plain_stub(5).await;
    let url = format!("ws://127.0.0.1:{}", stub.port());
    let out = wire_tail(&["--url", &url, "--transport", "sse", "--max-events", "5"]).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(ids(&out), [1, 2, 3, 4, 5]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("WARN").count(), 1, "{err}");
    assert!(err.contains("ws:// URL with transport sse"), "{err}");
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_a_fatal_error_naming_the_host() {
    let pki = pki();
    let other = temp("other-ca.pem", &self::pki().ca_pem);
    let (addr, seen) = front(&pki, &[b"http/1.1"], plain_stub(5).await).await;
    let url = format!("https://localhost:{}", addr.port());
    for transport in ["sse", "ws", "http"] {
        let out = wire_tail(&[
            "--url",
            &url,
            "--ca-cert",
            other.to_str().unwrap(),
            "--transport",
            transport,
        ])
        .await;
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("the TLS certificate of localhost is not trusted"),
            "{err}"
        );
    }
    assert_eq!(seen.lock().unwrap().len(), 3, "one handshake each: no retry loop");

    // The raw reader says the same, and stops.
    let mut config = RawConfig::new(&format!("{url}/stream"));
    config.tls = Tls::from_ca_file(&other).unwrap();
    let end = tokio::time::timeout(
        Duration::from_secs(10),
        transport::raw::read(&TokioConnect, &config, |_| true),
    )
    .await
    .expect("the reader stops");
    assert!(
        matches!(&end, RawEnd::Failed(e) if e.contains("certificate of localhost is not trusted")),
        "{end:?}"
    );
}

#[tokio::test]
async fn the_client_library_stops_on_an_untrusted_certificate_and_streams_with_the_ca() {
    let pki = pki();
    let (addr, _) = front(&pki, &[b"h2", b"http/1.1"], plain_stub(10).await).await;
    let url = format!("https://localhost:{}", addr.port());
    let mut config = ClientConfig::new(&url, Arc::new(|| 0));
    config.policy.transport = Transport::Sse;
    config.tls = Tls::from_ca_pem(self::pki().ca_pem.as_bytes(), "another CA").unwrap();
    let mut client = Client::connect(TokioConnect, config.clone()).unwrap();
    let mut events = client.subscribe().unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap();
    assert!(
        matches!(&first, Some(Err(ClientError::Certificate { host, .. })) if host == "localhost"),
        "{first:?}"
    );

    config.tls = Tls::from_ca_pem(pki.ca_pem.as_bytes(), "the test CA").unwrap();
    let mut client = Client::connect(TokioConnect, config).unwrap();
    let mut events = client.subscribe().unwrap();
    for id in 1..=10 {
        let e = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap();
        assert_eq!(e.unwrap().unwrap().id, id);
    }
}

#[tokio::test]
async fn a_redirect_from_https_to_http_is_refused() {
    let pki = pki();
    let plain = plain_stub(3).await;
    let target = format!("http://127.0.0.1:{}/stream", plain.port());
    // A TLS server whose every answer redirects to the plain stub.
    let redirector = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let target = target.clone();
                let service =
                    hyper::service::service_fn(move |_req: hyper::Request<hyper::body::Incoming>| {
                        let res = hyper::Response::builder()
                            .status(302)
                            .header("location", target.clone())
                            .body(http_body_util::Empty::<bytes::Bytes>::new());
                        async move { res }
                    });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        addr
    };
    // TLS in front of the redirector.
    let (addr, seen) = front(&pki, &[b"http/1.1"], redirector).await;
    let mut config = RawConfig::new(&format!("https://localhost:{}/stream", addr.port()));
    config.reconnect = false;
    config.tls = Tls::from_ca_pem(pki.ca_pem.as_bytes(), "the test CA").unwrap();
    // Followed, the redirect would stream from the plain stub for ever.
    let end = tokio::time::timeout(
        Duration::from_secs(10),
        transport::raw::read(&TokioConnect, &config, |_| true),
    )
    .await
    .expect("the reader stops at the redirect");
    assert!(
        matches!(&end, RawEnd::Failed(e) if e.contains("never downgrade")),
        "{end:?}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}

// ---- The stub serving TLS itself (`serve_tls`, `wire-stub --tls-cert`). ----

fn server_tls(pki: &Pki, http2: bool) -> stub::ServerTls {
    stub::ServerTls::new(
        vec![pki.cert.clone()],
        PrivateKeyDer::Pkcs8(pki.key.clone_key()),
        http2,
    )
    .unwrap()
}

/// The stub on TLS in-process, with `events` published.
async fn tls_stub(
    pki: &Pki,
    config: Config,
    events: usize,
) -> (Stub, SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stub = Stub::new(
        config,
        Log::new(100_000, wire::Epoch::from_random(0x5eed)),
        Arc::new(|| 1),
    );
    let payloads: Vec<_> = wire::fixture::parse("default", wire::fixture::DEFAULT)
        .unwrap()
        .into_iter()
        .take(events)
        .collect();
    stub.publish(Source::Fixture, &payloads).await.unwrap();
    let task = tokio::spawn(stub::serve_tls(
        listener,
        stub.clone(),
        server_tls(pki, true),
        std::future::pending(),
    ));
    (stub, addr, task)
}

fn client(url: &str, pki: &Pki, kind: Transport) -> ClientConfig {
    let mut c = ClientConfig::new(url, Arc::new(|| 0));
    c.policy.transport = kind;
    c.policy.initial_delay = Duration::from_millis(50);
    c.policy.max_delay = Duration::from_millis(200);
    c.tls = Tls::from_ca_pem(pki.ca_pem.as_bytes(), "the test CA").unwrap();
    c
}

async fn next_id(events: &mut transport::Subscription) -> u64 {
    let e = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event");
    e.expect("open").expect("an event, not an error").id
}

/// A request over TLS with hyper (HTTP/1.1), for what the client does not
/// send (`DELETE /connections/{id}`).
async fn https(addr: SocketAddr, pki: &Pki, method: &str, path: &str) -> (u16, String) {
    use http_body_util::BodyExt;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki_ca_der(pki)).unwrap();
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// An HTTP/2 GET over TLS: the task driving the connection (with the
/// sender kept, it ends only when the server closes the connection), the
/// sender and the response, left unread.
async fn h2_stream(
    addr: SocketAddr,
    pki: &Pki,
    path: &str,
) -> (
    tokio::task::JoinHandle<()>,
    hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    hyper::Response<hyper::body::Incoming>,
) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki_ca_der(pki)).unwrap();
    let mut config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = hyper::Request::get(format!("https://localhost:{}{path}", addr.port()))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    (task, sender, res)
}

fn pki_ca_der(pki: &Pki) -> CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap()
}

#[tokio::test]
async fn a_silent_client_neither_stalls_accepts_nor_stays_past_the_handshake_timeout() {
    let pki = pki();
    // A long handshake timeout: were the handshake in the accept loop, the
    // silent client would hold every later one for 30 s.
    let config = Config {
        tls_handshake_timeout_ms: 30_000,
        ..Config::default()
    };
    let (_stub, addr, _task) = tls_stub(&pki, config, 5).await;
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut c = Client::connect(
        TokioConnect,
        client(
            &format!("https://localhost:{}", addr.port()),
            &pki,
            Transport::Sse,
        ),
    )
    .unwrap();
    let mut events = c.subscribe().unwrap();
    let got = tokio::time::timeout(Duration::from_secs(3), async {
        for id in 1..=5 {
            assert_eq!(next_id(&mut events).await, id);
        }
    })
    .await;
    assert!(got.is_ok(), "a silent client stalled the accept loop");

    // With a short timeout the silent client is dropped.
    let config = Config {
        tls_handshake_timeout_ms: 200,
        ..Config::default()
    };
    let (_stub, addr, _task) = tls_stub(&pki, config, 1).await;
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "dropped after the handshake timeout: {read:?}"
    );
}

#[tokio::test]
async fn a_killed_http2_connection_reconnects_and_shutdown_ends_every_tls_stream() {
    let pki = pki();
    let config = Config {
        shutdown_grace_ms: 30_000,
        ..Config::default()
    };
    let (stub, addr, task) = tls_stub(&pki, config, 10).await;
    let url = format!("https://localhost:{}", addr.port());
    let mut sse = Client::connect(TokioConnect, client(&url, &pki, Transport::Sse)).unwrap();
    let mut ws = Client::connect(
        TokioConnect,
        client(&url.replace("https", "wss"), &pki, Transport::Ws),
    )
    .unwrap();
    let (mut a, mut b) = (sse.subscribe().unwrap(), ws.subscribe().unwrap());
    for id in 1..=10 {
        assert_eq!(next_id(&mut a).await, id);
        assert_eq!(next_id(&mut b).await, id);
    }
    let conns = stub.connections();
    let protocols: Vec<_> = conns.iter().map(|c| (c.transport, c.protocol.as_str())).collect();
    assert!(
        protocols.contains(&(stub::Transport::Sse, "HTTP/2 over TLS")),
        "{protocols:?}"
    );
    assert!(
        protocols.contains(&(stub::Transport::Ws, "HTTP/1.1 over TLS")),
        "{protocols:?}"
    );

    // DELETE /connections/{id} cuts the HTTP/2 connection: the client
    // reconnects, and nothing is lost or repeated.
    let old = conns
        .iter()
        .find(|c| c.transport == stub::Transport::Sse)
        .unwrap()
        .id;
    assert_eq!(
        https(addr, &pki, "DELETE", &format!("/connections/{old}"))
            .await
            .0,
        204
    );
    let more: Vec<_> = wire::fixture::parse("default", wire::fixture::DEFAULT)
        .unwrap()
        .into_iter()
        .skip(10)
        .take(5)
        .collect();
    stub.publish(Source::Fixture, &more).await.unwrap();
    for id in 11..=15 {
        assert_eq!(next_id(&mut a).await, id);
    }
    assert!(
        sse.timeline()
            .iter()
            .any(|e| matches!(e.event, transport::Lifecycle::Disconnected { .. }))
    );
    assert!(stub.connections().iter().all(|c| c.id != old));

    // The kill cuts the TCP connection itself, not only its stream: an
    // HTTP/2 connection whose one stream ended would otherwise stay open.
    let before = stub.connections().iter().map(|c| c.id).max().unwrap_or(0);
    let (h2_conn, _sender, _unread) = h2_stream(addr, &pki, "/stream?cursor=0").await;
    let id = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(c) = stub.connections().into_iter().find(|c| c.id > before) {
                break c.id;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the raw HTTP/2 stream is listed");
    assert_eq!(
        https(addr, &pki, "DELETE", &format!("/connections/{id}")).await.0,
        204
    );
    tokio::time::timeout(Duration::from_secs(5), h2_conn)
        .await
        .expect("the killed HTTP/2 connection is closed by the server")
        .unwrap();

    // Shutdown ends the streams at once, well before the 30 s grace.
    stub.shutdown_token().cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("every TLS stream ended without waiting out the grace")
        .unwrap();
}

// ---- The real `wire-stub` binary with --tls-cert/--tls-key. ----

/// The `wire-stub` binary, built by cargo now (it is another package's,
/// so `CARGO_BIN_EXE_` does not name it; building makes sure it is fresh).
fn wire_stub_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = std::process::Command::new(cargo)
                .args(["build", "--quiet", "-p", "stub", "--bin", "wire-stub"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run cargo build");
            assert!(status.success(), "building wire-stub");
            // target/debug/deps/this-test -> target/debug/wire-stub
            let exe = std::env::current_exe().unwrap();
            exe.parent().unwrap().parent().unwrap().join("wire-stub")
        })
        .clone()
}

struct StubBin {
    child: tokio::process::Child,
    addr: SocketAddr,
}

impl StubBin {
    /// Starts `wire-stub` on TLS with `extra` args; waits for its address line.
    async fn start(pki: &Pki, name: &str, extra: &[&str]) -> StubBin {
        use tokio::io::AsyncBufReadExt;
        let cert = temp(&format!("{name}-cert.pem"), &pem("CERTIFICATE", &pki.cert));
        let key = temp(
            &format!("{name}-key.pem"),
            &pem("PRIVATE KEY", pki.key.secret_pkcs8_der()),
        );
        let mut child = tokio::process::Command::new(wire_stub_bin())
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the address line")
            .unwrap()
            .unwrap();
        let addr = line.rsplit("https://").next().unwrap().parse().unwrap();
        StubBin { child, addr }
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    use std::fmt::Write;
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            text.push(if i <= chunk.len() {
                B64[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        let _ = writeln!(out, "{}", std::str::from_utf8(line).unwrap());
    }
    let _ = writeln!(out, "-----END {label}-----");
    out
}

#[tokio::test]
async fn wire_tail_streams_from_a_tls_wire_stub_over_http2_http1_and_wss() {
    use tokio::io::AsyncBufReadExt;
    let pki = pki();
    let ca = temp("ca-bin.pem", &pki.ca_pem);
    let h1_only = temp("h1-only.yaml", "server:\n  http2: false\n");
    let cases = [
        (
            "h2",
            &[][..],
            "https",
            "sse",
            stub::Transport::Sse,
            "HTTP/2 over TLS",
        ),
        (
            "h1",
            &["--config", h1_only.to_str().unwrap()][..],
            "https",
            "sse",
            stub::Transport::Sse,
            "HTTP/1.1 over TLS",
        ),
        (
            "wss",
            &[][..],
            "wss",
            "auto",
            stub::Transport::Ws,
            "HTTP/1.1 over TLS",
        ),
    ];
    for (name, extra, scheme, transport, kind, protocol) in cases {
        let server = StubBin::start(
            &pki,
            name,
            &[&["--addr", "127.0.0.1:0", "--no-pace"], extra].concat(),
        )
        .await;
        let url = format!("{scheme}://localhost:{}", server.addr.port());
        let mut tail = tokio::process::Command::new(env!("CARGO_BIN_EXE_wire-tail"))
            .args([
                "--url",
                &url,
                "--ca-cert",
                ca.to_str().unwrap(),
                "--transport",
                transport,
            ])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(tail.stdout.take().unwrap()).lines();
        for id in 1..=50u64 {
            let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
                .await
                .expect("an event line")
                .unwrap()
                .expect("wire-tail still running");
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["id"].as_u64(), Some(id), "{name}");
        }
        let (status, body) = https(server.addr, &pki, "GET", "/connections").await;
        assert_eq!(status, 200);
        let conns: serde_json::Value = serde_json::from_str(&body).unwrap();
        let kind = serde_json::to_value(kind).unwrap();
        let streams: Vec<_> = conns
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["transport"] == kind)
            .collect();
        assert_eq!(streams.len(), 1, "{name}: {body}");
        assert_eq!(streams[0]["protocol"], protocol, "{name}: {body}");
        drop(tail);
        drop(server);
    }
}

#[tokio::test]
async fn exactly_once_across_a_tls_wire_stub_restart() {
    let pki = pki();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A journal: the restarted stub keeps its log's epoch (one restarted
    // without it is a new epoch, which the client refuses to cross).
    let data = std::env::temp_dir().join(format!("tickwire-tls-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let data = data.display().to_string();
    let args = [
        "--addr",
        &format!("127.0.0.1:{port}"),
        "--rate",
        "500",
        "--data-dir",
        &data,
    ];
    let mut server = StubBin::start(&pki, "restart", &args).await;
    let mut config = client(&format!("https://localhost:{port}"), &pki, Transport::Sse);
    config.policy.max_attempts = -1;
    let mut c = Client::connect(TokioConnect, config).unwrap();
    let mut events = c.subscribe().unwrap();
    let mut ids = Vec::new();
    while ids.len() < 100 {
        ids.push(next_id(&mut events).await);
    }
    server.child.kill().await.unwrap();
    let _server = StubBin::start(&pki, "restart", &args).await;
    while ids.len() < 300 {
        ids.push(next_id(&mut events).await);
    }
    assert_eq!(ids, (1..=300).collect::<Vec<_>>());
    assert!(
        c.timeline()
            .iter()
            .any(|e| matches!(e.event, transport::Lifecycle::Disconnected { .. }))
    );
}
