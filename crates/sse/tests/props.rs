//! Properties of the codec over generated input: chunking never changes the
//! result, encoding round-trips, and hostile bytes neither panic the decoder
//! nor grow it past its limits.

use proptest::prelude::*;
use sse::{Decoder, Event, Limits, OwnedFrame};

/// Bytes drawn mostly from what matters to the grammar, plus anything.
fn stream_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"data".to_vec()),
        Just(b"id".to_vec()),
        Just(b"event".to_vec()),
        Just(b"retry".to_vec()),
        Just(b": ".to_vec()),
        Just(b":".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"\0".to_vec()),
        Just("é".as_bytes().to_vec()),
        Just(b"123".to_vec()),
        prop::collection::vec(any::<u8>(), 1..4),
    ];
    prop::collection::vec(token, 0..60).prop_map(|t| t.concat())
}

fn decode(chunks: &[&[u8]], limits: Limits) -> (Vec<Result<OwnedFrame, String>>, String) {
    let mut d = Decoder::new(limits);
    let mut frames = Vec::new();
    for chunk in chunks {
        d.push(chunk);
        while let Some(f) = d.next_frame() {
            frames.push(f.map(|f| f.to_owned_frame()).map_err(|e| e.to_string()));
        }
    }
    d.finish();
    (frames, d.last_event_id().to_owned())
}

fn split<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut at = 0;
    for p in points {
        out.push(&input[at..p]);
        at = p;
    }
    out.push(&input[at..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_chunking_decodes_like_the_whole(
        input in stream_bytes(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        small in any::<bool>(),
    ) {
        let limits = if small { Limits { max_line: 12, max_event: 20 } } else { Limits::default() };
        let whole = decode(&[&input], limits);
        let chunked = decode(&split(&input, &cuts), limits);
        prop_assert_eq!(&whole, &chunked);
        let bytewise: Vec<&[u8]> = input.chunks(1).collect();
        prop_assert_eq!(&whole, &decode(&bytewise, limits));
    }

    #[test]
    fn encode_then_decode_gives_the_event_back(
        event_type in proptest::option::of("[^\r\n]{0,12}"),
        id in proptest::option::of("[^\r\n\0]{0,12}"),
        data in "(?s).{0,40}",
    ) {
        let mut bytes = Vec::new();
        sse::encode::event(&mut bytes, event_type.as_deref(), id.as_deref(), &data).unwrap();
        let (frames, last_id) = decode(&[&bytes], Limits::default());
        let expected = Event {
            event: match event_type.as_deref() {
                None | Some("") => "message".to_owned(),
                Some(t) => t.to_owned(),
            },
            data: data.replace("\r\n", "\n").replace('\r', "\n"),
            id: id.clone().unwrap_or_default(),
        };
        prop_assert_eq!(frames, vec![Ok(OwnedFrame::Event(expected))]);
        prop_assert_eq!(last_id, id.unwrap_or_default());
    }

    #[test]
    fn comments_round_trip_line_by_line(text in "(?s).{0,40}") {
        let mut bytes = Vec::new();
        sse::encode::comment(&mut bytes, &text);
        let (frames, _) = decode(&[&bytes], Limits::default());
        let lines: Vec<_> = text
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .split('\n')
            .map(|l| Ok(OwnedFrame::Comment(l.to_owned())))
            .collect();
        prop_assert_eq!(frames, lines);
    }

    #[test]
    fn hostile_bytes_never_panic_nor_exceed_the_limits(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..40),
    ) {
        let limits = Limits { max_line: 64, max_event: 128 };
        let mut d = Decoder::new(limits);
        for chunk in &chunks {
            d.push(chunk);
            while let Some(f) = d.next_frame() {
                if let Ok(sse::Frame::Event(e)) = f {
                    prop_assert!(e.data.len() < limits.max_event);
                    prop_assert!(e.id.len() <= limits.max_line);
                }
            }
            prop_assert!(d.buffered() <= limits.max_line + chunk.len());
        }
        d.finish();
    }
}

#[test]
fn the_encoder_refuses_field_injection() {
    let mut out = Vec::new();
    assert_eq!(
        sse::encode::event(&mut out, Some("a\nb"), None, "x"),
        Err(sse::EncodeError::EventType)
    );
    assert_eq!(
        sse::encode::event(&mut out, Some("a\rb"), None, "x"),
        Err(sse::EncodeError::EventType)
    );
    for bad in ["1\n2", "1\r2", "1\x002"] {
        assert_eq!(
            sse::encode::event(&mut out, None, Some(bad), "x"),
            Err(sse::EncodeError::Id)
        );
    }
    assert!(out.is_empty(), "nothing is written on error");
}

#[test]
fn the_encoder_splits_data_on_every_line_end() {
    let mut out = Vec::new();
    sse::encode::event(&mut out, Some("tick"), Some("17"), "a\nb\r\nc\rd").unwrap();
    assert_eq!(
        out,
        b"event: tick\nid: 17\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
    );
    out.clear();
    sse::encode::retry(&mut out, 2500);
    sse::encode::comment(&mut out, "hb 42");
    assert_eq!(out, b"retry: 2500\n: hb 42\n");
}
