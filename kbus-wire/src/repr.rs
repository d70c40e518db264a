//! The high-level form of a message: parse, build and emit (spec §3.4,
//! §3.5, §9.3).

use core::fmt;
use core::marker::PhantomData;

use zerocopy::{FromZeros, IntoBytes};

use crate::field::{write_ptr, write_u32};
use crate::kind::{MessageFields, Show};
use crate::layout::{len_usize, offset, padded_data_len, padded_name_len, Layout, NativeHeader};
use crate::name::{validate_message_name, Name};
use crate::{
    entire_len, Error, Flags, Kind, Message, MessageId, NativeLayout, OrigFrom, END_GUARD,
    START_GUARD,
};

/// A message's fields, with name and data borrowed.
///
/// Build one with [`MessageRepr::announcement`], [`MessageRepr::request`],
/// [`MessageRepr::reply_to`] or [`MessageRepr::stateful_request`] (then set
/// any public field), or get one from received bytes with
/// [`MessageRepr::parse`]. [`MessageRepr::emit`] writes the *entire* form
/// (exactly [`MessageRepr::buffer_len`] bytes, zero padding, `extra` = 0, NULL
/// pointers) in either layout; [`MessageRepr::pointy_header`] gives the
/// native *pointy* header for zero-copy sends.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MessageRepr<'a> {
    /// Message id (KBUS assigns one on send when zero).
    pub id: MessageId,
    /// Id of the Request this answers; zero if not a Reply.
    pub in_reply_to: MessageId,
    /// 0, or the Ksock id of a Reply's or Stateful Request's target.
    pub to: u32,
    /// Sender's Ksock id (KBUS sets it on send).
    pub from: u32,
    /// Limpet use.
    pub orig_from: OrigFrom,
    /// Limpet use.
    pub final_to: OrigFrom,
    /// Reserved; KBUS forces it to 0 on send, but a parsed message keeps
    /// what its bytes said, so parse → emit is byte-exact.
    pub extra: u32,
    /// Flags.
    pub flags: Flags,
    /// The name (validated by [`MessageRepr::emit`]); set
    /// `Name::from_bytes` for a Latin-1 one.
    pub name: Name<'a>,
    /// The data (may be empty).
    pub data: &'a [u8],
}

impl<'a> MessageRepr<'a> {
    /// An Announcement: no flags, everything else zero.
    #[inline]
    #[must_use]
    pub const fn announcement(name: &'a str, data: &'a [u8]) -> Self {
        MessageRepr {
            id: MessageId::ZERO,
            in_reply_to: MessageId::ZERO,
            to: 0,
            from: 0,
            orig_from: OrigFrom::ZERO,
            final_to: OrigFrom::ZERO,
            extra: 0,
            flags: Flags::empty(),
            name: Name::new(name),
            data,
        }
    }

    /// A Request: like an Announcement with `WANT_A_REPLY` set.
    #[inline]
    #[must_use]
    pub const fn request(name: &'a str, data: &'a [u8]) -> Self {
        let mut repr = Self::announcement(name, data);
        repr.flags = Flags::WANT_A_REPLY;
        repr
    }

    /// The Reply to `request` (spec §9.3 `reply_to`): same name,
    /// `in_reply_to` = its id, `to` = its sender, no flags; the request's
    /// data, flags and `orig_from` are not copied.
    ///
    /// Fails with [`Error::NotOursToReply`] unless `request` has both
    /// `WANT_A_REPLY` and `WANT_YOU_TO_REPLY` (i.e. it is the copy KBUS
    /// delivered to its chosen Replier).
    pub fn reply_to<M: MessageFields + ?Sized>(
        request: &'a M,
        data: &'a [u8],
    ) -> Result<Self, Error> {
        let flags = request.flags();
        if !flags.contains(Flags::WANT_A_REPLY | Flags::WANT_YOU_TO_REPLY) {
            return Err(Error::NotOursToReply);
        }
        let mut repr = Self::announcement("", data);
        repr.name = request.name();
        repr.in_reply_to = request.id();
        repr.to = request.from();
        Ok(repr)
    }

