//! Message names: validity (spec §4.1), binding matching (§4.2) and the
//! standard names KBUS itself uses (§3.8, §7.5).
//!
//! Validation works on bytes exactly like the kernel: besides ASCII letters
//! and digits it accepts the ISO-8859-1 letter bytes 0xC0–0xD6, 0xD8–0xF6 and
//! 0xF8–0xFF (the kernel's `isalnum`). Such bytes are never part of valid
//! UTF-8 in a valid name (UTF-8 needs continuation bytes 0x80–0xBF, which are
//! rejected), so every valid name that is also a `&str` is plain ASCII.

use core::fmt;

/// `KBUS_MAX_NAME_LEN`: the longest valid name, in bytes.
pub const MAX_NAME_LEN: usize = 1000;
/// The shortest valid name (`$.` and one character).
pub const MIN_NAME_LEN: usize = 3;

/// What is wrong with a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameError {
    /// Fewer than 3 bytes.
    TooShort {
        /// The name's length.
        len: usize,
    },
    /// More than 1000 bytes (the kernel says ENAMETOOLONG).
    TooLong {
        /// The name's length.
        len: usize,
    },
    /// Does not start with `$.`.
    MissingPrefix,
    /// Two dots in a row (or `$..`).
    EmptyComponent {
        /// Index of the second dot.
        index: usize,
    },
    /// Ends with a dot (before any wildcard).
    TrailingDot,
    /// A byte that is neither a letter, a digit nor a separating dot.
    BadByte {
        /// Where.
        index: usize,
        /// Which byte.
        byte: u8,
    },
    /// A wildcard name (`….*` or `….%`) where a message name is needed.
    WildcardNotAllowed,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            NameError::TooShort { len } => {
                write!(f, "name too short ({len} bytes, at least {MIN_NAME_LEN})")
            }
            NameError::TooLong { len } => {
                write!(f, "name too long ({len} bytes, at most {MAX_NAME_LEN})")
            }
            NameError::MissingPrefix => f.write_str("name does not start with \"$.\""),
            NameError::EmptyComponent { index } => {
                write!(f, "empty name component (dot at index {index})")
            }
            NameError::TrailingDot => f.write_str("name ends with a dot"),
            NameError::BadByte { index, byte } => {
                write!(f, "bad byte {byte:#04x} at index {index} of name")
            }
            NameError::WildcardNotAllowed => f.write_str("wildcard name not allowed for a message"),
        }
    }
}

impl core::error::Error for NameError {}

#[cfg(feature = "defmt")]
impl defmt::Format for NameError {
    fn format(&self, f: defmt::Formatter<'_>) {
        match *self {
            NameError::TooShort { len } => defmt::write!(f, "name too short ({=usize} bytes)", len),
            NameError::TooLong { len } => defmt::write!(f, "name too long ({=usize} bytes)", len),
            NameError::MissingPrefix => defmt::write!(f, "name does not start with \"$.\""),
            NameError::EmptyComponent { index } => {
                defmt::write!(f, "empty name component (dot at index {=usize})", index)
            }
            NameError::TrailingDot => defmt::write!(f, "name ends with a dot"),
            NameError::BadByte { index, byte } => {
                defmt::write!(
                    f,
                    "bad byte {=u8:#x} at index {=usize} of name",
                    byte,
                    index
                )
            }
            NameError::WildcardNotAllowed => defmt::write!(f, "wildcard name not allowed"),
        }
    }
}

/// The kernel's `isalnum()` (Latin-1 ctype table): ASCII letters and digits,
/// and the ISO-8859-1 letters 0xC0–0xD6, 0xD8–0xF6, 0xF8–0xFF.
#[inline]
#[must_use]
pub const fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || (b >= 0xC0 && b != 0xD7 && b != 0xF7)
}

/// Whether the (otherwise valid) name ends in a wildcard component.
#[inline]
#[must_use]
pub fn is_wildcard(name: &[u8]) -> bool {
    matches!(name, [.., b'.', b'*' | b'%'])
}

