//! Output stage: events (JSON lines, native or Suricata-style EVE), reports (JSON, Markdown,
//! CSV, HTML) and the terminal summary. Writers never parse packets; they render what the
//! collector and inventory hold. Reports go through one model ([`model`]) that the JSON report
//! writes and reads back, so saved reports can be re-rendered and merged ([`merge`]) without
//! the captures.

pub mod describe;
pub mod eve;
pub mod events;
pub mod html;
pub mod limit;
pub mod merge;
pub mod model;
pub mod render;
pub mod report;
pub mod summary;

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_string(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = *mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}