    /// A Stateful Request following `earlier` (spec §9.3
    /// `stateful_request`), with `WANT_A_REPLY` set:
    ///
    /// * after a Reply: `to` = the Reply's sender, `final_to` = its
    ///   `orig_from` (so it goes to the Replier that answered);
    /// * after a Stateful Request: the same `to` and `final_to`;
    /// * otherwise [`Error::NotReplyOrStatefulRequest`].
    pub fn stateful_request<M: MessageFields + ?Sized>(
        earlier: &M,
        name: &'a str,
        data: &'a [u8],
    ) -> Result<Self, Error> {
        let mut repr = Self::request(name, data);
        if earlier.is_reply() {
            repr.to = earlier.from();
            repr.final_to = earlier.orig_from();
        } else if earlier.is_stateful_request() {
            repr.to = earlier.to();
            repr.final_to = earlier.final_to();
        } else {
            return Err(Error::NotReplyOrStatefulRequest);
        }
        Ok(repr)
    }

    /// Checks `msg`'s structure (as [`Message::check`]) and returns its
    /// fields, borrowing name and data from `msg`'s buffer for `'a`. For an
    /// owned message, parse its [`view`](Message::view).
    pub fn parse<T: AsRef<[u8]> + ?Sized, L: Layout>(
        msg: &Message<&'a T, L>,
    ) -> Result<Self, Error> {
        msg.check()?;
        Ok(msg.repr())
    }

    /// This message's [`Kind`].
    #[inline]
    #[must_use]
    pub fn kind(&self) -> Kind {
        MessageFields::kind(self)
    }

    /// `WANT_A_REPLY` set.
    #[inline]
    #[must_use]
    pub fn is_request(&self) -> bool {
        MessageFields::is_request(self)
    }
    /// `in_reply_to` is not zero.
    #[inline]
    #[must_use]
    pub fn is_reply(&self) -> bool {
        MessageFields::is_reply(self)
    }
    /// `WANT_A_REPLY` set and `to` not zero.
    #[inline]
    #[must_use]
    pub fn is_stateful_request(&self) -> bool {
        MessageFields::is_stateful_request(self)
    }
    /// `WANT_YOU_TO_REPLY` set.
    #[inline]
    #[must_use]
    pub fn wants_us_to_reply(&self) -> bool {
        MessageFields::wants_us_to_reply(self)
    }
    /// `SYNTHETIC` set.
    #[inline]
    #[must_use]
    pub fn is_synthetic(&self) -> bool {
        MessageFields::is_synthetic(self)
    }
    /// `URGENT` set.
    #[inline]
    #[must_use]
    pub fn is_urgent(&self) -> bool {
        MessageFields::is_urgent(self)
    }

    /// Checks what [`MessageRepr::emit`] checks: a valid, non-wildcard name
    /// and data of at most `u32::MAX` bytes.
    pub fn validate(&self) -> Result<(), Error> {
        validate_message_name(self.name.as_bytes())?;
        if u32::try_from(self.data.len()).is_err() {
            return Err(Error::DataTooLong {
                len: self.data.len(),
            });
        }
        Ok(())
    }

    /// `ENTIRE(name_len, data_len)` in the native layout: what
    /// [`MessageRepr::emit`] writes. Other layout:
    /// [`buffer_len_in`](Self::buffer_len_in).
    #[inline]
    #[must_use]
    pub const fn buffer_len(&self) -> usize {
        self.buffer_len_in::<NativeLayout>()
    }

    /// `ENTIRE(name_len, data_len)` in layout `L`.
    #[inline]
    #[must_use]
    pub const fn buffer_len_in<L: Layout>(&self) -> usize {
        entire_len::<L>(self.name.len(), self.data.len())
    }

