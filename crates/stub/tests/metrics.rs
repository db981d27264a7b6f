//! `/metrics` as Prometheus users read it: every error answer counted by
//! reason (400s and 404s too), the classic text when the scraper asks for
//! it, `stub_build_info` and `process_*`, the same line order every scrape.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

mod common;
use common::*;

fn scrape(accept: Option<&str>) -> Request<Body> {
    let mut req = Request::get("/metrics");
    if let Some(a) = accept {
        req = req.header(header::ACCEPT, a);
    }
    req.body(Body::empty()).unwrap()
}

async fn text(s: &stub::Stub, accept: Option<&str>) -> (String, String) {
    let res = call(s, scrape(accept)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let ct = res.headers()[header::CONTENT_TYPE].to_str().unwrap().to_owned();
    (ct, body_text(res).await)
}

#[tokio::test]
async fn bad_requests_and_unknown_paths_are_counted_with_their_reason() {
    let s = stub(3);
    for uri in ["/nope", "/events/x", "/events?limit=many", "/events?cursor=9"] {
        let res = call(&s, get(uri)).await;
        assert!(res.status().is_client_error(), "{uri}: {}", res.status());
    }
    call(&s, post("not json", Some("application/json"))).await;
    let (_, text) = text(&s, None).await;
    for line in [
        "stub_requests_rejected_total{reason=\"not_found\"} 2",
        "stub_requests_rejected_total{reason=\"bad_request\"} 2",
        "stub_requests_rejected_total{reason=\"cursor_ahead\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    // Answers that are no error are not counted.
    assert_eq!(text.matches("stub_requests_rejected_total{").count(), 3, "{text}");
}

#[tokio::test]
async fn the_classic_text_when_asked_for_openmetrics_otherwise() {
    let s = stub(2);
    let (ct, om) = text(&s, None).await;
    assert_eq!(ct, "application/openmetrics-text; version=1.0.0; charset=utf-8");
    assert!(om.contains("# TYPE stub_events_published counter\n"), "{om}");
    assert!(om.contains("# TYPE stub_build_info gauge\n"), "{om}");
    assert!(om.ends_with("# EOF\n"), "{om}");
    let (ct, classic) = text(&s, Some("text/plain; version=0.0.4")).await;
    assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
    assert!(
        classic.contains("# TYPE stub_events_published_total counter\n"),
        "{classic}"
    );
    assert!(!classic.contains("# EOF"), "{classic}");
    for text in [&om, &classic] {
        let version = env!("CARGO_PKG_VERSION");
        assert!(
            text.contains(&format!("stub_build_info{{version=\"{version}\"}} 1\n")),
            "{text}"
        );
        #[cfg(target_os = "linux")]
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
        ] {
            assert!(text.lines().any(|l| l.starts_with(name)), "{name} in {text}");
        }
    }
}

#[tokio::test]
async fn scrapes_keep_the_line_order() {
    let s = stub(2);
    call(&s, get("/nope")).await;
    call(&s, get("/events?cursor=9")).await;
    call(&s, get("/events?limit=x")).await;
    let names = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with("process_"))
            .map(|l| l.split(' ').next().unwrap_or("").to_owned())
            .collect()
    };
    let first = names(&text(&s, None).await.1);
    // A family made afresh at each scrape (connections) and one grown over
    // time (rejections) come out in the same order every time.
    for _ in 0..10 {
        assert_eq!(names(&text(&s, None).await.1), first);
    }
    let conns: Vec<&String> = first
        .iter()
        .filter(|l| l.starts_with("stub_connections{"))
        .collect();
    assert_eq!(
        conns,
        ["poll", "sse", "ws"]
            .map(|t| format!("stub_connections{{transport=\"{t}\"}}"))
            .iter()
            .collect::<Vec<_>>()
    );
}
