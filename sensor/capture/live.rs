//! Live capture through libpcap.
//!
//! Contract: [`LiveSource::open`] opens one capture handle on an interface with the
//! [`LiveOptions`] (promiscuous mode, snap length, kernel buffer size, BPF filter, immediate
//! mode or a block timeout) and puts it in non-blocking mode: [`PacketSource::next_packets`]
//! hands out at most `max` packets that are already in the kernel ring (one `pcap_dispatch`,
//! the bytes borrowed from libpcap's buffer, no copy) and returns [`SourceStatus::Idle`] at
//! once when there are none, so the caller can sleep, flush and watch for signals. Non-blocking
//! matters: with TPACKET_V3 a blocking read on a quiet link may never return.
//!
//! [`LiveSource::join_fanout`] joins the handle to a Linux `PACKET_FANOUT` group in hash mode
//! (packet(7)): the kernel spreads flows over the group's handles with a symmetric flow hash,
//! so both directions of a flow reach the same handle. [`LiveSource::stats_delta`] reads
//! libpcap's received / dropped / interface-dropped counters (32-bit, wrapping) and returns what
//! changed since the previous call as 64-bit deltas.
//!
//! Errors are one line: the interface, then what libpcap said, classified as a
//! [`LiveErrorKind`] (no such device, permission denied, interface down, other).

use std::os::fd::AsRawFd;

use pcap::{Active, Capture};

use crate::capture::{
    CaptureError, LinkType, LiveErrorKind, PacketMeta, PacketSource, SourceStatus,
};
use crate::time::Timestamp;

/// Default snap length: the largest Ethernet jumbo frame plus headers. Names sit in the first
/// few hundred bytes, but a ClientHello split over two full-size segments needs both whole.
pub const DEFAULT_SNAPLEN: u32 = 65_535;
/// Default kernel ring size (64 MiB): about 50 ms of a saturated 10 Gb/s link, so a short
/// stall of the pipeline does not turn into drops.
pub const DEFAULT_BUFFER_BYTES: u32 = 64 << 20;
/// Default block timeout: how long the kernel may hold a partly filled TPACKET_V3 block. Also
/// the worst added latency before a packet is seen (events are due within a second).
pub const DEFAULT_TIMEOUT_MS: u32 = 100;
/// Largest kernel buffer accepted (1 GiB): more is a typo, and libpcap takes an `int`.
pub const MAX_BUFFER_BYTES: u32 = 1 << 30;
/// Largest snap length accepted (libpcap's own maximum, MAXIMUM_SNAPLEN).
pub const MAX_SNAPLEN: u32 = 262_144;
/// Largest block timeout accepted: beyond a few seconds events would be late.
pub const MAX_TIMEOUT_MS: u32 = 10_000;
/// Longest BPF filter accepted; real filters are a line or two.
pub const MAX_BPF_LEN: usize = 4_096;
/// Most handles in one fanout group: the kernel's historical group size (PACKET_FANOUT_MAX).
pub const MAX_FANOUT: usize = 256;

/// `SOL_PACKET` and `PACKET_FANOUT` from `<linux/if_packet.h>` (packet(7), "PACKET_FANOUT").
const SOL_PACKET: i32 = 263;
const PACKET_FANOUT: i32 = 18;
/// Fanout mode: by flow hash. The kernel hashes with `skb_get_hash_symmetric`, so both
/// directions of a connection hash alike.
const PACKET_FANOUT_HASH: u32 = 0;

/// libpcap statistics of one handle, as deltas since the previous report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    pub received: u64,
    pub dropped: u64,
    pub if_dropped: u64,
}

/// How a handle is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveOptions {
    pub promisc: bool,
    pub snaplen: u32,
    pub buffer_bytes: u32,
    /// Deliver each packet as soon as it arrives (TPACKET_V2 per-packet wakeups) instead of in
    /// blocks retired every `timeout_ms`.
    pub immediate: bool,
    pub timeout_ms: u32,
    /// A BPF filter in pcap-filter(7) syntax.
    pub bpf: Option<String>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            promisc: true,
            snaplen: DEFAULT_SNAPLEN,
            buffer_bytes: DEFAULT_BUFFER_BYTES,
            immediate: false,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            bpf: None,
        }
    }
}

