//! Kaspersky updates: update files recognised by their first bytes wherever a body carries
//! them (the HTTP flow hands over the first bytes of each response body), and the request paths
//! Kaspersky updaters fetch (the HTTP flow hands over the path of each request target).
//!
//! Paths, from Kaspersky Update Utility logs, the Check Point connectivity-check script and
//! mirror layouts (sources in `rules/README.md`, "Update paths and payloads"): signature bases under
//! `/bases/av/`, `/bases/ids/`, `/bases/as/` (`/bases/av/kdb/i386/*.kdc`), other bases and
//! their diffs (`/bases/…`, `/diffs/bases/…`), the update index (`/index/u1313g.xml`,
//! `u0607g.xml`, with `.dif`/`.klz`) and the updater index (`/updaters/updater.xml`). Mirrors
//! and OEM servers put them under a prefix (`/v6/index/u1313g.xml` on kav8.zonealarm.com, a
//! KSC share folder), so they are looked for in the first [`MAX_PATH_SEGMENTS`] segments.

/// Kaspersky update file formats recognisable from their first bytes (Zeek's file-magic
/// signatures: `KLZF` Kaspersky AV database, `KLD2` Kaspersky update, `DIFF` binary diff).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UpdateMagic {
    Klzf,
    Kld2,
    Diff,
}

/// What kind of Kaspersky update path a request asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UpdatePath {
    /// Anti-virus, intrusion-detection or anti-spam signature bases (`/bases/av|ids|as/…`):
    /// only the antivirus family fetches them.
    SignatureBases,
    /// Other bases and diffs (`/bases/…`, `/diffs/bases/…`).
    Bases,
    /// The update index (`/index/u*.xml*`).
    Index,
    /// The updater's own index (`/updaters/updater.xml*`).
    Updater,
}

impl UpdatePath {
    pub fn label(self) -> &'static str {
        match self {
            UpdatePath::SignatureBases => "signature-bases",
            UpdatePath::Bases => "bases",
            UpdatePath::Index => "update-index",
            UpdatePath::Updater => "updater-index",
        }
    }
}

/// Path bytes looked at: update paths put their telling segments first; the rest of a long
/// path (file names, query strings) says nothing more.
pub const MAX_PATH_PREFIX: usize = 128;
/// Leading path segments searched for the telling ones: room for a mirror's prefix
/// (`/v6/`, `/KLShare/Updates/`) before them.
pub const MAX_PATH_SEGMENTS: usize = 4;

/// The kind of update path `path` (an origin-form request target or the path of an
/// absolute-form one, RFC 9112 §3.2) is, if any. ASCII letters compare without case (mirrors
/// on Windows serve any case). The query (`?…`) is not part of the path.
pub fn update_path(path: &[u8]) -> Option<UpdatePath> {
    let path = path.get(..MAX_PATH_PREFIX).unwrap_or(path);
    let path = match memchr::memchr(b'?', path) {
        Some(q) => path.get(..q).unwrap_or(path),
        None => path,
    };
    let rest = path.strip_prefix(b"/")?;
    let mut segments = rest.split(|&b| b == b'/');
    let mut previous: Option<&[u8]> = None;
    for _ in 0..=MAX_PATH_SEGMENTS {
        let Some(segment) = segments.next() else {
            break;
        };
        if let Some(prev) = previous {
            let is = |word: &[u8]| prev.eq_ignore_ascii_case(word);
            if is(b"bases") {
                let signature = [&b"av"[..], b"ids", b"as"]
                    .iter()
                    .any(|w| segment.eq_ignore_ascii_case(w));
                return Some(if signature {
                    UpdatePath::SignatureBases
                } else {
                    UpdatePath::Bases
                });
            }
            if is(b"index") && starts_with_ci(segment, b"u") && contains_ci(segment, b".xml") {
                return Some(UpdatePath::Index);
            }
            if is(b"updaters") && starts_with_ci(segment, b"updater.xml") {
                return Some(UpdatePath::Updater);
            }
        }
        previous = Some(segment);
    }
    None
}

fn starts_with_ci(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

fn contains_ci(bytes: &[u8], needle: &[u8]) -> bool {
    bytes
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The update-file magic at the start of a body, if any.
pub fn update_payload_magic(body_start: &[u8]) -> Option<UpdateMagic> {
    match body_start.first_chunk::<4>()? {
        b"KLZF" => Some(UpdateMagic::Klzf),
        b"KLD2" => Some(UpdateMagic::Kld2),
        b"DIFF" => Some(UpdateMagic::Diff),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_magics() {
        assert_eq!(
            update_payload_magic(b"KLZF\0\0\0\x01"),
            Some(UpdateMagic::Klzf)
        );
        assert_eq!(update_payload_magic(b"KLD2"), Some(UpdateMagic::Kld2));
        assert_eq!(update_payload_magic(b"DIFFxxxx"), Some(UpdateMagic::Diff));
        assert_eq!(update_payload_magic(b"KLZ"), None);
        assert_eq!(update_payload_magic(b"klzf"), None);
        assert_eq!(update_payload_magic(b"<?xml"), None);
        assert_eq!(update_payload_magic(b""), None);
    }

    #[test]
    fn update_paths() {
        let p = |s: &str| update_path(s.as_bytes());
        assert_eq!(
            p("/bases/av/kdb/i386/base001.kdc"),
            Some(UpdatePath::SignatureBases)
        );
        assert_eq!(
            p("/bases/IDS/i386/idsbase.kdz"),
            Some(UpdatePath::SignatureBases)
        );
        assert_eq!(
            p("/bases/as/kas5/0/kas5-0607g.xml"),
            Some(UpdatePath::SignatureBases)
        );
        assert_eq!(p("/bases/blst/blst.xml"), Some(UpdatePath::Bases));
        assert_eq!(
            p("/diffs/bases/ids/i386/idsbase.kdz.srf"),
            Some(UpdatePath::SignatureBases)
        );
        assert_eq!(p("/index/u1313g.xml"), Some(UpdatePath::Index));
        assert_eq!(p("/index/u1313g.xml.dif?x=1"), Some(UpdatePath::Index));
        assert_eq!(p("/v6/index/u1313g.xml"), Some(UpdatePath::Index));
        assert_eq!(p("/updaters/updater.xml.klz"), Some(UpdatePath::Updater));
        assert_eq!(
            p("/KLShare/Updates/bases/av/kdb/i386/a.kdc"),
            Some(UpdatePath::SignatureBases)
        );
        // Not update paths: other files, a query that mentions one, too deep, not a path.
        assert_eq!(p("/file.bin"), None);
        assert_eq!(p("/"), None);
        assert_eq!(p("/search?q=/bases/av/x"), None);
        assert_eq!(p("/index/readme.txt"), None);
        assert_eq!(p("/index.html"), None);
        assert_eq!(p("/a/b/c/d/e/bases/av/x"), None);
        assert_eq!(p("bases/av/x"), None);
        assert_eq!(p("*"), None);
        assert_eq!(p(""), None);
        assert_eq!(UpdatePath::SignatureBases.label(), "signature-bases");
    }
}
