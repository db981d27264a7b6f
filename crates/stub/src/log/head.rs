//! The log's head and the readers waiting for it to move.
//!
//! Not `tokio::sync::watch`: a watch spreads its receivers over eight
//! wakeup lists chosen at random (tokio's per-runtime generator, seeded
//! only under `tokio_unstable`), so which connection wakes first after an
//! append, and then writes first, changed from run to run. Under the
//! simulation that order decides which message draws which latency: the
//! same seed gave different traces. Here the waiters of one `Notify` wake
//! in the order they began to wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Inner {
    head: AtomicU64,
    moved: Notify,
}

/// The head, shared by the log (which moves it) and its readers.
#[derive(Debug, Clone, Default)]
pub struct HeadWatch(Arc<Inner>);

impl HeadWatch {
    pub fn new(head: u64) -> HeadWatch {
        let watch = HeadWatch::default();
        watch.0.head.store(head, Ordering::Release);
        watch
    }

    /// The newest id.
    pub fn get(&self) -> u64 {
        self.0.head.load(Ordering::Acquire)
    }

    /// Moves the head and wakes every reader waiting for it.
    pub(crate) fn set(&self, head: u64) {
        self.0.head.store(head, Ordering::Release);
        self.0.moved.notify_waiters();
    }

    /// Returns the head once it is past `seen` (at once if it already is).
    /// Cancel-safe: nothing is consumed.
    pub async fn past(&self, seen: u64) -> u64 {
        loop {
            let moved = self.0.moved.notified();
            tokio::pin!(moved);
            // Registered before the head is read: a move in between wakes it.
            moved.as_mut().enable();
            let head = self.get();
            if head > seen {
                return head;
            }
            moved.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reader_wakes_when_the_head_passes_what_it_saw() {
        let watch = HeadWatch::new(3);
        assert_eq!(watch.past(2).await, 3);
        let reader = tokio::spawn({
            let watch = watch.clone();
            async move { watch.past(3).await }
        });
        tokio::task::yield_now().await;
        watch.set(3);
        tokio::task::yield_now().await;
        assert!(!reader.is_finished(), "the head did not pass 3");
        watch.set(5);
        assert_eq!(reader.await.unwrap(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn readers_wake_in_the_order_they_began_to_wait() {
        let watch = HeadWatch::new(0);
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..16 {
            let (watch, order) = (watch.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                watch.past(0).await;
                order.lock().unwrap().push(i);
            }));
            tokio::task::yield_now().await;
        }
        watch.set(1);
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        // One order, every run: the waiters' list, not a random pick.
        assert!(
            order == sorted || order.iter().rev().copied().eq(sorted.iter().copied()),
            "{order:?}"
        );
    }
}
