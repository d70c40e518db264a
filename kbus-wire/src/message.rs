//! A zero-copy view over an entire message (spec §3.3, §3.4).

use core::fmt;
use core::marker::PhantomData;

use zerocopy::{FromBytes, IntoBytes};

use crate::field::{self, read_ptr, read_u32, write_ptr, write_u32};
use crate::kind::{MessageFields, Show, ShowData, ShowName};
use crate::layout::{header_to_host, len_usize, offset, padded_name_len, Layout, NativeLayout};
use crate::name::{validate_message_name, Name, NameError, SyntheticName, MAX_NAME_LEN};
use crate::{
    entire_len, Error, Flags, Kind, MessageId, MessageRepr, OrigFrom, ReplierBindEvent, END_GUARD,
    START_GUARD,
};

/// A view over the bytes of an *entire* message in layout `L` (the native
/// one by default), in the style of smoltcp's `wire` packets.
///
/// [`Message::new_checked`] validates:
///
/// 1. the buffer holds a header (`L::HEADER_LEN` bytes);
/// 2. the start guard and the header's end guard;
/// 3. both pointer fields are NULL (readers always get the entire form;
///    a pointy header is not self-contained and is refused with
///    [`Error::NotEntire`]);
/// 4. `name_len` is 1..=1000 (a longer one is refused before anything else
///    about the name, like the kernel's ENAMETOOLONG);
/// 5. the buffer holds `ENTIRE(name_len, data_len)` bytes
///    ([`Message::total_len`]); **trailing bytes after that are allowed**
///    and ignored (so a view can sit on a larger receive buffer);
/// 6. the final end guard after the data.
///
/// That is structure only: what the name says is not checked (the kernel
/// has checked it; [`Message::check_name`] checks it again). A name with
/// ISO-8859-1 letter bytes, which the kernel accepts, is a well-formed
/// message: [`Message::name`] gives a [`Name`], whose bytes are always
/// there and whose `&str` form ([`Name::to_str`]) exists for ASCII names.
///
/// The contents of the name and data padding are ignored, as the kernel does.
///
/// `name()`, `data()` and `repr()` of a view over a borrowed buffer
/// (`Message<&'a [u8]>`) borrow from the buffer, not from the view, so
/// they outlive it:
///
/// ```
/// use kbus_wire::{Message, MessageRepr};
/// fn data_of<'a>(m: &Message<&'a [u8]>) -> &'a [u8] {
///     m.data()
/// }
/// fn parsed<'a>(m: &Message<&'a [u8]>) -> MessageRepr<'a> {
///     MessageRepr::parse(m).expect("checked")
/// }
/// let mut buf = [0u8; 128];
/// let len = MessageRepr::announcement("$.A.B", b"xyz").emit(&mut buf)?;
/// let bytes = &buf[..len];
/// let data = data_of(&Message::new_checked(bytes)?);
/// let repr = parsed(&Message::new_checked(bytes)?);
/// assert_eq!(data, b"xyz");
/// assert_eq!(repr.name, "$.A.B");
/// # Ok::<(), kbus_wire::Error>(())
/// ```
///
/// **No accessor panics**, whatever the bytes and whichever constructor was
/// used: reads outside the buffer return 0 or an empty slice, writes outside
/// it are ignored. After `new_checked` every accessor returns the real field.
pub struct Message<T: AsRef<[u8]>, L: Layout = NativeLayout> {
    buffer: T,
    layout: PhantomData<L>,
}

impl<T: AsRef<[u8]>> Message<T, NativeLayout> {
    /// Wraps a buffer holding a native-layout message without checking
    /// anything. (Other layout: [`Message::new_unchecked_in`].)
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Message {
            buffer,
            layout: PhantomData,
        }
    }

    /// Wraps a buffer after checking that it holds a well-formed entire
    /// native-layout message (see the type's docs for the list). Other
    /// layout: [`Message::new_checked_in`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        Self::new_checked_in(buffer)
    }
}

impl<T: AsRef<[u8]>, L: Layout> Message<T, L> {
    /// Wraps a buffer holding a message in layout `L` without checking
    /// anything: `Message::<_, Layout32>::new_unchecked_in(buf)`.
    #[inline]
    pub const fn new_unchecked_in(buffer: T) -> Self {
        Message {
            buffer,
            layout: PhantomData,
        }
    }

