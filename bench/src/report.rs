//! What a run found: printed as a table for people and as JSON for
//! `benches/compare.sh`.

use serde::Serialize;

/// One figure of a run, in the order the table shows it.
#[derive(Debug, Serialize)]
pub struct Metric {
    pub name: &'static str,
    pub value: f64,
    pub unit: &'static str,
}

/// The outcome of one scenario against one server.
#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub server: String,
    pub label: Option<String>,
    pub params: serde_json::Value,
    pub metrics: Vec<Metric>,
    /// The first few reasons clients failed, for a reader to act on.
    pub failures: Vec<String>,
}

impl Report {
    pub fn new(scenario: &'static str, server: String, params: serde_json::Value) -> Report {
        Report {
            scenario,
            server,
            label: None,
            params,
            metrics: Vec::new(),
            failures: Vec::new(),
        }
    }

    pub fn add(&mut self, name: &'static str, value: f64, unit: &'static str) {
        self.metrics.push(Metric { name, value, unit });
    }

    /// Keeps a failure reason, up to a handful.
    pub fn fail(&mut self, reason: String) {
        if self.failures.len() < 5 && !self.failures.contains(&reason) {
            self.failures.push(reason);
        }
    }

    pub fn print_table(&self) {
        let label = self.label.as_deref().unwrap_or("");
        println!("{} against {} {label}", self.scenario, self.server);
        println!("  {}", self.params);
        for metric in &self.metrics {
            println!(
                "  {:<24} {:>14} {}",
                metric.name,
                format_value(metric.value),
                metric.unit
            );
        }
        for failure in &self.failures {
            println!("  failure: {failure}");
        }
    }
}

fn format_value(value: f64) -> String {
    if value.fract() == 0.0 || value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}