    /// Writes the entire message in the native layout to the start of `buf`
    /// and returns its length, [`MessageRepr::buffer_len`]. Bytes after it
    /// are left alone. Other layout: [`emit_in`](Self::emit_in).
    ///
    /// Fails with [`Error::Name`] for a name that cannot be sent,
    /// [`Error::DataTooLong`], or [`Error::BufferTooSmall`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        self.emit_in::<NativeLayout>(buf)
    }

    /// [`emit`](Self::emit) in layout `L`: `repr.emit_in::<Layout32>(&mut buf)`,
    /// or for a machine of the other byte order
    /// `repr.emit_in::<Layout32Be>(&mut buf)`.
    pub fn emit_in<L: Layout>(&self, buf: &mut [u8]) -> Result<usize, Error> {
        self.validate()?;
        self.emit_unvalidated_in::<L>(buf)
    }

    /// Like [`MessageRepr::emit`] without the name check (to produce
    /// messages KBUS will refuse, e.g. in tests). Lengths are still checked:
    /// a name or data longer than `u32::MAX` bytes gives
    /// [`Error::DataTooLong`].
    pub fn emit_unvalidated(&self, buf: &mut [u8]) -> Result<usize, Error> {
        self.emit_unvalidated_in::<NativeLayout>(buf)
    }

    /// [`emit_unvalidated`](Self::emit_unvalidated) in layout `L`.
    pub fn emit_unvalidated_in<L: Layout>(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let total = self.buffer_len_in::<L>();
        let got = buf.len();
        let Some(out) = buf.get_mut(..total) else {
            return Err(Error::BufferTooSmall { needed: total, got });
        };
        let (header, rest) = out.split_at_mut(L::HEADER_LEN);
        self.write_header::<L>(header, 0, 0)?;
        let (name_area, rest) = rest.split_at_mut(padded_name_len(self.name.len()));
        copy_padded(name_area, self.name.as_bytes());
        let (data_area, guard) = rest.split_at_mut(padded_data_len(self.data.len()));
        copy_padded(data_area, self.data);
        write_u32::<L::ByteOrder>(guard, 0, END_GUARD);
        Ok(total)
    }

    /// Writes the header for layout `L` into `header` (exactly
    /// `L::HEADER_LEN` bytes), padding zeroed.
    fn write_header<L: Layout>(
        &self,
        header: &mut [u8],
        name_ptr: u64,
        data_ptr: u64,
    ) -> Result<(), Error> {
        let too_long = |len| Error::DataTooLong { len };
        let name_len = u32::try_from(self.name.len()).map_err(|_| too_long(self.name.len()))?;
        let data_len = u32::try_from(self.data.len()).map_err(|_| too_long(self.data.len()))?;
        header.fill(0);
        write_u32::<L::ByteOrder>(header, offset::START_GUARD, START_GUARD);
        write_u32::<L::ByteOrder>(header, offset::ID, self.id.network_id);
        write_u32::<L::ByteOrder>(header, offset::ID + 4, self.id.serial_num);
        write_u32::<L::ByteOrder>(header, offset::IN_REPLY_TO, self.in_reply_to.network_id);
        write_u32::<L::ByteOrder>(header, offset::IN_REPLY_TO + 4, self.in_reply_to.serial_num);
        write_u32::<L::ByteOrder>(header, offset::TO, self.to);
        write_u32::<L::ByteOrder>(header, offset::FROM, self.from);
        write_u32::<L::ByteOrder>(header, offset::ORIG_FROM, self.orig_from.network_id);
        write_u32::<L::ByteOrder>(header, offset::ORIG_FROM + 4, self.orig_from.local_id);
        write_u32::<L::ByteOrder>(header, offset::FINAL_TO, self.final_to.network_id);
        write_u32::<L::ByteOrder>(header, offset::FINAL_TO + 4, self.final_to.local_id);
        write_u32::<L::ByteOrder>(header, offset::EXTRA, self.extra);
        write_u32::<L::ByteOrder>(header, offset::FLAGS, self.flags.bits());
        write_u32::<L::ByteOrder>(header, offset::NAME_LEN, name_len);
        write_u32::<L::ByteOrder>(header, offset::DATA_LEN, data_len);
        write_ptr::<L::ByteOrder>(header, L::NAME_PTR, L::POINTER_LEN, name_ptr);
        write_ptr::<L::ByteOrder>(header, L::DATA_PTR, L::POINTER_LEN, data_ptr);
        write_u32::<L::ByteOrder>(header, L::END_GUARD, END_GUARD);
        Ok(())
    }

    /// The entire native-layout message in a fixed-capacity
    /// [`heapless::Vec`] (no allocation).
    pub fn emit_heapless<const N: usize>(&self) -> Result<heapless::Vec<u8, N>, Error> {
        self.emit_heapless_in::<NativeLayout, N>()
    }

    /// [`emit_heapless`](Self::emit_heapless) in layout `L`.
    pub fn emit_heapless_in<L: Layout, const N: usize>(
        &self,
    ) -> Result<heapless::Vec<u8, N>, Error> {
        let mut out = heapless::Vec::new();
        let needed = self.buffer_len_in::<L>();
        out.resize(needed, 0)
            .map_err(|()| Error::BufferTooSmall { needed, got: N })?;
        self.emit_in::<L>(&mut out)?;
        Ok(out)
    }

    /// The entire native-layout message in a new `Vec` (feature `alloc`).
    #[cfg(feature = "alloc")]
    pub fn to_vec(&self) -> Result<alloc::vec::Vec<u8>, Error> {
        self.to_vec_in::<NativeLayout>()
    }

    /// [`to_vec`](Self::to_vec) in layout `L` (feature `alloc`).
    #[cfg(feature = "alloc")]
    pub fn to_vec_in<L: Layout>(&self) -> Result<alloc::vec::Vec<u8>, Error> {
        let mut out = alloc::vec![0; self.buffer_len_in::<L>()];
        self.emit_in::<L>(&mut out)?;
        Ok(out)
    }

    /// A *pointy* header in the native layout for a zero-copy send: the
    /// header bytes, with the name pointer field holding the address of
    /// `self.name` and the data pointer field that of `self.data` (NULL
    /// when the data is empty, spec §3.5). The result borrows name and data
    /// for `'a`, so they outlive it.
    ///
    /// Nothing is validated here (the kernel checks the name at SEND); use
    /// [`MessageRepr::validate`] first for an early error.
    ///
    /// Note: this project's `kbus.ko` copies exactly `name_len` name bytes.
    /// The original module also read the byte after the name (its value
    /// unchecked), so there a name ending exactly at the end of a mapped
    /// page made SEND fail with EFAULT. `kbus_rustix::Ksock::send_msg`
    /// copies such a name (and only such a name) to a NUL-terminated stack
    /// buffer first; code sending pointy headers by other means must do the
    /// same.
    #[must_use]
    pub fn pointy_header(&self) -> PointyHeader<'a> {
        PointyHeader::new(self)
    }

    fn show(&self) -> Show<'_> {
        Show {
            kind: self.kind(),
            name: self.name.as_bytes(),
            id: self.id,
            in_reply_to: self.in_reply_to,
            to: self.to,
            from: self.from,
            orig_from: self.orig_from,
            final_to: self.final_to,
            flags: self.flags,
            data: self.data,
            big_endian: None,
        }
    }
}