    /// Wraps a buffer after checking that it holds a well-formed entire
    /// message in layout `L`: `Message::<_, Layout32>::new_checked_in(buf)`.
    ///
    /// A message from a machine of the other byte order is read with an
    /// explicit-order layout; with the wrong order the start guard does not
    /// match:
    ///
    /// ```
    /// use kbus_wire::{Error, Layout64Be, Layout64Le, Message, MessageRepr};
    /// let mut buf = [0u8; 128];
    /// let len = MessageRepr::request("$.Box.Tuner", b"ch?").emit_in::<Layout64Be>(&mut buf)?;
    /// assert_eq!(&buf[..4], b"subK"); // 0x7375624B, big-endian
    /// let msg = Message::<_, Layout64Be>::new_checked_in(&buf[..len])?;
    /// assert_eq!(msg.name(), "$.Box.Tuner");
    /// assert_eq!(msg.data(), b"ch?");
    /// assert!(matches!(
    ///     Message::<_, Layout64Le>::new_checked_in(&buf[..len]),
    ///     Err(Error::BadStartGuard { found: 0x4B62_7573 })
    /// ));
    /// # Ok::<(), kbus_wire::Error>(())
    /// ```
    #[inline]
    pub fn new_checked_in(buffer: T) -> Result<Self, Error> {
        let message = Self::new_unchecked_in(buffer);
        message.check()?;
        Ok(message)
    }

    /// Runs the checks of [`Message::new_checked`].
    pub fn check(&self) -> Result<(), Error> {
        let buf = self.buffer.as_ref();
        if buf.len() < L::HEADER_LEN {
            return Err(Error::Truncated {
                needed: L::HEADER_LEN,
                got: buf.len(),
            });
        }
        let found = self.start_guard();
        if found != START_GUARD {
            return Err(Error::BadStartGuard { found });
        }
        let found = self.end_guard();
        if found != END_GUARD {
            return Err(Error::BadEndGuard { found });
        }
        let (name_ptr, data_ptr) = (self.name_ptr(), self.data_ptr());
        if name_ptr != 0 || data_ptr != 0 {
            return Err(Error::NotEntire { name_ptr, data_ptr });
        }
        let name_len = len_usize(self.name_len());
        if name_len > MAX_NAME_LEN {
            return Err(NameError::TooLong { len: name_len }.into());
        }
        let total = self.total_len();
        if buf.len() < total {
            return Err(Error::Truncated {
                needed: total,
                got: buf.len(),
            });
        }
        let found = self.final_guard();
        if found != END_GUARD {
            return Err(Error::BadFinalGuard { found });
        }
        Ok(())
    }

    /// Checks what the message *means* rather than its structure: the name
    /// is a valid message name (§4.1: Latin-1 letters allowed, no
    /// wildcard), as the kernel ensures for everything it delivers.
    pub fn check_name(&self) -> Result<(), Error> {
        Ok(validate_message_name(self.name_bytes())?)
    }

    /// A view of the same bytes borrowed from this one, with the borrowed
    /// accessors (`name`, `data`, `repr`) for generic code.
    #[inline]
    pub fn view(&self) -> Message<&[u8], L> {
        Message::new_unchecked_in(self.buffer.as_ref())
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole wrapped buffer (may extend past [`Message::total_len`]).
    #[inline]
    pub fn buffer(&self) -> &T {
        &self.buffer
    }

    /// The message's bytes: the first [`Message::total_len`] bytes of the
    /// buffer (or all of it if shorter).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        buf.get(..self.total_len()).unwrap_or(buf)
    }

    /// The header bytes (or fewer if the buffer is shorter).
    #[inline]
    pub fn header_bytes(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        buf.get(..L::HEADER_LEN).unwrap_or(buf)
    }

    /// A copy of the header as its zerocopy struct ([`Header64`] or
    /// [`Header32`]) with every field in host order, whatever `L`'s byte
    /// order (for a native-order layout its bytes are exactly
    /// [`Message::header_bytes`]); all zeros if the buffer is shorter than a
    /// header.
    ///
    /// [`Header64`]: crate::Header64
    /// [`Header32`]: crate::Header32
    #[inline]
    pub fn header(&self) -> L::Header {
        match L::Header::read_from_prefix(self.buffer.as_ref()) {
            Ok((mut header, _)) => {
                header_to_host::<L>(header.as_mut_bytes());
                header
            }
            Err(_) => L::Header::default(),
        }
    }

