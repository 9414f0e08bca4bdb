//! Counters of the metrics listener (`app::web`): connections it closed and why, accept errors,
//! failed logins.
//!
//! Contract: [`WebCounters::register`] adds the families to a [`Metrics`](super::Metrics)
//! registry when a listener starts (a replay has no listener, so its `--metrics-file` output
//! has none of them). The counters are `prometheus` atomics: the listener's thread increments
//! its clones without taking the lock that guards [`Metrics`](super::Metrics). Every label
//! value is one of the closed sets below; client addresses never become labels.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use super::MetricsError;
use crate::reason::Reason;
use crate::reason_enum;

reason_enum! {
    /// Why a login was refused (`ksensor_web_auth_failures_total{reason}`).
    pub enum AuthFailure {
        /// No `Authorization` header.
        Missing => "missing",
        /// Not `Basic` with base64 of `user:password`, or longer than the listener accepts.
        Malformed => "malformed",
        UnknownUser => "unknown_user",
        WrongPassword => "wrong_password",
        /// The source had used up its failed-login budget; nothing was verified.
        RateLimited => "rate_limited",
        /// The verification queue was full; nothing was verified.
        Busy => "busy",
    }
}

reason_enum! {
    /// Why the listener closed a connection it had accepted, other than a normal close
    /// (`ksensor_web_connections_closed_total{reason}`).
    pub enum ConnClose {
        /// At the connection cap with no connection to evict: closed at once.
        Limit => "limit",
        /// Closed to make room for a new connection (the one waiting longest since its last
        /// request).
        Evicted => "evicted",
        TlsHandshakeTimeout => "tls_handshake_timeout",
        TlsHandshakeFailed => "tls_handshake_failed",
        /// No complete request head within the header timeout (also the keep-alive idle
        /// timeout).
        HeaderTimeout => "header_timeout",
        /// The client accepted no byte of a response for the write timeout.
        WriteTimeout => "write_timeout",
        /// Not HTTP/1.x, a head too large, a reset: hyper gave up on it.
        Protocol => "protocol",
    }
}

/// Handles on the listener's series; cheap to clone (each is an `Arc` inside).
#[derive(Clone)]
pub struct WebCounters {
    auth_failures: IntCounterVec,
    closed: IntCounterVec,
    accept_errors: IntCounter,
    open: IntGauge,
}

impl WebCounters {
    /// Registers the listener's families in `r`, every labelled series at zero (so `rate()`
    /// and the shipped alert see them before the first event).
    pub fn register(r: &Registry) -> Result<WebCounters, MetricsError> {
        let auth_failures = IntCounterVec::new(
            Opts::new(
                "ksensor_web_auth_failures_total",
                "Requests to the metrics listener refused for their basic-auth credentials, by reason.",
            ),
            &["reason"],
        )?;
        let closed = IntCounterVec::new(
            Opts::new(
                "ksensor_web_connections_closed_total",
                "Connections the metrics listener closed before the client did, by reason.",
            ),
            &["reason"],
        )?;
        let accept_errors = IntCounter::new(
            "ksensor_web_accept_errors_total",
            "Errors accepting a connection on the metrics listener (out of descriptors, ...).",
        )?;
        let open = IntGauge::new(
            "ksensor_web_connections",
            "Connections open on the metrics listener.",
        )?;
        r.register(Box::new(auth_failures.clone()))?;
        r.register(Box::new(closed.clone()))?;
        r.register(Box::new(accept_errors.clone()))?;
        r.register(Box::new(open.clone()))?;
        for f in AuthFailure::ALL {
            let _ = auth_failures.get_metric_with_label_values(&[f.label()]);
        }
        for c in ConnClose::ALL {
            let _ = closed.get_metric_with_label_values(&[c.label()]);
        }
        Ok(WebCounters {
            auth_failures,
            closed,
            accept_errors,
            open,
        })
    }

    pub fn auth_failed(&self, why: AuthFailure) {
        if let Ok(c) = self
            .auth_failures
            .get_metric_with_label_values(&[why.label()])
        {
            c.inc();
        }
    }

    pub fn closed(&self, why: ConnClose) {
        if let Ok(c) = self.closed.get_metric_with_label_values(&[why.label()]) {
            c.inc();
        }
    }

    pub fn accept_error(&self) {
        self.accept_errors.inc();
    }

    pub fn opened(&self) {
        self.open.inc();
    }

    pub fn released(&self) {
        self.open.dec();
    }
}