/// Copies `src` to the start of `area` and zeroes the rest (`area` is at
/// least as long as `src` by construction; a shorter area gets a prefix).
fn copy_padded(area: &mut [u8], src: &[u8]) {
    let n = src.len().min(area.len());
    let (head, tail) = area.split_at_mut(n);
    head.copy_from_slice(src.get(..n).unwrap_or(&[]));
    tail.fill(0);
}

impl MessageFields for MessageRepr<'_> {
    #[inline]
    fn id(&self) -> MessageId {
        self.id
    }
    #[inline]
    fn in_reply_to(&self) -> MessageId {
        self.in_reply_to
    }
    #[inline]
    fn to(&self) -> u32 {
        self.to
    }
    #[inline]
    fn from(&self) -> u32 {
        self.from
    }
    #[inline]
    fn orig_from(&self) -> OrigFrom {
        self.orig_from
    }
    #[inline]
    fn final_to(&self) -> OrigFrom {
        self.final_to
    }
    #[inline]
    fn flags(&self) -> Flags {
        self.flags
    }
    #[inline]
    fn name(&self) -> Name<'_> {
        self.name
    }
    #[inline]
    fn data(&self) -> &[u8] {
        self.data
    }
}

impl fmt::Display for MessageRepr<'_> {
    /// Same form as [`Message`]'s `Display`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.show(), f)
    }
}

