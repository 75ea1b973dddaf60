//! The Prometheus text endpoint (`[watch] metrics = "127.0.0.1:9187"`): prometheus-client's
//! registry, served by tiny_http on its own thread. Gauges that depend on the time
//! (seconds since the last success) are computed at scrape time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabel {
    account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    account: String,
    class: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

struct Inner {
    registry: Registry,
    messages: Family<AccountLabel, Counter>,
    bytes: Family<AccountLabel, Counter>,
    sessions: Family<AccountLabel, Counter>,
    failures: Family<FailureLabels, Counter>,
    since_success: Family<AccountLabel, FloatGauge>,
    token_expiry: Family<AccountLabel, Gauge>,
    quarantined: Family<AccountLabel, Gauge>,
    alert: Family<AccountLabel, Gauge>,
    running: Gauge,
    /// Per account: when it last succeeded (Unix seconds), else when watch began watching it.
    last_success: HashMap<String, f64>,
}

/// The service's metrics; clones share them.
#[derive(Clone)]
pub struct Metrics(Arc<Mutex<Inner>>);

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A label value escaped as the text format wants (`\\`, `\"`, `\n`): prometheus-client writes
/// label values as they are, and an account named `a"} 1` must not forge a sample.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn label(account: &str) -> AccountLabel {
    AccountLabel {
        account: escape(account),
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("popwire");
        let messages = Family::<AccountLabel, Counter>::default();
        let bytes = Family::<AccountLabel, Counter>::default();
        let sessions = Family::<AccountLabel, Counter>::default();
        let failures = Family::<FailureLabels, Counter>::default();
        let since_success = Family::<AccountLabel, FloatGauge>::default();
        let token_expiry = Family::<AccountLabel, Gauge>::default();
        let quarantined = Family::<AccountLabel, Gauge>::default();
        let alert = Family::<AccountLabel, Gauge>::default();
        let running = Gauge::default();
        registry.register("messages", "Messages fetched and stored", messages.clone());
        registry.register(
            "bytes",
            "Octets of messages fetched and stored",
            bytes.clone(),
        );
        registry.register("sessions", "Sessions run", sessions.clone());
        registry.register(
            "failures",
            "Failed sessions, by error class",
            failures.clone(),
        );
        registry.register(
            "seconds_since_success",
            "Seconds since the account's last successful session (since watch began, before one)",
            since_success.clone(),
        );
        registry.register(
            "oauth_token_expiry_timestamp_seconds",
            "When the stored OAuth access token expires (Unix time)",
            token_expiry.clone(),
        );
        registry.register(
            "quarantined_messages",
            "Messages quarantined: left on the server, skipped",
            quarantined.clone(),
        );
        registry.register(
            "alert",
            "1 while the account has not succeeded for its alert_after",
            alert.clone(),
        );
        registry.register("running_sessions", "Sessions running now", running.clone());
        Self(Arc::new(Mutex::new(Inner {
            registry,
            messages,
            bytes,
            sessions,
            failures,
            since_success,
            token_expiry,
            quarantined,
            alert,
            running,
            last_success: HashMap::new(),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts tracking an account (its "since success" clock starts now unless it already
    /// succeeded at `last_success`).
    pub fn watch_account(&self, account: &str, last_success: Option<f64>) {
        let mut m = self.lock();
        let at = last_success.unwrap_or_else(unix_now);
        m.last_success.entry(account.to_owned()).or_insert(at);
        drop(m.messages.get_or_create(&label(account)));
        drop(m.sessions.get_or_create(&label(account)));
        drop(m.quarantined.get_or_create(&label(account)));
        drop(m.alert.get_or_create(&label(account)));
    }

    /// Drops a removed account's series.
    pub fn forget_account(&self, account: &str) {
        let mut m = self.lock();
        m.last_success.remove(account);
        let l = label(account);
        m.messages.remove(&l);
        m.bytes.remove(&l);
        m.sessions.remove(&l);
        m.since_success.remove(&l);
        m.token_expiry.remove(&l);
        m.quarantined.remove(&l);
        m.alert.remove(&l);
        for class in popwire::proto::ErrorClass::ALL_NAMES {
            m.failures.remove(&FailureLabels {
                account: l.account.clone(),
                class: class.to_owned(),
            });
        }
    }

    /// Counts what a session committed, whether it then ended well or not.
    pub fn stored(&self, account: &str, messages: u64, bytes: u64) {
        let m = self.lock();
        let l = label(account);
        m.messages.get_or_create(&l).inc_by(messages);
        m.bytes.get_or_create(&l).inc_by(bytes);
    }

    pub fn success(&self, account: &str) {
        let mut m = self.lock();
        m.sessions.get_or_create(&label(account)).inc();
        m.last_success.insert(account.to_owned(), unix_now());
    }

    pub fn failure(&self, account: &str, class: &str) {
        let m = self.lock();
        m.sessions.get_or_create(&label(account)).inc();
        m.failures
            .get_or_create(&FailureLabels {
                account: escape(account),
                class: class.to_owned(),
            })
            .inc();
    }

    pub fn set_quarantined(&self, account: &str, count: usize) {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        self.lock()
            .quarantined
            .get_or_create(&label(account))
            .set(count);
    }

    pub fn set_alert(&self, account: &str, on: bool) {
        self.lock()
            .alert
            .get_or_create(&label(account))
            .set(i64::from(on));
    }

    pub fn set_token_expiry(&self, account: &str, expires_at: u64) {
        let at = i64::try_from(expires_at).unwrap_or(i64::MAX);
        self.lock()
            .token_expiry
            .get_or_create(&label(account))
            .set(at);
    }

    pub fn set_running(&self, running: usize) {
        self.lock()
            .running
            .set(i64::try_from(running).unwrap_or(i64::MAX));
    }

    /// The text exposition, with the time-dependent gauges brought up to date.
    pub fn render(&self) -> String {
        let m = self.lock();
        let now = unix_now();
        for (account, at) in &m.last_success {
            m.since_success
                .get_or_create(&label(account))
                .set((now - at).max(0.0));
        }
        let mut out = String::new();
        // Writing into a String does not fail.
        let _ = encode(&mut out, &m.registry);
        out
    }

    /// Serves `/metrics` (and `/`) on `address` from a thread of its own.
    pub fn serve(&self, address: SocketAddr) -> Result<SocketAddr, String> {
        let server = tiny_http::Server::http(address).map_err(|e| e.to_string())?;
        let bound = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| "not an IP listener".to_owned())?;
        let metrics = self.clone();
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for request in server.incoming_requests() {
                    let response = if request.url() == "/metrics" || request.url() == "/" {
                        let header = tiny_http::Header::from_bytes(
                            &b"Content-Type"[..],
                            &b"application/openmetrics-text; version=1.0.0; charset=utf-8"[..],
                        );
                        let mut r = tiny_http::Response::from_string(metrics.render());
                        if let Ok(h) = header {
                            r = r.with_header(h);
                        }
                        r
                    } else {
                        tiny_http::Response::from_string("not found\n").with_status_code(404)
                    };
                    let _ = request.respond(response);
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(bound)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_exposition_names_every_series_with_its_account() {
        let m = Metrics::new();
        m.watch_account("a\"b", None);
        m.stored("a\"b", 3, 300);
        m.success("a\"b");
        // A session that committed a batch and then failed: its message counts too.
        m.stored("a\"b", 1, 100);
        m.failure("a\"b", "timeout");
        m.set_quarantined("a\"b", 2);
        m.set_token_expiry("a\"b", 1_900_000_000);
        let text = m.render();
        for line in [
            "popwire_messages_total{account=\"a\\\"b\"} 4",
            "popwire_bytes_total{account=\"a\\\"b\"} 400",
            "popwire_sessions_total{account=\"a\\\"b\"} 2",
            "popwire_failures_total{account=\"a\\\"b\",class=\"timeout\"} 1",
            "popwire_quarantined_messages{account=\"a\\\"b\"} 2",
            "popwire_oauth_token_expiry_timestamp_seconds{account=\"a\\\"b\"} 1900000000",
            "popwire_alert{account=\"a\\\"b\"} 0",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
        assert!(text.contains("popwire_seconds_since_success{account=\"a\\\"b\"}"));
        m.forget_account("a\"b");
        assert!(!m.render().contains("account=\"a\\\"b\""));
    }
}
