//! `grafana/tickwire.json` asks only for metrics the binaries export: the
//! real wire-stub and decision servers are started on 127.0.0.1:0 (the
//! stub's `serve`, the desk's `start`, the engine fed by the stub), their
//! `/metrics` scraped, and every metric name in every panel's `expr` must
//! be a sample name one of them exports: a gauge's own name, a counter's
//! `_total`, a histogram's `_bucket`, `_sum` and `_count`.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use desk::{EventHook, Options, RunOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use transport::Preference;

/// One `GET` over HTTP/1.0 asking for the classic text; the body.
async fn scrape(addr: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\nAccept: text/plain; version=0.0.4\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    body.to_owned()
}

/// The sample names a classic-text scrape's `# TYPE` lines allow.
fn sample_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').unwrap();
        match kind {
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            // The classic text names a counter by its `_total` sample.
            "counter" => {
                assert!(name.ends_with("_total"), "{line}");
                names.insert(name.to_owned());
            }
            "gauge" | "untyped" => {
                names.insert(name.to_owned());
            }
            other => panic!("a type promtool does not read: {other} in {line}"),
        }
    }
    names
}

/// The metric names a PromQL expression refers to: identifiers outside
/// strings, label matchers `{...}`, ranges `[...]` and `by`/`without`
/// lists, that are neither functions, nor keywords, nor numbers.
fn metric_names(expr: &str) -> Vec<String> {
    // Aggregations may be followed by `by (...)` rather than `(`.
    const KEYWORDS: [&str; 25] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    let mut skip_group = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    i += 1;
                }
                i += 1;
            }
            '(' if skip_group => {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                skip_group = false;
                i += 1;
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace());
                let lower = word.to_ascii_lowercase();
                if ["by", "without", "on", "ignoring", "group_left", "group_right"].contains(&lower.as_str())
                {
                    skip_group = true;
                } else if next != Some(&'(') && !KEYWORDS.contains(&lower.as_str()) {
                    names.push(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn the_expression_parser_finds_metric_names_only() {
    assert_eq!(
        metric_names(
            "histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket{phase=\"live\",x=~\"a|b\"}[$__rate_interval])))"
        ),
        ["a_seconds_bucket"]
    );
    assert_eq!(
        metric_names("time() - (b_timestamp > 0) / on(job) group_left c_info offset 5m"),
        ["b_timestamp", "c_info"]
    );
    assert_eq!(
        metric_names("max by (state) (s) == 1 and  t_total"),
        ["s", "t_total"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_names_an_exported_metric() {
    // The wire server, on a real port, with events to deliver.
    let (_stub, stub_addr, clock) = common::wire_with_day(200).await;

    // The engine on it, its metrics served; awaited until it has applied
    // an event, so the client's families are there.
    let (applied, mut first) = tokio::sync::mpsc::unbounded_channel();
    let options = Options {
        file: desk::FileConfig::default(),
        wire_urls: vec![format!("http://{stub_addr}")],
        transport: Preference::Auto,
        token: None,
        from: None,
        ca_cert: None,
        run: RunOptions {
            checkpoint_every: 500,
            on_event: Some(EventHook::new(move |_| {
                let _ = applied.send(());
            })),
            ..RunOptions::default()
        },
        fixture_rate: None,
        clock,
    };
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let session = Arc::new(desk::start(options, metrics).await.unwrap());
    let desk_addr = session.metrics_addr.to_string();
    let running = session.clone();
    let run = tokio::spawn(async move { running.run(std::future::pending()).await });
    first.recv().await.unwrap();

    // A rejected request (its family shows from the first one on).
    let mut s = tokio::net::TcpStream::connect(&stub_addr).await.unwrap();
    s.write_all(b"GET /nope HTTP/1.0\r\n\r\n").await.unwrap();
    s.read_to_end(&mut Vec::new()).await.unwrap();
    let mut exported = sample_names(&scrape(&stub_addr).await);
    let desk_names = sample_names(&scrape(&desk_addr).await);
    for name in [
        "wire_delivery_latency_seconds_bucket",
        "decision_events_total",
        "process_cpu_seconds_total",
    ] {
        assert!(desk_names.contains(name), "{name} in {desk_names:?}");
    }
    exported.extend(desk_names);

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../grafana/tickwire.json");
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    let mut stack = vec![&dashboard];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(e)) = map.get("expr") {
                    exprs.push(e.clone());
                }
                stack.extend(map.values());
            }
            serde_json::Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    assert!(exprs.len() >= 20, "{} queries", exprs.len());
    let mut missing = Vec::new();
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "no metric in {expr}");
        missing.extend(
            names
                .into_iter()
                .filter(|n| !exported.contains(n))
                .map(|n| format!("{n} (in {expr})")),
        );
    }
    assert!(
        missing.is_empty(),
        "not exported: {missing:#?}\nexported: {exported:#?}"
    );
    run.abort();
}
