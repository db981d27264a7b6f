//! The event-stream decoder: bytes in, frames out, linear in the input.
//!
//! It never waits for more input to finish a line: a CR that ends a chunk ends
//! the line at once, and an LF that follows in the next chunk is swallowed.
//! An in-progress line is scanned once, not again on every push.

use std::borrow::Cow;

use crate::frame::{DecodeError, EventRef, Frame, Limits};
use crate::text::{decode_lossy, find_line_end};

/// The decoder for one event stream (one HTTP response body).
///
/// Feed it with [`push`](Decoder::push), then call
/// [`next_frame`](Decoder::next_frame) until it returns `None`; call
/// [`finish`](Decoder::finish) when the stream ends.
///
/// Memory, provided frames are pulled until `None` after each push (`M` is
/// [`Limits::max_line`], `C` the largest chunk pushed):
/// - [`buffered`](Decoder::buffered) is at most `max(M, 3)` once frames are
///   pulled (3: the bytes of one split character are held until it is
///   complete), and at most `max(M, 3) + 3 * (C + 2)` while a chunk's frames
///   are being pulled: decoding turns each invalid byte into a 3-byte U+FFFD,
///   and the up to 2 further bytes a held character can grow to.
/// - the data buffer holds at most [`Limits::max_event`] bytes; the event
///   type, the id and the committed id at most `M` each.
/// - plus the allocator's slack: buffers grow by doubling and are kept for
///   reuse, so capacity can reach twice the largest length held.
///
/// Bytes are decoded to text as they are pushed, as the standard says (decode
/// the stream, then split it into lines): one SIMD validation pass per byte,
/// after which every line, field and value is a `&str` slice, never checked
/// again.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    /// Decoded text; `text[pos..]` is not yet consumed.
    text: String,
    pos: usize,
    /// `text[pos..scanned]` is known to hold no line end: never scan it twice.
    scanned: usize,
    /// The first bytes of a character split across pushes (at most 3).
    carry: Vec<u8>,
    bom_done: bool,
    /// The previous line ended with a CR at the end of the input: an LF that
    /// comes next belongs to it.
    skip_lf: bool,
    /// Inside a line over the limit: drop text up to its end.
    discard_line: bool,
    /// The current block lost a line or outgrew the event limit: drop it at
    /// the next blank line.
    discard_block: bool,
    /// The last frame was an event borrowing `data`/`event_type`: clear them
    /// before anything else happens.
    reset_pending: bool,
    event_type: String,
    data: String,
    /// A block's first data line stays where it is in `text` (start, end)
    /// until a second data line or a push needs it moved into `data`: most
    /// events have one data line, and this saves copying it.
    data_at: Option<(usize, usize)>,
    /// The last-event-ID buffer, set by `id:` fields.
    id: String,
    /// The last event ID as of the last dispatch (blank line). At end of
    /// stream, an id seen in an undispatched block is rolled back to this.
    committed_id: String,
    retry: Option<u64>,
    /// Bytes examined while looking for line ends, for the linearity test.
    scanned_total: u64,
    /// Blocks dispatched (blank lines outside a dropped block), events or not.
    dispatches: u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(Limits::default())
    }
}

/// Where the next line is.
enum Line {
    NeedMore,
    /// The rest of an over-long line was dropped.
    Skipped,
    TooLong,
    /// `text[start..end]`, without its line end; already consumed.
    At(usize, usize),
}

/// What one line asked for; computed without borrowing, then turned into a
/// borrowed [`Frame`].
enum Step {
    Nothing,
    Dispatch,
    Comment(usize, usize),
    Retry(u64),
    Error(DecodeError),
}

