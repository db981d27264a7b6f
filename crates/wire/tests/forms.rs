//! The wire forms: every event and control message survives its SSE, polling
//! and WebSocket form; bad input is refused with the field named.

use proptest::prelude::*;
use wire::{Control, Event, Message, News, Payload, Tick, poll::Page};

fn tick(id: u64) -> Event {
    Event {
        id,
        pub_us: Some(1_772_461_800_000_123),
        prev: None,
        payload: Payload::Tick(Tick {
            symbol: "AAPL".into(),
            last: 191.25,
            bid: Some(191.24),
            ask: None,
            size: Some(300),
            ts_utc: "2026-03-02T14:30:00.5Z".parse().unwrap(),
        }),
    }
}

fn news(id: u64) -> Event {
    Event {
        id,
        pub_us: None,
        prev: None,
        payload: Payload::News(News {
            symbol: "NVDA".into(),
            score: -0.75,
            provider: "newsdesk-a".into(),
            headline: Some("NVDA \"cuts\" guidance\nsecond line".into()),
            ts_utc: "2026-03-02T15:45:00Z".parse().unwrap(),
        }),
    }
}

fn via_sse(bytes: &[u8]) -> Vec<Message> {
    let mut d = sse::Decoder::default();
    d.push(bytes);
    let mut out = Vec::new();
    while let Some(frame) = d.next_frame() {
        if let sse::Frame::Event(e) = frame.unwrap() {
            out.push(wire::sse::decode(&e).unwrap());
        }
    }
    out
}

#[test]
fn the_sse_form_is_event_kind_id_and_json() {
    let mut out = Vec::new();
    wire::sse::encode_event(&mut out, &tick(17));
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "event: tick\nid: 17\ndata: {\"bid\":191.24,\"id\":17,\"kind\":\"tick\",\"last\":191.25,\
         \"pub_us\":1772461800000123,\"size\":300,\"symbol\":\"AAPL\",\"ts_utc\":\"2026-03-02T14:30:00.5Z\"}\n\n"
    );
}

#[test]
fn events_and_controls_survive_every_form() {
    let controls = [
        Control::heartbeat(9),
        Control::caught_up(9),
        Control::Overflow { last_id: 4 },
        Control::CursorExpired {
            cursor: 1,
            oldest: 5,
            head: 9,
        },
    ];
    let mut messages = vec![Message::Event(tick(1)), Message::Event(news(2))];
    messages.extend(controls.map(Message::Control));

    let mut bytes = Vec::new();
    for m in &messages {
        match m {
            Message::Event(e) => wire::sse::encode_event(&mut bytes, e),
            Message::Control(c) => wire::sse::encode_control(&mut bytes, c),
        }
    }
    assert_eq!(via_sse(&bytes), messages);

    for m in &messages {
        assert_eq!(&wire::ws::decode(&wire::ws::encode(m)).unwrap(), m);
    }

    let page = Page {
        events: vec![tick(1), news(2)],
        next_cursor: 2,
        head: 9,
        epoch: Some("0000000000ab".parse().unwrap()),
    };
    let json = serde_json::to_string(&page).unwrap();
    assert_eq!(serde_json::from_str::<Page>(&json).unwrap(), page);
}

#[test]
fn control_messages_carry_no_sse_id() {
    let mut bytes = Vec::new();
    wire::sse::encode_event(&mut bytes, &tick(3));
    wire::sse::encode_control(&mut bytes, &Control::heartbeat(3));
    let mut d = sse::Decoder::default();
    d.push(&bytes);
    while d.next_frame().is_some() {}
    assert_eq!(d.last_event_id(), "3");
    assert!(
        String::from_utf8(bytes)
            .unwrap()
            .ends_with("event: heartbeat\ndata: {\"type\":\"heartbeat\",\"head\":3}\n\n")
    );
}

#[test]
fn an_unknown_kind_is_carried_not_refused() {
    let json = r#"{"id":5,"kind":"halt","symbol":"TSLA","reason":"volatility pause"}"#;
    let event = Event::from_json(json).unwrap();
    assert_eq!(event.payload.kind(), "halt");
    let Payload::Other { fields, .. } = &event.payload else {
        panic!("expected Other")
    };
    assert_eq!(fields["reason"], "volatility pause");
    // And it goes on through every form unchanged.
    let mut bytes = Vec::new();
    wire::sse::encode_event(&mut bytes, &event);
    assert_eq!(via_sse(&bytes), vec![Message::Event(event.clone())]);
    let m = Message::Event(event);
    assert_eq!(wire::ws::decode(&wire::ws::encode(&m)).unwrap(), m);
}

