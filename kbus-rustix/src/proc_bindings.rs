//! `/proc/kbus/bindings` (spec §8.1).
//!
//! Per device one comment line, then one line per binding, newest first:
//! `"%3u: %8u %8lu  %c  %.*s\n"` — device index, Ksock id, opener PID,
//! `R`/`L`, name. [`parse_bindings`] needs no heap; [`read_bindings`] and
//! [`read_bindings_named`] (the Python helper's id→name form) need `alloc`.

use crate::{Error, ErrorKind, Op, Result, Role};

/// Where the module publishes every device's bindings.
pub const BINDINGS_PATH: &str = "/proc/kbus/bindings";

/// One binding, borrowed from the text of `/proc/kbus/bindings`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Binding<'a> {
    /// Device index (`N` of `/dev/kbusN`).
    pub device: u32,
    /// The Ksock holding the binding.
    pub ksock_id: u32,
    /// The PID that opened that Ksock.
    pub pid: u64,
    /// Replier or Listener.
    pub role: Role,
    /// The binding string (may be a wildcard).
    pub name: &'a str,
}

impl<'a> Binding<'a> {
    /// Parse one non-comment line (without or with its newline).
    pub fn parse_line(line: &'a str) -> Option<Self> {
        let mut parts = line.split_ascii_whitespace();
        let device = parts.next()?.strip_suffix(':')?.parse().ok()?;
        let ksock_id = parts.next()?.parse().ok()?;
        let pid = parts.next()?.parse().ok()?;
        let role = match parts.next()? {
            "R" => Role::Replier,
            "L" => Role::Listener,
            _ => return None,
        };
        let name = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Binding {
            device,
            ksock_id,
            pid,
            role,
            name,
        })
    }

    /// `true` for a Replier binding.
    pub fn is_replier(&self) -> bool {
        self.role == Role::Replier
    }
}

/// The bindings in the text of `/proc/kbus/bindings`, in file order
/// (devices in index order, each device's bindings newest first). Comment
/// and empty lines are skipped; a malformed line yields an error.
pub fn parse_bindings(text: &str) -> impl Iterator<Item = Result<Binding<'_>>> + '_ {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            Binding::parse_line(l).ok_or(Error::new(Op::ReadBindings, ErrorKind::BadBindingsLine))
        })
}

#[cfg(feature = "alloc")]
mod owned {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;

    /// An owned [`Binding`].
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    pub struct OwnedBinding {
        /// Device index (`N` of `/dev/kbusN`).
        pub device: u32,
        /// The Ksock holding the binding.
        pub ksock_id: u32,
        /// The PID that opened that Ksock.
        pub pid: u64,
        /// Replier or Listener.
        pub role: Role,
        /// The binding string (may be a wildcard).
        pub name: String,
    }

    impl From<Binding<'_>> for OwnedBinding {
        fn from(b: Binding<'_>) -> Self {
            OwnedBinding {
                device: b.device,
                ksock_id: b.ksock_id,
                pid: b.pid,
                role: b.role,
                name: b.name.to_string(),
            }
        }
    }

    /// Who holds a binding: a name from the caller's map, else the Ksock id.
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    pub enum Binder<N> {
        /// The id was in the map.
        Named(N),
        /// The id was not in the map.
        Id(u32),
    }

    /// The whole text of `/proc/kbus/bindings`.
    pub fn read_bindings_text() -> Result<String> {
        use rustix::fs::{open, Mode, OFlags};
        let err = |e| Error::os(Op::ReadBindings, e);
        let fd = open(
            BINDINGS_PATH,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(err)?;
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            match rustix::io::read(&fd, &mut chunk) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(err(e)),
            }
        }
        Ok(latin1_to_string(&bytes))
    }

    /// The file is bytes, not UTF-8: names may hold the ISO-8859-1 letters
    /// KBUS accepts (0xC0..=0xFF but 0xD7, 0xF7), which are exactly the
    /// Unicode code points of the same value. Decoding as Latin-1 keeps
    /// such a name intact instead of failing the whole file.
    pub(super) fn latin1_to_string(bytes: &[u8]) -> String {
        bytes.iter().map(|&b| char::from(b)).collect()
    }

    /// Every binding on every device, parsed from `/proc/kbus/bindings`.
    pub fn read_bindings() -> Result<Vec<OwnedBinding>> {
        let text = read_bindings_text()?;
        parse_bindings(&text)
            .map(|b| b.map(OwnedBinding::from))
            .collect()
    }

    /// Like the Python `read_bindings(names)`: `(binder, is_replier,
    /// message_name)` per binding, with each Ksock id mapped through `names`
    /// where present.
    pub fn read_bindings_named<N: Clone>(
        names: &BTreeMap<u32, N>,
    ) -> Result<Vec<(Binder<N>, bool, String)>> {
        Ok(read_bindings()?
            .into_iter()
            .map(|b| {
                let who = match names.get(&b.ksock_id) {
                    Some(n) => Binder::Named(n.clone()),
                    None => Binder::Id(b.ksock_id),
                };
                (who, b.role == Role::Replier, b.name)
            })
            .collect())
    }
}

#[cfg(feature = "alloc")]
pub use owned::*;

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# <device> is bound to <Ksock-ID> in <process-PID> as <Replier|Listener> for <message-name>
  0:        3     4242  L  $.Sensors.*
  0:        2     4241  R  $.Sensors.Kitchen
# <device> is bound to <Ksock-ID> in <process-PID> as <Replier|Listener> for <message-name>
  1:       17 123456789  R  $.%
";

    #[test]
    fn parses_the_spec_example() {
        let v: [Binding<'_>; 3] = {
            let mut it = parse_bindings(SAMPLE).map(|r| r.unwrap());
            [it.next().unwrap(), it.next().unwrap(), it.next().unwrap()]
        };
        assert_eq!(
            v[0],
            Binding {
                device: 0,
                ksock_id: 3,
                pid: 4242,
                role: Role::Listener,
                name: "$.Sensors.*"
            }
        );
        assert!(v[1].is_replier());
        assert_eq!(v[1].name, "$.Sensors.Kitchen");
        assert_eq!((v[2].device, v[2].ksock_id, v[2].pid), (1, 17, 123456789));
        assert_eq!(parse_bindings(SAMPLE).count(), 3);
    }

    #[test]
    fn rejects_malformed_lines() {
        assert!(Binding::parse_line("  0:  3 4242  X  $.A").is_none());
        assert!(Binding::parse_line("  0   3 4242  L  $.A").is_none());
        assert!(Binding::parse_line("  0:  3 4242  L").is_none());
        assert!(Binding::parse_line("  0:  3 4242  L  $.A extra").is_none());
        let mut it = parse_bindings("garbage\n");
        assert_eq!(
            it.next().unwrap().unwrap_err().kind(),
            &ErrorKind::BadBindingsLine
        );
    }

    #[test]
    fn empty_file_has_no_bindings() {
        assert_eq!(parse_bindings("").count(), 0);
        assert_eq!(
            parse_bindings("# <device> is bound to <Ksock-ID> in <process-PID> as <Replier|Listener> for <message-name>\n").count(),
            0
        );
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn latin1_names_survive_decoding() {
        // "$.Caf\xe9" as KBUS stores it: one byte per letter, not UTF-8.
        let text = owned::latin1_to_string(b"  0:        3     4242  L  $.Caf\xe9\n");
        let b = parse_bindings(&text).next().unwrap().unwrap();
        assert_eq!(b.name, "$.Caf\u{e9}");
    }
}
