//! The Limpet wire format (spec §11): the `HELO` greeting and messages as
//! 16 network-order words, the padded name and data, and a final end guard.
//!
//! The same encoding is the payload of every Zenoh sample, query and reply,
//! so a message's header fields (ids, flags, `orig_from`, `final_to`) cross
//! either transport unchanged.

use kbus_wire::{
    padded_data_len, padded_name_len, Flags, MessageId, MessageRepr, Name, OrigFrom, END_GUARD,
    START_GUARD,
};

use crate::Msg;

/// The greeting: these 4 bytes, then the sender's network id (`u32`, network
/// order).
pub const HELO: &[u8; 4] = b"HELO";

/// Bytes of the fixed part of a frame: 16 words.
pub const HEADER_WORDS_LEN: usize = 64;

/// The name of Replier Bind Events, whose first three data words are
/// converted to and from network order.
pub const BIND_EVENT_NAME: &[u8] = b"$.KBUS.ReplierBindEvent";

/// Largest name and data a frame may announce (the device's absolute
/// maximum message size bounds both; larger frames are refused before any
/// allocation).
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// What went wrong decoding a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes than the header or the lengths it announces.
    Short,
    /// A start, header end or final guard is wrong.
    BadGuard,
    /// `name_len` is 0 or over 1000, or the frame is over [`MAX_FRAME_LEN`].
    BadLength,
    /// Not `HELO` + id.
    BadHelo,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FrameError::Short => "frame too short",
            FrameError::BadGuard => "bad guard word in frame",
            FrameError::BadLength => "bad name or data length in frame",
            FrameError::BadHelo => "bad HELO greeting",
        })
    }
}

impl std::error::Error for FrameError {}

/// The 8-byte greeting of network id `id`.
pub fn helo(id: u32) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(HELO);
    out[4..].copy_from_slice(&id.to_be_bytes());
    out
}

/// The network id in a greeting.
pub fn parse_helo(bytes: &[u8; 8]) -> Result<u32, FrameError> {
    if &bytes[..4] != HELO {
        return Err(FrameError::BadHelo);
    }
    Ok(u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]))
}

/// Total frame length for a name and data of these lengths.
pub fn frame_len(name_len: usize, data_len: usize) -> usize {
    HEADER_WORDS_LEN + padded_name_len(name_len) + padded_data_len(data_len) + 4
}

/// Encode `msg` as a Limpet frame.
pub fn encode(msg: &Msg) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(msg, &mut out);
    out
}