#[test]
fn a_mismatched_sse_id_or_kind_is_refused() {
    let data = tick(17).to_json();
    let frame = sse::EventRef {
        event: "tick",
        data: &data,
        id: "18",
    };
    assert_eq!(wire::sse::decode(&frame).unwrap_err().field, "id");
    let frame = sse::EventRef {
        event: "news",
        data: &data,
        id: "17",
    };
    assert_eq!(wire::sse::decode(&frame).unwrap_err().field, "kind");
}

#[test]
fn bad_values_name_their_field() {
    let cases = [
        (
            r#"{"id":1,"kind":"tick","symbol":"A","ts_utc":"2026-03-02T14:30:00Z"}"#,
            "last",
            "missing",
        ),
        (
            r#"{"id":1,"kind":"tick","symbol":"A","last":"1.0","ts_utc":"2026-03-02T14:30:00Z"}"#,
            "last",
            "invalid type",
        ),
        (
            r#"{"id":1,"kind":"tick","symbol":"A","last":-1.0,"ts_utc":"2026-03-02T14:30:00Z"}"#,
            "last",
            "above 0",
        ),
        (
            r#"{"id":1,"kind":"tick","symbol":"A","last":1.0,"bid":0,"ts_utc":"2026-03-02T14:30:00Z"}"#,
            "bid",
            "above 0",
        ),
        (
            r#"{"id":1,"kind":"tick","symbol":"A","last":1.0,"ts_utc":"yesterday"}"#,
            "ts_utc",
            "",
        ),
        (
            r#"{"id":1,"kind":"tick","symbol":"","last":1.0,"ts_utc":"2026-03-02T14:30:00Z"}"#,
            "symbol",
            "must be",
        ),
        (
            r#"{"id":1,"kind":"news","symbol":"A","score":1.5,"provider":"p","ts_utc":"2026-03-02T14:30:00Z"}"#,
            "score",
            "[-1, 1]",
        ),
        (
            r#"{"id":1,"kind":"news","symbol":"A","score":0.5,"provider":"","ts_utc":"2026-03-02T14:30:00Z"}"#,
            "provider",
            "empty",
        ),
        (r#"{"id":0,"kind":"news"}"#, "id", "at least 1"),
        (r#"{"id":-3,"kind":"news"}"#, "id", "non-negative"),
        (r#"{"kind":"news"}"#, "id", "missing"),
        (r#"{"id":1}"#, "kind", "missing"),
        (r#"{"id":1,"kind":7}"#, "kind", "string"),
        (r#"{"id":1,"kind":"bad kind"}"#, "kind", "visible ASCII"),
        (r#"[1,2]"#, "?", "not a JSON object"),
    ];
    for (json, field, reason) in cases {
        let err = Event::from_json(json).unwrap_err();
        assert_eq!(err.field, field, "{json}: {err}");
        assert!(err.reason.contains(reason), "{json}: {err}");
    }
}

#[test]
fn fixture_errors_name_file_line_and_field() {
    let text = concat!(
        r#"{"kind":"tick","symbol":"A","last":1.0,"ts_utc":"2026-03-02T14:30:00Z"}"#,
        "\n\n",
        r#"{"kind":"tick","symbol":"A","last":true,"ts_utc":"2026-03-02T14:30:00Z"}"#,
        "\n"
    );
    let err = wire::fixture::parse("day.jsonl", text).unwrap_err();
    assert_eq!(
        (err.file.as_str(), err.line, err.error.field.as_str()),
        ("day.jsonl", 3, "last")
    );
    assert!(
        err.to_string()
            .starts_with("day.jsonl:3: field `last`: invalid type"),
        "{err}"
    );

    let err = wire::fixture::load(std::path::Path::new("no/such/file.jsonl")).unwrap_err();
    assert_eq!(err.line, 0);
    assert!(err.to_string().starts_with("no/such/file.jsonl: "), "{err}");
}

#[test]
fn the_default_fixture_is_a_trading_day() {
    let payloads = wire::fixture::parse(wire::fixture::DEFAULT_NAME, wire::fixture::DEFAULT).unwrap();
    let ticks: Vec<&Tick> = payloads
        .iter()
        .filter_map(|p| match p {
            Payload::Tick(t) => Some(t),
            _ => None,
        })
        .collect();
    let news: Vec<&News> = payloads
        .iter()
        .filter_map(|p| match p {
            Payload::News(n) => Some(n),
            _ => None,
        })
        .collect();
    assert!(ticks.len() >= 5000, "{} ticks", ticks.len());
    assert!((200..1000).contains(&news.len()), "{} news", news.len());
    let symbols: std::collections::BTreeSet<_> = ticks.iter().map(|t| t.symbol.as_str()).collect();
    assert!(symbols.len() >= 5, "{symbols:?}");

    let times: Vec<_> = payloads
        .iter()
        .map(|p| match p {
            Payload::Tick(t) => t.ts_utc,
            Payload::News(n) => n.ts_utc,
            Payload::Other { .. } => unreachable!("the default fixture has only ticks and news"),
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "published in time order");
    let span = times[times.len() - 1].duration_since(times[0]);
    assert!(span.as_secs() > 6 * 3600 && span.as_secs() < 7 * 3600, "{span:?}");
    let longest_gap = times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_secs())
        .max()
        .unwrap();
    assert!(
        longest_gap >= 60,
        "a quiet spell longer than the heartbeat: {longest_gap}s"
    );
    // A news burst: at least 10 items on one symbol within 3 minutes.
    let burst = news.windows(10).any(|w| {
        w.iter().all(|n| n.symbol == w[0].symbol) && w[9].ts_utc.duration_since(w[0].ts_utc).as_secs() < 180
    });
    assert!(burst, "a news burst");
    // A price jump: a tick more than 3% away from the previous on its symbol.
    let jump = symbols.iter().any(|s| {
        let p: Vec<f64> = ticks.iter().filter(|t| t.symbol == *s).map(|t| t.last).collect();
        p.windows(2).any(|w| (w[1] / w[0] - 1.0).abs() > 0.03)
    });
    assert!(jump, "a price jump");
}

#[test]
fn the_edge_fixtures_load() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/edge");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            let payloads = wire::fixture::load(&path).unwrap();
            assert!(payloads.len() >= 3, "{}", path.display());
            count += 1;
        }
    }
    assert_eq!(count, 4);
}

fn arb_event() -> impl Strategy<Value = Event> {
    let ts = (1_600_000_000_000i64..1_900_000_000_000)
        .prop_map(|ms| jiff::Timestamp::from_millisecond(ms).unwrap());
    let tick = (
        "[A-Z]{1,5}",
        0.01f64..1e6,
        proptest::option::of(0.01f64..1e6),
        proptest::option::of(any::<u64>()),
        ts.clone(),
    )
        .prop_map(|(symbol, last, bid, size, ts_utc)| {
            Payload::Tick(Tick {
                symbol,
                last,
                bid,
                ask: bid.map(|b| b + 0.01),
                size,
                ts_utc,
            })
        });
    let news = (
        "[A-Z]{1,5}",
        -1.0f64..=1.0,
        "[a-z]{1,8}",
        proptest::option::of("(?s).{0,30}"),
        ts,
    )
        .prop_map(|(symbol, score, provider, headline, ts_utc)| {
            Payload::News(News {
                symbol,
                score,
                provider,
                headline,
                ts_utc,
            })
        });
    (
        1u64..u64::MAX,
        proptest::option::of(any::<u64>()),
        prop_oneof![tick, news],
    )
        .prop_map(|(id, pub_us, payload)| Event {
            id,
            pub_us,
            prev: None,
            payload,
        })
}

proptest! {
    #[test]
    fn any_event_survives_sse_and_ws(event in arb_event()) {
        let mut bytes = Vec::new();
        wire::sse::encode_event(&mut bytes, &event);
        prop_assert_eq!(via_sse(&bytes), vec![Message::Event(event.clone())]);
        let m = Message::Event(event);
        prop_assert_eq!(wire::ws::decode(&wire::ws::encode(&m)).unwrap(), m);
    }
}

#[test]
fn a_control_name_is_refused_as_an_event_kind_everywhere() {
    let names: Vec<&str> = Control::every().map(|c| c.name()).collect();
    assert_eq!(
        names,
        [
            "heartbeat",
            "caught_up",
            "subscribed",
            "overflow",
            "cursor_expired",
            "reset"
        ]
    );
    for name in names {
        let payload = format!(r#"{{"kind":"{name}","head":3}}"#);
        let err = Payload::from_json(&payload).unwrap_err();
        assert_eq!(err.field, "kind", "{name}: {err}");
        assert!(err.reason.contains("control message type"), "{name}: {err}");

        let event = format!(r#"{{"id":4,"kind":"{name}","head":3}}"#);
        assert_eq!(Event::from_json(&event).unwrap_err().field, "kind", "{name}");

        let fixture = format!("{}\n{payload}\n", r#"{"kind":"halt","symbol":"X"}"#);
        let err = wire::fixture::parse("day.jsonl", &fixture).unwrap_err();
        assert_eq!((err.line, err.error.field.as_str()), (2, "kind"), "{name}: {err}");
    }
    // Near misses are ordinary kinds.
    for kind in ["Heartbeat", "heartbeats", "caught-up"] {
        assert!(
            Payload::from_json(&format!(r#"{{"kind":"{kind}"}}"#)).is_ok(),
            "{kind}"
        );
    }
}

#[test]
fn every_control_is_named_once_and_reads_back_as_itself() {
    let all: Vec<Control> = Control::every().collect();
    let mut names: Vec<&str> = all.iter().map(Control::name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len(), "names are distinct");
    for c in all {
        assert!(Control::is_name(c.name()));
        let text = wire::ws::encode_control(&c);
        assert_eq!(wire::ws::decode(&text).unwrap(), Message::Control(c));
        let mut bytes = Vec::new();
        wire::sse::encode_control(&mut bytes, &c);
        assert_eq!(via_sse(&bytes), [Message::Control(c)]);
    }
}

#[test]
fn the_ws_event_form_puts_type_first_and_decoding_takes_any_key_order() {
    let event = tick(17);
    let text = wire::ws::encode_event(&event);
    assert_eq!(
        text,
        "{\"type\":\"event\",\"bid\":191.24,\"id\":17,\"kind\":\"tick\",\"last\":191.25,\
         \"pub_us\":1772461800000123,\"size\":300,\"symbol\":\"AAPL\",\"ts_utc\":\"2026-03-02T14:30:00.5Z\"}"
    );
    assert_eq!(text, wire::ws::encode_event_json(&event.to_json()));
    let sorted = "{\"bid\":191.24,\"id\":17,\"kind\":\"tick\",\"last\":191.25,\"pub_us\":1772461800000123,\
                  \"size\":300,\"symbol\":\"AAPL\",\"ts_utc\":\"2026-03-02T14:30:00.5Z\",\"type\":\"event\"}";
    for form in [text.as_str(), sorted] {
        assert_eq!(
            wire::ws::decode(form).unwrap(),
            Message::Event(event.clone()),
            "{form}"
        );
    }
}

#[test]
fn the_polling_form_is_the_same_from_typed_and_from_encoded_events() {
    for events in [vec![], vec![tick(1)], vec![tick(1), news(2)]] {
        let page = Page {
            next_cursor: events.last().map_or(0, |e| e.id),
            events,
            head: 9,
            epoch: Some(wire::Epoch::from_random(7)),
        };
        let mut body = wire::poll::PageBody::default();
        for e in &page.events {
            body.push(&e.to_json());
        }
        assert_eq!(body.count(), page.events.len());
        let raw = body.finish(page.next_cursor, page.head, page.epoch);
        assert_eq!(raw, page.to_json());
        assert_eq!(raw, serde_json::to_string(&page).unwrap(), "serde agrees");
        assert_eq!(serde_json::from_str::<Page>(&raw).unwrap(), page);
    }
}

/// On WebSocket an event and a control message are told apart by `type`:
/// an event carrying its own `type` could pose as `cursor_expired` and stop
/// every WebSocket client, so `type` is refused in a payload, naming it.
#[test]
fn an_event_cannot_carry_the_websocket_type_key() {
    let posing = r#"{"kind":"note","type":"cursor_expired","cursor":0,"oldest":1,"head":1}"#;
    let err = Payload::from_json(posing).unwrap_err();
    assert_eq!(err.field, "type", "{err}");
    let err = Event::from_json(&format!(r#"{{"id":9,{}"#, &posing[1..])).unwrap_err();
    assert_eq!(err.field, "type", "{err}");
    // Had it got in, this is what a WebSocket client would have read.
    let text = wire::ws::encode_event_json(
        r#"{"id":9,"kind":"note","type":"cursor_expired","cursor":0,"oldest":1,"head":1}"#,
    );
    assert!(matches!(
        wire::ws::decode(&text),
        Ok(Message::Control(Control::CursorExpired { .. }))
    ));
    assert!(Payload::from_json(r#"{"kind":"note","kinds":"ok"}"#).is_ok());
}

#[test]
fn an_sse_id_carries_the_epoch_and_a_reset_points_at_the_new_epochs_start() {
    let epoch: wire::Epoch = "00000000beef".parse().unwrap();
    let event = tick(17);
    let mut bytes = Vec::new();
    wire::sse::encode_parts(&mut bytes, "tick", wire::Cursor::new(epoch, 17), &event.to_json());
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains("\nid: 00000000beef-17\n"), "{text}");
    assert_eq!(via_sse(&bytes), vec![Message::Event(event)]);

    let reset = Control::Reset {
        from: "000000000001".parse().unwrap(),
        epoch,
        oldest: 1,
        head: 9,
    };
    let mut bytes = Vec::new();
    wire::sse::encode_control(&mut bytes, &reset);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains("id: 00000000beef-0\n"), "{text}");
    assert!(text.contains(r#""from":"000000000001""#), "{text}");
    assert_eq!(via_sse(&bytes), vec![Message::Control(reset)]);
    let ws = wire::ws::encode(&Message::Control(reset));
    assert_eq!(wire::ws::decode(&ws).unwrap(), Message::Control(reset));
}