    /// `ENTIRE(name_len, data_len)` for this layout: the message's size in
    /// bytes, computed from the header (saturating).
    #[inline]
    pub fn total_len(&self) -> usize {
        entire_len::<L>(len_usize(self.name_len()), len_usize(self.data_len()))
    }

    /// The `u32` at `off` in `L`'s byte order (0 when out of range).
    #[inline]
    fn u32_at(&self, off: usize) -> u32 {
        read_u32::<L::ByteOrder>(self.buffer.as_ref(), off)
    }

    #[inline]
    fn read_id(&self, off: usize) -> MessageId {
        MessageId::new(self.u32_at(off), self.u32_at(off + 4))
    }

    #[inline]
    fn read_orig(&self, off: usize) -> OrigFrom {
        OrigFrom::new(self.u32_at(off), self.u32_at(off + 4))
    }

    /// `start_guard` field.
    #[inline]
    pub fn start_guard(&self) -> u32 {
        self.u32_at(offset::START_GUARD)
    }
    /// `id` field.
    #[inline]
    pub fn id(&self) -> MessageId {
        self.read_id(offset::ID)
    }
    /// `in_reply_to` field ({0,0} when not a Reply).
    #[inline]
    pub fn in_reply_to(&self) -> MessageId {
        self.read_id(offset::IN_REPLY_TO)
    }
    /// `to` field.
    #[inline]
    pub fn to(&self) -> u32 {
        self.u32_at(offset::TO)
    }
    /// `from` field.
    #[inline]
    pub fn from(&self) -> u32 {
        self.u32_at(offset::FROM)
    }
    /// `orig_from` field.
    #[inline]
    pub fn orig_from(&self) -> OrigFrom {
        self.read_orig(offset::ORIG_FROM)
    }
    /// `final_to` field.
    #[inline]
    pub fn final_to(&self) -> OrigFrom {
        self.read_orig(offset::FINAL_TO)
    }
    /// `extra` field (reserved).
    #[inline]
    pub fn extra(&self) -> u32 {
        self.u32_at(offset::EXTRA)
    }
    /// `flags` field.
    #[inline]
    pub fn flags(&self) -> Flags {
        Flags(self.u32_at(offset::FLAGS))
    }
    /// `name_len` field.
    #[inline]
    pub fn name_len(&self) -> u32 {
        self.u32_at(offset::NAME_LEN)
    }
    /// `data_len` field.
    #[inline]
    pub fn data_len(&self) -> u32 {
        self.u32_at(offset::DATA_LEN)
    }
    /// `name` pointer field (0 in an entire message).
    #[inline]
    pub fn name_ptr(&self) -> u64 {
        read_ptr::<L::ByteOrder>(self.buffer.as_ref(), L::NAME_PTR, L::POINTER_LEN)
    }
    /// `data` pointer field (0 in an entire message).
    #[inline]
    pub fn data_ptr(&self) -> u64 {
        read_ptr::<L::ByteOrder>(self.buffer.as_ref(), L::DATA_PTR, L::POINTER_LEN)
    }
    /// The header's `end_guard` field.
    #[inline]
    pub fn end_guard(&self) -> u32 {
        self.u32_at(L::END_GUARD)
    }

    #[inline]
    fn data_offset(&self) -> usize {
        L::HEADER_LEN.saturating_add(padded_name_len(len_usize(self.name_len())))
    }

    /// The final end guard after the data.
    #[inline]
    pub fn final_guard(&self) -> u32 {
        self.u32_at(self.total_len().saturating_sub(4))
    }

    /// The name's bytes (`name_len` bytes after the header).
    #[inline]
    pub fn name_bytes(&self) -> &[u8] {
        field::slice(
            self.buffer.as_ref(),
            L::HEADER_LEN,
            len_usize(self.name_len()),
        )
    }

