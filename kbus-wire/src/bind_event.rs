//! Replier bind event data (spec §3.7, §7.6).

use core::fmt;
use core::marker::PhantomData;

use crate::field::{self, read_u32, write_u32};
use crate::kind::ShowName;
use crate::layout::{len_usize, padded_name_len};
use crate::name::{validate_binding_name, MAX_NAME_LEN};
use crate::{ByteOrder, Error, NativeEndian};

/// Offset of `is_bind`.
const IS_BIND: usize = 0;
/// Offset of `binder`.
const BINDER: usize = 4;
/// Offset of `name_len`.
const NAME_LEN: usize = 8;
/// Offset of the name.
const NAME: usize = 12;

/// A view over the data of a `$.KBUS.ReplierBindEvent` message: `is_bind`,
/// `binder`, `name_len`, then the name padded with NULs to `PN(name_len)`.
///
/// The three words are in byte order `O` (the native one by default), like
/// the header of the message carrying them;
/// [`Message::bind_event`](crate::Message::bind_event) picks the message's
/// layout's order. The event has no pointers, so it is the same for both
/// widths. Another order: [`ReplierBindEvent::new_checked_in`].
///
/// [`ReplierBindEvent::new_checked`] requires at least `12 + PN(name_len)`
/// bytes (more are allowed and ignored), a valid binding name (wildcards
/// included: the name is the binding string as given) that is ASCII so that
/// [`ReplierBindEvent::name`] is a `&str`. No accessor panics, whatever the
/// constructor.
///
/// ```
/// use kbus_wire::ReplierBindEvent;
/// let data = [1, 0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0, b'$', b'.', b'F', b'r', b'e', b'd', 0, 0];
/// # if cfg!(target_endian = "little") {
/// let ev = ReplierBindEvent::new_checked(&data[..]).unwrap();
/// assert!(ev.is_bind());
/// assert_eq!(ev.binder(), 5);
/// assert_eq!(ev.name(), "$.Fred");
/// assert_eq!(ev.to_string(), "[Bind '$.Fred' for 5]");
/// # }
/// ```
pub struct ReplierBindEvent<T: AsRef<[u8]>, O: ByteOrder = NativeEndian> {
    buffer: T,
    order: PhantomData<O>,
}

impl<T: AsRef<[u8]>> ReplierBindEvent<T, NativeEndian> {
    /// Wraps native-order data without checking. (Other byte order:
    /// [`ReplierBindEvent::new_unchecked_in`].)
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self::new_unchecked_in(buffer)
    }

    /// Wraps native-order data after checking it (see the type's docs).
    /// Other byte order: [`ReplierBindEvent::new_checked_in`].
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        Self::new_checked_in(buffer)
    }
}

impl<T: AsRef<[u8]>, O: ByteOrder> ReplierBindEvent<T, O> {
    /// Wraps data in byte order `O` without checking:
    /// `ReplierBindEvent::<_, BigEndian>::new_unchecked_in(data)`.
    #[inline]
    pub const fn new_unchecked_in(buffer: T) -> Self {
        ReplierBindEvent {
            buffer,
            order: PhantomData,
        }
    }

    /// Wraps data in byte order `O` after checking it (see the type's
    /// docs): `ReplierBindEvent::<_, BigEndian>::new_checked_in(data)`.
    ///
    /// ```
    /// use kbus_wire::{BigEndian, ReplierBindEvent};
    /// let data = [0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 6, b'$', b'.', b'F', b'r', b'e', b'd', 0, 0];
    /// let ev = ReplierBindEvent::<_, BigEndian>::new_checked_in(&data[..])?;
    /// assert_eq!(ev.to_string(), "[Bind '$.Fred' for 5]");
    /// # Ok::<(), kbus_wire::Error>(())
    /// ```
    pub fn new_checked_in(buffer: T) -> Result<Self, Error> {
        let ev = Self::new_unchecked_in(buffer);
        ev.check()?;
        Ok(ev)
    }

