//! What the policy noted, recorded: log lines, counters and timeline
//! entries; and the link moved to the policy's current URL.

use crate::net::Connect;
use crate::policy::Note;
use crate::timeline::Lifecycle;

use super::Driver;

impl<C: Connect> Driver<C> {
    /// Points the link (attempts, probes and gap repairs) at the URL the
    /// policy chose, and shows it in the metrics.
    pub(super) fn use_current_url(&mut self) {
        let i = self.policy.current_url();
        if let Some(endpoint) = self.endpoints.get(i) {
            self.link.endpoint = endpoint.clone();
            self.metrics
                .set_url(i, self.config.urls.get(i).map_or("", String::as_str));
        }
    }

    pub(super) fn flush_notes(&mut self) {
        for n in self.policy.take_notes() {
            match n {
                Note::Backoff {
                    attempt,
                    delay,
                    reason,
                } => {
                    tracing::info!(attempt, delay_ms = delay.as_millis() as u64, reason, "backoff");
                    self.timeline.record(Lifecycle::Backoff { attempt, wait: delay });
                }
                Note::Fallback { reason } => {
                    self.metrics.fell_back();
                    tracing::warn!(%reason, "falling back to polling");
                    self.timeline.record(Lifecycle::Fallback { reason });
                }
                Note::Upgrade { to } => {
                    self.metrics.upgraded();
                    tracing::info!(to = to.as_str(), "upgraded back to streaming");
                    self.timeline.record(Lifecycle::Upgrade { to });
                }
                Note::Reset => self.timeline.record(Lifecycle::Reset),
                Note::Failover { from, to, reason } => {
                    self.metrics.failed_over();
                    let url = |i: usize| self.config.urls.get(i).map_or("?", String::as_str);
                    tracing::warn!(
                        from = url(from),
                        to = url(to),
                        reason,
                        "failing over to another wire URL"
                    );
                    self.timeline.record(Lifecycle::Failover { from, to });
                }
            }
        }
    }
}