impl Decoder {
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            limits,
            text: String::new(),
            pos: 0,
            scanned: 0,
            carry: Vec::new(),
            bom_done: false,
            skip_lf: false,
            discard_line: false,
            discard_block: false,
            reset_pending: false,
            event_type: String::new(),
            data: String::new(),
            data_at: None,
            id: String::new(),
            committed_id: String::new(),
            retry: None,
            scanned_total: 0,
            dispatches: 0,
        }
    }

    /// The last event ID as of the last dispatched block: what a reconnect
    /// sends as `Last-Event-ID` (only when non-empty).
    pub fn last_event_id(&self) -> &str {
        &self.committed_id
    }

    /// The last valid `retry:` value seen, in milliseconds.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Bytes examined so far while looking for line ends. Stays within the
    /// bytes pushed, however they are chunked: nothing is rescanned.
    pub fn scanned_bytes(&self) -> u64 {
        self.scanned_total
    }

    /// Blocks dispatched so far, whether or not they fired an event. Until
    /// the first, this stream has not set the last event ID at all (a
    /// client keeps the one it had).
    pub fn dispatches(&self) -> u64 {
        self.dispatches
    }

    /// Bytes held for unfinished lines: decoded text not yet consumed, plus
    /// the raw bytes of a character split across pushes.
    pub fn buffered(&self) -> usize {
        self.text.len() - self.pos + self.carry.len()
    }

    /// Appends received bytes. Pull frames with [`next_frame`] afterwards.
    ///
    /// [`next_frame`]: Decoder::next_frame
    pub fn push(&mut self, bytes: &[u8]) {
        settle(&self.text, &mut self.data, &mut self.data_at);
        if self.pos == self.text.len() {
            self.text.clear();
            self.pos = 0;
            self.scanned = 0;
        } else if self.pos > 0 {
            // Move the unfinished line to the front. Each byte moves at most
            // once per line, so this stays linear.
            self.text.drain(..self.pos);
            self.scanned -= self.pos;
            self.pos = 0;
        }
        if self.carry.is_empty() {
            if let Ok(valid) = simdutf8::basic::from_utf8(bytes) {
                self.text.push_str(valid);
                return;
            }
            let tail = decode_lossy(&mut self.text, bytes);
            self.carry.extend_from_slice(tail);
        } else {
            // Rare: a character was split across pushes. Decode it together
            // with what follows.
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(bytes);
            let tail = decode_lossy(&mut self.text, &joined);
            self.carry.extend_from_slice(tail);
        }
    }

    /// The end of the stream: an unfinished line and an undispatched block
    /// are discarded, the block's id with them.
    pub fn finish(&mut self) {
        self.text.clear();
        self.carry.clear();
        self.pos = 0;
        self.scanned = 0;
        self.skip_lf = false;
        self.discard_line = false;
        self.discard_block = false;
        self.reset_pending = false;
        self.event_type.clear();
        self.data.clear();
        self.data_at = None;
        self.id.clone_from(&self.committed_id);
    }

    /// The next frame from the bytes pushed so far, or `None` when more input
    /// is needed.
    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>, DecodeError>> {
        if self.reset_pending {
            self.reset_pending = false;
            self.event_type.clear();
            self.data.clear();
            self.data_at = None;
        }
        if !self.bom_done {
            if self.pos == self.text.len() {
                return None;
            }
            if self.text[self.pos..].starts_with('\u{FEFF}') {
                self.pos += '\u{FEFF}'.len_utf8();
            }
            self.bom_done = true;
        }
        let step = loop {
            let step = match self.next_line() {
                Line::NeedMore => return None,
                Line::Skipped => continue,
                Line::TooLong => {
                    self.discard_block = true;
                    Step::Error(DecodeError::LineTooLong {
                        limit: self.limits.max_line,
                    })
                }
                Line::At(start, end) => self.line(start, end),
            };
            if !matches!(step, Step::Nothing) {
                break step;
            }
        };
        Some(match step {
            Step::Nothing => unreachable!("loop only breaks on a non-empty step"),
            Step::Error(e) => Err(e),
            Step::Retry(ms) => Ok(Frame::Retry(ms)),
            Step::Comment(s, e) => Ok(Frame::Comment(Cow::Borrowed(&self.text[s..e]))),
            Step::Dispatch => {
                self.reset_pending = true;
                let data = match self.data_at {
                    Some((s, e)) => &self.text[s..e],
                    None => &self.data[..self.data.len() - 1],
                };
                let event = if self.event_type.is_empty() {
                    "message"
                } else {
                    &self.event_type
                };
                Ok(Frame::Event(EventRef {
                    event,
                    data,
                    id: &self.id,
                }))
            }
        })
    }

    /// Finds and consumes the next complete line.
    fn next_line(&mut self) -> Line {
        let bytes = self.text.as_bytes();
        let len = bytes.len();
        if self.skip_lf && self.pos < len {
            self.skip_lf = false;
            if bytes[self.pos] == b'\n' {
                self.pos += 1;
                self.scanned = self.scanned.max(self.pos);
            }
        }
        let from = self.scanned.max(self.pos);
        let found = find_line_end(&bytes[from..len]).map(|i| from + i);
        self.scanned_total += (found.map_or(len, |i| i + 1) - from) as u64;
        let Some(i) = found else {
            self.scanned = len;
            if self.discard_line {
                self.pos = len;
                return Line::NeedMore;
            }
            // The carried bytes of a split character belong to this line and
            // will decode to at least as many bytes, so counting them keeps
            // the bound exact. Once per push, not per byte.
            if len - self.pos + self.carry.len() > self.limits.max_line {
                // The line will be too long whatever comes next.
                self.discard_line = true;
                self.pos = len;
                return Line::TooLong;
            }
            return Line::NeedMore;
        };
        let start = self.pos;
        let next = if bytes[i] == b'\r' {
            if i + 1 < len {
                i + 1 + usize::from(bytes[i + 1] == b'\n')
            } else {
                self.skip_lf = true;
                i + 1
            }
        } else {
            i + 1
        };
        self.pos = next;
        self.scanned = next;
        if self.discard_line {
            self.discard_line = false;
            return Line::Skipped;
        }
        if i - start > self.limits.max_line {
            return Line::TooLong;
        }
        Line::At(start, i)
    }

    /// Interprets one line (`text[start..end]`, without its line end).
    fn line(&mut self, start: usize, end: usize) -> Step {
        let line = &self.text[start..end];
        if line.is_empty() {
            return self.dispatch();
        }
        // Field names are short: a plain scan beats a SIMD search set-up here.
        // The colon is ASCII, so every index below is a character boundary.
        let (name, value, value_at) = match line.bytes().position(|b| b == b':') {
            Some(0) => {
                let skip = 1 + usize::from(line.as_bytes().get(1) == Some(&b' '));
                return Step::Comment(start + skip, end);
            }
            Some(c) => {
                let skip = c + 1 + usize::from(line.as_bytes().get(c + 1) == Some(&b' '));
                (&line[..c], &line[skip..], start + skip)
            }
            None => (line, "", end),
        };
        if self.discard_block {
            return Step::Nothing;
        }
        match name {
            "data" => {
                let held = self.data.len() + self.data_at.map_or(0, |(s, e)| e - s + 1);
                if held + value.len() + 1 > self.limits.max_event {
                    self.discard_block = true;
                    return Step::Error(DecodeError::EventTooLarge {
                        limit: self.limits.max_event,
                    });
                }
                if self.data.is_empty() && self.data_at.is_none() {
                    self.data_at = Some((value_at, end));
                } else {
                    settle(&self.text, &mut self.data, &mut self.data_at);
                    self.data.push_str(value);
                    self.data.push('\n');
                }
            }
            "event" => {
                self.event_type.clear();
                self.event_type.push_str(value);
            }
            // An id holding NUL is ignored as a whole.
            "id" if !value.contains('\0') => {
                self.id.clear();
                self.id.push_str(value);
            }
            // Digits only: no sign, space, decimal point, nor empty value.
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                let ms = value.bytes().fold(0u64, |n, d| {
                    n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                });
                self.retry = Some(ms);
                return Step::Retry(ms);
            }
            _ => {}
        }
        Step::Nothing
    }

    fn dispatch(&mut self) -> Step {
        if self.discard_block {
            // The block lost a line or was too large: fire nothing, and do not
            // move the resume point past it.
            self.discard_block = false;
            self.id.clone_from(&self.committed_id);
            self.event_type.clear();
            self.data.clear();
            self.data_at = None;
            return Step::Nothing;
        }
        self.dispatches += 1;
        if self.id != self.committed_id {
            self.committed_id.clone_from(&self.id);
        }
        if self.data.is_empty() && self.data_at.is_none() {
            self.event_type.clear();
            return Step::Nothing;
        }
        Step::Dispatch
    }
}

/// Moves a data line still referenced in `text` into `data`.
fn settle(text: &str, data: &mut String, at: &mut Option<(usize, usize)>) {
    if let Some((s, e)) = at.take() {
        data.push_str(&text[s..e]);
        data.push('\n');
    }
}
