//! Message ids and Limpet origins (spec §3.2, §9.2).

use core::fmt;
use core::ops::{Add, AddAssign};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `struct kbus_msg_id`: a message id.
///
/// Ordered by `(network_id, serial_num)`; shown as `[n:s]`; `id + n` gives
/// the id with the serial number increased by `n` (wrapping, like the
/// kernel's 32-bit counters).
///
/// ```
/// use kbus_wire::MessageId;
/// let id = MessageId::new(0, 3);
/// assert_eq!(id.to_string(), "[0:3]");
/// assert_eq!(id + 2, MessageId::new(0, 5));
/// assert!(MessageId::new(0, 9) < MessageId::new(1, 0));
/// ```
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
)]
pub struct MessageId {
    /// 0 for locally originated messages.
    pub network_id: u32,
    /// Serial number assigned by the device (or by a Limpet).
    pub serial_num: u32,
}

impl MessageId {
    /// The unset id `{0, 0}`.
    pub const ZERO: MessageId = MessageId::new(0, 0);

    /// An id from its two parts.
    #[inline]
    #[must_use]
    pub const fn new(network_id: u32, serial_num: u32) -> Self {
        MessageId {
            network_id,
            serial_num,
        }
    }

    /// Whether this is the unset id `{0, 0}`.
    #[inline]
    #[must_use]
    pub const fn is_zero(&self) -> bool {
        self.network_id == 0 && self.serial_num == 0
    }
}

impl Add<u32> for MessageId {
    type Output = MessageId;
    #[inline]
    fn add(self, rhs: u32) -> MessageId {
        MessageId::new(self.network_id, self.serial_num.wrapping_add(rhs))
    }
}

impl AddAssign<u32> for MessageId {
    #[inline]
    fn add_assign(&mut self, rhs: u32) {
        *self = *self + rhs;
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}:{}]", self.network_id, self.serial_num)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({}, {})", self.network_id, self.serial_num)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for MessageId {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "[{=u32}:{=u32}]", self.network_id, self.serial_num);
    }
}

/// `struct kbus_orig_from`: the original sender (or final target) of a
/// message that crossed Limpets; shown as `(n,l)`.
///
/// ```
/// use kbus_wire::OrigFrom;
/// assert_eq!(OrigFrom::new(1, 2).to_string(), "(1,2)");
/// assert!(OrigFrom::new(1, 2) < OrigFrom::new(1, 3));
/// ```
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
)]
pub struct OrigFrom {
    /// 0 means "not used".
    pub network_id: u32,
    /// A Ksock id on the originating KBUS.
    pub local_id: u32,
}

impl OrigFrom {
    /// The unused value `(0,0)`.
    pub const ZERO: OrigFrom = OrigFrom::new(0, 0);

    /// An origin from its two parts.
    #[inline]
    #[must_use]
    pub const fn new(network_id: u32, local_id: u32) -> Self {
        OrigFrom {
            network_id,
            local_id,
        }
    }

    /// Whether this is `(0,0)`.
    #[inline]
    #[must_use]
    pub const fn is_zero(&self) -> bool {
        self.network_id == 0 && self.local_id == 0
    }
}

impl fmt::Display for OrigFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({},{})", self.network_id, self.local_id)
    }
}

impl fmt::Debug for OrigFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrigFrom({}, {})", self.network_id, self.local_id)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for OrigFrom {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "({=u32},{=u32})", self.network_id, self.local_id);
    }
}
