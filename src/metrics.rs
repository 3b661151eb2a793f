//! What operators scrape: counters and gauges of the whole server, shared
//! by the tasks that count them, rendered in Prometheus' text exposition
//! format for `/metrics`.

use std::sync::Arc;

/// The server's counters and gauges. One per server, shared by reference.
#[derive(Debug, Default)]
pub struct Metrics {}

impl Metrics {
    /// A fresh set, every figure zero.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// Every figure in Prometheus' text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        String::new()
    }
}
