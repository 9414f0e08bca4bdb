//! Kaspersky update files, recognised by their first bytes wherever a body carries them (the
//! HTTP flow hands over the first bytes of each response body).

/// Kaspersky update file formats recognisable from their first bytes (Zeek's file-magic
/// signatures: `KLZF` Kaspersky AV database, `KLD2` Kaspersky update, `DIFF` binary diff).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UpdateMagic {
    Klzf,
    Kld2,
    Diff,
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
}
