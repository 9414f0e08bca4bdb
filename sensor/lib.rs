//! ksensor: a passive sensor that finds hosts running Kaspersky antivirus.
//!
//! The pipeline is a chain of stages, each a module with one job:
//!
//! ```text
//! capture ─► decode ─► flow (defrag, TCP reassembly, flow table) ─► proto (dns, tls, http, quic)
//!         ─► rules (name matching) ─► inventory (hosts, verdicts) ─► output / metrics
//! ```
//!
//! * [`capture`] turns files or interfaces into timestamped packets ([`capture::PacketSource`]).
//! * [`decode`] walks link, IP and tunnel headers of one packet without copying it.
//! * [`flow`] owns per-worker state: IP fragments, TCP streams, QUIC Initial buffers.
//! * [`proto`] holds the pure parsers: bytes in, names out; they never format output.
//! * [`rules`] loads rule files and matches names at label boundaries.
//! * [`inventory`] accumulates per-host evidence and decides verdicts.
//! * [`pipeline`] wires the stages on one or several cores.
//! * [`output`] and [`metrics`] write events, reports and Prometheus metrics; they never parse.
// `deny`, not `forbid`: one function, `capture::live::set_packet_fanout`, needs `setsockopt`
// (PACKET_FANOUT has no safe wrapper) and carries its own `allow` with a SAFETY comment.
#![deny(unsafe_code)]

pub mod app;
pub mod capture;
pub mod decode;
pub mod flow;
pub mod hex;
pub mod inventory;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod proto;
pub mod reason;
pub mod rules;
#[cfg(test)]
pub mod test_rng;
pub mod time;
