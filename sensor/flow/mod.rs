//! Flow stage: per-worker flow table, IP defragmentation and TCP stream reassembly.

pub mod defrag;
pub mod reassembly;
