//! Header layouts for both pointer widths and both byte orders (spec §3.1,
//! §3.3), side by side.
//!
//! The kernel's `struct kbus_message_header` has two pointer fields, so its
//! size depends on the ABI: 88 bytes with explicit padding on 64-bit ABIs, 72
//! bytes on 32-bit ABIs. Both are described here as `#[repr(C)]` zerocopy
//! structs ([`Header64`], [`Header32`]). Its integers are in the byte order
//! of the machine running the module, with no conversion, so a [`Layout`]
//! marker names a width and a byte order: [`Layout64Le`], [`Layout64Be`],
//! [`Layout32Le`], [`Layout32Be`]. [`Layout64`] and [`Layout32`] are the two
//! of the native byte order, and [`NativeLayout`] is the one of the machine
//! the code is compiled for. Every other type in this crate is generic over
//! the layout, so a 64-bit little-endian tool can read and write a 32-bit
//! big-endian box's messages and back.

use core::fmt;
use core::mem::{offset_of, size_of};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::{BigEndian, ByteOrder, LittleEndian, MessageId, NativeEndian, OrigFrom};

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
    impl Sealed for super::Layout64Le {}
    impl Sealed for super::Layout64Be {}
    impl Sealed for super::Layout32Le {}
    impl Sealed for super::Layout32Be {}
}

/// A header layout: which ABI's `struct kbus_message_header` the bytes use,
/// and in which byte order its integers are.
///
/// Sealed; implemented by [`Layout64Le`], [`Layout64Be`], [`Layout32Le`]
/// and [`Layout32Be`]. [`Layout64`] and [`Layout32`] are the two of the
/// native byte order, [`NativeLayout`] the one of this machine.
pub trait Layout:
    sealed::Sealed + Copy + Default + fmt::Debug + PartialEq + Eq + Send + Sync + 'static
{
    /// The zerocopy struct of this layout's width ([`Header64`] or
    /// [`Header32`], the same for both byte orders).
    /// [`Message::header`](crate::Message::header) gives it with every field
    /// in host order.
    type Header: FromBytes
        + IntoBytes
        + KnownLayout
        + Immutable
        + Copy
        + Default
        + fmt::Debug
        + PartialEq
        + Eq;
    /// The byte order of every integer and pointer field
    /// ([`LittleEndian`] or [`BigEndian`]).
    type ByteOrder: ByteOrder;
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
    /// `true` when [`Self::ByteOrder`](Layout::ByteOrder) is this machine's
    /// ([`NativeEndian`]).
    const IS_NATIVE_ORDER: bool =
        <Self::ByteOrder as ByteOrder>::IS_BIG_ENDIAN == NativeEndian::IS_BIG_ENDIAN;
    /// A short name for messages ("64-bit little-endian", "32-bit
    /// big-endian", …).
    const NAME: &'static str;
}

macro_rules! layouts {
    ($(
        $(#[$doc:meta])*
        $name:ident: $header:ident, $ptr_len:literal, $order:ident, $text:literal;
    )*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub struct $name;

        impl Layout for $name {
            type Header = $header;
            type ByteOrder = $order;
            const HEADER_LEN: usize = size_of::<$header>();
            const POINTER_LEN: usize = $ptr_len;
            const NAME_PTR: usize = offset_of!($header, name);
            const DATA_PTR: usize = offset_of!($header, data);
            const END_GUARD: usize = offset_of!($header, end_guard);
            const NAME: &'static str = $text;
        }
    )*};
}

layouts! {
    /// The 64-bit ABI layout (`H` = 88) in little-endian byte order
    /// (x86-64, arm64, mips64el).
    Layout64Le: Header64, 8, LittleEndian, "64-bit little-endian";
    /// The 64-bit ABI layout (`H` = 88) in big-endian byte order (s390x,
    /// ppc64, mips64).
    Layout64Be: Header64, 8, BigEndian, "64-bit big-endian";
    /// The 32-bit ABI layout (`H` = 72) in little-endian byte order (armel,
    /// armhf, mipsel, i386).
    Layout32Le: Header32, 4, LittleEndian, "32-bit little-endian";
    /// The 32-bit ABI layout (`H` = 72) in big-endian byte order (mips,
    /// powerpc, big-endian ARM).
    Layout32Be: Header32, 4, BigEndian, "32-bit big-endian";
}

/// The 64-bit ABI layout (`H` = 88) in the native byte order: [`Layout64Le`]
/// on little-endian machines, [`Layout64Be`] on big-endian ones.
#[cfg(target_endian = "little")]
pub type Layout64 = Layout64Le;
/// The 64-bit ABI layout (`H` = 88) in the native byte order: [`Layout64Le`]
/// on little-endian machines, [`Layout64Be`] on big-endian ones.
#[cfg(target_endian = "big")]
pub type Layout64 = Layout64Be;

/// The 32-bit ABI layout (`H` = 72) in the native byte order: [`Layout32Le`]
/// on little-endian machines, [`Layout32Be`] on big-endian ones.
#[cfg(target_endian = "little")]
pub type Layout32 = Layout32Le;
/// The 32-bit ABI layout (`H` = 72) in the native byte order: [`Layout32Le`]
/// on little-endian machines, [`Layout32Be`] on big-endian ones.
#[cfg(target_endian = "big")]
pub type Layout32 = Layout32Be;

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

/// Converts header bytes in `L`'s byte order to host order in place (or
/// back: the conversion is its own inverse). Does nothing for a native-order
/// layout. Every field is a `u32` but the 8-byte pointers of the 64-bit
/// layouts; `bytes` shorter than a header are converted as far as they go.
#[inline]
pub(crate) fn header_to_host<L: Layout>(bytes: &mut [u8]) {
    if L::IS_NATIVE_ORDER {
        return;
    }
    for word in bytes.chunks_exact_mut(4) {
        word.reverse();
    }
    if L::POINTER_LEN == 8 {
        for off in [L::NAME_PTR, L::DATA_PTR] {
            // Each half is reversed already; swapping the halves reverses
            // all eight bytes.
            if let Some(ptr) = off.checked_add(8).and_then(|end| bytes.get_mut(off..end)) {
                ptr.rotate_left(4);
            }
        }
    }
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
            (
                Layout64Be::HEADER_LEN,
                Layout64Be::NAME_PTR,
                Layout64Be::END_GUARD
            ),
            (88, 64, 80)
        );
        assert_eq!(
            (
                Layout32Be::HEADER_LEN,
                Layout32Be::DATA_PTR,
                Layout32Be::END_GUARD
            ),
            (72, 64, 68)
        );
        const { assert!(Layout64::IS_NATIVE_ORDER && Layout32::IS_NATIVE_ORDER) };
        assert_ne!(Layout64Le::IS_NATIVE_ORDER, Layout64Be::IS_NATIVE_ORDER);
        assert_eq!(Layout32Le::IS_NATIVE_ORDER, cfg!(target_endian = "little"));
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
