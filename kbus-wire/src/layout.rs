//! Header layouts for both pointer widths (spec §3.3), side by side.
//!
//! The kernel's `struct kbus_message_header` has two pointer fields, so its
//! size depends on the ABI: 88 bytes with explicit padding on 64-bit ABIs, 72
//! bytes on 32-bit ABIs. Both are described here as `#[repr(C)]` zerocopy
//! structs ([`Header64`], [`Header32`]) and as [`Layout`] markers
//! ([`Layout64`], [`Layout32`]); [`NativeLayout`] is the one of the machine the
//! code is compiled for. Every other type in this crate is generic over the
//! layout, so a 64-bit tool can read and write 32-bit messages and back.

use core::fmt;
use core::mem::{offset_of, size_of};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::{MessageId, OrigFrom};

/// Byte offsets of the header fields that are the same in both layouts.
pub mod offset {
    /// `start_guard` (u32).
    pub const START_GUARD: usize = 0;
    /// `id` ([`MessageId`](crate::MessageId), 8 bytes).
    pub const ID: usize = 4;
    /// `in_reply_to` ([`MessageId`](crate::MessageId), 8 bytes).
    pub const IN_REPLY_TO: usize = 12;
    /// `to` (u32).
    pub const TO: usize = 20;
    /// `from` (u32).
    pub const FROM: usize = 24;
    /// `orig_from` ([`OrigFrom`](crate::OrigFrom), 8 bytes).
    pub const ORIG_FROM: usize = 28;
    /// `final_to` ([`OrigFrom`](crate::OrigFrom), 8 bytes).
    pub const FINAL_TO: usize = 36;
    /// `extra` (u32, reserved; KBUS forces it to 0 on send).
    pub const EXTRA: usize = 44;
    /// `flags` (u32).
    pub const FLAGS: usize = 48;
    /// `name_len` (u32).
    pub const NAME_LEN: usize = 52;
    /// `data_len` (u32).
    pub const DATA_LEN: usize = 56;
}

/// The 64-bit `struct kbus_message_header`: 88 bytes, padding at 60 and 84.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header64 {
    /// Must be [`START_GUARD`](crate::START_GUARD).
    pub start_guard: u32,
    /// Message id.
    pub id: MessageId,
    /// Id of the Request this answers; zero if not a Reply.
    pub in_reply_to: MessageId,
    /// 0, or the Ksock id of a Reply's or Stateful Request's target.
    pub to: u32,
    /// Sender's Ksock id.
    pub from: u32,
    /// Limpet use.
    pub orig_from: OrigFrom,
    /// Limpet use.
    pub final_to: OrigFrom,
    /// Reserved.
    pub extra: u32,
    /// [`Flags`](crate::Flags) bits.
    pub flags: u32,
    /// Bytes in the name, without terminator.
    pub name_len: u32,
    /// Bytes of data.
    pub data_len: u32,
    /// Alignment padding before the pointers (ignored).
    pub pad0: u32,
    /// Name pointer; 0 (NULL) in an entire message.
    pub name: u64,
    /// Data pointer; 0 (NULL) in an entire message or without data.
    pub data: u64,
    /// Must be [`END_GUARD`](crate::END_GUARD).
    pub end_guard: u32,
    /// Tail padding (ignored).
    pub pad1: u32,
}

/// The 32-bit `struct kbus_message_header`: 72 bytes, no padding.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header32 {
    /// Must be [`START_GUARD`](crate::START_GUARD).
    pub start_guard: u32,
    /// Message id.
    pub id: MessageId,
    /// Id of the Request this answers; zero if not a Reply.
    pub in_reply_to: MessageId,
    /// 0, or the Ksock id of a Reply's or Stateful Request's target.
    pub to: u32,
    /// Sender's Ksock id.
    pub from: u32,
    /// Limpet use.
    pub orig_from: OrigFrom,
    /// Limpet use.
    pub final_to: OrigFrom,
    /// Reserved.
    pub extra: u32,
    /// [`Flags`](crate::Flags) bits.
    pub flags: u32,
    /// Bytes in the name, without terminator.
    pub name_len: u32,
    /// Bytes of data.
    pub data_len: u32,
    /// Name pointer; 0 (NULL) in an entire message.
    pub name: u32,
    /// Data pointer; 0 (NULL) in an entire message or without data.
    pub data: u32,
    /// Must be [`END_GUARD`](crate::END_GUARD).
    pub end_guard: u32,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Layout64 {}
    impl Sealed for super::Layout32 {}
}

/// A header layout: which ABI's `struct kbus_message_header` the bytes use.
///
/// Sealed; implemented by [`Layout64`] and [`Layout32`].
pub trait Layout:
    sealed::Sealed + Copy + Default + fmt::Debug + PartialEq + Eq + Send + Sync + 'static
{
    /// The zerocopy struct of this layout.
    type Header: FromBytes
        + IntoBytes
        + KnownLayout
        + Immutable
        + Copy
        + Default
        + fmt::Debug
        + PartialEq
        + Eq;
    /// `sizeof(struct kbus_message_header)`: 88 or 72 (`H` in the spec).
    const HEADER_LEN: usize;
    /// Size of a pointer field: 8 or 4.
    const POINTER_LEN: usize;
    /// Offset of the `name` pointer.
    const NAME_PTR: usize;
    /// Offset of the `data` pointer.
    const DATA_PTR: usize;
    /// Offset of the header's `end_guard`.
    const END_GUARD: usize;
    /// A short name for messages ("64-bit" / "32-bit").
    const NAME: &'static str;
}

/// The 64-bit ABI layout (`H` = 88).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Layout64;

