//! Prometheus exposition shared by `wire-stub`'s and `decision`'s
//! `/metrics`: the format picked from the scraper's `Accept` header
//! (OpenMetrics 1.0 unless the classic `text/plain; version=0.0.4` is
//! preferred), both encoded by `prometheus-client`, lines put in a stable
//! order (a family's series sorted by their labels, so a scrape never
//! reorders them), plus the `process_*` metrics every exporter has and a
//! `<prefix>_build_info`.

mod order;
pub mod process;

use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The two text formats a Prometheus scraper reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text (`# EOF` last, counters typed by family name).
    OpenMetrics,
    /// The classic Prometheus text format, version 0.0.4.
    Classic,
}

pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

impl Format {
    /// The format an `Accept` header asks for: the classic text when
    /// `text/plain` has a higher quality than OpenMetrics (as with
    /// `Accept: text/plain; version=0.0.4`), OpenMetrics otherwise (no
    /// header, `*/*`, a tie, Prometheus's own default header).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::OpenMetrics;
        };
        let (mut openmetrics, mut plain) = (None::<f64>, None::<f64>);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .and_then(|(_, v)| v.trim().parse::<f64>().ok())
                .unwrap_or(1.0);
            let slot = match media.as_str() {
                "application/openmetrics-text" => &mut openmetrics,
                "text/plain" => &mut plain,
                _ => continue,
            };
            *slot = Some(slot.map_or(q, |old| old.max(q)));
        }
        match (openmetrics, plain) {
            (None, Some(p)) if p > 0.0 => Format::Classic,
            (Some(o), Some(p)) if p > o => Format::Classic,
            _ => Format::OpenMetrics,
        }
    }

    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Format::Classic => prometheus_text::CONTENT_TYPE,
        }
    }
}

/// The registries' metrics, one after the other, in `format`, each family's
/// series in a stable order. Writing to a `String` cannot fail; a collector
/// that fails leaves its family out.
pub fn render(format: Format, registries: &[&Registry]) -> String {
    let mut out = String::new();
    for registry in registries {
        let mut one = String::new();
        let encoded = match format {
            Format::OpenMetrics => text::encode_registry(&mut one, registry),
            Format::Classic => prometheus_text::encode(&mut one, registry),
        };
        if encoded.is_ok() {
            out.push_str(&one);
        }
    }
    let mut out = order::stable(&out);
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// A registry holding what every endpoint adds: the `process_*` metrics
/// (read from /proc at each scrape on Linux; none elsewhere) and
/// `<prefix>_build_info{version=...} 1`.
pub fn standard(prefix: &str, version: &'static str) -> Registry {
    let mut registry = Registry::default();
    // A gauge, as the Go client's `go_build_info`: the OpenMetrics `info`
    // type is unknown to the classic parser (and so to `promtool`).
    let build: Family<Vec<(&'static str, &'static str)>, Gauge> = Family::default();
    build.get_or_create(&vec![("version", version)]).set(1);
    registry.register(
        format!("{prefix}_build_info"),
        "The build: its version (always 1)",
        build,
    );
    process::register(&mut registry);
    registry
}

#[cfg(test)]
mod tests;
