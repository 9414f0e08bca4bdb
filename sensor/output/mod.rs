//! Output stage: events (JSON lines, native or Suricata-style EVE), reports (JSON, Markdown, CSV) and the terminal summary.
//! Writers never parse; they render what the collector and inventory hold.

pub mod describe;
pub mod eve;
pub mod events;
pub mod limit;
pub mod report;
pub mod summary;

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_string(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = *mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}