/// The 32-bit ABI layout (`H` = 72).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Layout32;

impl Layout for Layout64 {
    type Header = Header64;
    const HEADER_LEN: usize = size_of::<Header64>();
    const POINTER_LEN: usize = 8;
    const NAME_PTR: usize = offset_of!(Header64, name);
    const DATA_PTR: usize = offset_of!(Header64, data);
    const END_GUARD: usize = offset_of!(Header64, end_guard);
    const NAME: &'static str = "64-bit";
}

impl Layout for Layout32 {
    type Header = Header32;
    const HEADER_LEN: usize = size_of::<Header32>();
    const POINTER_LEN: usize = 4;
    const NAME_PTR: usize = offset_of!(Header32, name);
    const DATA_PTR: usize = offset_of!(Header32, data);
    const END_GUARD: usize = offset_of!(Header32, end_guard);
    const NAME: &'static str = "32-bit";
}

/// The layout of the machine this crate is compiled for.
#[cfg(target_pointer_width = "64")]
pub type NativeLayout = Layout64;
/// The layout of the machine this crate is compiled for.
#[cfg(not(target_pointer_width = "64"))]
pub type NativeLayout = Layout32;

/// The header struct of the machine this crate is compiled for.
pub type NativeHeader = <NativeLayout as Layout>::Header;

// The layouts of spec §3.3, checked at compile time.
macro_rules! assert_common_offsets {
    ($h:ty) => {
        const _: () = {
            assert!(offset_of!($h, start_guard) == offset::START_GUARD);
            assert!(offset_of!($h, id) == offset::ID);
            assert!(offset_of!($h, in_reply_to) == offset::IN_REPLY_TO);
            assert!(offset_of!($h, to) == offset::TO);
            assert!(offset_of!($h, from) == offset::FROM);
            assert!(offset_of!($h, orig_from) == offset::ORIG_FROM);
            assert!(offset_of!($h, final_to) == offset::FINAL_TO);
            assert!(offset_of!($h, extra) == offset::EXTRA);
            assert!(offset_of!($h, flags) == offset::FLAGS);
            assert!(offset_of!($h, name_len) == offset::NAME_LEN);
            assert!(offset_of!($h, data_len) == offset::DATA_LEN);
        };
    };
}
assert_common_offsets!(Header64);
assert_common_offsets!(Header32);
const _: () = {
    assert!(size_of::<Header64>() == 88);
    assert!(offset_of!(Header64, pad0) == 60);
    assert!(offset_of!(Header64, name) == 64);
    assert!(offset_of!(Header64, data) == 72);
    assert!(offset_of!(Header64, end_guard) == 80);
    assert!(offset_of!(Header64, pad1) == 84);
    assert!(size_of::<Header32>() == 72);
    assert!(offset_of!(Header32, name) == 60);
    assert!(offset_of!(Header32, data) == 64);
    assert!(offset_of!(Header32, end_guard) == 68);
};

/// `PN(n)`: the padded name length, `4 * ((n + 1 + 3) / 4)` (always leaves at
/// least one NUL). Saturates instead of overflowing.
#[inline]
#[must_use]
pub const fn padded_name_len(name_len: usize) -> usize {
    (name_len / 4).saturating_add(1).saturating_mul(4)
}

/// `PD(n)`: the padded data length, `4 * ((n + 3) / 4)`. Saturates instead of
/// overflowing.
#[inline]
#[must_use]
pub const fn padded_data_len(data_len: usize) -> usize {
    let words = data_len / 4 + if data_len % 4 == 0 { 0 } else { 1 };
    words.saturating_mul(4)
}

/// `ENTIRE(n, d) = H + PN(n) + PD(d) + 4`: the size of an entire message in
/// layout `L`. Saturates at `usize::MAX` (no buffer is that large, so a
/// saturated result always fails a length check).
#[inline]
#[must_use]
pub const fn entire_len<L: Layout>(name_len: usize, data_len: usize) -> usize {
    L::HEADER_LEN
        .saturating_add(padded_name_len(name_len))
        .saturating_add(padded_data_len(data_len))
        .saturating_add(4)
}

/// Converts a header `u32` length to `usize` without loss on 32/64-bit
/// machines (saturates on 16-bit ones, which Linux does not run on).
#[inline]
pub(crate) fn len_usize(len: u32) -> usize {
    usize::try_from(len).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_constants() {
        assert_eq!(
            (
                Layout64::HEADER_LEN,
                Layout64::NAME_PTR,
                Layout64::DATA_PTR,
                Layout64::END_GUARD
            ),
            (88, 64, 72, 80)
        );
        assert_eq!(
            (
                Layout32::HEADER_LEN,
                Layout32::NAME_PTR,
                Layout32::DATA_PTR,
                Layout32::END_GUARD
            ),
            (72, 60, 64, 68)
        );
        assert_eq!(
            NativeLayout::HEADER_LEN,
            if cfg!(target_pointer_width = "64") {
                88
            } else {
                72
            }
        );
    }

    #[test]
    fn padded_lengths_saturate() {
        assert_eq!(padded_name_len(0), 4);
        assert_eq!(padded_name_len(3), 4);
        assert_eq!(padded_name_len(4), 8);
        assert_eq!(padded_data_len(1), 4);
        assert_eq!(padded_data_len(4), 4);
        assert!(padded_name_len(usize::MAX) >= usize::MAX - 3);
        assert!(padded_data_len(usize::MAX) >= usize::MAX - 3);
        assert_eq!(entire_len::<Layout64>(usize::MAX, 0), usize::MAX);
    }
}
