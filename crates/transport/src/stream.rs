//! One session's transport behind one type: what a transport yields
//! ([`Frame`]) and the open session on SSE, WebSocket or polling, with the
//! epoch its opening answer named. The driver routes what it yields.

use std::time::Duration;

use wire::{Control, Cursor, Epoch, Message};

use crate::error::ClientError;
use crate::net::{Connect, Link};
use crate::policy::{Failure, Transport};
use crate::{poll, sse, ws};

/// What a session's transport yields.
#[derive(Debug)]
pub(crate) enum Frame {
    Message(Message),
    /// An answer named this epoch (an SSE id line, a polling page), other
    /// than the last one the session reported: checked against the epoch
    /// held before anything after it is delivered.
    Epoch(Epoch),
    /// The server's `retry:` (ms), a floor for later delays.
    RetryHint(u64),
    /// Polling read a whole page: the moment a streaming probe may run.
    PageEnd,
}

/// An open session on one transport.
pub(crate) enum Stream<S> {
    Sse(Box<sse::Stream>),
    Ws(Box<ws::Stream<S>>),
    Poll(poll::Stream),
}

/// Opens `kind` after `at`.
pub(crate) async fn open<C: Connect>(
    link: &Link<C>,
    kind: Transport,
    at: Cursor,
    idle: Duration,
    poll: poll::Settings,
) -> Result<Stream<C::Stream>, Failure> {
    Ok(match kind {
        Transport::Sse => Stream::Sse(Box::new(sse::open(link, at, idle).await?)),
        Transport::Ws => Stream::Ws(Box::new(ws::open(link, at, idle).await?)),
        Transport::Poll => Stream::Poll(poll::open(link, poll, at).await?),
    })
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Stream<S> {
    /// The epoch the opening answer named (its header, or the first page).
    pub(crate) fn epoch(&self) -> Option<Epoch> {
        match self {
            Stream::Sse(s) => s.epoch(),
            Stream::Ws(s) => s.epoch(),
            Stream::Poll(s) => s.epoch(),
        }
    }

    /// The next frame; `at` is where the client stands (the last id
    /// delivered, in the epoch held).
    pub(crate) async fn next<C: Connect>(&mut self, link: &Link<C>, at: Cursor) -> Result<Frame, Failure> {
        match self {
            Stream::Sse(s) => s.next(at.id).await,
            Stream::Ws(s) => s.next(at.id).await,
            Stream::Poll(s) => s.next(link, at).await,
        }
    }
}

/// A stream whose opening answer named another epoch than the one held
/// (`refused`, the failure that says so): its first message is read, never
/// delivered. The `reset` a wire sends first there tells the new log's ids,
/// so the failure carries them; anything else leaves `refused` as it is.
pub(crate) async fn refused<C: Connect>(
    mut stream: Stream<C::Stream>,
    link: &Link<C>,
    at: Cursor,
    refused: Failure,
) -> Failure {
    loop {
        match stream.next(link, at).await {
            Ok(Frame::RetryHint(_)) => {}
            Ok(Frame::Message(Message::Control(Control::Reset {
                from,
                epoch,
                oldest,
                head,
            }))) => {
                return Failure::Fatal(ClientError::EpochChanged {
                    from,
                    epoch,
                    oldest: Some(oldest),
                    head: Some(head),
                });
            }
            _ => return refused,
        }
    }
}
