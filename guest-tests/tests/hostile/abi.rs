//! The raw ABI as this test sees it, written from the spec and not taken
//! from `kbus-wire` (see the top of `main.rs`): where pointers point, and
//! checking a message read whole.

use super::*;
use std::sync::OnceLock;

/// Where an argument, buffer, name or data pointer points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ptr {
    /// A good buffer.
    Good,
    /// A good buffer ending exactly at the end of a page before a hole.
    PageEnd,
    /// Readable, not writable memory.
    ReadOnly,
    Null,
    One,
    /// An address in the kernel half (fails access_ok; see `kernel_half`).
    Kernel,
    /// 64-bit: non-canonical; 32-bit: the top page.
    NonCanonical,
    /// The start of a PROT_NONE page.
    Hole,
    /// Starts in good memory, its last bytes in a PROT_NONE page.
    Straddle,
}

impl Ptr {
    pub(crate) fn good(self) -> bool {
        matches!(self, Ptr::Good | Ptr::PageEnd)
    }
    pub(crate) fn readable(self) -> bool {
        self.good() || self == Ptr::ReadOnly
    }
    /// Fails access_ok (the VFS or the ioctl dispatcher refuses it before
    /// the module looks at anything). A 32-bit process on a 64-bit kernel
    /// (compat) has no kernel half: its whole 4 GiB is user space, so these
    /// two addresses pass access_ok and fault only when copied, like a
    /// Hole. Asked of the kernel once (see `access_ok_refuses`).
    pub(crate) fn kernel_half(self) -> bool {
        static REFUSED: OnceLock<(bool, bool)> = OnceLock::new();
        let (kernel, noncanon) = *REFUSED.get_or_init(|| {
            (
                access_ok_refuses(KERNEL_ADDR),
                access_ok_refuses(NONCANON_ADDR),
            )
        });
        match self {
            Ptr::Kernel => kernel,
            Ptr::NonCanonical => noncanon,
            _ => false,
        }
    }
}

/// Does access_ok refuse `addr`? write(2) checks its buffer with access_ok
/// (EFAULT) and /dev/null never reads it.
fn access_ok_refuses(addr: usize) -> bool {
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("/dev/null");
    match raw::write(null.as_fd(), addr, 1) {
        Ok(_) => false,
        Err(e) if e == Errno::FAULT => true,
        Err(e) => panic!("write(/dev/null, {addr:#x}, 1): {e}"),
    }
}

pub(crate) const KERNEL_ADDR: usize = if PTR == 8 {
    0xffff_8880_0000_1000_u64 as usize
} else {
    0xc000_1000
};
pub(crate) const NONCANON_ADDR: usize = if PTR == 8 {
    0x8000_0000_0000_0000_u64 as usize
} else {
    0xffff_f000
};

// ---- messages --------------------------------------------------------------

/// (must fail, may fault) for a name pointer of `kind` holding `have`
/// bytes when the module copies `len` of them (only lengths 1..=1000 are
/// copied; the name ends right before a hole for PageEnd and ReadOnly).
pub(crate) fn name_faults(kind: Ptr, len: u32, have: usize) -> (bool, bool) {
    if !(1..=1000).contains(&len) {
        return (false, false);
    }
    match kind {
        _ if !kind.readable() => (true, true),
        Ptr::PageEnd | Ptr::ReadOnly if len as usize > have => (true, true),
        _ if len as usize > have => (false, true),
        _ => (false, false),
    }
}

/// A message read whole: check everything KBUS promises about it (§6.4).
pub(crate) fn check_received(b: &[u8], total: usize) -> Result<(), String> {
    if b.len() != total || total < H + 8 || total % 4 != 0 {
        return Err(format!("{} bytes, NEXTMSG said {total}", b.len()));
    }
    let name_len = u32_at(b, 52) as usize;
    let data_len = u32_at(b, 56) as usize;
    let checks = [
        (u32_at(b, 0) == START, "start guard"),
        (u32_at(b, END_GUARD_OFF) == END, "header end guard"),
        ((1..=1000).contains(&name_len), "name_len 1..=1000"),
        (entire(name_len, data_len) == total, "ENTIRE() = length"),
        (
            b[NAME_PTR_OFF..END_GUARD_OFF].iter().all(|&x| x == 0),
            "NULL pointers",
        ),
        (u32_at(b, 44) == 0, "extra 0"),
        (u32_at(b, total - 4) == END, "final guard"),
    ];
    for (good, what) in checks {
        if !good {
            return Err(format!("bad {what}: {:02x?}", &b[..H.min(b.len())]));
        }
    }
    let name = &b[H..H + name_len];
    if validate_message_name(name).is_err() {
        return Err(format!("invalid name {:?}", String::from_utf8_lossy(name)));
    }
    if b[H + name_len..H + pad4(name_len + 1)]
        .iter()
        .any(|&x| x != 0)
    {
        return Err("name padding not zero".into());
    }
    let flags = u32_at(b, 48);
    if flags & 4 != 0 && !name.starts_with(b"$.KBUS.") {
        return Err(format!(
            "SYNTHETIC set on a user message (flags {flags:#x})"
        ));
    }
    if flags & 2 != 0 && flags & 1 == 0 {
        return Err(format!(
            "WANT_YOU_TO_REPLY without WANT_A_REPLY ({flags:#x})"
        ));
    }
    Ok(())
}