/// Validates a name that may be bound: `$.` then dot-separated non-empty
/// alphanumeric components, optionally ending in a `*` or `%` component
/// (spec §4.1; what BIND/UNBIND accept).
///
/// ```
/// use kbus_wire::name::{validate_binding_name, NameError};
/// assert_eq!(validate_binding_name(b"$.Sensors.*"), Ok(()));
/// assert_eq!(validate_binding_name(b"$.A..B"), Err(NameError::EmptyComponent { index: 4 }));
/// assert_eq!(validate_binding_name(b"$.A-B"), Err(NameError::BadByte { index: 3, byte: b'-' }));
/// ```
pub fn validate_binding_name(name: &[u8]) -> Result<(), NameError> {
    let n = name.len();
    if n > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: n });
    }
    // After this, `n >= 3` and the prefix is `$.`.
    let rest = match name {
        [b'$', b'.', rest @ ..] if n >= MIN_NAME_LEN => rest,
        _ if n < MIN_NAME_LEN => return Err(NameError::TooShort { len: n }),
        _ => return Err(NameError::MissingPrefix),
    };
    // Strip a whole-component wildcard; `$.*` leaves nothing to check.
    let body = match rest {
        [body @ .., b'*' | b'%'] if is_wildcard(name) => match body {
            // `body` ends with the dot before the wildcard; `$.*` / `$.%`
            // have that dot as part of the prefix.
            [] => return Ok(()),
            [inner @ .., b'.'] => inner,
            _ => body,
        },
        _ => rest,
    };
    if body.is_empty() || body.last() == Some(&b'.') {
        return Err(NameError::TrailingDot);
    }
    // `last_dot` as an index into `name`; the prefix dot is at 1.
    let mut last_dot = 1usize;
    for (i, &b) in body.iter().enumerate() {
        let index = i + 2;
        if b == b'.' {
            if last_dot + 1 == index {
                return Err(NameError::EmptyComponent { index });
            }
            last_dot = index;
        } else if !is_name_byte(b) {
            return Err(NameError::BadByte { index, byte: b });
        }
    }
    Ok(())
}

/// Validates a name that may be sent: a valid name that is not a wildcard
/// (spec §4.1; what `write()`/SEND accept).
///
/// ```
/// use kbus_wire::name::{validate_message_name, NameError};
/// assert_eq!(validate_message_name(b"$.Sensors.Kitchen"), Ok(()));
/// assert_eq!(validate_message_name(b"$.Sensors.*"), Err(NameError::WildcardNotAllowed));
/// assert_eq!(validate_message_name(b"Fred"), Err(NameError::MissingPrefix));
/// ```
pub fn validate_message_name(name: &[u8]) -> Result<(), NameError> {
    validate_binding_name(name)?;
    if is_wildcard(name) {
        return Err(NameError::WildcardNotAllowed);
    }
    Ok(())
}

/// Whether message name `name` matches binding `binding` (spec §4.2).
///
/// * `binding` ending in `*`: `name` starts with the binding minus the `*`
///   and has at least one more byte;
/// * ending in `%`: the same, and the rest of `name` has no `.`;
/// * otherwise the two are identical.
///
/// Neither argument is validated.
///
/// ```
/// use kbus_wire::name::binding_matches;
/// assert!(binding_matches(b"$.Sensors.*", b"$.Sensors.Kitchen.Toaster"));
/// assert!(!binding_matches(b"$.Sensors.%", b"$.Sensors.Kitchen.Toaster"));
/// assert!(binding_matches(b"$.Sensors.%", b"$.Sensors.Kitchen"));
/// assert!(!binding_matches(b"$.Sensors.*", b"$.Sensors"));
/// ```
#[must_use]
pub fn binding_matches(binding: &[u8], name: &[u8]) -> bool {
    match binding {
        [prefix @ .., b'*'] => name.len() > prefix.len() && name.starts_with(prefix),
        [prefix @ .., b'%'] => match name.strip_prefix(prefix) {
            Some(tail) => !tail.is_empty() && !tail.contains(&b'.'),
            None => false,
        },
        _ => binding == name,
    }
}

/// `$.KBUS.Replier.GoneAway`
pub const REPLIER_GONE_AWAY: &str = "$.KBUS.Replier.GoneAway";
/// `$.KBUS.Replier.Ignored`
pub const REPLIER_IGNORED: &str = "$.KBUS.Replier.Ignored";
/// `$.KBUS.Replier.Unbound`
pub const REPLIER_UNBOUND: &str = "$.KBUS.Replier.Unbound";
/// `$.KBUS.Replier.Disappeared`
pub const REPLIER_DISAPPEARED: &str = "$.KBUS.Replier.Disappeared";
/// `$.KBUS.ErrorSending`
pub const ERROR_SENDING: &str = "$.KBUS.ErrorSending";
/// `$.KBUS.UnbindEventsLost`
pub const UNBIND_EVENTS_LOST: &str = "$.KBUS.UnbindEventsLost";
/// `$.KBUS.ReplierBindEvent`
pub const REPLIER_BIND_EVENT: &str = "$.KBUS.ReplierBindEvent";
/// `$.KBUS.Replier.NotSameKsock` (Limpets only, never produced by the module)
pub const REPLIER_NOT_SAME_KSOCK: &str = "$.KBUS.Replier.NotSameKsock";
/// Prefix of `$.KBUS.RemoteError.<suffix>` (Limpets only)
pub const REMOTE_ERROR_PREFIX: &str = "$.KBUS.RemoteError.";
/// Prefix of every name KBUS generates.
pub const KBUS_PREFIX: &str = "$.KBUS.";

