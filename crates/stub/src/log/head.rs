//! The log's head and the readers waiting for it to move.
//!
//! Not `tokio::sync::watch`: a watch spreads its receivers over eight
//! wakeup lists chosen at random (tokio's per-runtime generator, seeded
//! only under `tokio_unstable`), so which connection wakes first after an
//! append, and then writes first, changed from run to run. Under the
//! simulation that order decides which message draws which latency: the
//! same seed gave different traces. Here the waiters of one `Notify` wake
//! in the order they began to wait.
//!
//! A filtered reader does not wait on the head: it registers an
//! [`Interest`] in its topics and is woken only by an append that holds an
//! event it wants, so a connection that matches nothing costs nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use wire::{Filter, Kind};

use super::Topic;

#[derive(Debug, Default)]
struct Inner {
    head: AtomicU64,
    moved: Notify,
    /// Registered interests, so an append without filtered readers does
    /// not take the registry's lock.
    interested: AtomicUsize,
    registry: Mutex<Registry>,
}

type Waiters = BTreeMap<u64, Arc<Notify>>;

/// Who wants which topic. Ordered maps: waiters wake in registration order.
#[derive(Debug, Default)]
struct Registry {
    next: u64,
    by_symbol: [BTreeMap<Arc<str>, Waiters>; 2],
    by_kind: [Waiters; 2],
}

fn slot(kind: Kind) -> usize {
    match kind {
        Kind::Tick => 0,
        Kind::News => 1,
    }
}

impl Registry {
    /// Every (map, key) a filter's waiter sits in, visited by `f`.
    fn places(&mut self, filter: &Filter, f: &mut dyn FnMut(&mut Waiters)) {
        let kinds: Vec<Kind> = if filter.kinds.is_empty() {
            Kind::ALL.to_vec()
        } else {
            filter.kinds.iter().copied().collect()
        };
        for k in kinds {
            if filter.symbols.is_empty() {
                f(&mut self.by_kind[slot(k)]);
                continue;
            }
            let map = &mut self.by_symbol[slot(k)];
            for s in &filter.symbols {
                let waiters = map.entry(Arc::from(s.as_str())).or_default();
                f(waiters);
                if waiters.is_empty() {
                    map.remove(s.as_str());
                }
            }
        }
    }
}

/// A filtered reader's registration: [`wait`](Interest::wait) returns once
/// an event its filter matches was appended since the last wait.
/// Unregistered on drop.
#[derive(Debug)]
pub struct Interest {
    watch: HeadWatch,
    id: u64,
    filter: Filter,
    notify: Arc<Notify>,
}

impl Interest {
    /// Cancel-safe; a wakeup that came before the call is not lost.
    pub async fn wait(&self) {
        self.notify.notified().await;
    }

    /// Moves the registration to another filter.
    pub fn change(&mut self, filter: &Filter) {
        self.watch.unregister(self.id, &self.filter);
        self.filter = filter.clone();
        self.watch.register(self.id, &self.filter, &self.notify);
        // A match may have come while it was being moved.
        self.notify.notify_one();
    }
}

impl Drop for Interest {
    fn drop(&mut self) {
        self.watch.unregister(self.id, &self.filter);
        self.watch.0.interested.fetch_sub(1, Ordering::AcqRel);
    }
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

    /// Moves the head over events of `topics`: wakes every unfiltered
    /// reader, and the filtered readers that want one of them.
    pub(crate) fn set_with(&self, head: u64, topics: &mut dyn Iterator<Item = &Topic>) {
        self.0.head.store(head, Ordering::Release);
        self.0.moved.notify_waiters();
        if self.0.interested.load(Ordering::Acquire) == 0 {
            return;
        }
        let registry = self.registry();
        for topic in topics {
            let k = slot(topic.kind);
            let by_symbol = registry.by_symbol[k].get(&*topic.symbol);
            for waiter in registry.by_kind[k]
                .values()
                .chain(by_symbol.into_iter().flat_map(|w| w.values()))
            {
                waiter.notify_one();
            }
        }
    }

    /// Registers a filtered reader (a filter that is not
    /// [`all`](Filter::all)).
    pub fn interest(&self, filter: &Filter) -> Interest {
        let id = {
            let mut registry = self.registry();
            registry.next += 1;
            registry.next
        };
        let notify = Arc::new(Notify::new());
        self.0.interested.fetch_add(1, Ordering::AcqRel);
        self.register(id, filter, &notify);
        Interest {
            watch: self.clone(),
            id,
            filter: filter.clone(),
            notify,
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.0.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self, id: u64, filter: &Filter, notify: &Arc<Notify>) {
        self.registry().places(filter, &mut |w| {
            w.insert(id, notify.clone());
        });
    }

    fn unregister(&self, id: u64, filter: &Filter) {
        self.registry().places(filter, &mut |w| {
            w.remove(&id);
        });
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
        watch.set_with(3, &mut std::iter::empty());
        tokio::task::yield_now().await;
        assert!(!reader.is_finished(), "the head did not pass 3");
        watch.set_with(5, &mut std::iter::empty());
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
        watch.set_with(1, &mut std::iter::empty());
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

#[cfg(test)]
mod interest {
    use super::*;
    use std::task::Poll;

    fn topic(kind: Kind, symbol: &str) -> Topic {
        Topic {
            kind,
            symbol: symbol.into(),
        }
    }

    fn woken(i: &Interest) -> bool {
        let mut wait = std::pin::pin!(i.wait());
        let waker = std::task::Waker::noop();
        wait.as_mut().poll(&mut std::task::Context::from_waker(waker)) == Poll::Ready(())
    }

    #[test]
    fn a_filtered_reader_is_woken_only_by_what_it_wants() {
        let watch = HeadWatch::new(0);
        let aapl = watch.interest(&Filter::from_query(Some("AAPL"), Some("tick")).unwrap());
        let news = watch.interest(&Filter::from_query(None, Some("news")).unwrap());
        watch.set_with(1, &mut [topic(Kind::Tick, "MSFT")].iter());
        watch.set_with(2, &mut [topic(Kind::News, "AAPL")].iter());
        assert!(!woken(&aapl), "MSFT ticks and AAPL news are not AAPL ticks");
        assert!(woken(&news));
        watch.set_with(3, &mut [topic(Kind::Tick, "AAPL")].iter());
        assert!(woken(&aapl));
        assert!(!woken(&news), "one wakeup per append, taken once");
    }

    #[test]
    fn a_changed_or_dropped_interest_moves_its_registration() {
        let watch = HeadWatch::new(0);
        let mut i = watch.interest(&Filter::from_query(Some("AAPL"), None).unwrap());
        i.change(&Filter::from_query(Some("NVDA"), None).unwrap());
        assert!(woken(&i), "a change wakes it once, for what came meanwhile");
        watch.set_with(1, &mut [topic(Kind::Tick, "AAPL")].iter());
        assert!(!woken(&i));
        watch.set_with(2, &mut [topic(Kind::News, "NVDA")].iter());
        assert!(woken(&i));
        drop(i);
        let registry = watch.registry();
        assert!(registry.by_symbol.iter().all(BTreeMap::is_empty), "{registry:?}");
        drop(registry);
        assert_eq!(watch.0.interested.load(Ordering::Acquire), 0);
    }
}
