//! Tests of negotiation, rendering and the /proc parser.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use super::*;

#[test]
fn the_classic_text_only_when_preferred() {
    use Format::*;
    for (accept, want) in [
        (None, OpenMetrics),
        (Some("*/*"), OpenMetrics),
        (Some("text/plain; version=0.0.4"), Classic),
        (Some("text/plain;version=0.0.4;q=0.9, */*;q=0.1"), Classic),
        (Some("application/openmetrics-text; version=1.0.0"), OpenMetrics),
        // Prometheus's own default.
        (
            Some(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            ),
            OpenMetrics,
        ),
        (Some("application/openmetrics-text;q=0.2, text/plain"), Classic),
        (Some("text/plain;q=0"), OpenMetrics),
        (Some("text/html"), OpenMetrics),
    ] {
        assert_eq!(Format::negotiate(accept), want, "{accept:?}");
    }
    assert_eq!(Classic.content_type(), "text/plain; version=0.0.4; charset=utf-8");
    assert_eq!(
        OpenMetrics.content_type(),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
}

fn registry() -> Registry {
    let mut r = Registry::default();
    let c: Counter = Counter::default();
    c.inc_by(3);
    r.register("x_events", "Events", c);
    let f: Family<Vec<(&'static str, String)>, Gauge> = Family::default();
    for s in ["b", "c", "a", "e", "d"] {
        f.get_or_create(&vec![("state", s.to_owned())]).set(1);
    }
    r.register("x_state", "State", f);
    r
}

#[test]
fn each_format_types_counters_its_own_way() {
    let r = registry();
    let om = render(Format::OpenMetrics, &[&r]);
    assert!(om.contains("# TYPE x_events counter\nx_events_total 3\n"), "{om}");
    assert!(om.ends_with("# EOF\n"), "{om}");
    let classic = render(Format::Classic, &[&r]);
    assert!(
        classic.contains("# HELP x_events_total Events.\n# TYPE x_events_total counter\nx_events_total 3\n"),
        "{classic}"
    );
    assert!(!classic.contains("# EOF"), "{classic}");
    let std = standard("x", "1.2.3");
    let om = render(Format::OpenMetrics, &[&std]);
    assert!(
        om.contains("# TYPE x_build_info gauge\nx_build_info{version=\"1.2.3\"} 1\n"),
        "{om}"
    );
    let classic = render(Format::Classic, &[&std]);
    assert!(
        classic.contains("# TYPE x_build_info gauge\nx_build_info{version=\"1.2.3\"} 1\n"),
        "{classic}"
    );
    #[cfg(target_os = "linux")]
    for name in [
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_virtual_memory_bytes ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
    ] {
        assert!(
            classic.lines().any(|l| l.starts_with(name)),
            "{name} in {classic}"
        );
    }
}

#[test]
fn the_line_order_is_the_same_whatever_the_hash_order() {
    let first = render(Format::OpenMetrics, &[&registry()]);
    let states: Vec<&str> = first.lines().filter(|l| l.starts_with("x_state{")).collect();
    assert_eq!(
        states,
        ["a", "b", "c", "d", "e"].map(|s| format!("x_state{{state=\"{s}\"}} 1")),
        "{first}"
    );
    // Fresh families hash differently; the text does not change.
    for _ in 0..20 {
        assert_eq!(render(Format::OpenMetrics, &[&registry()]), first);
    }
}

#[test]
fn proc_texts_give_the_figures() {
    let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 12345 1048576 64 18446744073709551615";
    let status = "Name:\tx\nVmSize:\t    1024 kB\nVmRSS:\t     256 kB\n";
    let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
    let system = "cpu  1 2 3\nbtime 1700000000\n";
    let f = process::parse(stat, status, limits, system, Some(7));
    assert_eq!(
        f,
        process::Figures {
            cpu_seconds: Some(3.0),
            resident_bytes: Some(256 * 1024),
            virtual_bytes: Some(1_048_576),
            open_fds: Some(7),
            max_fds: Some(1024),
            start_time_seconds: Some(1_700_000_123.45),
        }
    );
    assert_eq!(process::parse("", "", "", "", None), process::Figures::default());
}
