//! How messages are printed: `text` (the `Display` form), `json` (one object
//! per line), `hex` (the entire message's bytes), `dump` (field by field)
//! and `data` (the data bytes only). JSON is written by hand: the CLI needs
//! only strings, numbers and arrays.

use std::fmt::Write as _;
use std::io::{self, Write};

use clap::ValueEnum;
use kbus_rustix::{Kind, Message, MessageId, OrigFrom};

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per message: its `Display` form,
    /// `<Announcement '$.Fred', id=[0:3], from=2, data=b"hi">`.
    Text,
    /// One JSON object per line (JSON Lines): kind, name, ids, flags,
    /// `data` (a string when the data is UTF-8, else null) and `data_hex`.
    Json,
    /// One line per message: the entire message's bytes as KBUS delivered
    /// them, in hex.
    Hex,
    /// Every header field on its own line, then the data as a hex dump.
    Dump,
    /// The data bytes only, as they are (`listen` adds a newline after each
    /// message; `call` writes the Reply's data exactly).
    Data,
}

/// Write `m` in `format` (with its line end).
pub fn write_message(out: &mut dyn Write, m: &Message<&[u8]>, format: Format) -> io::Result<()> {
    match format {
        Format::Text => writeln!(out, "{m}"),
        Format::Json => writeln!(out, "{}", json(m)),
        Format::Hex => writeln!(out, "{}", hex(m.as_bytes())),
        Format::Dump => out.write_all(dump(m).as_bytes()),
        Format::Data => {
            out.write_all(m.data())?;
            out.write_all(b"\n")
        }
    }
}

/// Lower-case hex digits, no separators.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `s` as a JSON string literal (quotes included): `"` and `\` escaped,
/// control characters as `\n`, `\r`, `\t`, `\b`, `\f` or `\u00XX`, DEL as
/// `\u007f`; everything else as it is (JSON text is UTF-8).
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_id(id: MessageId) -> String {
    format!("[{},{}]", id.network_id, id.serial_num)
}

fn json_orig(o: OrigFrom) -> String {
    format!("[{},{}]", o.network_id, o.local_id)
}

/// One message as a one-line JSON object.
///
/// `{"kind":"Request","name":"$.Fred","id":[0,3],"in_reply_to":[0,0],
/// "to":0,"from":2,"orig_from":[0,0],"final_to":[0,0],"flags":1,
/// "flag_names":["REQ"],"data":"hi","data_hex":"6869"}`, plus
/// `"bind_event":{"is_bind":true,"binder":5,"name":"$.Fred"}` for a
/// Replier bind event. Names are decoded as Latin-1 (as KBUS's bytes mean).
pub fn json(m: &Message<&[u8]>) -> String {
    let flags = m.flags();
    let names: Vec<String> = flags.mnemonics().map(json_str).collect();
    let data = match std::str::from_utf8(m.data()) {
        Ok(s) => json_str(s),
        Err(_) => "null".into(),
    };
    let mut s = format!(
        "{{\"kind\":{},\"name\":{},\"id\":{},\"in_reply_to\":{},\"to\":{},\"from\":{},\
         \"orig_from\":{},\"final_to\":{},\"flags\":{},\"flag_names\":[{}],\"data\":{},\
         \"data_hex\":\"{}\"",
        json_str(m.kind().as_str()),
        json_str(&m.name().to_string()),
        json_id(m.id()),
        json_id(m.in_reply_to()),
        m.to(),
        m.from(),
        json_orig(m.orig_from()),
        json_orig(m.final_to()),
        flags.bits(),
        names.join(","),
        data,
        hex(m.data()),
    );
    if m.kind() == Kind::ReplierBindEvent {
        if let Ok(ev) = m.bind_event() {
            let name: String = ev.name_bytes().iter().map(|&b| char::from(b)).collect();
            let _ = write!(
                s,
                ",\"bind_event\":{{\"is_bind\":{},\"binder\":{},\"name\":{}}}",
                ev.is_bind(),
                ev.binder(),
                json_str(&name)
            );
        }
    }
    s.push('}');
    s
}

/// Field by field, then the data as a hex dump; ends with an empty line.
pub fn dump(m: &Message<&[u8]>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} '{}' ({} bytes)", m.kind(), m.name(), m.total_len());
    let mut field = |k: &str, v: &dyn std::fmt::Display| {
        let _ = writeln!(s, "  {k:<12} {v}");
    };
    field("start_guard", &format_args!("{:#010x}", m.start_guard()));
    field("id", &m.id());
    field("in_reply_to", &m.in_reply_to());
    field("to", &m.to());
    field("from", &m.from());
    field("orig_from", &m.orig_from());
    field("final_to", &m.final_to());
    field("extra", &m.extra());
    field("flags", &m.flags());
    field("name_len", &m.name_len());
    field("data_len", &m.data_len());
    field("end_guard", &format_args!("{:#010x}", m.end_guard()));
    field("name", &format_args!("'{}'", m.name()));
    if let Ok(ev) = m.bind_event() {
        field("bind_event", &ev);
    }
    let _ = writeln!(s, "  data:");
    s.push_str(&hexdump(m.data(), "    "));
    s.push('\n');
    s
}

