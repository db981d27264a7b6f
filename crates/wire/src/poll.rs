//! The polling form: `GET /events?cursor=N&limit=M[&wait_ms=W]` answers a
//! [`Page`]; an error answers a [`Problem`](crate::Problem) body.

use serde::{Deserialize, Serialize};

use crate::{Epoch, Event};

/// One polling answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// The events after the cursor, oldest first, gap-free.
    pub events: Vec<Event>,
    /// The cursor for the next request: the last id here, or the request's
    /// cursor when there is none.
    pub next_cursor: u64,
    /// The newest id in the log.
    pub head: u64,
    /// The log's epoch: `next_cursor` is an id in it. Absent from servers
    /// that predate epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<Epoch>,
}

impl Page {
    /// The page as sent: `{"events":[...],"next_cursor":N,"head":H,"epoch":E}`, each
    /// event as [`Event::to_json`].
    pub fn to_json(&self) -> String {
        let mut body = PageBody::default();
        for event in &self.events {
            body.push(&event.to_json());
        }
        body.finish(self.next_cursor, self.head, self.epoch)
    }
}

/// A page written from events already encoded ([`Event::to_json`]), for a
/// server that keeps events encoded: the same bytes as [`Page::to_json`].
#[derive(Debug)]
pub struct PageBody {
    out: String,
    count: usize,
}

impl Default for PageBody {
    fn default() -> Self {
        PageBody {
            out: String::from("{\"events\":["),
            count: 0,
        }
    }
}

impl PageBody {
    /// Appends one event's JSON object.
    pub fn push(&mut self, event_json: &str) {
        if self.count > 0 {
            self.out.push(',');
        }
        self.out.push_str(event_json);
        self.count += 1;
    }

    /// Events pushed so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The finished body.
    pub fn finish(mut self, next_cursor: u64, head: u64, epoch: Option<Epoch>) -> String {
        use std::fmt::Write;
        let mut digits = itoa::Buffer::new();
        self.out.push_str("],\"next_cursor\":");
        self.out.push_str(digits.format(next_cursor));
        self.out.push_str(",\"head\":");
        self.out.push_str(digits.format(head));
        if let Some(epoch) = epoch {
            // Writing into a String cannot fail.
            let _ = write!(self.out, ",\"epoch\":\"{epoch}\"");
        }
        self.out.push('}');
        self.out
    }
}
