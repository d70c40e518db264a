//! The one place where integers are read from and written to message bytes.
//!
//! Every access is *total*: a read outside the buffer yields 0 and a write
//! outside the buffer is ignored, so no code path built on these helpers can
//! panic, whatever the bytes. Checked views never hit those cases; they only
//! make unchecked views (and arbitrary fuzz input) harmless.
//!
//! KBUS uses the host's byte order on the kernel interface (spec §3.1). Only
//! these helpers know that: a foreign-endian view (for bridges that read
//! another machine's dumps) would swap them for a byte-order parameter.

/// Reads a `u32` at `off`, or 0 when the buffer is too short.
#[inline]
pub(crate) fn read_u32(buf: &[u8], off: usize) -> u32 {
    match buf.get(off..).and_then(<[u8]>::first_chunk::<4>) {
        Some(bytes) => u32::from_ne_bytes(*bytes),
        None => 0,
    }
}

/// Reads a `u64` at `off`, or 0 when the buffer is too short.
#[inline]
pub(crate) fn read_u64(buf: &[u8], off: usize) -> u64 {
    match buf.get(off..).and_then(<[u8]>::first_chunk::<8>) {
        Some(bytes) => u64::from_ne_bytes(*bytes),
        None => 0,
    }
}

/// Writes a `u32` at `off`; does nothing when the buffer is too short.
#[inline]
pub(crate) fn write_u32(buf: &mut [u8], off: usize, value: u32) {
    if let Some(bytes) = buf.get_mut(off..).and_then(<[u8]>::first_chunk_mut::<4>) {
        *bytes = value.to_ne_bytes();
    }
}

/// Writes a `u64` at `off`; does nothing when the buffer is too short.
#[inline]
pub(crate) fn write_u64(buf: &mut [u8], off: usize, value: u64) {
    if let Some(bytes) = buf.get_mut(off..).and_then(<[u8]>::first_chunk_mut::<8>) {
        *bytes = value.to_ne_bytes();
    }
}

/// Reads a pointer-sized field (4 or 8 bytes) as a `u64`.
#[inline]
pub(crate) fn read_ptr(buf: &[u8], off: usize, ptr_len: usize) -> u64 {
    if ptr_len == 8 {
        read_u64(buf, off)
    } else {
        u64::from(read_u32(buf, off))
    }
}

/// Writes a pointer-sized field (4 or 8 bytes). On a 4-byte field the value
/// is truncated to its low 32 bits.
#[inline]
pub(crate) fn write_ptr(buf: &mut [u8], off: usize, ptr_len: usize, value: u64) {
    if ptr_len == 8 {
        write_u64(buf, off, value);
    } else {
        // Truncation is the documented behaviour for 32-bit layouts.
        write_u32(buf, off, value as u32);
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

    #[test]
    fn reads_are_total() {
        let buf = 0x1122_3344u32.to_ne_bytes();
        assert_eq!(read_u32(&buf, 0), 0x1122_3344);
        assert_eq!(read_u32(&buf, 1), 0);
        assert_eq!(read_u32(&buf, usize::MAX), 0);
        assert_eq!(read_u64(&buf, 0), 0);
        assert_eq!(read_ptr(&buf, 0, 4), 0x1122_3344);
        assert_eq!(slice(&buf, 2, 2), &buf[2..]);
        assert_eq!(slice(&buf, 2, 3), &[] as &[u8]);
        assert_eq!(slice(&buf, usize::MAX, 2), &[] as &[u8]);
    }

    #[test]
    fn writes_are_total() {
        let mut buf = [0u8; 8];
        write_u32(&mut buf, 6, 1);
        write_u64(&mut buf, 1, 1);
        write_u32(&mut buf, usize::MAX, 1);
        assert_eq!(buf, [0; 8]);
        write_ptr(&mut buf, 0, 8, 0x0102_0304_0506_0708);
        assert_eq!(read_u64(&buf, 0), 0x0102_0304_0506_0708);
        write_ptr(&mut buf, 4, 4, 0xFFFF_FFFF_0000_0009);
        assert_eq!(read_u32(&buf, 4), 9, "truncated to the low 32 bits");
        assert!(slice_mut(&mut buf, 7, 2).is_empty());
    }
}