impl LiveOptions {
    /// Checks every value against its cap; the message names the option.
    pub fn validate(&self) -> Result<(), String> {
        if self.snaplen == 0 || self.snaplen > MAX_SNAPLEN {
            return Err(format!("--snaplen must be 1..={MAX_SNAPLEN}"));
        }
        if self.buffer_bytes == 0 || self.buffer_bytes > MAX_BUFFER_BYTES {
            return Err(format!(
                "--buffer-size must be 1..={MAX_BUFFER_BYTES} bytes"
            ));
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            return Err(format!("--timeout-ms must be 1..={MAX_TIMEOUT_MS}"));
        }
        if self.bpf.as_ref().is_some_and(|f| f.len() > MAX_BPF_LEN) {
            return Err(format!("--bpf is longer than {MAX_BPF_LEN} bytes"));
        }
        Ok(())
    }
}

/// A live capture failure: what kind, and libpcap's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveError {
    pub interface: String,
    pub kind: LiveErrorKind,
    pub message: String,
}

/// A short phrase for a failure kind, for one-line errors.
pub fn describe(kind: LiveErrorKind) -> &'static str {
    match kind {
        LiveErrorKind::NoSuchDevice => "no such interface",
        LiveErrorKind::PermissionDenied => {
            "permission denied (needs root or CAP_NET_RAW and CAP_NET_ADMIN)"
        }
        LiveErrorKind::InterfaceDown => "interface is down or went away",
        LiveErrorKind::Other => "capture failed",
    }
}

impl std::fmt::Display for LiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = describe(self.kind);
        let message = self.message.lines().next().unwrap_or("");
        write!(f, "{}: {what}: {message}", self.interface)
    }
}

impl std::error::Error for LiveError {}

/// Sorts libpcap's message into a kind (libpcap reports these only as text).
pub fn classify(message: &str) -> LiveErrorKind {
    let m = message.to_ascii_lowercase();
    if m.contains("no such device") || m.contains("doesn't exist") || m.contains("not found") {
        LiveErrorKind::NoSuchDevice
    } else if m.contains("permission") || m.contains("not permitted") {
        LiveErrorKind::PermissionDenied
    } else if m.contains("went down")
        || m.contains("disappeared")
        || m.contains("network is down")
        || m.contains("not up")
        || m.contains("no such device or address")
    {
        LiveErrorKind::InterfaceDown
    } else {
        LiveErrorKind::Other
    }
}

fn live_error(interface: &str, e: &pcap::Error) -> LiveError {
    let message = e.to_string();
    LiveError {
        interface: interface.to_string(),
        kind: classify(&message),
        message,
    }
}

/// Checks the interface name: non-empty, no NUL, at most IFNAMSIZ-1 bytes (netdevice(7)).
fn check_name(interface: &str) -> Result<(), LiveError> {
    /// IFNAMSIZ (16) minus the terminating NUL.
    const MAX_IFNAME_LEN: usize = 15;
    if interface.is_empty() || interface.len() > MAX_IFNAME_LEN || interface.contains('\0') {
        return Err(LiveError {
            interface: interface.to_string(),
            kind: LiveErrorKind::NoSuchDevice,
            message: format!("interface names are 1 to {MAX_IFNAME_LEN} bytes"),
        });
    }
    Ok(())
}

fn to_int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// One live capture handle.
pub struct LiveSource {
    interface: String,
    input: u16,
    link: LinkType,
    cap: Capture<Active>,
    last: pcap::Stat,
}