impl fmt::Debug for MessageRepr<'_> {
    /// The `Display` form (readable, truncated data).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageRepr{}", self.show())
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for MessageRepr<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt_show(
            f,
            self.kind(),
            self.name.as_bytes(),
            self.id,
            self.in_reply_to,
            self.to,
            self.from,
            self.flags,
            self.data,
        );
    }
}

#[cfg(feature = "defmt")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn defmt_show(
    f: defmt::Formatter<'_>,
    kind: Kind,
    name: &[u8],
    id: MessageId,
    in_reply_to: MessageId,
    to: u32,
    from: u32,
    flags: Flags,
    data: &[u8],
) {
    let name = core::str::from_utf8(name).unwrap_or("<non-UTF-8 name>");
    defmt::write!(
        f,
        "<{} '{=str}', id={}, in_reply_to={}, to={=u32}, from={=u32}, flags={}, data_len={=usize}>",
        kind,
        name,
        id,
        in_reply_to,
        to,
        from,
        flags,
        data.len()
    );
}

/// A native-layout *pointy* header whose name and data pointer fields point
/// at memory borrowed for `'a` (spec §3.5). See
/// [`MessageRepr::pointy_header`].
///
/// ```
/// use kbus_wire::{MessageRepr, NativeLayout, Layout};
/// let data = *b"abc";
/// let repr = MessageRepr::request("$.Fred", &data);
/// let pointy = repr.pointy_header();
/// assert_eq!(pointy.as_bytes().len(), NativeLayout::HEADER_LEN);
/// assert_eq!(pointy.name_ptr(), repr.name.as_bytes().as_ptr() as usize);
/// assert_eq!(pointy.data_ptr(), data.as_ptr() as usize);
/// ```
///
/// The header cannot outlive the bytes it points at:
///
/// ```compile_fail,E0597
/// let pointy = {
///     let data = vec![1u8, 2, 3];
///     kbus_wire::MessageRepr::request("$.Fred", &data).pointy_header()
/// };
/// # drop(pointy);
/// ```
#[derive(Clone, Copy)]
pub struct PointyHeader<'a> {
    header: NativeHeader,
    borrow: PhantomData<(&'a str, &'a [u8])>,
}

impl<'a> PointyHeader<'a> {
    /// The pointy header of `repr` (name and data lengths checked only for
    /// fitting in `u32`; if either does not, the whole header is zero,
    /// guards included, which KBUS refuses with EINVAL).
    #[must_use]
    pub fn new(repr: &MessageRepr<'a>) -> Self {
        let name_ptr = repr.name.as_bytes().as_ptr() as usize as u64;
        let data_ptr = if repr.data.is_empty() {
            0
        } else {
            repr.data.as_ptr() as usize as u64
        };
        let mut header = NativeHeader::new_zeroed();
        if repr
            .write_header::<NativeLayout>(header.as_mut_bytes(), name_ptr, data_ptr)
            .is_err()
        {
            // Lengths beyond u32: an all-zero header (no guards either),
            // which KBUS refuses at write time.
            header = NativeHeader::new_zeroed();
        }
        PointyHeader {
            header,
            borrow: PhantomData,
        }
    }

    /// Exactly `NativeLayout::HEADER_LEN` bytes, ready for `write()`.
    #[inline]
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.header.as_bytes()
    }

    /// The header struct.
    #[inline]
    #[must_use]
    pub fn header(&self) -> &NativeHeader {
        &self.header
    }

    /// The name pointer field.
    #[inline]
    #[must_use]
    pub fn name_ptr(&self) -> usize {
        self.header.name as usize
    }

    /// The data pointer field (0 when there is no data).
    #[inline]
    #[must_use]
    pub fn data_ptr(&self) -> usize {
        self.header.data as usize
    }

    /// The size the kernel accounts for this message:
    /// `ENTIRE(name_len, data_len)` in the native layout.
    #[inline]
    #[must_use]
    pub fn message_len(&self) -> usize {
        entire_len::<NativeLayout>(
            len_usize(self.header.name_len),
            len_usize(self.header.data_len),
        )
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for PointyHeader<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "PointyHeader {}", self.header);
    }
}

impl fmt::Debug for PointyHeader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PointyHeader")
            .field("header", &self.header)
            .finish()
    }
}