    /// Runs the checks of [`ReplierBindEvent::new_checked`].
    pub fn check(&self) -> Result<(), Error> {
        let buf = self.buffer.as_ref();
        if buf.len() < NAME {
            return Err(Error::BadBindEvent);
        }
        let name_len = len_usize(self.name_len());
        if name_len > MAX_NAME_LEN || buf.len() < self.total_len() {
            return Err(Error::BadBindEvent);
        }
        let name = self.name_bytes();
        validate_binding_name(name).map_err(|_| Error::BadBindEvent)?;
        if !name.is_ascii() {
            return Err(Error::BadBindEvent);
        }
        Ok(())
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// `12 + PN(name_len)`: the data length of this event.
    #[inline]
    pub fn total_len(&self) -> usize {
        NAME.saturating_add(padded_name_len(len_usize(self.name_len())))
    }

    /// The raw `is_bind` word (1 for bind, 0 for unbind).
    #[inline]
    pub fn is_bind_raw(&self) -> u32 {
        read_u32::<O>(self.buffer.as_ref(), IS_BIND)
    }

    /// A bind (rather than an unbind): `is_bind` is not 0.
    #[inline]
    pub fn is_bind(&self) -> bool {
        self.is_bind_raw() != 0
    }

    /// Ksock id of the Ksock that bound or unbound.
    #[inline]
    pub fn binder(&self) -> u32 {
        read_u32::<O>(self.buffer.as_ref(), BINDER)
    }

    /// The `name_len` field.
    #[inline]
    pub fn name_len(&self) -> u32 {
        read_u32::<O>(self.buffer.as_ref(), NAME_LEN)
    }

    /// The bound name's bytes.
    #[inline]
    pub fn name_bytes(&self) -> &[u8] {
        field::slice(self.buffer.as_ref(), NAME, len_usize(self.name_len()))
    }

    /// The bound name (`""` on an unchecked view whose name is not UTF-8).
    #[inline]
    pub fn name(&self) -> &str {
        core::str::from_utf8(self.name_bytes()).unwrap_or("")
    }

    /// The fields as a [`ReplierBindEventRepr`].
    #[inline]
    pub fn repr(&self) -> ReplierBindEventRepr<'_> {
        ReplierBindEventRepr {
            is_bind: self.is_bind(),
            binder: self.binder(),
            name: self.name(),
        }
    }
}

impl<'a, O: ByteOrder> ReplierBindEvent<&'a [u8], O> {
    /// The fields, borrowing the name from the buffer for `'a`.
    fn repr_of_buffer(&self) -> ReplierBindEventRepr<'a> {
        let buffer: &'a [u8] = self.buffer;
        let name = field::slice(buffer, NAME, len_usize(self.name_len()));
        ReplierBindEventRepr {
            is_bind: self.is_bind(),
            binder: self.binder(),
            name: core::str::from_utf8(name).unwrap_or(""),
        }
    }
}

/// The checked fields of bind-event data in byte order `big_endian`
/// (`Some(true)`: big-endian), or in whichever order they check (`None`; at
/// most one can: a valid `name_len` is 3..=1000, and every such value
/// byte-swapped is over 1000).
pub(crate) fn parse_event(
    data: &[u8],
    big_endian: Option<bool>,
) -> Option<ReplierBindEventRepr<'_>> {
    fn parse<O: ByteOrder>(data: &[u8]) -> Option<ReplierBindEventRepr<'_>> {
        let ev = ReplierBindEvent::<_, O>::new_checked_in(data).ok()?;
        Some(ev.repr_of_buffer())
    }
    match big_endian {
        Some(true) => parse::<crate::BigEndian>(data),
        Some(false) => parse::<crate::LittleEndian>(data),
        None => parse::<NativeEndian>(data).or_else(|| {
            if NativeEndian::IS_BIG_ENDIAN {
                parse::<crate::LittleEndian>(data)
            } else {
                parse::<crate::BigEndian>(data)
            }
        }),
    }
}