/// `hexdump -C` style: offset, 16 bytes in hex, the printable ones.
pub fn hexdump(bytes: &[u8], indent: &str) -> String {
    let mut s = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let _ = write!(s, "{indent}{:08x}  ", i * 16);
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => {
                    let _ = write!(s, "{b:02x} ");
                }
                None => s.push_str("   "),
            }
            if j == 7 {
                s.push(' ');
            }
        }
        s.push_str(" |");
        for &b in chunk {
            s.push(if (0x20..0x7f).contains(&b) {
                char::from(b)
            } else {
                '.'
            });
        }
        s.push_str("|\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use kbus_rustix::{Flags, MessageRepr, Name, ReplierBindEvent};

    fn emit(r: &MessageRepr<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut buf).unwrap();
        buf
    }

    #[test]
    fn json_escaping() {
        assert_eq!(json_str(""), r#""""#);
        assert_eq!(json_str("plain $.Fred"), r#""plain $.Fred""#);
        assert_eq!(json_str("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(json_str("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(json_str("\0\u{1f}\u{7f}"), r#""\u0000\u001f\u007f""#);
        assert_eq!(json_str("Caf\u{e9} \u{263a}"), "\"Caf\u{e9} \u{263a}\"");
        assert_eq!(json_str("/"), r#""/""#);
    }

    #[test]
    fn json_message() {
        let mut r = MessageRepr::request("$.Fred", b"say \"hi\"\n");
        r.id = MessageId::new(0, 3);
        r.from = 2;
        let bytes = emit(&r);
        let m = Message::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            json(&m),
            r#"{"kind":"Request","name":"$.Fred","id":[0,3],"in_reply_to":[0,0],"to":0,"from":2,"orig_from":[0,0],"final_to":[0,0],"flags":1,"flag_names":["REQ"],"data":"say \"hi\"\n","data_hex":"73617920226869220a"}"#
        );
        // Binary data: no string, hex only; a Latin-1 name decoded.
        let mut r = MessageRepr::announcement("", b"\xff\x00");
        r.name = Name::from_bytes(b"$.Caf\xe9");
        let bytes = emit(&r);
        let m = Message::new_checked(&bytes[..]).unwrap();
        let j = json(&m);
        assert!(j.contains("\"name\":\"$.Caf\u{e9}\""), "{j}");
        assert!(j.contains("\"data\":null,\"data_hex\":\"ff00\""), "{j}");
        assert!(j.contains("\"flags\":0,\"flag_names\":[]"), "{j}");
    }

    #[test]
    fn json_bind_event() {
        let mut data = [0u8; 20];
        let ev = kbus_rustix::kbus_wire::ReplierBindEventRepr {
            is_bind: true,
            binder: 5,
            name: "$.Fred",
        };
        let n = ev.emit(&mut data).unwrap();
        assert!(ReplierBindEvent::new_checked(&data[..n]).is_ok());
        let mut r = MessageRepr::announcement("$.KBUS.ReplierBindEvent", &data[..n]);
        r.flags = Flags::SYNTHETIC;
        let bytes = emit(&r);
        let m = Message::new_checked(&bytes[..]).unwrap();
        let j = json(&m);
        assert!(
            j.ends_with(r#","bind_event":{"is_bind":true,"binder":5,"name":"$.Fred"}}"#),
            "{j}"
        );
        assert!(j.starts_with(r#"{"kind":"ReplierBindEvent""#), "{j}");
    }

    #[test]
    fn other_formats() {
        let r = MessageRepr::announcement("$.A", b"0123456789abcdefXY");
        let bytes = emit(&r);
        let m = Message::new_checked(&bytes[..]).unwrap();
        let mut out = Vec::new();
        write_message(&mut out, &m, Format::Hex).unwrap();
        assert_eq!(out, format!("{}\n", hex(&bytes)).into_bytes());
        out.clear();
        write_message(&mut out, &m, Format::Data).unwrap();
        assert_eq!(out, b"0123456789abcdefXY\n");
        out.clear();
        write_message(&mut out, &m, Format::Text).unwrap();
        assert_eq!(String::from_utf8(out.clone()).unwrap(), format!("{m}\n"));
        let d = dump(&m);
        assert!(d.starts_with("Announcement '$.A' ("), "{d}");
        assert!(d.contains("  data_len     18\n"), "{d}");
        assert!(
            d.contains(
                "    00000000  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  |0123456789abcdef|\n    00000010  58 59"
            ),
            "{d}"
        );
        assert!(d.ends_with("|XY|\n\n"), "{d}");
        assert_eq!(hex(&[0, 0xab]), "00ab");
    }
}
