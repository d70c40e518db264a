//! Exit statuses, and the mapping of a `call`'s outcome to them.

use kbus_rustix::kbus_wire::SyntheticName;
use kbus_rustix::{Errno, Error};

/// What `kbus` exits with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Success (for `call`: a Reply from the Replier).
    Ok = 0,
    /// Any other failure (device missing, a refused bind or send, bad data).
    Failure = 1,
    /// The command line was wrong (clap's own status).
    Usage = 2,
    /// `call`: no Replier is bound for the name (SEND gave EADDRNOTAVAIL).
    NoReplier = 3,
    /// `--timeout` ran out.
    Timeout = 4,
    /// `call`: the Replier went away before answering
    /// (`$.KBUS.Replier.GoneAway`).
    GoneAway = 5,
    /// `call`: the Replier read the Request and closed without answering
    /// (`$.KBUS.Replier.Ignored`).
    Ignored = 6,
    /// `call`: the Replier unbound with the Request queued
    /// (`$.KBUS.Replier.Unbound`).
    Unbound = 7,
    /// `call --stateful`: the Replier for the name is not that Ksock (EPIPE).
    NotThatReplier = 8,
    /// `call`: another synthetic answer (`$.KBUS.Replier.Disappeared`,
    /// `$.KBUS.ErrorSending`, `$.KBUS.RemoteError.*` from Limpets).
    OtherSynthetic = 9,
    /// Interrupted (Ctrl-C) while waiting for an answer, as shells report
    /// SIGINT. A `listen` or `reply` ended by Ctrl-C exits 0.
    Interrupted = 130,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The status for an answer to our Request: [`Exit::Ok`] for a Reply
    /// from the Replier, else by the synthetic name KBUS gave it.
    pub fn for_answer(synthetic: bool, name: &[u8]) -> Exit {
        if !synthetic {
            return Exit::Ok;
        }
        match SyntheticName::from_name(name) {
            Some(SyntheticName::ReplierGoneAway) => Exit::GoneAway,
            Some(SyntheticName::ReplierIgnored) => Exit::Ignored,
            Some(SyntheticName::ReplierUnbound) => Exit::Unbound,
            _ => Exit::OtherSynthetic,
        }
    }

    /// The status for a failed SEND of a Request.
    pub fn for_request_error(e: &Error) -> Exit {
        match e.errno() {
            Some(Errno::ADDRNOTAVAIL) => Exit::NoReplier,
            Some(Errno::PIPE) => Exit::NotThatReplier,
            _ => Exit::Failure,
        }
    }
}

/// The table printed in `--help` (and kept in the README).
pub const TABLE: &str = "\
Exit status:
  0    success; for `call`: a Reply from the Replier
  1    any other failure (no such device, refused bind or send, bad data)
  2    usage error
  3    call: no Replier is bound for the name (EADDRNOTAVAIL)
  4    --timeout ran out (call, listen --count, send --all-or-wait)
  5    call: the Replier went away ($.KBUS.Replier.GoneAway)
  6    call: the Replier read the Request and ignored it ($.KBUS.Replier.Ignored)
  7    call: the Replier unbound before reading it ($.KBUS.Replier.Unbound)
  8    call --stateful: the Replier is not that Ksock (EPIPE)
  9    call: another synthetic answer ($.KBUS.Replier.Disappeared,
       $.KBUS.ErrorSending, $.KBUS.RemoteError.*)
  130  call or send interrupted by Ctrl-C (listen and reply end with 0)";

#[cfg(test)]
mod tests {
    use super::*;
    use kbus_rustix::Op;

    #[test]
    fn answers() {
        assert_eq!(Exit::for_answer(false, b"$.Fred"), Exit::Ok);
        // Only KBUS sets SYNTHETIC: a Reply whose name looks synthetic but
        // that a Replier sent is a Reply.
        assert_eq!(
            Exit::for_answer(false, b"$.KBUS.Replier.GoneAway"),
            Exit::Ok
        );
        assert_eq!(
            Exit::for_answer(true, b"$.KBUS.Replier.GoneAway"),
            Exit::GoneAway
        );
        assert_eq!(
            Exit::for_answer(true, b"$.KBUS.Replier.Ignored"),
            Exit::Ignored
        );
        assert_eq!(
            Exit::for_answer(true, b"$.KBUS.Replier.Unbound"),
            Exit::Unbound
        );
        assert_eq!(
            Exit::for_answer(true, b"$.KBUS.Replier.Disappeared"),
            Exit::OtherSynthetic
        );
        assert_eq!(
            Exit::for_answer(true, b"$.KBUS.RemoteError.Oops"),
            Exit::OtherSynthetic
        );
    }

    #[test]
    fn send_errors() {
        let e = |errno| Error::os(Op::Send, errno);
        assert_eq!(
            Exit::for_request_error(&e(Errno::ADDRNOTAVAIL)),
            Exit::NoReplier
        );
        assert_eq!(
            Exit::for_request_error(&e(Errno::PIPE)),
            Exit::NotThatReplier
        );
        assert_eq!(Exit::for_request_error(&e(Errno::BUSY)), Exit::Failure);
        assert_eq!(Exit::for_request_error(&e(Errno::NOLCK)), Exit::Failure);
    }

    #[test]
    fn codes_are_distinct_and_in_the_table() {
        let all = [
            Exit::Ok,
            Exit::Failure,
            Exit::Usage,
            Exit::NoReplier,
            Exit::Timeout,
            Exit::GoneAway,
            Exit::Ignored,
            Exit::Unbound,
            Exit::NotThatReplier,
            Exit::OtherSynthetic,
            Exit::Interrupted,
        ];
        let mut codes: Vec<u8> = all.iter().map(|e| e.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        for c in codes {
            let row = format!("\n  {c:<4} ");
            assert!(TABLE.contains(&row), "exit status {c} is not in the table");
        }
    }
}
