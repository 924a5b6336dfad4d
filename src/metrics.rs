//! Prometheus metrics, kept per broker instance.
//!
//! Hand-written rather than the `metrics` facade: that facade installs one global
//! recorder per process, while the test suite runs many brokers in one process and
//! each must count only its own requests. The text format is small and stable.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Registry {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Histogram>,
    decisions: BTreeMap<(&'static str, &'static str, &'static str), u64>,
    budget_alerts: BTreeMap<&'static str, u64>,
}

/// The process's memory as the scrape finds it; each part is shown when known.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessMemory {
    /// The bytes SQLite holds (`None` on PostgreSQL, whose memory is the server's).
    pub sqlite_heap: Option<i64>,
    /// The allocator's bytes allocated and resident (`None` when it did not answer).
    pub allocator: Option<(usize, usize)>,
}

/// The broker's counters and histograms.
#[derive(Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
}

impl Metrics {
    /// Counts one answered request and its latency.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, latency: Duration) {
        let mut registry = self.registry.lock().expect("metrics lock");
        *registry
            .requests
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
        let histogram = registry
            .latency
            .entry((method.to_string(), route.to_string()))
            .or_default();
        let seconds = latency.as_secs_f64();
        for (count, bound) in histogram.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *count += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// Counts one decision: `action` (`consent_upload`…), `outcome` (`granted`…) and
    /// the refusal reason (empty when not refused).
    pub fn observe_decision(
        &self,
        action: &'static str,
        outcome: &'static str,
        reason: &'static str,
    ) {
        let mut registry = self.registry.lock().expect("metrics lock");
        *registry
            .decisions
            .entry((action, outcome, reason))
            .or_default() += 1;
    }

    /// Counts an airline's daily budget passing its alert level (`reveals`,
    /// `disrupted_flights`), as this broker raised it.
    pub fn observe_budget_alert(&self, budget: &'static str) {
        let mut registry = self.registry.lock().expect("metrics lock");
        *registry.budget_alerts.entry(budget).or_default() += 1;
    }

