//! The YAML config file, in the original plan's shape: `wire` (URL,
//! transport, reconnect policy, idle deadline), then the engine's
//! `strategy`, `risk` and `broker`. Unknown keys are refused; `validate`
//! names the key at fault.

use decision::{Config, ConfigError};
use serde::Deserialize;
use transport::Preference;

/// The config file, in the original plan's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub wire: WireConfig,
    pub strategy: decision::StrategyConfig,
    pub risk: decision::RiskConfig,
    pub broker: decision::BrokerConfig,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WireConfig {
    /// false: ignore `url` and use the embedded wire.
    pub enabled: bool,
    /// `http`, `https`, `ws` or `wss`: the scheme gives the security, and
    /// with `auto` a `ws`/`wss` URL means WebSocket first. One URL; for
    /// several use `urls` (not both).
    pub url: Option<String>,
    /// Several nodes serving the same stream (`urls: [A, B]`): the client
    /// fails over between them in turn, resuming with the same cursor; the
    /// first URL's scheme picks the transport under `auto`. Not with `url`.
    pub urls: Option<Vec<String>>,
    /// auto (the default: SSE, falling back to polling), or strictly sse,
    /// ws or poll.
    pub transport: Preference,
    /// A PEM file of CA certificates to trust instead of the platform's
    /// roots, for a wire on a private CA.
    pub ca_cert: Option<std::path::PathBuf>,
    pub reconnect: ReconnectConfig,
    pub health_check_interval_s: u64,
    /// Bearer token for a wire that needs one (`--token` and
    /// `TICKWIRE_TOKEN` win over it).
    pub token: Option<String>,
    /// When the wire's epoch changes (its log recreated): carry the book
    /// over and read the new epoch from its oldest event, recording the
    /// change in the audit log (`--accept-new-epoch` sets it too). false:
    /// stop with exit code 3.
    pub accept_new_epoch: bool,
}

impl Default for WireConfig {
    fn default() -> Self {
        WireConfig {
            enabled: true,
            url: None,
            urls: None,
            transport: Preference::Auto,
            ca_cert: None,
            reconnect: ReconnectConfig::default(),
            health_check_interval_s: 30,
            token: None,
            accept_new_epoch: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconnectConfig {
    pub initial_delay_ms: u64,
    pub max_delay_ms: u64,
    pub max_attempts: i64,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        ReconnectConfig {
            initial_delay_ms: 1_000,
            max_delay_ms: 16_000,
            max_attempts: -1,
        }
    }
}

fn fail(key: &str, reason: &str) -> Result<(), ConfigError> {
    Err(ConfigError {
        key: key.to_owned(),
        reason: reason.to_owned(),
    })
}

impl WireConfig {
    /// The file's URLs: `url` as one, or `urls` (empty: none given).
    /// Both given is an error naming both keys.
    pub fn all_urls(&self) -> Result<Vec<String>, ConfigError> {
        match (&self.url, &self.urls) {
            (Some(_), Some(_)) => Err(ConfigError {
                key: "wire.urls".to_owned(),
                reason: "wire.url is given too: use wire.url for one URL or wire.urls for several, not both"
                    .to_owned(),
            }),
            (Some(url), None) => Ok(vec![url.clone()]),
            (None, Some(urls)) => Ok(urls.clone()),
            (None, None) => Ok(Vec::new()),
        }
    }
}

impl FileConfig {
    /// The engine's part.
    pub fn engine(&self) -> Config {
        Config {
            strategy: self.strategy.clone(),
            risk: self.risk.clone(),
            broker: self.broker.clone(),
        }
    }

    /// Checks every section; the first error names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.wire.all_urls()?;
        let r = &self.wire.reconnect;
        if r.initial_delay_ms == 0 {
            fail("wire.reconnect.initial_delay_ms", "must be > 0")?;
        }
        if r.max_delay_ms < r.initial_delay_ms {
            fail(
                "wire.reconnect.max_delay_ms",
                "must be >= wire.reconnect.initial_delay_ms",
            )?;
        }
        if r.max_attempts < -1 {
            fail("wire.reconnect.max_attempts", "must be -1 (forever) or >= 0")?;
        }
        // Past a day a dead connection is never found in practice, and a
        // deadline at the end of u64 would overflow the clock.
        if !(1..=86_400).contains(&self.wire.health_check_interval_s) {
            fail("wire.health_check_interval_s", "must be 1 to 86400 (a day)")?;
        }
        if r.max_delay_ms > 3_600_000 {
            fail("wire.reconnect.max_delay_ms", "must be at most 3600000 (an hour)")?;
        }
        self.engine().validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str, expect: Option<&str>) {
        let file: FileConfig = serde_json::from_str(yaml).unwrap();
        assert_eq!(file.validate().err().map(|e| e.to_string()).as_deref(), expect);
    }

    #[test]
    fn errors_name_the_key() {
        check("{}", None);
        check(
            r#"{"wire": {"reconnect": {"initial_delay_ms": 0}}}"#,
            Some("wire.reconnect.initial_delay_ms: must be > 0"),
        );
        check(
            r#"{"wire": {"reconnect": {"initial_delay_ms": 500, "max_delay_ms": 100}}}"#,
            Some("wire.reconnect.max_delay_ms: must be >= wire.reconnect.initial_delay_ms"),
        );
        check(
            r#"{"wire": {"reconnect": {"max_attempts": -2}}}"#,
            Some("wire.reconnect.max_attempts: must be -1 (forever) or >= 0"),
        );
        check(
            r#"{"wire": {"health_check_interval_s": 0}}"#,
            Some("wire.health_check_interval_s: must be 1 to 86400 (a day)"),
        );
        check(
            r#"{"wire": {"health_check_interval_s": 18446744073709551615}}"#,
            Some("wire.health_check_interval_s: must be 1 to 86400 (a day)"),
        );
        check(r#"{"wire": {"health_check_interval_s": 86400}}"#, None);
        check(
            r#"{"wire": {"reconnect": {"max_delay_ms": 18446744073709551615}}}"#,
            Some("wire.reconnect.max_delay_ms: must be at most 3600000 (an hour)"),
        );
        check(
            r#"{"wire": {"url": "http://a", "urls": ["http://b"]}}"#,
            Some(
                "wire.urls: wire.url is given too: use wire.url for one URL or wire.urls for several, not both",
            ),
        );
        check(
            r#"{"risk": {"max_position": 0}}"#,
            Some("risk.max_position: must be > 0"),
        );
    }
}
