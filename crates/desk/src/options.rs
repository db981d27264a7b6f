//! The `decision` binary's options, resolved by one pure function: the
//! flags, the environment (as a map) and the config file in, the options
//! out. Flags win over the environment, which wins over the file; an empty
//! variable counts as unset; a bad value is an error naming its source.
//! No process, no clock: tested data-driven.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use transport::{Preference, Start};

use crate::{Error, FileConfig};

/// The flags, as parsed (no environment in them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flags {
    pub config: Option<PathBuf>,
    /// `--wire-url`, as given: one URL, or several separated by commas.
    pub wire_url: Option<String>,
    /// `--streaming`: a streaming transport (auto, unless `--transport`
    /// names sse or ws; contradicted by `--transport poll`).
    pub streaming: bool,
    pub transport: Option<Preference>,
    pub audit_log: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub metrics_addr: Option<SocketAddr>,
    pub token: Option<String>,
    pub from: Option<Start>,
    /// `--ca-cert`: a private CA for https/wss.
    pub ca_cert: Option<PathBuf>,
    /// `--accept-new-epoch`: go on when the wire's epoch changes.
    pub accept_new_epoch: bool,
}

/// The environment's `TICKWIRE_*` variables.
pub type Env = BTreeMap<String, String>;

/// What a run uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The wire's URLs, in order (`--wire-url A,B`, `TICKWIRE_WIRE_URL=A,B`,
    /// `wire.url` or `wire.urls`); empty: the embedded wire.
    pub wire_urls: Vec<String>,
    pub transport: Preference,
    pub audit_log: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub metrics_addr: SocketAddr,
    pub token: Option<String>,
    /// None: after the checkpoint if there is one, else from the first.
    pub from: Option<Start>,
    /// A PEM file of CA certificates to trust instead of the platform's.
    pub ca_cert: Option<PathBuf>,
    /// Go on in a new epoch of the wire (the flag, `TICKWIRE_ACCEPT_NEW_EPOCH`
    /// or `wire.accept_new_epoch`: any of them set to true).
    pub accept_new_epoch: bool,
}

pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

fn var<'a>(env: &'a Env, name: &str) -> Option<&'a str> {
    env.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

fn parse<T: std::str::FromStr>(env: &Env, name: &str) -> Result<Option<T>, Error>
where
    T::Err: std::fmt::Display,
{
    var(env, name)
        .map(|v| {
            v.parse().map_err(|e: T::Err| Error::Option {
                name: name.to_owned(),
                reason: e.to_string(),
            })
        })
        .transpose()
}

/// The config file to read: `--config`, else `TICKWIRE_CONFIG`.
pub fn config_path(flags: &Flags, env: &Env) -> Option<PathBuf> {
    flags
        .config
        .clone()
        .or_else(|| var(env, "TICKWIRE_CONFIG").map(PathBuf::from))
}

