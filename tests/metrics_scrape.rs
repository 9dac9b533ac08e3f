//! `GET /metrics` scraped after real traffic and parsed with a Prometheus text-format parser
//! (the `prometheus-parse` crate), checking the metrics ops rely on carry the right values.

mod support;

use std::collections::HashMap;

use support::{Algorithm, SipUa, TestServer, Transport};

fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape.samples.iter().find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))).map(
        |s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(ref buckets) => buckets.last().map(|b| b.count).unwrap_or(0.0),
            prometheus_parse::Value::Summary(_) => f64::NAN,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_count_real_traffic() {
    let srv = TestServer::start();
    let admin = srv.admin();
    admin.create_user("alice", "1001").await;
    admin.create_device("0004f2a1b2c3", "alice", Some("1001"), Some("dev1001"), Some("secret-1001-pw")).await;
    let mut udp = SipUa::for_server(&srv, Transport::Udp).await;
    let ok = udp.register("1001", "dev1001", "secret-1001-pw", Some(600), "", Algorithm::Sha256).await;
    assert_eq!(ok.status(), Some(200), "{}", ok.raw);
    let mut tcp = SipUa::for_server(&srv, Transport::Tcp).await;
    let bad = tcp.register("1001", "dev1001", "wrong-password", Some(600), "", Algorithm::Md5).await;
    assert_eq!(bad.status(), Some(403), "{}", bad.raw);

    let text = reqwest::get(format!("{}/metrics", srv.admin_url())).await.unwrap().text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text format");
    let names: HashMap<&str, usize> = scrape.samples.iter().fold(HashMap::new(), |mut m, s| {
        *m.entry(s.metric.as_str()).or_default() += 1;
        m
    });
    for name in names.keys() {
        assert!(name.starts_with("deskline_"), "metric {name} is not named deskline_*");
    }
    assert_eq!(sample(&scrape, "deskline_registrations", &[("transport", "udp")]), Some(1.0), "{text}");
    assert_eq!(sample(&scrape, "deskline_register_responses_total", &[("status", "200")]), Some(1.0), "{text}");
    assert!(sample(&scrape, "deskline_register_responses_total", &[("status", "401")]).unwrap_or(0.0) >= 2.0, "{text}");
    assert_eq!(sample(&scrape, "deskline_auth_failures_total", &[]), Some(1.0), "{text}");
    assert_eq!(sample(&scrape, "deskline_open_connections", &[("transport", "tcp")]), Some(1.0), "{text}");
    assert!(
        names.contains_key("deskline_sip_request_latency_seconds_bucket")
            || names.contains_key("deskline_sip_request_latency_seconds"),
        "{text}"
    );
    assert!(names.keys().any(|n| n.starts_with("deskline_store_commit_latency_seconds")), "{text}");
}