    /// The Prometheus text exposition, with the process's memory as `memory` has it
    /// (gauges of the process, beside the resident memory a scraper also reads).
    pub fn render(&self, memory: &ProcessMemory) -> String {
        let registry = self.registry.lock().expect("metrics lock");
        let mut out = String::new();
        out.push_str("# HELP passerelle_http_requests_total HTTP requests answered, by method, route and status.\n");
        out.push_str("# TYPE passerelle_http_requests_total counter\n");
        for ((method, route, status), n) in &registry.requests {
            let _ = writeln!(out, "passerelle_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP passerelle_http_request_duration_seconds Time to answer a request, by method and route.\n");
        out.push_str("# TYPE passerelle_http_request_duration_seconds histogram\n");
        for ((method, route), h) in &registry.latency {
            let labels = format!("method=\"{method}\",route=\"{route}\"");
            for (bound, count) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "passerelle_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(
                out,
                "passerelle_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "passerelle_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "passerelle_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        let decisions = &registry.decisions;
        let by_outcome = |outcome: &'static str| {
            decisions
                .iter()
                .filter(move |((_, o, _), _)| *o == outcome)
                .map(|(k, n)| (k, *n))
        };
        out.push_str("# HELP passerelle_consents_recorded_total Consent records stored.\n");
        out.push_str("# TYPE passerelle_consents_recorded_total counter\n");
        let _ = writeln!(
            out,
            "passerelle_consents_recorded_total {}",
            by_outcome("recorded").map(|(_, n)| n).sum::<u64>()
        );
        out.push_str("# HELP passerelle_grants_total Release tokens granted.\n");
        out.push_str("# TYPE passerelle_grants_total counter\n");
        let _ = writeln!(
            out,
            "passerelle_grants_total {}",
            by_outcome("granted").map(|(_, n)| n).sum::<u64>()
        );
        out.push_str("# HELP passerelle_releases_total Contacts released to airlines.\n");
        out.push_str("# TYPE passerelle_releases_total counter\n");
        let _ = writeln!(
            out,
            "passerelle_releases_total {}",
            by_outcome("released").map(|(_, n)| n).sum::<u64>()
        );
        out.push_str("# HELP passerelle_refusals_total Requests refused, by action and reason.\n");
        out.push_str("# TYPE passerelle_refusals_total counter\n");
        for ((action, _, reason), n) in by_outcome("refused") {
            let _ = writeln!(
                out,
                "passerelle_refusals_total{{action=\"{action}\",reason=\"{reason}\"}} {n}"
            );
        }
        out.push_str("# HELP passerelle_budget_alerts_total Airlines' daily budgets that passed their alert level, by budget (officers: see the report's budget_alerts).\n");
        out.push_str("# TYPE passerelle_budget_alerts_total counter\n");
        for budget in ["disrupted_flights", "reveals"] {
            let n = registry.budget_alerts.get(budget).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "passerelle_budget_alerts_total{{budget=\"{budget}\"}} {n}"
            );
        }
        if let Some(bytes) = memory.sqlite_heap {
            out.push_str("# HELP passerelle_sqlite_heap_bytes Memory SQLite holds in this process: every connection's page cache and statements.\n");
            out.push_str("# TYPE passerelle_sqlite_heap_bytes gauge\n");
            let _ = writeln!(out, "passerelle_sqlite_heap_bytes {bytes}");
        }
        if let Some((allocated, resident)) = memory.allocator {
            out.push_str("# HELP passerelle_allocator_allocated_bytes Memory in the blocks the process holds (SQLite's included).\n");
            out.push_str("# TYPE passerelle_allocator_allocated_bytes gauge\n");
            let _ = writeln!(out, "passerelle_allocator_allocated_bytes {allocated}");
            out.push_str("# HELP passerelle_allocator_resident_bytes Memory the allocator keeps resident: those blocks, its bookkeeping, and pages freed but not yet given back.\n");
            out.push_str("# TYPE passerelle_allocator_resident_bytes gauge\n");
            let _ = writeln!(out, "passerelle_allocator_resident_bytes {resident}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_decisions_render_as_prometheus_text() {
        let metrics = Metrics::default();
        metrics.observe_request("POST", "/v1/releases", 200, Duration::from_millis(3));
        metrics.observe_decision("token_request", "refused", "no_consent");
        metrics.observe_decision("token_redemption", "released", "");
        let text = metrics.render(&ProcessMemory::default());
        assert!(text.contains("passerelle_http_requests_total{method=\"POST\",route=\"/v1/releases\",status=\"200\"} 1"));
        assert!(text.contains("le=\"0.0025\"} 0"));
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains(
            "passerelle_refusals_total{action=\"token_request\",reason=\"no_consent\"} 1"
        ));
        assert!(text.contains("passerelle_releases_total 1"));
        assert!(text.contains("passerelle_grants_total 0"));
        metrics.observe_budget_alert("reveals");
        let text = metrics.render(&ProcessMemory::default());
        assert!(text.contains("passerelle_budget_alerts_total{budget=\"reveals\"} 1"));
        assert!(text.contains("passerelle_budget_alerts_total{budget=\"disrupted_flights\"} 0"));
        assert!(!text.contains("passerelle_sqlite_heap_bytes"));
        assert!(!text.contains("passerelle_allocator_"));
        let text = metrics.render(&ProcessMemory {
            sqlite_heap: Some(3_145_728),
            allocator: Some((40 << 20, 48 << 20)),
        });
        assert!(text.contains("\npasserelle_sqlite_heap_bytes 3145728\n"));
        assert!(text.contains("\npasserelle_allocator_allocated_bytes 41943040\n"));
        assert!(text.contains("\npasserelle_allocator_resident_bytes 50331648\n"));
    }
}