/// Append the Limpet frame of `msg` to `out`.
pub fn encode_into(msg: &Msg, out: &mut Vec<u8>) {
    let r = msg.view().repr();
    let name = r.name.as_bytes();
    out.reserve(frame_len(name.len(), r.data.len()));
    let words = [
        START_GUARD,
        r.id.network_id,
        r.id.serial_num,
        r.in_reply_to.network_id,
        r.in_reply_to.serial_num,
        r.to,
        r.from,
        r.orig_from.network_id,
        r.orig_from.local_id,
        r.final_to.network_id,
        r.final_to.local_id,
        r.extra,
        r.flags.bits(),
        name.len() as u32,
        r.data.len() as u32,
        END_GUARD,
    ];
    for w in words {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out.extend_from_slice(name);
    out.resize(out.len() + padded_name_len(name.len()) - name.len(), 0);
    let data_at = out.len();
    out.extend_from_slice(r.data);
    out.resize(out.len() + padded_data_len(r.data.len()) - r.data.len(), 0);
    if name == BIND_EVENT_NAME {
        swap_bind_words(&mut out[data_at..data_at + r.data.len()]);
    }
    out.extend_from_slice(&END_GUARD.to_be_bytes());
}

/// Convert the three leading words of bind event data between host and
/// network order (the same operation both ways).
fn swap_bind_words(data: &mut [u8]) {
    for w in data.chunks_exact_mut(4).take(3) {
        let v = u32::from_ne_bytes([w[0], w[1], w[2], w[3]]);
        w.copy_from_slice(&v.to_be_bytes());
    }
}

fn word(bytes: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([
        bytes[4 * i],
        bytes[4 * i + 1],
        bytes[4 * i + 2],
        bytes[4 * i + 3],
    ])
}

/// From the 16 header words: `(name_len, data_len)`, checking guards and
/// lengths (to size the rest of a frame read from a stream).
pub fn header_lengths(header: &[u8]) -> Result<(usize, usize), FrameError> {
    if header.len() < HEADER_WORDS_LEN {
        return Err(FrameError::Short);
    }
    if word(header, 0) != START_GUARD || word(header, 15) != END_GUARD {
        return Err(FrameError::BadGuard);
    }
    let name_len = word(header, 13) as usize;
    let data_len = word(header, 14) as usize;
    if name_len == 0 || name_len > kbus_wire::MAX_NAME_LEN || data_len > MAX_FRAME_LEN {
        return Err(FrameError::BadLength);
    }
    Ok((name_len, data_len))
}

/// Decode one whole frame into a native-layout message.
pub fn decode(frame: &[u8]) -> Result<Msg, FrameError> {
    let (name_len, data_len) = header_lengths(frame)?;
    if frame.len() != frame_len(name_len, data_len) {
        return Err(FrameError::Short);
    }
    let name_at = HEADER_WORDS_LEN;
    let data_at = name_at + padded_name_len(name_len);
    let guard_at = data_at + padded_data_len(data_len);
    if word(&frame[guard_at..], 0) != END_GUARD {
        return Err(FrameError::BadGuard);
    }
    let name = &frame[name_at..name_at + name_len];
    let mut data = frame[data_at..data_at + data_len].to_vec();
    if name == BIND_EVENT_NAME {
        // Network order to host order: the same swap.
        for w in data.chunks_exact_mut(4).take(3) {
            let v = u32::from_be_bytes([w[0], w[1], w[2], w[3]]);
            w.copy_from_slice(&v.to_ne_bytes());
        }
    }
    let w = |i| word(frame, i);
    let repr = MessageRepr {
        id: MessageId::new(w(1), w(2)),
        in_reply_to: MessageId::new(w(3), w(4)),
        to: w(5),
        from: w(6),
        orig_from: OrigFrom::new(w(7), w(8)),
        final_to: OrigFrom::new(w(9), w(10)),
        extra: w(11),
        flags: Flags::from_bits_retain(w(12)),
        name: Name::from_bytes(name),
        data: &data,
    };
    Ok(crate::msg_from_repr(&repr))
}

/// Decode frames laid back to back (a Zenoh payload carries one or more),
/// in order. A bad frame ends the run: the bytes after it cannot be
/// resynchronised, so it is the last item. An empty payload is one
/// [`FrameError::Short`].
pub fn decode_each(mut bytes: &[u8]) -> impl Iterator<Item = Result<Msg, FrameError>> + '_ {
    let mut failed = false;
    let mut first = true;
    core::iter::from_fn(move || {
        if failed || bytes.is_empty() && !first {
            return None;
        }
        first = false;
        let one = header_lengths(bytes)
            .map(|(name_len, data_len)| frame_len(name_len, data_len))
            .and_then(|len| match bytes.get(..len) {
                Some(frame) => decode(frame).map(|msg| (msg, len)),
                None => Err(FrameError::Short),
            });
        Some(match one {
            Ok((msg, len)) => {
                bytes = &bytes[len..];
                Ok(msg)
            }
            Err(e) => {
                failed = true;
                Err(e)
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `$.Fred` with data `abc1234`, id [1:2], from 3, orig_from (1,3):
    /// the frame written out by hand from spec §11.
    #[test]
    fn hand_made_vector() {
        let mut repr = MessageRepr::announcement("$.Fred", b"abc1234");
        repr.id = MessageId::new(1, 2);
        repr.from = 3;
        repr.orig_from = OrigFrom::new(1, 3);
        repr.flags = Flags::URGENT;
        let msg = crate::msg_from_repr(&repr);
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &[0x73, 0x75, 0x62, 0x4B][..], // start guard 0x7375624B, big-endian
            &[0, 0, 0, 1], &[0, 0, 0, 2],  // id
            &[0, 0, 0, 0], &[0, 0, 0, 0],  // in_reply_to
            &[0, 0, 0, 0],                 // to
            &[0, 0, 0, 3],                 // from
            &[0, 0, 0, 1], &[0, 0, 0, 3],  // orig_from
            &[0, 0, 0, 0], &[0, 0, 0, 0],  // final_to
            &[0, 0, 0, 0],                 // extra
            &[0, 0, 0, 8],                 // flags: URGENT
            &[0, 0, 0, 6],                 // name_len
            &[0, 0, 0, 7],                 // data_len
            &[0x4B, 0x62, 0x75, 0x73],     // end guard 0x4B627573
            b"$.Fred\0\0",                 // PN(6) = 8
            b"abc1234\0",                  // PD(7) = 8
            &[0x4B, 0x62, 0x75, 0x73],     // final end guard
        ]
        .concat();
        assert_eq!(encode(&msg), expected);
        assert_eq!(frame_len(6, 7), expected.len());
        let back = decode(&expected).unwrap();
        assert_eq!(back.as_bytes(), msg.as_bytes());
    }

    /// A 4-byte name gets a whole NUL word; no data means no data area.
    #[test]
    fn four_byte_name_no_data() {
        let mut repr = MessageRepr::request("$.ab", b"");
        repr.id = MessageId::new(0x0102_0304, 0x0506_0708);
        let frame = encode(&crate::msg_from_repr(&repr));
        assert_eq!(frame.len(), 64 + 8 + 4);
        assert_eq!(&frame[4..12], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&frame[48..52], &[0, 0, 0, 1], "WANT_A_REPLY");
        assert_eq!(&frame[64..72], b"$.ab\0\0\0\0");
        assert_eq!(decode(&frame).unwrap().name(), "$.ab");
    }

    /// Bind event data: the three leading words go in network order, the
    /// name stays as it is (spec §3.7 example, binder 5, `$.Fred`).
    #[test]
    fn bind_event_data_is_converted() {
        let data: Vec<u8> = [
            &1u32.to_ne_bytes()[..],
            &5u32.to_ne_bytes(),
            &6u32.to_ne_bytes(),
            b"$.Fred\0\0",
        ]
        .concat();
        let mut repr = MessageRepr::announcement("$.KBUS.ReplierBindEvent", &data);
        repr.flags = Flags::from_bits_retain(0x204);
        let frame = encode(&crate::msg_from_repr(&repr));
        let data_at = 64 + padded_name_len(23);
        assert_eq!(
            &frame[data_at..data_at + 20],
            &[0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 6, b'$', b'.', b'F', b'r', b'e', b'd', 0, 0]
        );
        let back = decode(&frame).unwrap();
        assert_eq!(back.data(), &data[..]);
        let ev = back.view().bind_event().unwrap();
        assert!(ev.is_bind());
        assert_eq!((ev.binder(), ev.name()), (5, "$.Fred"));
    }

    /// Frames back to back decode in order; a bad one is reported and
    /// ends the run, the good ones before it are kept.
    #[test]
    fn frames_back_to_back() {
        let msgs: Vec<Msg> = ["$.A", "$.Bb", "$.Ccc"]
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut r = MessageRepr::announcement(n, &b"0123456789"[..i * 3]);
                r.id = MessageId::new(1, i as u32 + 1);
                crate::msg_from_repr(&r)
            })
            .collect();
        let mut payload = Vec::new();
        for m in &msgs {
            encode_into(m, &mut payload);
        }
        let back: Vec<Msg> = decode_each(&payload).map(Result::unwrap).collect();
        assert_eq!(back, msgs);
        let one = encode(&msgs[0]);
        assert_eq!(
            decode_each(&one).collect::<Vec<_>>(),
            vec![Ok(msgs[0].clone())]
        );
        assert_eq!(
            decode_each(&[]).collect::<Vec<_>>(),
            vec![Err(FrameError::Short)]
        );
        let cut = &payload[..payload.len() - 1];
        let got: Vec<_> = decode_each(cut).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[..2], [Ok(msgs[0].clone()), Ok(msgs[1].clone())]);
        assert_eq!(got[2], Err(FrameError::Short));
        let mut bad = payload.clone();
        bad[one.len()] ^= 1;
        let got: Vec<_> = decode_each(&bad).collect();
        assert_eq!(got, vec![Ok(msgs[0].clone()), Err(FrameError::BadGuard)]);
    }

    #[test]
    fn greeting() {
        assert_eq!(helo(2), *b"HELO\0\0\0\x02");
        assert_eq!(parse_helo(b"HELO\0\0\x01\x00"), Ok(256));
        assert_eq!(parse_helo(b"HELP\0\0\0\x02"), Err(FrameError::BadHelo));
    }

    #[test]
    fn bad_frames_are_refused() {
        let frame = encode(&crate::msg_from_repr(&MessageRepr::announcement(
            "$.A", b"x",
        )));
        assert_eq!(decode(&frame[..frame.len() - 1]), Err(FrameError::Short));
        let mut bad = frame.clone();
        bad[0] ^= 1;
        assert_eq!(decode(&bad), Err(FrameError::BadGuard));
        let mut bad = frame.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert_eq!(decode(&bad), Err(FrameError::BadGuard));
        let mut bad = frame;
        bad[52..56].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(decode(&bad), Err(FrameError::BadLength));
    }
}