/// The standard names of messages that KBUS (or a Limpet) generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SyntheticName {
    /// `$.KBUS.Replier.GoneAway`: synthetic Reply, the Replier closed with the
    /// Request still queued.
    ReplierGoneAway,
    /// `$.KBUS.Replier.Ignored`: synthetic Reply, the Replier closed after
    /// reading the Request without answering.
    ReplierIgnored,
    /// `$.KBUS.Replier.Unbound`: synthetic Reply, the Replier unbound with the
    /// Request still queued.
    ReplierUnbound,
    /// `$.KBUS.Replier.Disappeared`: synthetic Reply, a pending send's target
    /// went away.
    ReplierDisappeared,
    /// `$.KBUS.ErrorSending`: synthetic Reply, a pending Request failed.
    ErrorSending,
    /// `$.KBUS.UnbindEventsLost`: synthetic Announcement, bind events lost.
    UnbindEventsLost,
    /// `$.KBUS.ReplierBindEvent`: synthetic Announcement with
    /// [`ReplierBindEvent`](crate::ReplierBindEvent) data.
    ReplierBindEvent,
    /// `$.KBUS.Replier.NotSameKsock` (Limpets).
    ReplierNotSameKsock,
    /// `$.KBUS.RemoteError.<suffix>` (Limpets).
    RemoteError,
}

impl SyntheticName {
    /// Every exact standard name with its variant (not `RemoteError`, which is
    /// a prefix).
    pub const ALL: [(SyntheticName, &'static str); 8] = [
        (SyntheticName::ReplierGoneAway, REPLIER_GONE_AWAY),
        (SyntheticName::ReplierIgnored, REPLIER_IGNORED),
        (SyntheticName::ReplierUnbound, REPLIER_UNBOUND),
        (SyntheticName::ReplierDisappeared, REPLIER_DISAPPEARED),
        (SyntheticName::ErrorSending, ERROR_SENDING),
        (SyntheticName::UnbindEventsLost, UNBIND_EVENTS_LOST),
        (SyntheticName::ReplierBindEvent, REPLIER_BIND_EVENT),
        (SyntheticName::ReplierNotSameKsock, REPLIER_NOT_SAME_KSOCK),
    ];

    /// Recognises a standard name (exactly; `RemoteError` by its prefix).
    ///
    /// ```
    /// use kbus_wire::name::SyntheticName;
    /// assert_eq!(SyntheticName::from_name(b"$.KBUS.Replier.GoneAway"), Some(SyntheticName::ReplierGoneAway));
    /// assert_eq!(SyntheticName::from_name(b"$.KBUS.RemoteError.Oops"), Some(SyntheticName::RemoteError));
    /// assert_eq!(SyntheticName::from_name(b"$.Fred"), None);
    /// ```
    #[must_use]
    pub fn from_name(name: &[u8]) -> Option<SyntheticName> {
        if !name.starts_with(KBUS_PREFIX.as_bytes()) {
            return None;
        }
        for (kind, text) in SyntheticName::ALL {
            if name == text.as_bytes() {
                return Some(kind);
            }
        }
        match name.strip_prefix(REMOTE_ERROR_PREFIX.as_bytes()) {
            Some(suffix) if !suffix.is_empty() => Some(SyntheticName::RemoteError),
            _ => None,
        }
    }

    /// The name (for `RemoteError`, its prefix `$.KBUS.RemoteError.`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            SyntheticName::ReplierGoneAway => REPLIER_GONE_AWAY,
            SyntheticName::ReplierIgnored => REPLIER_IGNORED,
            SyntheticName::ReplierUnbound => REPLIER_UNBOUND,
            SyntheticName::ReplierDisappeared => REPLIER_DISAPPEARED,
            SyntheticName::ErrorSending => ERROR_SENDING,
            SyntheticName::UnbindEventsLost => UNBIND_EVENTS_LOST,
            SyntheticName::ReplierBindEvent => REPLIER_BIND_EVENT,
            SyntheticName::ReplierNotSameKsock => REPLIER_NOT_SAME_KSOCK,
            SyntheticName::RemoteError => REMOTE_ERROR_PREFIX,
        }
    }

    /// Whether KBUS sends this as a Reply-like answer to a Request (so it
    /// carries `in_reply_to`).
    #[must_use]
    pub const fn is_reply_like(self) -> bool {
        !matches!(
            self,
            SyntheticName::UnbindEventsLost | SyntheticName::ReplierBindEvent
        )
    }

    /// Whether the kernel module itself produces it (the others come from
    /// Limpets).
    #[must_use]
    pub const fn is_from_module(self) -> bool {
        !matches!(
            self,
            SyntheticName::ReplierNotSameKsock | SyntheticName::RemoteError
        )
    }
}

