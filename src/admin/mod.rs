//! The operators' side: JSON API, event stream, Prometheus metrics, dashboard.