    #[inline]
    fn name_view(&self) -> Name<'_> {
        Name::from_bytes(self.name_bytes())
    }

    #[inline]
    fn data_view(&self) -> &[u8] {
        field::slice(
            self.buffer.as_ref(),
            self.data_offset(),
            len_usize(self.data_len()),
        )
    }

    /// The Python binding's predicates (spec §9.3).
    ///
    /// `WANT_A_REPLY` set.
    #[inline]
    pub fn is_request(&self) -> bool {
        MessageFields::is_request(self)
    }
    /// `in_reply_to` is not zero.
    #[inline]
    pub fn is_reply(&self) -> bool {
        MessageFields::is_reply(self)
    }
    /// `WANT_A_REPLY` set and `to` not zero.
    #[inline]
    pub fn is_stateful_request(&self) -> bool {
        MessageFields::is_stateful_request(self)
    }
    /// `WANT_YOU_TO_REPLY` set: KBUS chose the reader as the Replier.
    #[inline]
    pub fn wants_us_to_reply(&self) -> bool {
        MessageFields::wants_us_to_reply(self)
    }
    /// `SYNTHETIC` set.
    #[inline]
    pub fn is_synthetic(&self) -> bool {
        MessageFields::is_synthetic(self)
    }
    /// `URGENT` set.
    #[inline]
    pub fn is_urgent(&self) -> bool {
        MessageFields::is_urgent(self)
    }
    /// The message's [`Kind`].
    #[inline]
    pub fn kind(&self) -> Kind {
        Kind::classify(
            self.name_bytes(),
            self.flags(),
            self.in_reply_to(),
            self.to(),
        )
    }
    /// The standard KBUS name this message carries, if any.
    #[inline]
    pub fn synthetic_name(&self) -> Option<SyntheticName> {
        SyntheticName::from_name(self.name_bytes())
    }

    fn show(&self) -> Show<'_> {
        Show {
            kind: self.kind(),
            name: self.name_bytes(),
            id: self.id(),
            in_reply_to: self.in_reply_to(),
            to: self.to(),
            from: self.from(),
            orig_from: self.orig_from(),
            final_to: self.final_to(),
            flags: self.flags(),
            data: self.data_view(),
            big_endian: Some(<L::ByteOrder as crate::ByteOrder>::IS_BIG_ENDIAN),
        }
    }
}

/// `name`, `data`, `repr` and `bind_event` for a message over `&'a T`:
/// the results borrow from the buffer for `'a`.
impl<'a, T: AsRef<[u8]> + ?Sized, L: Layout> Message<&'a T, L> {
    #[inline]
    fn bytes(&self) -> &'a [u8] {
        let buffer: &'a T = self.buffer;
        buffer.as_ref()
    }

    /// The name (`name_len` bytes after the header), borrowed from the
    /// buffer. A [`Name`] compares with `&str`; [`Name::to_str`] gives
    /// `&str` for ASCII names.
    #[inline]
    pub fn name(&self) -> Name<'a> {
        Name::from_bytes(field::slice(
            self.bytes(),
            L::HEADER_LEN,
            len_usize(self.name_len()),
        ))
    }

    /// The data (`data_len` bytes after the padded name), borrowed from the
    /// buffer.
    #[inline]
    pub fn data(&self) -> &'a [u8] {
        field::slice(self.bytes(), self.data_offset(), len_usize(self.data_len()))
    }

    /// The fields as a [`MessageRepr`] borrowing name and data from the
    /// buffer (no checks; see [`MessageRepr::parse`] for the checked form).
    #[inline]
    pub fn repr(&self) -> MessageRepr<'a> {
        MessageRepr {
            id: self.id(),
            in_reply_to: self.in_reply_to(),
            to: self.to(),
            from: self.from(),
            orig_from: self.orig_from(),
            final_to: self.final_to(),
            extra: self.extra(),
            flags: self.flags(),
            name: self.name(),
            data: self.data(),
        }
    }

    /// The data as a replier bind event, if this is a
    /// `$.KBUS.ReplierBindEvent` with well-formed data. The event's words
    /// are read in `L`'s byte order, like the header's.
    pub fn bind_event(&self) -> Result<ReplierBindEvent<&'a [u8], L::ByteOrder>, Error> {
        if self.name_bytes() != crate::name::REPLIER_BIND_EVENT.as_bytes() {
            return Err(Error::NotBindEvent);
        }
        ReplierBindEvent::new_checked_in(self.data())
    }
}

