//! ksensor: a passive sensor that finds hosts running Kaspersky antivirus.
//!
//! The pipeline is a chain of stages, each a module with one job:
//!
//! ```text
//! capture ─► decode ─► flow (defrag, TCP reassembly, flow table) ─► proto (dns, tls, http, quic)
//!         ─► rules (name matching) ─► inventory (hosts, verdicts) ─► output / metrics
//! ```
//!
//! # Layers
//!
//! The modules, bottom to top. A module refers only to modules of the layers below its own,
//! never to a peer of its layer or to a layer above (`tests/layering.rs` reads this list and
//! checks every `crate::` path under `sensor/`). So each stage can be read, tested and
//! benchmarked with only what lies beneath it, and the wiring can change without touching a
//! stage.
//!
//! 1. [`time`], [`hex`], [`reason`], [`fs_error`], `test_rng`: base helpers: capture
//!    timestamps, hex digests, counted refusal reasons (`reason_enum!`), file errors in words
//!    and output-path checks, a seeded generator for tests.
//! 2. [`capture`]: files or interfaces to timestamped packets ([`capture::PacketSource`]), with
//!    the libpcap statistics of live handles.
//! 3. [`decode`]: link, IP and tunnel headers of one packet, without copying it.
//! 4. [`proto`]: the pure parsers (dns, tls, http, quic): bytes in, names out; they never
//!    format output.
//! 5. [`rules`]: loads rule files and matches names at label boundaries.
//! 6. [`observation`]: the stage contract: what a worker reports (names with the rule they
//!    matched, DNS answers, nameless connections, KSC contacts, update payloads) and the
//!    packet context each carries.
//! 7. [`flow`]: per-worker state: IP fragments, TCP streams, QUIC Initial buffers; it calls
//!    the parsers and the rules and emits observations, and defines what a worker counts.
//! 8. [`inventory`]: accumulates per-host evidence from observations and decides verdicts.
//! 9. [`output`], [`metrics`]: write events, reports and Prometheus metrics; they never parse.
//! 10. [`pipeline`]: wires the stages on one or several cores (reader, workers, collector).
//! 11. [`app`]: what the command line runs (live capture, logging, the metrics listener);
//!     `main.rs` parses the command line on top of it.
// `deny`, not `forbid`: one function, `capture::live::set_packet_fanout`, needs `setsockopt`
// (PACKET_FANOUT has no safe wrapper) and carries its own `allow` with a SAFETY comment.
#![deny(unsafe_code)]
// Bytes from outside are hostile: packets, capture files, rule and asset files, requests to the
// metrics listener. Nothing in the library may panic on them, so no unwrap/expect/panic and no
// unchecked indexing or slicing (use `get`, `split_at_checked`, `checked_*`), here once for
// every module; lint levels are inherited by submodules. The few places that may panic by
// design (nothing to do with input bytes) carry an `allow` saying why. Tests may unwrap.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod app;
pub mod capture;
pub mod decode;
pub mod flow;
pub mod fs_error;
pub mod hex;
pub mod inventory;
pub mod metrics;
pub mod observation;
pub mod output;
pub mod pipeline;
pub mod proto;
pub mod reason;
pub mod rules;
#[cfg(test)]
pub mod test_rng;
pub mod time;
