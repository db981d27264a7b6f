//! One data-driven case per rule of shared/design/sse-rules.md, each checked
//! under every chunking: whole, 1-byte, 2-byte, 3-byte, and seeded random
//! splits with empty chunks between them.

use sse::{Decoder, Frame, Limits};

/// Renders what a decoder hands out, one line per frame, then the last event
/// id left after the end of the stream.
fn render(chunks: &[&[u8]], limits: Limits) -> String {
    let mut d = Decoder::new(limits);
    let mut out = String::new();
    for chunk in chunks {
        d.push(chunk);
        while let Some(frame) = d.next_frame() {
            match frame {
                Ok(Frame::Event(e)) => {
                    out += &format!("event={:?} data={:?} id={:?}\n", e.event, e.data, e.id)
                }
                Ok(Frame::Comment(c)) => out += &format!("comment {c:?}\n"),
                Ok(Frame::Retry(ms)) => out += &format!("retry {ms}\n"),
                Err(e) => out += &format!("error {e}\n"),
            }
        }
    }
    d.finish();
    out += &format!("last_id={:?}", d.last_event_id());
    out
}

/// A tiny deterministic generator for split points (no dependency needed).
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn chunkings(input: &[u8]) -> Vec<(String, Vec<&[u8]>)> {
    let mut plans = vec![("whole".to_owned(), vec![input])];
    for size in 1..=3 {
        plans.push((format!("{size}-byte"), input.chunks(size).collect()));
    }
    for seed in 1..=8u64 {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut chunks: Vec<&[u8]> = vec![b""];
        let mut rest = input;
        while !rest.is_empty() {
            let n = (xorshift(&mut state) % 7) as usize;
            let n = n.min(rest.len());
            chunks.push(&rest[..n]);
            rest = &rest[n..];
        }
        plans.push((format!("random seed {seed}"), chunks));
    }
    plans
}

fn check_with(limits: Limits, input: &[u8], expect: &str) {
    for (name, chunks) in chunkings(input) {
        let got = render(&chunks, limits);
        assert_eq!(got, expect.trim(), "input {input:?} chunked {name}");
    }
}

fn check(input: &[u8], expect: &str) {
    check_with(Limits::default(), input, expect);
}

// ---- Decoding ----

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    check(
        b"data: a\xFFb\xE2\x82c\n\n",
        r#"event="message" data="a�b�c" id=""
last_id="""#,
    );
    check(b"id: \xC3\n\n", r#"last_id="�""#);
}

#[test]
fn charset_is_not_a_decoder_concern_multibyte_is_reassembled() {
    // Chunkings split these multi-byte characters everywhere.
    check(
        "data: é€😀\n\n".as_bytes(),
        r#"event="message" data="é€😀" id=""
last_id="""#,
    );
}