impl LiveSource {
    /// Opens `interface`; packets are tagged with input index `input`.
    pub fn open(interface: &str, input: u16, opts: &LiveOptions) -> Result<LiveSource, LiveError> {
        check_name(interface)?;
        let err = |e: pcap::Error| live_error(interface, &e);
        let cap = Capture::from_device(interface)
            .map_err(err)?
            .promisc(opts.promisc)
            .snaplen(to_int(opts.snaplen))
            .buffer_size(to_int(opts.buffer_bytes))
            .timeout(to_int(opts.timeout_ms))
            .immediate_mode(opts.immediate)
            .open()
            .map_err(err)?;
        let mut cap = cap.setnonblock().map_err(err)?;
        if let Some(filter) = &opts.bpf {
            cap.filter(filter, true).map_err(|e| LiveError {
                interface: interface.to_string(),
                kind: LiveErrorKind::Other,
                message: format!("bad --bpf filter: {e}"),
            })?;
        }
        let link = LinkType(u32::try_from(cap.get_datalink().0).unwrap_or(u32::MAX));
        let last = cap.stats().unwrap_or(pcap::Stat {
            received: 0,
            dropped: 0,
            if_dropped: 0,
        });
        Ok(LiveSource {
            interface: interface.to_string(),
            input,
            link,
            cap,
            last,
        })
    }

    /// Joins fanout group `group` in hash mode. Every handle of the group must be opened on the
    /// same interface with the same options (the kernel refuses mismatched members).
    pub fn join_fanout(&self, group: u16) -> Result<(), LiveError> {
        let arg = u32::from(group) | (PACKET_FANOUT_HASH << 16);
        set_packet_fanout(self.cap.as_raw_fd(), arg).map_err(|e| LiveError {
            interface: self.interface.clone(),
            kind: LiveErrorKind::Other,
            message: format!("joining PACKET_FANOUT group {group}: {e}"),
        })
    }

    /// libpcap counters since the previous call (the 32-bit counters wrap; deltas do not).
    pub fn stats_delta(&mut self) -> Result<CaptureStats, LiveError> {
        let now = self
            .cap
            .stats()
            .map_err(|e| live_error(&self.interface, &e))?;
        let d = CaptureStats {
            received: u64::from(now.received.wrapping_sub(self.last.received)),
            dropped: u64::from(now.dropped.wrapping_sub(self.last.dropped)),
            if_dropped: u64::from(now.if_dropped.wrapping_sub(self.last.if_dropped)),
        };
        self.last = now;
        Ok(d)
    }
}

