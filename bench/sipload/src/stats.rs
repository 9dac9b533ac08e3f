//! Counters and lock-free latency histograms of one timed run (shared by every phone task), and
//! the JSON summary line built from them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Latency histogram: 10 µs buckets up to 100 ms, then 1 ms buckets up to 10 s (+ overflow).
pub struct Histogram {
    fine: Vec<AtomicU64>,
    coarse: Vec<AtomicU64>,
    over: AtomicU64,
    count: AtomicU64,
    sum_us: AtomicU64,
}

const FINE_US: u64 = 10;
const FINE_N: usize = 10_000; // 100 ms
const COARSE_US: u64 = 1_000;
const COARSE_N: usize = 10_000; // 10 s

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            fine: (0..FINE_N).map(|_| AtomicU64::new(0)).collect(),
            coarse: (0..COARSE_N).map(|_| AtomicU64::new(0)).collect(),
            over: AtomicU64::new(0),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }

    pub fn record(&self, d: Duration) {
        let us = d.as_micros() as u64;
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
        let i = (us / FINE_US) as usize;
        if i < FINE_N {
            self.fine[i].fetch_add(1, Relaxed);
        } else if ((us / COARSE_US) as usize) < COARSE_N {
            self.coarse[(us / COARSE_US) as usize].fetch_add(1, Relaxed);
        } else {
            self.over.fetch_add(1, Relaxed);
        }
    }

    /// The q-quantile in milliseconds (upper edge of its bucket), None when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let n = self.count.load(Relaxed);
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (i, b) in self.fine.iter().enumerate() {
            seen += b.load(Relaxed);
            if seen >= rank {
                return Some(((i as u64 + 1) * FINE_US) as f64 / 1000.0);
            }
        }
        for (i, b) in self.coarse.iter().enumerate() {
            seen += b.load(Relaxed);
            if seen >= rank {
                return Some(((i as u64 + 1) * COARSE_US) as f64 / 1000.0);
            }
        }
        Some(f64::INFINITY)
    }

    pub fn mean_ms(&self) -> Option<f64> {
        let n = self.count.load(Relaxed);
        (n > 0).then(|| self.sum_us.load(Relaxed) as f64 / n as f64 / 1000.0)
    }

    /// `{"p50":..,"p99":..,"p999":..,"mean":..,"n":..}` in ms.
    pub fn json(&self) -> String {
        // JSON has no infinity: a quantile beyond the histogram's range is null, like an empty one.
        let f = |v: Option<f64>| v.filter(|x| x.is_finite()).map_or("null".to_string(), |x| format!("{x:.3}"));
        format!(
            "{{\"p50\":{},\"p99\":{},\"p999\":{},\"mean\":{},\"n\":{}}}",
            f(self.quantile_ms(0.5)),
            f(self.quantile_ms(0.99)),
            f(self.quantile_ms(0.999)),
            f(self.mean_ms()),
            self.count.load(Relaxed)
        )
    }
}

/// Everything one run counts.
pub struct RunStats {
    /// calls started in the timed window
    pub attempted: AtomicU64,
    /// calls ending with 200 to the authenticated REGISTER
    pub ok: AtomicU64,
    /// non-200 final answer (or no challenge in the 401)
    pub failed_status: AtomicU64,
    /// no final answer within the timeout
    pub failed_timeout: AtomicU64,
    /// connection closed / broken / unparseable answer
    pub failed_conn: AtomicU64,
    /// connections opened again during the run after one broke
    pub reconnects: AtomicU64,
    /// how late calls started against their schedule (client or server falling behind)
    pub lag: Histogram,
    /// REGISTER -> 401
    pub t_challenge: Histogram,
    /// REGISTER with credentials -> 200
    pub t_auth: Histogram,
    /// last completion, µs after the run's start
    pub last_done_us: AtomicU64,
    /// first few distinct non-200 statuses seen: status -> count (small array)
    pub statuses: [AtomicU64; 8],
}

/// Status codes tracked individually in `statuses`.
pub const TRACKED: [u16; 8] = [401, 403, 404, 408, 423, 480, 500, 503];

impl RunStats {
    pub fn new() -> Self {
        RunStats {
            attempted: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            failed_status: AtomicU64::new(0),
            failed_timeout: AtomicU64::new(0),
            failed_conn: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            lag: Histogram::new(),
            t_challenge: Histogram::new(),
            t_auth: Histogram::new(),
            last_done_us: AtomicU64::new(0),
            statuses: Default::default(),
        }
    }

    pub fn status(&self, code: u16) {
        if let Some(i) = TRACKED.iter().position(|&c| c == code) {
            self.statuses[i].fetch_add(1, Relaxed);
        }
    }

    /// The JSON summary of a run of `duration` s at `rate` calls/s over `conns` connections.
    pub fn json(&self, rate: f64, duration: f64, conns: usize, alive: usize, client_cpu_s: f64) -> String {
        let ok = self.ok.load(Relaxed);
        let att = self.attempted.load(Relaxed);
        let fs = self.failed_status.load(Relaxed);
        let ft = self.failed_timeout.load(Relaxed);
        let fc = self.failed_conn.load(Relaxed);
        let failed = fs + ft + fc;
        let elapsed = (self.last_done_us.load(Relaxed) as f64 / 1e6).max(duration);
        let pct = if att > 0 { 100.0 * failed as f64 / att as f64 } else { 0.0 };
        let statuses: Vec<String> = TRACKED
            .iter()
            .zip(self.statuses.iter())
            .filter(|(_, n)| n.load(Relaxed) > 0)
            .map(|(c, n)| format!("\"{c}\":{}", n.load(Relaxed)))
            .collect();
        format!(
            "{{\"target_rate\":{rate},\"duration_s\":{duration},\"connections\":{conns},\"connections_alive\":{alive},\
             \"attempted\":{att},\"ok\":{ok},\"failed\":{failed},\"failed_pct\":{pct:.4},\"failed_status\":{fs},\
             \"failed_timeout\":{ft},\"failed_conn\":{fc},\"reconnects\":{rc},\"elapsed_s\":{elapsed:.3},\
             \"achieved_rate\":{ach:.1},\"register_tps\":{tps:.1},\"latency_ms\":{{\"challenge\":{t1},\"auth\":{t2}}},\
             \"start_lag_ms\":{lag},\"statuses\":{{{st}}},\"client_cpu_s\":{client_cpu_s:.2}}}",
            rc = self.reconnects.load(Relaxed),
            ach = ok as f64 / elapsed,
            tps = 2.0 * ok as f64 / elapsed,
            t1 = self.t_challenge.json(),
            t2 = self.t_auth.json(),
            lag = self.lag.json(),
            st = statuses.join(","),
        )
    }
}

/// utime + stime of this process in seconds (/proc/self/stat).
pub fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = &s[s.rfind(')').map(|i| i + 2).unwrap_or(0)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let h = Histogram::new();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us * 10));
        }
        assert_eq!(h.quantile_ms(0.5), Some(5.01)); // upper edge of the 10 µs bucket
        assert_eq!(h.quantile_ms(0.99), Some(9.91));
        h.record(Duration::from_millis(250));
        assert_eq!(h.quantile_ms(1.0), Some(251.0));
    }
}
