//! Running the sensor as a service: `ksensor live` ([`live`]), its config file ([`config`]),
//! the metrics listener ([`web`]) and structured logs ([`log`]); and `ksensor report`
//! ([`report_cmd`]) over saved reports. Library stages stay free of threads and signals; this
//! is where they are wired to them.

pub mod config;
pub mod live;
pub mod log;
pub mod report_cmd;
pub mod web;