/// `name`, `data`, `repr` and `bind_event` for a message over owned or
/// mutably borrowed storage: the results borrow from the view.
macro_rules! view_accessors {
    ($([$($gen:tt)*] $ty:ty),* $(,)?) => {$(
        impl<$($gen)* L: Layout> Message<$ty, L> {
            /// The name (`name_len` bytes after the header). A [`Name`]
            /// compares with `&str`; [`Name::to_str`] gives `&str` for ASCII
            /// names.
            #[inline]
            pub fn name(&self) -> Name<'_> {
                self.name_view()
            }

            /// The data (`data_len` bytes after the padded name).
            #[inline]
            pub fn data(&self) -> &[u8] {
                self.data_view()
            }

            /// The fields as a [`MessageRepr`] borrowing name and data (no
            /// checks).
            #[inline]
            pub fn repr(&self) -> MessageRepr<'_> {
                self.view().repr()
            }

            /// The data as a replier bind event, if this is a
            /// `$.KBUS.ReplierBindEvent` with well-formed data (read in
            /// `L`'s byte order).
            pub fn bind_event(&self) -> Result<ReplierBindEvent<&[u8], L::ByteOrder>, Error> {
                self.view().bind_event()
            }
        }
    )*};
}

view_accessors!(
    ['b, T: AsRef<[u8]> + ?Sized,] &'b mut T,
    [const N: usize,] [u8; N],
    [const N: usize,] heapless::Vec<u8, N>,
);

#[cfg(feature = "alloc")]
view_accessors!(
    [] alloc::boxed::Box<[u8]>,
    [] alloc::vec::Vec<u8>,
);

impl<T: AsRef<[u8]> + AsMut<[u8]>, L: Layout> Message<T, L> {
    #[inline]
    fn buf_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
    /// Writes `value` at `off` in `L`'s byte order (nothing when out of
    /// range).
    #[inline]
    fn put_u32(&mut self, off: usize, value: u32) {
        write_u32::<L::ByteOrder>(self.buf_mut(), off, value);
    }
    /// Sets the `start_guard` field.
    #[inline]
    pub fn set_start_guard(&mut self, value: u32) {
        self.put_u32(offset::START_GUARD, value);
    }
    /// Sets the `id` field.
    #[inline]
    pub fn set_id(&mut self, id: MessageId) {
        self.put_u32(offset::ID, id.network_id);
        self.put_u32(offset::ID + 4, id.serial_num);
    }
    /// Sets the `in_reply_to` field.
    #[inline]
    pub fn set_in_reply_to(&mut self, id: MessageId) {
        self.put_u32(offset::IN_REPLY_TO, id.network_id);
        self.put_u32(offset::IN_REPLY_TO + 4, id.serial_num);
    }
    /// Sets the `to` field.
    #[inline]
    pub fn set_to(&mut self, value: u32) {
        self.put_u32(offset::TO, value);
    }
    /// Sets the `from` field.
    #[inline]
    pub fn set_from(&mut self, value: u32) {
        self.put_u32(offset::FROM, value);
    }
    /// Sets the `orig_from` field.
    #[inline]
    pub fn set_orig_from(&mut self, value: OrigFrom) {
        self.put_u32(offset::ORIG_FROM, value.network_id);
        self.put_u32(offset::ORIG_FROM + 4, value.local_id);
    }
    /// Sets the `final_to` field.
    #[inline]
    pub fn set_final_to(&mut self, value: OrigFrom) {
        self.put_u32(offset::FINAL_TO, value.network_id);
        self.put_u32(offset::FINAL_TO + 4, value.local_id);
    }
    /// Sets the `extra` field.
    #[inline]
    pub fn set_extra(&mut self, value: u32) {
        self.put_u32(offset::EXTRA, value);
    }
    /// Sets the `flags` field.
    #[inline]
    pub fn set_flags(&mut self, value: Flags) {
        self.put_u32(offset::FLAGS, value.0);
    }
    /// Sets the `name_len` field (moves where the data and final guard are
    /// looked for; re-check afterwards).
    #[inline]
    pub fn set_name_len(&mut self, value: u32) {
        self.put_u32(offset::NAME_LEN, value);
    }
    /// Sets the `data_len` field (moves where the final guard is looked for;
    /// re-check afterwards).
    #[inline]
    pub fn set_data_len(&mut self, value: u32) {
        self.put_u32(offset::DATA_LEN, value);
    }
    /// Sets the `name` pointer field (truncated to 32 bits on the 32-bit
    /// layouts).
    #[inline]
    pub fn set_name_ptr(&mut self, value: u64) {
        write_ptr::<L::ByteOrder>(self.buf_mut(), L::NAME_PTR, L::POINTER_LEN, value);
    }
    /// Sets the `data` pointer field (truncated to 32 bits on the 32-bit
    /// layouts).
    #[inline]
    pub fn set_data_ptr(&mut self, value: u64) {
        write_ptr::<L::ByteOrder>(self.buf_mut(), L::DATA_PTR, L::POINTER_LEN, value);
    }
    /// Sets the header's `end_guard` field.
    #[inline]
    pub fn set_end_guard(&mut self, value: u32) {
        self.put_u32(L::END_GUARD, value);
    }
    /// Sets the final end guard (at `total_len() - 4`).
    #[inline]
    pub fn set_final_guard(&mut self, value: u32) {
        let off = self.total_len().saturating_sub(4);
        self.put_u32(off, value);
    }
    /// The name bytes, mutable (a name must stay valid to pass the checks).
    #[inline]
    pub fn name_bytes_mut(&mut self) -> &mut [u8] {
        let len = len_usize(self.name_len());
        field::slice_mut(self.buf_mut(), L::HEADER_LEN, len)
    }
    /// The data, mutable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let (off, len) = (self.data_offset(), len_usize(self.data_len()));
        field::slice_mut(self.buf_mut(), off, len)
    }
}

