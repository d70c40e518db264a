//! Parsing what the user types: message data (text, hex, file, stdin),
//! durations and names.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

/// Where a message's data comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// No data given: an empty message.
    Empty,
    /// The command-line argument itself.
    Text(String),
    /// `-`: all of standard input.
    Stdin,
    /// `--file PATH`.
    File(PathBuf),
}

impl Source {
    /// From the positional DATA argument and `--file`.
    pub fn new(data: Option<String>, file: Option<PathBuf>) -> Source {
        match (data, file) {
            (_, Some(path)) => Source::File(path),
            (Some(d), None) if d == "-" => Source::Stdin,
            (Some(d), None) => Source::Text(d),
            (None, None) => Source::Empty,
        }
    }

    /// The bytes: read (from `stdin` for [`Source::Stdin`]), then, with
    /// `hex`, decoded from hex digits.
    pub fn load(&self, hex: bool, stdin: impl Read) -> Result<Vec<u8>, String> {
        let raw = match self {
            Source::Empty => Vec::new(),
            Source::Text(t) => t.as_bytes().to_vec(),
            Source::Stdin => {
                let mut v = Vec::new();
                let mut stdin = stdin;
                stdin
                    .read_to_end(&mut v)
                    .map_err(|e| format!("reading standard input: {e}"))?;
                v
            }
            Source::File(p) => {
                std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()))?
            }
        };
        if hex {
            let text = std::str::from_utf8(&raw).map_err(|_| "--hex: data is not text")?;
            parse_hex(text)
        } else {
            Ok(raw)
        }
    }
}

/// Hex digits to bytes: pairs of digits, with an optional `0x` prefix;
/// whitespace, `:` and `-` between bytes are ignored (`de:ad be-ef`).
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    let text = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    let mut out = Vec::new();
    let mut high: Option<u8> = None;
    for c in text.chars() {
        if c.is_whitespace() || c == ':' || c == '-' {
            if high.is_some() {
                return Err(format!("--hex: odd digit before {c:?} in {text:?}"));
            }
            continue;
        }
        let d = c
            .to_digit(16)
            .ok_or_else(|| format!("--hex: {c:?} is not a hex digit"))? as u8;
        match high.take() {
            None => high = Some(d),
            Some(h) => out.push(h << 4 | d),
        }
    }
    if high.is_some() {
        return Err("--hex: an odd number of hex digits".into());
    }
    Ok(out)
}

/// A duration: seconds (`1.5`), or a number with a unit: `ms`, `s`, `m`
/// (`500ms`, `2s`, `1m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 1.5, 500ms, 2s, 1m)"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("{s:?} is not a duration (e.g. 1.5, 500ms, 2s, 1m)"));
    }
    Duration::try_from_secs_f64(v * scale).map_err(|e| format!("{s:?}: {e}"))
}

/// The bytes of a message name typed as text. KBUS names are bytes: ASCII,
/// or ISO-8859-1 letters (spec §12 item 17), which is how `Name` prints
/// them. So a name whose characters are all in U+0000..=U+00FF is sent as
/// Latin-1 (`$.Caf\u{e9}` → `$.Caf\xe9`); any other is sent as its UTF-8
/// bytes, which KBUS refuses (EBADMSG), as it should.
pub fn name_bytes(name: &str) -> Vec<u8> {
    if name.chars().all(|c| u32::from(c) <= 0xFF) {
        name.chars().map(|c| u32::from(c) as u8).collect()
    } else {
        name.as_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(Source::new(None, None), Source::Empty);
        assert_eq!(Source::new(Some("-".into()), None), Source::Stdin);
        assert_eq!(
            Source::new(Some("hi".into()), None),
            Source::Text("hi".into())
        );
        assert_eq!(
            Source::new(None, Some("/x".into())),
            Source::File("/x".into())
        );
        let none = std::io::empty();
        assert_eq!(Source::Empty.load(false, none).unwrap(), b"");
        assert_eq!(
            Source::Text("hi".into())
                .load(false, std::io::empty())
                .unwrap(),
            b"hi"
        );
        assert_eq!(
            Source::Text("6869".into())
                .load(true, std::io::empty())
                .unwrap(),
            b"hi"
        );
        assert_eq!(
            Source::Stdin.load(false, &b"from\0stdin"[..]).unwrap(),
            b"from\0stdin"
        );
        assert_eq!(
            Source::Stdin.load(true, &b"ff 00\n"[..]).unwrap(),
            [0xff, 0]
        );
        let e = Source::File("/nonexistent/kbus".into())
            .load(false, std::io::empty())
            .unwrap_err();
        assert!(e.contains("/nonexistent/kbus"), "{e}");
    }

    #[test]
    fn file_source() {
        let p = std::env::temp_dir().join(format!("kbus-cli-test-{}", std::process::id()));
        std::fs::write(&p, b"\x01\x02").unwrap();
        let got = Source::File(p.clone()).load(false, std::io::empty());
        std::fs::remove_file(&p).unwrap();
        assert_eq!(got.unwrap(), [1, 2]);
    }

    #[test]
    fn hex() {
        assert_eq!(parse_hex("").unwrap(), b"");
        assert_eq!(parse_hex("deadBEEF").unwrap(), [0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(parse_hex("0x0102").unwrap(), [1, 2]);
        assert_eq!(
            parse_hex(" de:ad be-ef \n").unwrap(),
            [0xde, 0xad, 0xbe, 0xef]
        );
        assert!(parse_hex("abc").unwrap_err().contains("odd"));
        assert!(parse_hex("a bc").unwrap_err().contains("odd"));
        assert!(parse_hex("zz").unwrap_err().contains("not a hex digit"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "x", "-1", "1h", "nan", "inf", "1e400"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(name_bytes("$.Fred"), b"$.Fred");
        assert_eq!(name_bytes("$.Caf\u{e9}"), b"$.Caf\xe9");
        assert_eq!(name_bytes("$.\u{263a}"), "$.\u{263a}".as_bytes());
    }
}