impl<T: AsRef<[u8]> + Clone, O: ByteOrder> Clone for ReplierBindEvent<T, O> {
    fn clone(&self) -> Self {
        Self::new_unchecked_in(self.buffer.clone())
    }
}

impl<T: AsRef<[u8]> + Copy, O: ByteOrder> Copy for ReplierBindEvent<T, O> {}

impl<T: AsRef<[u8]>, O: ByteOrder, U: AsRef<[u8]>> PartialEq<ReplierBindEvent<U, O>>
    for ReplierBindEvent<T, O>
{
    /// Two events are equal when their buffers' bytes are.
    fn eq(&self, other: &ReplierBindEvent<U, O>) -> bool {
        self.buffer.as_ref() == other.buffer.as_ref()
    }
}

impl<T: AsRef<[u8]>, O: ByteOrder> Eq for ReplierBindEvent<T, O> {}

impl<T: AsRef<[u8]>, O: ByteOrder> core::hash::Hash for ReplierBindEvent<T, O> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.buffer.as_ref().hash(state);
    }
}

impl<T: AsRef<[u8]>, O: ByteOrder> fmt::Display for ReplierBindEvent<T, O> {
    /// `[Bind '$.Fred' for 5]` / `[Unbind '$.Fred' for 5]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.is_bind() { "Bind" } else { "Unbind" };
        write!(
            f,
            "[{what} '{}' for {}]",
            ShowName(self.name_bytes()),
            self.binder()
        )
    }
}

impl<T: AsRef<[u8]>, O: ByteOrder> fmt::Debug for ReplierBindEvent<T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplierBindEvent{self}")
    }
}

#[cfg(feature = "defmt")]
impl<T: AsRef<[u8]>, O: ByteOrder> defmt::Format for ReplierBindEvent<T, O> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", self.repr());
    }
}

/// The fields of a replier bind event, to emit one (or as parsed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReplierBindEventRepr<'a> {
    /// Bind (true) or unbind (false).
    pub is_bind: bool,
    /// Ksock id of the binder.
    pub binder: u32,
    /// The binding string (may be a wildcard).
    pub name: &'a str,
}

impl<'a> ReplierBindEventRepr<'a> {
    /// Checks `event` (in any byte order) and returns its fields.
    pub fn parse<T: AsRef<[u8]>, O: ByteOrder>(
        event: &'a ReplierBindEvent<T, O>,
    ) -> Result<Self, Error> {
        event.check()?;
        Ok(event.repr())
    }

    /// `12 + PN(name.len())`: the data length.
    #[inline]
    #[must_use]
    pub const fn buffer_len(&self) -> usize {
        NAME.saturating_add(padded_name_len(self.name.len()))
    }

    /// Writes the event data in the native byte order into the start of
    /// `buf` (zero padding) and returns its length. The name must be a valid
    /// binding name. Other byte order: [`emit_in`](Self::emit_in).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        self.emit_in::<NativeEndian>(buf)
    }

    /// [`emit`](Self::emit) in byte order `O` (that of the layout of the
    /// message that will carry it): `repr.emit_in::<BigEndian>(&mut buf)`.
    pub fn emit_in<O: ByteOrder>(&self, buf: &mut [u8]) -> Result<usize, Error> {
        validate_binding_name(self.name.as_bytes())?;
        let needed = self.buffer_len();
        let got = buf.len();
        let Some(out) = buf.get_mut(..needed) else {
            return Err(Error::BufferTooSmall { needed, got });
        };
        out.fill(0);
        write_u32::<O>(out, IS_BIND, u32::from(self.is_bind));
        write_u32::<O>(out, BINDER, self.binder);
        // Valid names are at most 1000 bytes.
        write_u32::<O>(out, NAME_LEN, self.name.len() as u32);
        field::slice_mut(out, NAME, self.name.len()).copy_from_slice(self.name.as_bytes());
        Ok(needed)
    }
}

impl fmt::Display for ReplierBindEventRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.is_bind { "Bind" } else { "Unbind" };
        write!(f, "[{what} '{}' for {}]", self.name, self.binder)
    }
}
