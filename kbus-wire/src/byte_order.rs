//! Byte orders of the integers in a message (spec §3.1).
//!
//! KBUS has no conversion on the kernel interface: every `u32` (and, on
//! 64-bit ABIs, every pointer field) is in the byte order of the machine
//! that runs the module. A message read on a big-endian set-top box and
//! examined on a little-endian workstation therefore needs the *box's*
//! byte order, which is what the explicit-order layouts
//! ([`Layout64Be`](crate::Layout64Be), [`Layout32Le`](crate::Layout32Le), …)
//! carry. [`NativeEndian`] is the order of the machine this crate is compiled
//! for; the plain [`Layout64`](crate::Layout64) and
//! [`Layout32`](crate::Layout32) use it.

use core::fmt;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::LittleEndian {}
    impl Sealed for super::BigEndian {}
}

/// A byte order for the integers of a message: [`LittleEndian`] or
/// [`BigEndian`] ([`NativeEndian`] is one of the two).
///
/// Sealed. The conversions are total (plain arrays, no slices), so nothing
/// built on them can panic.
pub trait ByteOrder:
    sealed::Sealed + Copy + Default + fmt::Debug + PartialEq + Eq + Send + Sync + 'static
{
    /// `true` for [`BigEndian`].
    const IS_BIG_ENDIAN: bool;
    /// A short name for messages ("little-endian" / "big-endian").
    const NAME: &'static str;

    /// The `u32` whose image in this byte order is `bytes`.
    #[inline]
    #[must_use]
    fn u32_from_bytes(bytes: [u8; 4]) -> u32 {
        if Self::IS_BIG_ENDIAN {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        }
    }

    /// The image of `value` in this byte order.
    #[inline]
    #[must_use]
    fn u32_to_bytes(value: u32) -> [u8; 4] {
        if Self::IS_BIG_ENDIAN {
            value.to_be_bytes()
        } else {
            value.to_le_bytes()
        }
    }

    /// The `u64` whose image in this byte order is `bytes`.
    #[inline]
    #[must_use]
    fn u64_from_bytes(bytes: [u8; 8]) -> u64 {
        if Self::IS_BIG_ENDIAN {
            u64::from_be_bytes(bytes)
        } else {
            u64::from_le_bytes(bytes)
        }
    }

    /// The image of `value` in this byte order.
    #[inline]
    #[must_use]
    fn u64_to_bytes(value: u64) -> [u8; 8] {
        if Self::IS_BIG_ENDIAN {
            value.to_be_bytes()
        } else {
            value.to_le_bytes()
        }
    }
}

/// Little-endian byte order (x86, most ARM and MIPS `el` set-top boxes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LittleEndian;

/// Big-endian byte order (MIPS `eb`, PowerPC, s390x, some ARM boxes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BigEndian;

impl ByteOrder for LittleEndian {
    const IS_BIG_ENDIAN: bool = false;
    const NAME: &'static str = "little-endian";
}

impl ByteOrder for BigEndian {
    const IS_BIG_ENDIAN: bool = true;
    const NAME: &'static str = "big-endian";
}

/// The byte order of the machine this crate is compiled for (what its
/// kernel's KBUS module uses).
#[cfg(target_endian = "little")]
pub type NativeEndian = LittleEndian;
/// The byte order of the machine this crate is compiled for (what its
/// kernel's KBUS module uses).
#[cfg(target_endian = "big")]
pub type NativeEndian = BigEndian;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(LittleEndian::u32_to_bytes(0x0102_0304), [4, 3, 2, 1]);
        assert_eq!(BigEndian::u32_to_bytes(0x0102_0304), [1, 2, 3, 4]);
        assert_eq!(LittleEndian::u32_from_bytes([4, 3, 2, 1]), 0x0102_0304);
        assert_eq!(BigEndian::u32_from_bytes([1, 2, 3, 4]), 0x0102_0304);
        let v = 0x0102_0304_0506_0708;
        assert_eq!(BigEndian::u64_to_bytes(v), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(LittleEndian::u64_to_bytes(v), [8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(BigEndian::u64_from_bytes(BigEndian::u64_to_bytes(v)), v);
        assert_eq!(
            LittleEndian::u64_from_bytes(LittleEndian::u64_to_bytes(v)),
            v
        );
        assert_eq!(NativeEndian::u32_to_bytes(7), 7u32.to_ne_bytes());
        assert_eq!(NativeEndian::u64_to_bytes(7), 7u64.to_ne_bytes());
        assert_eq!(
            NativeEndian::IS_BIG_ENDIAN,
            cfg!(target_endian = "big"),
            "NativeEndian is the target's order"
        );
    }
}
