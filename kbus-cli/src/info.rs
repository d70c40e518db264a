//! `bindings`, `stats` and `errno`.

use std::io::{self, Write};

use kbus_rustix::{Errno, Error, Mode, Op, OwnedBinding, Role, KBUS_ERRNOS};

use crate::exit::Exit;
use crate::format::json_str;
use crate::{DeviceArgs, Fail};

/// Where the module publishes its statistics (spec §8.2).
const STATS_PATH: &str = "/proc/kbus/stats";

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Replier => "Replier",
        Role::Listener => "Listener",
    }
}

/// The bindings as an aligned table with a header line.
pub fn bindings_table(bs: &[OwnedBinding]) -> String {
    let mut s = format!(
        "{:>6} {:>8} {:>8}  {:<8}  NAME\n",
        "DEVICE", "KSOCK", "PID", "ROLE"
    );
    for b in bs {
        s.push_str(&format!(
            "{:>6} {:>8} {:>8}  {:<8}  {}\n",
            b.device,
            b.ksock_id,
            b.pid,
            role_name(b.role),
            b.name
        ));
    }
    s
}

/// The bindings as a JSON array of objects, one line.
pub fn bindings_json(bs: &[OwnedBinding]) -> String {
    let items: Vec<String> = bs
        .iter()
        .map(|b| {
            format!(
                "{{\"device\":{},\"ksock_id\":{},\"pid\":{},\"role\":\"{}\",\"name\":{}}}",
                b.device,
                b.ksock_id,
                b.pid,
                role_name(b.role),
                json_str(&b.name)
            )
        })
        .collect();
    format!("[{}]\n", items.join(","))
}

pub fn bindings(dev: &DeviceArgs, json: bool) -> Result<Exit, Fail> {
    let mut all = kbus_rustix::read_bindings()?;
    if let Some(n) = dev.chosen() {
        all.retain(|b| b.device == n);
    }
    let text = if json {
        bindings_json(&all)
    } else {
        bindings_table(&all)
    };
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(Exit::Ok)
}

