//! The one place where integers are read from and written to message bytes.
//!
//! Every access is *total*: a read outside the buffer yields 0 and a write
//! outside the buffer is ignored, so no code path built on these helpers can
//! panic, whatever the bytes. Checked views never hit those cases; they only
//! make unchecked views (and arbitrary fuzz input) harmless.
//!
//! KBUS uses the byte order of the machine running the module (spec §3.1).
//! Every helper takes that order as a [`ByteOrder`] type parameter (the
//! layout's [`Layout::ByteOrder`](crate::Layout::ByteOrder)), so views of
//! the native order and of a foreign one share all the code above this
//! module.

use crate::ByteOrder;

/// Reads a `u32` at `off`, or 0 when the buffer is too short.
#[inline]
pub(crate) fn read_u32<O: ByteOrder>(buf: &[u8], off: usize) -> u32 {
    match buf.get(off..).and_then(<[u8]>::first_chunk::<4>) {
        Some(bytes) => O::u32_from_bytes(*bytes),
        None => 0,
    }
}

/// Reads a `u64` at `off`, or 0 when the buffer is too short.
#[inline]
pub(crate) fn read_u64<O: ByteOrder>(buf: &[u8], off: usize) -> u64 {
    match buf.get(off..).and_then(<[u8]>::first_chunk::<8>) {
        Some(bytes) => O::u64_from_bytes(*bytes),
        None => 0,
    }
}

/// Writes a `u32` at `off`; does nothing when the buffer is too short.
#[inline]
pub(crate) fn write_u32<O: ByteOrder>(buf: &mut [u8], off: usize, value: u32) {
    if let Some(bytes) = buf.get_mut(off..).and_then(<[u8]>::first_chunk_mut::<4>) {
        *bytes = O::u32_to_bytes(value);
    }
}

/// Writes a `u64` at `off`; does nothing when the buffer is too short.
#[inline]
pub(crate) fn write_u64<O: ByteOrder>(buf: &mut [u8], off: usize, value: u64) {
    if let Some(bytes) = buf.get_mut(off..).and_then(<[u8]>::first_chunk_mut::<8>) {
        *bytes = O::u64_to_bytes(value);
    }
}

/// Reads a pointer-sized field (4 or 8 bytes) as a `u64`.
#[inline]
pub(crate) fn read_ptr<O: ByteOrder>(buf: &[u8], off: usize, ptr_len: usize) -> u64 {
    if ptr_len == 8 {
        read_u64::<O>(buf, off)
    } else {
        u64::from(read_u32::<O>(buf, off))
    }
}

/// Writes a pointer-sized field (4 or 8 bytes). On a 4-byte field the value
/// is truncated to its low 32 bits.
#[inline]
pub(crate) fn write_ptr<O: ByteOrder>(buf: &mut [u8], off: usize, ptr_len: usize, value: u64) {
    if ptr_len == 8 {
        write_u64::<O>(buf, off, value);
    } else {
        // Truncation is the documented behaviour for 32-bit layouts.
        write_u32::<O>(buf, off, value as u32);
    }
}

/// `buf[start..start+len]`, or an empty slice when out of range.
#[inline]
pub(crate) fn slice(buf: &[u8], start: usize, len: usize) -> &[u8] {
    match start.checked_add(len) {
        Some(end) => buf.get(start..end).unwrap_or(&[]),
        None => &[],
    }
}

/// `&mut buf[start..start+len]`, or an empty slice when out of range.
#[inline]
pub(crate) fn slice_mut(buf: &mut [u8], start: usize, len: usize) -> &mut [u8] {
    match start.checked_add(len) {
        Some(end) => buf.get_mut(start..end).unwrap_or(&mut []),
        None => &mut [],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BigEndian, LittleEndian, NativeEndian as N};

    #[test]
    fn reads_are_total() {
        let buf = 0x1122_3344u32.to_ne_bytes();
        assert_eq!(read_u32::<N>(&buf, 0), 0x1122_3344);
        assert_eq!(read_u32::<N>(&buf, 1), 0);
        assert_eq!(read_u32::<N>(&buf, usize::MAX), 0);
        assert_eq!(read_u64::<N>(&buf, 0), 0);
        assert_eq!(read_ptr::<N>(&buf, 0, 4), 0x1122_3344);
        assert_eq!(slice(&buf, 2, 2), &buf[2..]);
        assert_eq!(slice(&buf, 2, 3), &[] as &[u8]);
        assert_eq!(slice(&buf, usize::MAX, 2), &[] as &[u8]);
    }

    #[test]
    fn writes_are_total() {
        let mut buf = [0u8; 8];
        write_u32::<N>(&mut buf, 6, 1);
        write_u64::<N>(&mut buf, 1, 1);
        write_u32::<N>(&mut buf, usize::MAX, 1);
        assert_eq!(buf, [0; 8]);
        write_ptr::<N>(&mut buf, 0, 8, 0x0102_0304_0506_0708);
        assert_eq!(read_u64::<N>(&buf, 0), 0x0102_0304_0506_0708);
        write_ptr::<N>(&mut buf, 4, 4, 0xFFFF_FFFF_0000_0009);
        assert_eq!(read_u32::<N>(&buf, 4), 9, "truncated to the low 32 bits");
        assert!(slice_mut(&mut buf, 7, 2).is_empty());
    }

    #[test]
    fn explicit_byte_orders() {
        let mut buf = [0u8; 12];
        write_u32::<BigEndian>(&mut buf, 0, 0x0102_0304);
        write_u32::<LittleEndian>(&mut buf, 4, 0x0102_0304);
        assert_eq!(buf[..8], [1, 2, 3, 4, 4, 3, 2, 1]);
        assert_eq!(read_u32::<LittleEndian>(&buf, 0), 0x0403_0201);
        assert_eq!(read_u32::<BigEndian>(&buf, 4), 0x0403_0201);
        write_ptr::<BigEndian>(&mut buf, 4, 8, 0x0A0B_0C0D_0E0F_1011);
        assert_eq!(buf[4..], [0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11]);
        assert_eq!(read_ptr::<BigEndian>(&buf, 4, 8), 0x0A0B_0C0D_0E0F_1011);
        assert_eq!(read_ptr::<LittleEndian>(&buf, 4, 4), 0x0D0C_0B0A);
        write_ptr::<LittleEndian>(&mut buf, 0, 4, 0xFFFF_FFFF_0000_0102);
        assert_eq!(buf[..4], [2, 1, 0, 0]);
        assert_eq!(read_u64::<BigEndian>(&buf, 5), 0);
    }
}