impl<T: AsRef<[u8]>, L: Layout> MessageFields for Message<T, L> {
    #[inline]
    fn id(&self) -> MessageId {
        Message::id(self)
    }
    #[inline]
    fn in_reply_to(&self) -> MessageId {
        Message::in_reply_to(self)
    }
    #[inline]
    fn to(&self) -> u32 {
        Message::to(self)
    }
    #[inline]
    fn from(&self) -> u32 {
        Message::from(self)
    }
    #[inline]
    fn orig_from(&self) -> OrigFrom {
        Message::orig_from(self)
    }
    #[inline]
    fn final_to(&self) -> OrigFrom {
        Message::final_to(self)
    }
    #[inline]
    fn flags(&self) -> Flags {
        Message::flags(self)
    }
    #[inline]
    fn name(&self) -> Name<'_> {
        self.name_view()
    }
    #[inline]
    fn data(&self) -> &[u8] {
        self.data_view()
    }
}

impl<T: AsRef<[u8]> + Clone, L: Layout> Clone for Message<T, L> {
    fn clone(&self) -> Self {
        Message::new_unchecked_in(self.buffer.clone())
    }
}

impl<T: AsRef<[u8]> + Copy, L: Layout> Copy for Message<T, L> {}

impl<T: AsRef<[u8]>, L: Layout, U: AsRef<[u8]>> PartialEq<Message<U, L>> for Message<T, L> {
    /// Two messages are equal when their bytes up to `total_len()` are.
    fn eq(&self, other: &Message<U, L>) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl<T: AsRef<[u8]>, L: Layout> Eq for Message<T, L> {}

impl<T: AsRef<[u8]>, L: Layout> fmt::Display for Message<T, L> {
    /// `<Request '$.Fred', id=[0:3], to=5, flags=0x1 (REQ), data=b"abc">`
    /// (zero fields left out; data as text when printable, hex otherwise,
    /// truncated after 64 bytes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.show(), f)
    }
}

impl<T: AsRef<[u8]>, L: Layout> fmt::Debug for Message<T, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct D<X>(X);
        impl<X: fmt::Display> fmt::Debug for D<X> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
        f.debug_struct("Message")
            .field("layout", &D(L::NAME))
            .field("kind", &self.kind())
            .field(
                "name",
                &D(format_args!("'{}'", ShowName(self.name_bytes()))),
            )
            .field("id", &D(self.id()))
            .field("in_reply_to", &D(self.in_reply_to()))
            .field("to", &self.to())
            .field("from", &self.from())
            .field("orig_from", &D(self.orig_from()))
            .field("final_to", &D(self.final_to()))
            .field("extra", &self.extra())
            .field("flags", &D(self.flags()))
            .field("name_len", &self.name_len())
            .field("data_len", &self.data_len())
            .field("data", &D(ShowData(self.data_view())))
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl<T: AsRef<[u8]>, L: Layout> defmt::Format for Message<T, L> {
    fn format(&self, f: defmt::Formatter<'_>) {
        crate::repr::defmt_show(
            f,
            self.kind(),
            self.name_bytes(),
            self.id(),
            self.in_reply_to(),
            self.to(),
            self.from(),
            self.flags(),
            self.data_view(),
        );
    }
}