/// `A,B`: the URLs, trimmed, empty pieces dropped.
pub fn split_urls(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Flags over the environment over the file.
pub fn resolve(flags: &Flags, env: &Env, file: &FileConfig) -> Result<Resolved, Error> {
    let transport = match (flags.streaming, flags.transport) {
        (true, Some(Preference::Poll)) => {
            return Err(Error::Option {
                name: "--streaming".into(),
                reason: "asks for a streaming transport, and --transport poll for polling: drop one".into(),
            });
        }
        (true, None) => Some(Preference::Auto),
        (_, t) => t,
    };
    let transport = match transport {
        Some(t) => t,
        None => parse(env, "TICKWIRE_TRANSPORT")?.unwrap_or(file.wire.transport),
    };
    // Both `wire.url` and `wire.urls` is an error even when overridden.
    let file_urls = file.wire.all_urls()?;
    let wire_urls = match (flags.wire_url.as_deref(), var(env, "TICKWIRE_WIRE_URL")) {
        (Some(text), _) if split_urls(text).is_empty() => {
            return Err(Error::Option {
                name: "--wire-url".into(),
                reason: "names no URL: give one, or several separated by commas".into(),
            });
        }
        (Some(text), _) | (None, Some(text)) => split_urls(text),
        (None, None) if file.wire.enabled => file_urls,
        (None, None) => Vec::new(),
    };
    let metrics_addr = match flags.metrics_addr {
        Some(a) => a,
        None => match parse(env, "TICKWIRE_METRICS_ADDR")? {
            Some(a) => a,
            None => DEFAULT_METRICS_ADDR
                .parse()
                .map_err(|e: std::net::AddrParseError| Error::Option {
                    name: "metrics address".into(),
                    reason: e.to_string(),
                })?,
        },
    };
    let path =
        |flag: &Option<PathBuf>, name: &str| flag.clone().or_else(|| var(env, name).map(PathBuf::from));
    Ok(Resolved {
        wire_urls,
        transport,
        audit_log: path(&flags.audit_log, "TICKWIRE_AUDIT_LOG"),
        state_dir: path(&flags.state_dir, "TICKWIRE_STATE_DIR"),
        metrics_addr,
        token: flags
            .token
            .clone()
            .or_else(|| var(env, "TICKWIRE_TOKEN").map(str::to_owned))
            .or_else(|| file.wire.token.clone()),
        from: flags.from,
        ca_cert: path(&flags.ca_cert, "TICKWIRE_CA_CERT").or_else(|| file.wire.ca_cert.clone()),
        accept_new_epoch: flags.accept_new_epoch
            || parse::<bool>(env, "TICKWIRE_ACCEPT_NEW_EPOCH")?.unwrap_or(file.wire.accept_new_epoch),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(yaml: &str) -> FileConfig {
        serde_json::from_str(yaml).unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// One precedence rule: what the flag, the variable and the file give,
    /// alone and together, read back through `get`.
    fn check<T: PartialEq + std::fmt::Debug>(
        flag: impl Fn(&mut Flags),
        var: (&str, &str),
        yaml: &str,
        get: impl Fn(&Resolved) -> T,
        expect: [T; 5],
    ) {
        let [none, from_file, from_env, env_over_file, flag_over_all] = expect;
        let r = |f: &Flags, e: &Env, y: &str| get(&resolve(f, e, &file(y)).unwrap());
        let mut flags = Flags::default();
        assert_eq!(r(&flags, &Env::new(), "{}"), none, "default");
        assert_eq!(r(&flags, &Env::new(), yaml), from_file, "file");
        assert_eq!(r(&flags, &env(&[var]), "{}"), from_env, "environment");
        assert_eq!(
            r(&flags, &env(&[var]), yaml),
            env_over_file,
            "environment over file"
        );
        flag(&mut flags);
        assert_eq!(r(&flags, &env(&[var]), yaml), flag_over_all, "flag over all");
        // An empty variable is unset.
        assert_eq!(
            r(&Flags::default(), &env(&[(var.0, "")]), yaml),
            from_file,
            "empty variable"
        );
    }

    #[test]
    fn the_wire_url_flag_wins_over_the_environment_over_the_file() {
        let s = |v: &str| split_urls(v);
        check(
            |f| f.wire_url = Some("http://flag".into()),
            ("TICKWIRE_WIRE_URL", "http://env"),
            r#"{"wire": {"url": "http://file"}}"#,
            |r| r.wire_urls.clone(),
            [
                Vec::new(),
                s("http://file"),
                s("http://env"),
                s("http://env"),
                s("http://flag"),
            ],
        );
        // wire.enabled: false in the file means the embedded wire, unless
        // the environment or a flag names a URL.
        let off = file(r#"{"wire": {"enabled": false, "url": "http://file"}}"#);
        assert_eq!(
            resolve(&Flags::default(), &Env::new(), &off).unwrap().wire_urls,
            Vec::<String>::new()
        );
    }

    #[test]
    fn several_wire_urls_come_comma_separated_or_as_wire_urls() {
        let v = |urls: &[&str]| urls.iter().map(|u| u.to_string()).collect::<Vec<_>>();
        check(
            |f| f.wire_url = Some("http://f1, http://f2".into()),
            ("TICKWIRE_WIRE_URL", "http://e1,http://e2,"),
            r#"{"wire": {"urls": ["http://y1", "http://y2"]}}"#,
            |r| r.wire_urls.clone(),
            [
                Vec::new(),
                v(&["http://y1", "http://y2"]),
                v(&["http://e1", "http://e2"]),
                v(&["http://e1", "http://e2"]),
                v(&["http://f1", "http://f2"]),
            ],
        );
        // wire.url is one URL, as before.
        let one = resolve(
            &Flags::default(),
            &Env::new(),
            &file(r#"{"wire": {"url": "http://a"}}"#),
        );
        assert_eq!(one.unwrap().wire_urls, v(&["http://a"]));
        // Both keys: an error naming both, whatever overrides them.
        let both = file(r#"{"wire": {"url": "http://a", "urls": ["http://b"]}}"#);
        let flags = Flags {
            wire_url: Some("http://flag".into()),
            ..Flags::default()
        };
        for flags in [Flags::default(), flags] {
            let err = resolve(&flags, &Env::new(), &both).unwrap_err().to_string();
            assert!(err.contains("wire.url ") && err.contains("wire.urls"), "{err}");
        }
        let empty = Flags {
            wire_url: Some(" , ".into()),
            ..Flags::default()
        };
        let err = resolve(&empty, &Env::new(), &file("{}")).unwrap_err().to_string();
        assert!(err.starts_with("--wire-url: "), "{err}");
    }

    #[test]
    fn the_transport_flag_wins_over_the_environment_over_the_file() {
        use Preference::*;
        check(
            |f| f.transport = Some(Ws),
            ("TICKWIRE_TRANSPORT", "poll"),
            r#"{"wire": {"transport": "sse"}}"#,
            |r| r.transport,
            [Auto, Sse, Poll, Poll, Ws],
        );
        check(
            |f| f.streaming = true,
            ("TICKWIRE_TRANSPORT", "http"),
            r#"{"wire": {"transport": "ws"}}"#,
            |r| r.transport,
            [Auto, Ws, Poll, Poll, Auto],
        );
    }

    #[test]
    fn streaming_is_auto_unless_transport_names_a_streaming_one_and_refuses_poll() {
        let with = |transport| {
            let flags = Flags {
                streaming: true,
                transport,
                ..Flags::default()
            };
            resolve(&flags, &env(&[("TICKWIRE_TRANSPORT", "poll")]), &file("{}"))
                .map(|r| r.transport)
                .map_err(|e| e.to_string())
        };
        assert_eq!(with(None), Ok(Preference::Auto));
        assert_eq!(with(Some(Preference::Sse)), Ok(Preference::Sse));
        assert_eq!(with(Some(Preference::Ws)), Ok(Preference::Ws));
        assert_eq!(
            with(Some(Preference::Poll)),
            Err(
                "--streaming: asks for a streaming transport, and --transport poll for polling: drop one"
                    .into()
            )
        );
    }

    #[test]
    fn the_token_flag_wins_over_the_environment_over_the_file() {
        let s = |v: &str| Some(v.to_owned());
        check(
            |f| f.token = s("flag"),
            ("TICKWIRE_TOKEN", "env"),
            r#"{"wire": {"token": "file"}}"#,
            |r| r.token.clone(),
            [None, s("file"), s("env"), s("env"), s("flag")],
        );
    }

    #[test]
    fn paths_and_the_metrics_address_flag_wins_over_the_environment() {
        let p = |v: &str| Some(PathBuf::from(v));
        check(
            |f| f.audit_log = p("flag.jsonl"),
            ("TICKWIRE_AUDIT_LOG", "env.jsonl"),
            "{}",
            |r| r.audit_log.clone(),
            [None, None, p("env.jsonl"), p("env.jsonl"), p("flag.jsonl")],
        );
        check(
            |f| f.state_dir = p("flag"),
            ("TICKWIRE_STATE_DIR", "env"),
            "{}",
            |r| r.state_dir.clone(),
            [None, None, p("env"), p("env"), p("flag")],
        );
        let a = |v: &str| v.parse::<SocketAddr>().unwrap();
        check(
            |f| f.metrics_addr = Some(a("127.0.0.1:3")),
            ("TICKWIRE_METRICS_ADDR", "127.0.0.1:2"),
            "{}",
            |r| r.metrics_addr,
            [
                a("127.0.0.1:9464"),
                a("127.0.0.1:9464"),
                a("127.0.0.1:2"),
                a("127.0.0.1:2"),
                a("127.0.0.1:3"),
            ],
        );
        let flags = Flags {
            config: Some("flag.yaml".into()),
            ..Flags::default()
        };
        let e = env(&[("TICKWIRE_CONFIG", "env.yaml")]);
        assert_eq!(config_path(&flags, &e), p("flag.yaml"));
        assert_eq!(config_path(&Flags::default(), &e), p("env.yaml"));
        assert_eq!(config_path(&Flags::default(), &Env::new()), None);
    }

    #[test]
    fn accept_new_epoch_comes_from_the_flag_the_environment_or_the_file() {
        check(
            |f| f.accept_new_epoch = true,
            ("TICKWIRE_ACCEPT_NEW_EPOCH", "false"),
            r#"{"wire": {"accept_new_epoch": true}}"#,
            |r| r.accept_new_epoch,
            [false, true, false, false, true],
        );
        let err = resolve(
            &Flags::default(),
            &env(&[("TICKWIRE_ACCEPT_NEW_EPOCH", "yes")]),
            &file("{}"),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("TICKWIRE_ACCEPT_NEW_EPOCH: "),
            "{err}"
        );
    }

    #[test]
    fn a_bad_variable_is_an_error_naming_it_unless_a_flag_overrides_it() {
        let err = |pairs: &[(&str, &str)], flags: &Flags| {
            resolve(flags, &env(pairs), &file("{}"))
                .err()
                .map(|e| e.to_string())
        };
        assert_eq!(
            err(&[("TICKWIRE_TRANSPORT", "carrier-pigeon")], &Flags::default()),
            Some("TICKWIRE_TRANSPORT: transport must be auto, sse, ws or poll (or http), not \"carrier-pigeon\"".into())
        );
        let bad_addr = err(&[("TICKWIRE_METRICS_ADDR", "nowhere")], &Flags::default());
        assert!(bad_addr.is_some_and(|e| e.starts_with("TICKWIRE_METRICS_ADDR: ")));
        let flags = Flags {
            transport: Some(Preference::Sse),
            ..Flags::default()
        };
        assert_eq!(err(&[("TICKWIRE_TRANSPORT", "carrier-pigeon")], &flags), None);
    }
}