impl fmt::Display for SyntheticName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message name as KBUS carries it: 1–1000 bytes, borrowed.
///
/// Names the kernel accepts are ASCII, or ISO-8859-1 when they contain
/// Latin-1 letter bytes (0xC0–0xFF but 0xD7, 0xF7; spec §12 item 17). Such a
/// name is not UTF-8, so a `Name` is bytes: [`Name::as_bytes`] always works,
/// [`Name::to_str`] gives `&str` when the name is ASCII (`None` otherwise),
/// and `Display` decodes it as Latin-1. It compares equal to a `&str` or
/// byte string with the same bytes, so `msg.name() == "$.Fred"` reads as
/// expected.
///
/// ```
/// use kbus_wire::Name;
/// let ascii = Name::new("$.Sensors.Kitchen");
/// assert_eq!(ascii, "$.Sensors.Kitchen");
/// assert_eq!(ascii.to_str(), Some("$.Sensors.Kitchen"));
/// let latin1 = Name::from_bytes(b"$.Caf\xe9");
/// assert_eq!(latin1.to_str(), None);
/// assert_eq!(latin1.to_string(), "$.Café");
/// assert!(latin1.validate().is_ok()); // the kernel accepts it
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Name<'a>(&'a [u8]);

impl<'a> Name<'a> {
    /// A name from a string.
    #[inline]
    #[must_use]
    pub const fn new(name: &'a str) -> Self {
        Name(name.as_bytes())
    }

    /// A name from raw bytes (e.g. Latin-1).
    #[inline]
    #[must_use]
    pub const fn from_bytes(name: &'a [u8]) -> Self {
        Name(name)
    }

    /// The name's bytes.
    #[inline]
    #[must_use]
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The name as `&str`, if it is UTF-8 (for a valid name: if it is
    /// ASCII); `None` for a Latin-1 name.
    #[inline]
    #[must_use]
    pub fn to_str(&self) -> Option<&'a str> {
        core::str::from_utf8(self.0).ok()
    }

    /// Its length in bytes.
    #[inline]
    #[must_use]
    pub const fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty name (never a valid one).
    #[inline]
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the name starts with `prefix` (bytes).
    #[inline]
    #[must_use]
    pub fn starts_with(&self, prefix: impl AsRef<[u8]>) -> bool {
        self.0.starts_with(prefix.as_ref())
    }

    /// Checks it as a message name, as the kernel does at SEND (§4.1:
    /// Latin-1 letters allowed, wildcards refused).
    pub fn validate(&self) -> Result<(), NameError> {
        validate_message_name(self.0)
    }
}

impl<'a> From<&'a str> for Name<'a> {
    #[inline]
    fn from(name: &'a str) -> Self {
        Name::new(name)
    }
}

impl<'a> From<&'a [u8]> for Name<'a> {
    #[inline]
    fn from(name: &'a [u8]) -> Self {
        Name(name)
    }
}

impl AsRef<[u8]> for Name<'_> {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.0
    }
}

impl PartialEq<str> for Name<'_> {
    #[inline]
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Name<'_> {
    #[inline]
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<[u8]> for Name<'_> {
    #[inline]
    fn eq(&self, other: &[u8]) -> bool {
        self.0 == other
    }
}

impl PartialEq<&[u8]> for Name<'_> {
    #[inline]
    fn eq(&self, other: &&[u8]) -> bool {
        self.0 == *other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Name<'_> {
    #[inline]
    fn eq(&self, other: &[u8; N]) -> bool {
        self.0 == other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Name<'_> {
    #[inline]
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.0 == *other
    }
}

impl PartialEq<Name<'_>> for str {
    #[inline]
    fn eq(&self, other: &Name<'_>) -> bool {
        self.as_bytes() == other.0
    }
}

impl PartialEq<Name<'_>> for &str {
    #[inline]
    fn eq(&self, other: &Name<'_>) -> bool {
        self.as_bytes() == other.0
    }
}

impl fmt::Display for Name<'_> {
    /// The name, Latin-1 decoded (ASCII is unchanged).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_str() {
            Some(s) => f.pad(s),
            None => {
                for &b in self.0 {
                    fmt::Write::write_char(f, char::from(b))?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Name<'_> {
    /// The name in double quotes, Latin-1 decoded.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        fmt::Display::fmt(self, f)?;
        f.write_str("\"")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Name<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self.to_str() {
            Some(s) => defmt::write!(f, "{=str}", s),
            None => defmt::write!(f, "{=[u8]}", self.0),
        }
    }
}
