//! Benchmarks for `kbus-wire`; see `benches/wire.rs`.
//!
//! Run with `cargo bench -p kbus-benches` (add
//! `-- --warm-up-time 1 --measurement-time 2` for a quick run). Each group
//! has a `memcpy` baseline of the same bytes, so results can be read as
//! ratios that carry over between machines.
#![forbid(unsafe_code)]

use kbus_wire::{Layout, MessageRepr};

/// The message every bench uses: a Request with `data_len` bytes of data.
pub fn sample_data(data_len: usize) -> Vec<u8> {
    (0..data_len).map(|i| (i % 251) as u8).collect()
}

/// The name every bench uses.
pub const NAME: &str = "$.Sensors.Kitchen.Temperature";

/// A Request carrying `data`, with a few header fields set.
pub fn sample_repr(data: &[u8]) -> MessageRepr<'_> {
    let mut repr = MessageRepr::request(NAME, data);
    repr.id = kbus_wire::MessageId::new(0, 42);
    repr.from = 3;
    repr
}

/// `sample_repr(data)` emitted in layout `L`.
pub fn sample_bytes<L: Layout>(data: &[u8]) -> Vec<u8> {
    let repr = sample_repr(data);
    let mut buf = vec![0; repr.buffer_len_in::<L>()];
    repr.emit_in::<L>(&mut buf).expect("sample message emits");
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use kbus_wire::{Layout32, Layout64, Message, NativeLayout};

    #[test]
    fn samples_parse_in_both_layouts() {
        for size in [0, 64, 4096] {
            let data = sample_data(size);
            let b64 = sample_bytes::<Layout64>(&data);
            let b32 = sample_bytes::<Layout32>(&data);
            assert_eq!(b64.len(), b32.len() + 16);
            let m = Message::<_, Layout64>::new_checked_in(&b64[..]).unwrap();
            assert_eq!(
                (m.name(), m.data()),
                (kbus_wire::Name::new(NAME), &data[..])
            );
            let m = Message::<_, Layout32>::new_checked_in(&b32[..]).unwrap();
            assert_eq!(m.data().len(), size);
            let p = sample_repr(&data).pointy_header();
            assert_eq!(p.message_len(), sample_bytes::<NativeLayout>(&data).len());
        }
    }
}
