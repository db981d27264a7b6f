//! A one-shot signal that any number of tasks can wait on and check: used
//! for shutdown and for dropping one connection.

use std::sync::Arc;

use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct Trigger(Arc<watch::Sender<bool>>);

impl Default for Trigger {
    fn default() -> Self {
        Trigger(Arc::new(watch::channel(false).0))
    }
}

impl Trigger {
    pub fn fire(&self) {
        self.0.send_replace(true);
    }

    pub fn is_fired(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once fired (at once if it already was).
    pub async fn fired(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives in `self`, so this cannot fail while we wait.
        let _ = rx.wait_for(|fired| *fired).await;
    }
}