#[test]
fn one_bom_at_the_start_is_dropped() {
    check(
        b"\xEF\xBB\xBFdata: x\n\n",
        r#"event="message" data="x" id=""
last_id="""#,
    );
    // A second BOM is content: it becomes part of the field name "\u{feff}data".
    check(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\n", r#"last_id="""#);
    // A BOM later in the stream is content too.
    check(
        b"data: a\n\n\xEF\xBB\xBFdata: b\n\ndata: \xEF\xBB\xBFc\n\n",
        r#"
event="message" data="a" id=""
event="message" data="\u{feff}c" id=""
last_id=""
"#,
    );
    // Not a BOM after all: the bytes are content.
    check(b"\xEF\xBBdata: x\n\n", r#"last_id="""#);
}

#[test]
fn bom_split_across_empty_and_single_byte_chunks() {
    let chunks: [&[u8]; 7] = [b"", b"\xEF", b"", b"\xBB", b"", b"\xBF", b"data: x\n\n"];
    assert_eq!(
        render(&chunks, Limits::default()),
        "event=\"message\" data=\"x\" id=\"\"\nlast_id=\"\""
    );
}

#[test]
fn crlf_lf_and_cr_all_end_lines() {
    check(
        b"data: a\r\rdata: b\n\ndata: c\r\n\r\ndata: d\r\ndata: e\n\r",
        r#"
event="message" data="a" id=""
event="message" data="b" id=""
event="message" data="c" id=""
event="message" data="d\ne" id=""
last_id=""
"#,
    );
}

#[test]
fn nothing_else_ends_a_line() {
    check(
        "data: a\u{2028}b\u{0085}c\x0Bd\x0Ce\n\n".as_bytes(),
        r#"event="message" data="a\u{2028}b\u{85}c\u{b}d\u{c}e" id=""
last_id="""#,
    );
}

#[test]
fn split_crlf_is_one_line_end() {
    // Under byte chunkings the CR and LF arrive apart; a wrong parser sees
    // two line ends and dispatches "a" alone.
    check(
        b"data: a\r\ndata: b\r\n\r\n",
        r#"event="message" data="a\nb" id=""
last_id="""#,
    );
}

#[test]
fn a_cr_at_the_end_of_a_chunk_ends_the_line_at_once() {
    let mut d = Decoder::default();
    d.push(b"data: x\n\r");
    // The blank line ended by that CR dispatches without waiting for a byte
    // that may never come.
    match d.next_frame() {
        Some(Ok(Frame::Event(e))) => assert_eq!(e.data, "x"),
        other => panic!("expected the event at once, got {other:?}"),
    }
    d.push(b"\ndata: y\n\n");
    match d.next_frame() {
        Some(Ok(Frame::Event(e))) => assert_eq!(e.data, "y"),
        other => panic!("expected the LF to be swallowed, got {other:?}"),
    }
    assert!(d.next_frame().is_none());
}

#[test]
fn an_unfinished_line_is_scanned_once() {
    let mut d = Decoder::default();
    let line = vec![b'x'; 1 << 20];
    d.push(b"data: ");
    for byte in line.chunks(1) {
        d.push(byte);
        assert!(d.next_frame().is_none());
    }
    d.push(b"\n\n");
    let Some(Ok(Frame::Event(e))) = d.next_frame() else {
        panic!("expected the long event")
    };
    assert_eq!(e.data.len(), 1 << 20);
    // Quadratic rescanning would examine about 2^39 bytes here.
    let pushed = (1u64 << 20) + 8;
    assert!(
        d.scanned_bytes() <= pushed,
        "scanned {} of {pushed}",
        d.scanned_bytes()
    );
}

#[test]
fn limits_end_in_errors_and_the_next_block_still_decodes() {
    let small = Limits {
        max_line: 16,
        max_event: 20,
    };
    check_with(
        small,
        b"id: 1\ndata: 0123456789abcdef\n\nid: 2\ndata: ok\n\n",
        r#"
error SSE line longer than the 16-byte limit
event="message" data="ok" id="2"
last_id="2"
"#,
    );
    // An over-long line drops its block, and the block's id is not committed.
    check_with(
        small,
        b"id: 1\ndata: a\n\nid: 2\ndata: 0123456789abcdef\ndata: z\n\n",
        r#"
event="message" data="a" id="1"
error SSE line longer than the 16-byte limit
last_id="1"
"#,
    );
    check_with(
        small,
        b"data: 0123456789\ndata: 0123456789\ndata: x\n\ndata: ok\n\n",
        r#"
error SSE event data larger than the 20-byte limit
event="message" data="ok" id=""
last_id=""
"#,
    );
}

#[test]
fn memory_stays_bounded_by_the_limits() {
    let limits = Limits {
        max_line: 1024,
        max_event: 4096,
    };
    let mut d = Decoder::new(limits);
    let mut errors = 0;
    for _ in 0..1000 {
        d.push(&[b'a'; 512]);
        while let Some(frame) = d.next_frame() {
            errors += usize::from(frame.is_err());
        }
        assert!(d.buffered() <= 1024 + 512, "buffered {}", d.buffered());
    }
    assert_eq!(errors, 1, "one error for the one endless line");
}

// ---- Lines ----

#[test]
fn a_blank_line_dispatches() {
    check(
        b"data: a\n\ndata: b\n",
        r#"
event="message" data="a" id=""
last_id=""
"#,
    );
}

#[test]
fn comments_are_handed_out_and_change_nothing() {
    check(
        b": heartbeat\n:\n:  two\ndata: x\n: mid\n\n",
        r#"
comment "heartbeat"
comment ""
comment " two"
comment "mid"
event="message" data="x" id=""
last_id=""
"#,
    );
}

#[test]
fn the_field_name_ends_at_the_first_colon() {
    check(
        b"data: a:b: c\n\n",
        r#"event="message" data="a:b: c" id=""
last_id="""#,
    );
}

#[test]
fn exactly_one_leading_space_is_stripped() {
    check(
        b"data:x\n\ndata: x\n\ndata:  x\n\ndata:\tx\n\n",
        r#"
event="message" data="x" id=""
event="message" data="x" id=""
event="message" data=" x" id=""
event="message" data="\tx" id=""
last_id=""
"#,
    );
}

#[test]
fn a_line_without_colon_is_a_field_with_an_empty_value() {
    check(
        b"data\n\nevent\ndata: x\n\n",
        r#"
event="message" data="" id=""
event="message" data="x" id=""
last_id=""
"#,
    );
}

#[test]
fn field_names_are_case_sensitive_and_unknown_ones_ignored() {
    check(
        b"Data: x\nEVENT: y\nfoo: bar\n\ndata: z\n\n",
        r#"
event="message" data="z" id=""
last_id=""
"#,
    );
}

#[test]
fn event_sets_the_type_and_the_last_one_wins() {
    check(
        b"event: a\nevent: tick\ndata: x\n\n",
        r#"event="tick" data="x" id=""
last_id="""#,
    );
}

#[test]
fn data_lines_append_with_lf() {
    check(
        b"data: a\ndata:\ndata: b\n\n",
        r#"event="message" data="a\n\nb" id=""
last_id="""#,
    );
}

#[test]
fn an_id_with_nul_is_ignored() {
    check(
        b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
        r#"
event="message" data="a" id="1"
event="message" data="b" id="1"
last_id="1"
"#,
    );
}

#[test]
fn an_empty_id_resets_the_last_event_id() {
    check(
        b"id: 5\ndata: a\n\nid\ndata: b\n\n",
        r#"
event="message" data="a" id="5"
event="message" data="b" id=""
last_id=""
"#,
    );
}

#[test]
fn retry_takes_ascii_digits_only() {
    check(
        b"retry: 3000\nretry: 30a\nretry: -1\nretry: 1.5\nretry:  100\nretry:\nretry: +5\nretry: 0\n",
        r#"
retry 3000
retry 0
last_id=""
"#,
    );
}

#[test]
fn retry_saturates_instead_of_overflowing() {
    check(
        b"retry: 99999999999999999999999999\n",
        r#"
retry 18446744073709551615
last_id=""
"#,
    );
}

#[test]
fn retry_applies_when_read_not_on_dispatch() {
    let mut d = Decoder::default();
    d.push(b"data: x\nretry: 250\n");
    assert!(matches!(d.next_frame(), Some(Ok(Frame::Retry(250)))));
    assert_eq!(d.retry(), Some(250));
}

// ---- Dispatch ----

#[test]
fn an_id_only_block_moves_the_resume_point() {
    check(b"id: 7\n\n", r#"last_id="7""#);
}

#[test]
fn an_empty_data_buffer_fires_nothing_and_resets_the_type() {
    check(
        b"event: foo\n\ndata: x\n\n",
        r#"
event="message" data="x" id=""
last_id=""
"#,
    );
}

#[test]
fn one_trailing_lf_is_removed() {
    check(
        b"data: a\ndata:\n\n",
        r#"event="message" data="a\n" id=""
last_id="""#,
    );
}

#[test]
fn the_id_persists_across_events_and_the_type_does_not() {
    check(
        b"event: tick\nid: 3\ndata: a\n\ndata: b\n\n",
        r#"
event="tick" data="a" id="3"
event="message" data="b" id="3"
last_id="3"
"#,
    );
}

#[test]
fn an_unfinished_block_is_discarded_at_end_of_stream_with_its_id() {
    check(
        b"id: 1\ndata: a\n\nid: 2\ndata: b\n",
        r#"
event="message" data="a" id="1"
last_id="1"
"#,
    );
    check(b"data: x", r#"last_id="""#);
}