/// The lines of device `dev` in the text of `/proc/kbus/stats`: its
/// `dev N:` line and the Ksock lines after it.
pub fn stats_section(text: &str, dev: u32) -> Option<String> {
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("dev ") {
            let n = rest.split(':').next().and_then(|n| n.trim().parse().ok());
            inside = n == Some(dev);
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    (!out.is_empty()).then_some(out)
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

pub fn stats(dev: &DeviceArgs, all: bool) -> Result<Exit, Fail> {
    // Read before opening, so that our own Ksock is not in it.
    let text = std::fs::read(STATS_PATH)
        .map_err(|e| Fail::new(format!("{STATS_PATH}: {e} (is kbus.ko loaded?)")))?;
    let text: String = text.iter().map(|&b| char::from(b)).collect();
    let mut out = io::stdout().lock();
    if all {
        out.write_all(text.as_bytes())?;
        out.flush()?;
        return Ok(Exit::Ok);
    }
    let n = dev.number();
    let k = dev.open(Mode::ReadOnly)?;
    writeln!(out, "{}", dev.path().display())?;
    writeln!(
        out,
        "  max message size      {} bytes (absolute maximum {})",
        k.max_message_size()?,
        k.abs_max_message_size()?
    )?;
    writeln!(
        out,
        "  replier bind events   {}",
        on_off(k.query_report_replier_binds()?)
    )?;
    writeln!(
        out,
        "  kernel module verbose {}",
        on_off(k.query_kernel_module_verbose()?)
    )?;
    writeln!(
        out,
        "  new Ksock queue limit {} messages",
        k.max_messages()?
    )?;
    drop(k);
    writeln!(out, "{STATS_PATH}:")?;
    match stats_section(&text, n) {
        Some(s) => out.write_all(s.as_bytes())?,
        None => writeln!(out, "  (no lines for device {n})")?,
    }
    out.flush()?;
    Ok(Exit::Ok)
}

/// An errno from a number or a name (`EADDRINUSE`, `addrinuse`).
pub fn parse_errno(s: &str) -> Result<Errno, String> {
    if let Ok(n) = s.trim().parse::<i32>() {
        if n <= 0 || n > 4095 {
            return Err(format!("{n} is not an errno number"));
        }
        return Ok(Errno::from_raw_os_error(n));
    }
    let mut name = s.trim().to_ascii_uppercase();
    if !name.starts_with('E') || !KBUS_ERRNOS.iter().any(|(_, n)| *n == name) {
        name.insert(0, 'E');
    }
    KBUS_ERRNOS
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(e, _)| *e)
        .ok_or_else(|| {
            let names: Vec<&str> = KBUS_ERRNOS.iter().map(|(_, n)| *n).collect();
            format!(
                "{s:?}: not an errno KBUS uses ({}); give a number for others",
                names.join(" ")
            )
        })
}

/// What `e` means: its name and number, the system's text, then each KBUS
/// operation that gives it a meaning (from `kbus_rustix::Error`'s tables).
pub fn explain(e: Errno) -> String {
    let n = e.raw_os_error();
    let sys = io::Error::from_raw_os_error(n).to_string();
    let sys = sys
        .strip_suffix(&format!(" (os error {n})"))
        .unwrap_or(&sys)
        .to_string();
    let mut s = format!("{} ({n}): {sys}\n", kbus_rustix::errno_name(e));
    let mut any = false;
    for op in Op::ALL {
        if let Some(m) = Error::os(op, e).meaning() {
            s.push_str(&format!("  {:<20} {m}\n", op.name()));
            any = true;
        }
    }
    if !any {
        s.push_str("  no KBUS-specific meaning\n");
    }
    s
}

pub fn errno(arg: Option<&str>) -> Result<Exit, Fail> {
    let text = match arg {
        Some(a) => explain(parse_errno(a).map_err(|m| Fail::with(Exit::Usage, m))?),
        None => {
            let v: Vec<String> = KBUS_ERRNOS.iter().map(|(e, _)| explain(*e)).collect();
            v.join("\n")
        }
    };
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(device: u32, ksock_id: u32, role: Role, name: &str) -> OwnedBinding {
        OwnedBinding {
            device,
            ksock_id,
            pid: 4242,
            role,
            name: name.into(),
        }
    }

    #[test]
    fn bindings_output() {
        let bs = [
            b(0, 3, Role::Listener, "$.Sensors.*"),
            b(1, 12, Role::Replier, "$.Caf\u{e9}\"x"),
        ];
        let t = bindings_table(&bs);
        assert_eq!(
            t,
            "DEVICE    KSOCK      PID  ROLE      NAME\n     0        3     4242  Listener  $.Sensors.*\n     1       12     4242  Replier   $.Caf\u{e9}\"x\n"
        );
        assert_eq!(
            bindings_json(&bs),
            "[{\"device\":0,\"ksock_id\":3,\"pid\":4242,\"role\":\"Listener\",\"name\":\"$.Sensors.*\"},\
             {\"device\":1,\"ksock_id\":12,\"pid\":4242,\"role\":\"Replier\",\"name\":\"$.Caf\u{e9}\\\"x\"}]\n"
        );
        assert_eq!(bindings_json(&[]), "[]\n");
    }

    #[test]
    fn stats_sections() {
        let text = "dev  0: next ksock 4 next msg 8 unsent unbindings 0\n    ksock 3 last msg 0:7 queue 1 of 100\n      read byte 0 of 0\ndev  1: next ksock 0 next msg 0 unsent unbindings 0\ndev 10: next ksock 2 next msg 0 unsent unbindings 0(gone tragic)\n";
        assert_eq!(
            stats_section(text, 0).unwrap(),
            "dev  0: next ksock 4 next msg 8 unsent unbindings 0\n    ksock 3 last msg 0:7 queue 1 of 100\n      read byte 0 of 0\n"
        );
        assert_eq!(
            stats_section(text, 1).unwrap(),
            "dev  1: next ksock 0 next msg 0 unsent unbindings 0\n"
        );
        assert!(stats_section(text, 10)
            .unwrap()
            .ends_with("(gone tragic)\n"));
        assert_eq!(stats_section(text, 2), None);
    }

    #[test]
    fn errno_parsing() {
        assert_eq!(parse_errno("EADDRINUSE").unwrap(), Errno::ADDRINUSE);
        assert_eq!(parse_errno("addrinuse").unwrap(), Errno::ADDRINUSE);
        assert_eq!(parse_errno("eperm").unwrap(), Errno::PERM);
        assert_eq!(parse_errno("INVAL").unwrap(), Errno::INVAL);
        let n = Errno::NOLCK.raw_os_error().to_string();
        assert_eq!(parse_errno(&n).unwrap(), Errno::NOLCK);
        assert!(parse_errno("EWHATEVER").is_err());
        assert!(parse_errno("0").is_err());
        assert!(parse_errno("-3").is_err());
    }

    #[test]
    fn errno_explained() {
        let s = explain(Errno::ADDRINUSE);
        assert!(s.starts_with("EADDRINUSE ("), "{s}");
        assert!(
            s.contains("  BIND                 a Replier is already bound to that exact name\n"),
            "{s}"
        );
        let s = explain(Errno::ADDRNOTAVAIL);
        assert!(s.contains("  SEND "), "{s}");
        // Every operation's meanings, e.g. EINVAL has several.
        let s = explain(Errno::INVAL);
        for op in ["UNBIND", "SEND", "write", "MAXMSGSIZE", "NEWDEVICE"] {
            assert!(s.contains(&format!("\n  {op} ")), "{op}: {s}");
        }
        let s = explain(Errno::XDEV);
        assert!(s.contains("no KBUS-specific meaning"), "{s}");
        assert!(
            s.starts_with(&format!("errno {} (", Errno::XDEV.raw_os_error())),
            "{s}"
        );
    }
}