/// `setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, 4)`: the one call the pcap crate cannot
/// make for us (libpcap has no fanout API).
#[allow(unsafe_code)]
fn set_packet_fanout(fd: i32, arg: u32) -> std::io::Result<()> {
    let len = libc::socklen_t::try_from(std::mem::size_of::<u32>()).unwrap_or(4);
    // SAFETY: `fd` is the open packet socket of a live `Capture` borrowed by the caller for the
    // duration of the call; the option value points at a local `u32` that outlives the call,
    // and `len` is its exact size, so the kernel reads 4 valid bytes and writes nothing.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            SOL_PACKET,
            PACKET_FANOUT,
            std::ptr::from_ref(&arg).cast::<libc::c_void>(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl PacketSource for LiveSource {
    fn next_packets(
        &mut self,
        max: usize,
        sink: &mut dyn FnMut(PacketMeta, &[u8]),
    ) -> Result<SourceStatus, CaptureError> {
        let (link, input) = (self.link, self.input);
        let read = self.cap.dispatch(Some(max.max(1)), |p| {
            let secs = u64::try_from(p.header.ts.tv_sec).unwrap_or(0);
            let micros = u64::try_from(p.header.ts.tv_usec).unwrap_or(0);
            let meta = PacketMeta {
                ts: Timestamp::from_secs_nanos(secs, micros.saturating_mul(1_000)),
                link,
                orig_len: p.header.len,
                input,
            };
            sink(meta, p.data);
        });
        match read {
            Ok(0) => Ok(SourceStatus::Idle),
            Ok(_) => Ok(SourceStatus::More),
            Err(pcap::Error::TimeoutExpired) => Ok(SourceStatus::Idle),
            Err(e) => Err(CaptureError::Live(classify(&e.to_string()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_no_such_device() {
        assert_eq!(
            classify("SIOCGIFHWADDR: No such device"),
            LiveErrorKind::NoSuchDevice
        );
        assert_eq!(
            classify("nosuch0: No such device exists (No such device exists)"),
            LiveErrorKind::NoSuchDevice
        );
    }

    #[test]
    fn classify_permission() {
        assert_eq!(
            classify("You don't have permission to perform this capture on that device (socket: Operation not permitted)"),
            LiveErrorKind::PermissionDenied
        );
    }

    #[test]
    fn classify_interface_down() {
        assert_eq!(
            classify("The interface went down"),
            LiveErrorKind::InterfaceDown
        );
        assert_eq!(
            classify("The interface disappeared"),
            LiveErrorKind::InterfaceDown
        );
        assert_eq!(classify("something else"), LiveErrorKind::Other);
    }

    #[test]
    fn open_rejects_bad_names_without_libpcap() {
        for name in ["", "a-name-longer-than-15", "nul\0x"] {
            let e = LiveSource::open(name, 0, &LiveOptions::default())
                .err()
                .map(|e| e.kind);
            assert_eq!(e, Some(LiveErrorKind::NoSuchDevice), "{name:?}");
        }
    }

    #[test]
    fn open_missing_interface_is_one_clear_line() {
        let e = match LiveSource::open("ksnosuch0", 0, &LiveOptions::default()) {
            Ok(_) => panic!("opened a missing interface"),
            Err(e) => e,
        };
        // Unprivileged runs get a permission error first; both are one line naming the device.
        assert!(matches!(
            e.kind,
            LiveErrorKind::NoSuchDevice | LiveErrorKind::PermissionDenied
        ));
        let line = e.to_string();
        assert!(line.starts_with("ksnosuch0: "), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }

    #[test]
    fn options_validate_caps() {
        let ok = LiveOptions::default();
        assert_eq!(ok.validate(), Ok(()));
        let bad = |f: fn(&mut LiveOptions)| {
            let mut o = LiveOptions::default();
            f(&mut o);
            o.validate().is_err()
        };
        assert!(bad(|o| o.snaplen = 0));
        assert!(bad(|o| o.snaplen = MAX_SNAPLEN + 1));
        assert!(bad(|o| o.buffer_bytes = MAX_BUFFER_BYTES + 1));
        assert!(bad(|o| o.timeout_ms = 0));
        assert!(bad(|o| o.timeout_ms = MAX_TIMEOUT_MS + 1));
        assert!(bad(|o| o.bpf = Some("x".repeat(MAX_BPF_LEN + 1))));
    }

    #[test]
    fn loopback_capture_sees_a_udp_datagram_and_fanout_joins() {
        // Needs CAP_NET_RAW; CI runs as root. Skip quietly elsewhere.
        let opts = LiveOptions {
            immediate: true,
            bpf: Some("udp port 53999".into()),
            ..LiveOptions::default()
        };
        let mut src = match LiveSource::open("lo", 3, &opts) {
            Ok(s) => s,
            Err(e) if e.kind == LiveErrorKind::PermissionDenied => return,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(src.join_fanout(0x4b53).map_err(|e| e.to_string()), Ok(()));
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.send_to(b"ksensor-live-test", "127.0.0.1:53999")
            .expect("send");
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while seen.is_empty() && std::time::Instant::now() < deadline {
            let status = src
                .next_packets(16, &mut |meta, data| seen.push((meta, data.to_vec())))
                .expect("read");
            if status == SourceStatus::Idle {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        let (meta, data) = seen.first().expect("no packet captured on lo");
        assert_eq!(meta.input, 3);
        assert_eq!(meta.link, LinkType::ETHERNET);
        assert!(data.ends_with(b"ksensor-live-test"));
        let stats = src.stats_delta().expect("stats");
        assert!(stats.received >= 1, "{stats:?}");
    }
}
