//! The message header as raw bytes, written from the spec (§3.3) and not
//! from `kbus-wire`, for tests that must judge the module independently of
//! the crates (the hostile fuzzer) or build headers the crates refuse to.

/// Pointer size of this ABI.
pub const PTR: usize = std::mem::size_of::<usize>();
/// Header length `H`: 88 on 64-bit ABIs, 72 on 32-bit ones.
pub const H: usize = if PTR == 8 { 88 } else { 72 };
/// Offset of the name pointer (after the 4 padding bytes on 64-bit).
pub const NAME_PTR_OFF: usize = if PTR == 8 { 64 } else { 60 };
/// Offset of the data pointer.
pub const DATA_PTR_OFF: usize = NAME_PTR_OFF + PTR;
/// Offset of the header's end guard.
pub const END_GUARD_OFF: usize = DATA_PTR_OFF + PTR;
/// `KBUS_MSG_START_GUARD`.
pub const START: u32 = 0x7375_624B;
/// `KBUS_MSG_END_GUARD`.
pub const END: u32 = 0x4B62_7573;

/// The header fields of a message to write, other than the guards, the
/// lengths and the pointers (which [`header`] takes separately, so they can
/// be wrong on purpose). Every guest test that builds raw headers uses this
/// one struct.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderFields {
    /// `id` (network_id, serial_num).
    pub id: (u32, u32),
    /// `in_reply_to`.
    pub in_reply_to: (u32, u32),
    /// `to`.
    pub to: u32,
    /// `from`.
    pub from: u32,
    /// `orig_from` (network_id, local_id).
    pub orig_from: (u32, u32),
    /// `final_to`.
    pub final_to: (u32, u32),
    /// `extra`.
    pub extra: u32,
    /// `flags`.
    pub flags: u32,
}

/// The `u32` at `off`, host byte order.
pub fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(b[off..off + 4].try_into().unwrap())
}

/// Store `v` at `off`, host byte order.
pub fn set_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

/// Store a pointer-sized `v` at `off`.
pub fn set_ptr(b: &mut [u8], off: usize, v: usize) {
    b[off..off + PTR].copy_from_slice(&v.to_ne_bytes());
}

/// `n` rounded up to a multiple of 4.
pub fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// `ENTIRE(name_len, data_len)` for this ABI.
pub fn entire(name_len: usize, data_len: usize) -> usize {
    H + pad4(name_len + 1) + pad4(data_len) + 4
}

/// A header (`H` bytes) with the given fields, lengths and pointers.
pub fn header(h: &HeaderFields, name_len: u32, data_len: u32, name: usize, data: usize) -> Vec<u8> {
    let mut b = vec![0u8; H];
    set_u32(&mut b, 0, START);
    set_u32(&mut b, 4, h.id.0);
    set_u32(&mut b, 8, h.id.1);
    set_u32(&mut b, 12, h.in_reply_to.0);
    set_u32(&mut b, 16, h.in_reply_to.1);
    set_u32(&mut b, 20, h.to);
    set_u32(&mut b, 24, h.from);
    set_u32(&mut b, 28, h.orig_from.0);
    set_u32(&mut b, 32, h.orig_from.1);
    set_u32(&mut b, 36, h.final_to.0);
    set_u32(&mut b, 40, h.final_to.1);
    set_u32(&mut b, 44, h.extra);
    set_u32(&mut b, 48, h.flags);
    set_u32(&mut b, 52, name_len);
    set_u32(&mut b, 56, data_len);
    set_ptr(&mut b, NAME_PTR_OFF, name);
    set_ptr(&mut b, DATA_PTR_OFF, data);
    set_u32(&mut b, END_GUARD_OFF, END);
    b
}

/// An entire message: header, name and data with zero padding, final guard.
pub fn entire_bytes(h: &HeaderFields, name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut b = header(h, name.len() as u32, data.len() as u32, 0, 0);
    b.extend_from_slice(name);
    b.resize(H + pad4(name.len() + 1), 0);
    b.extend_from_slice(data);
    b.resize(H + pad4(name.len() + 1) + pad4(data.len()), 0);
    b.extend_from_slice(&END.to_ne_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The independent layout agrees with kbus-wire's (a cross-check, not
    /// a shared source).
    #[test]
    fn agrees_with_kbus_wire() {
        assert_eq!(H, kbus_wire::NATIVE_HEADER_LEN);
        assert_eq!((START, END), (kbus_wire::START_GUARD, kbus_wire::END_GUARD));
        let h = HeaderFields {
            id: (1, 2),
            flags: 3,
            ..HeaderFields::default()
        };
        let b = entire_bytes(&h, b"$.A.B", b"xyz");
        assert_eq!(b.len(), entire(5, 3));
        let m = kbus_wire::Message::new_checked(&b[..]).unwrap();
        assert_eq!(
            (m.id(), m.flags().bits()),
            (kbus_wire::MessageId::new(1, 2), 3)
        );
        assert_eq!(
            (m.name(), m.data()),
            (kbus_wire::Name::new("$.A.B"), &b"xyz"[..])
        );
    }
}
