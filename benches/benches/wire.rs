//! Parse and emit at 0, 64 and 4096 data bytes, the pointy header, and a
//! `memcpy` baseline of the same bytes in each group.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kbus_benches::{sample_bytes, sample_data, sample_repr};
use kbus_wire::{Message, MessageRepr, NativeLayout};

const SIZES: [usize; 3] = [0, 64, 4096];

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for size in SIZES {
        let data = sample_data(size);
        let bytes = sample_bytes::<NativeLayout>(&data);
        let mut copy = vec![0u8; bytes.len()];
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("new_checked+repr", size),
            &bytes,
            |b, bytes| {
                b.iter(|| {
                    let msg = Message::new_checked(black_box(&bytes[..])).expect("valid");
                    let repr = msg.repr();
                    black_box((repr.id, repr.name.len(), repr.data.len()));
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("memcpy", size), &bytes, |b, bytes| {
            b.iter(|| {
                copy.copy_from_slice(black_box(&bytes[..]));
                black_box(&copy);
            })
        });
    }
    group.finish();
}

fn emit(c: &mut Criterion) {
    let mut group = c.benchmark_group("emit");
    for size in SIZES {
        let data = sample_data(size);
        let bytes = sample_bytes::<NativeLayout>(&data);
        let mut out = vec![0u8; bytes.len()];
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::new("emit", size), &data, |b, data| {
            b.iter(|| {
                let repr = sample_repr(black_box(&data[..]));
                let n = repr.emit(&mut out).expect("fits");
                black_box((n, &out));
            })
        });
        group.bench_with_input(BenchmarkId::new("pointy_header", size), &data, |b, data| {
            b.iter(|| {
                let repr = sample_repr(black_box(&data[..]));
                let pointy = repr.pointy_header();
                black_box(pointy.as_bytes());
            })
        });
        group.bench_with_input(BenchmarkId::new("memcpy", size), &bytes, |b, bytes| {
            b.iter(|| {
                out.copy_from_slice(black_box(&bytes[..]));
                black_box(&out);
            })
        });
    }
    group.finish();
}

fn round_trip(c: &mut Criterion) {
    // Parse a received Request and emit its Reply: what a Replier does.
    let data = sample_data(64);
    let mut request = sample_repr(&data);
    request.flags |= kbus_wire::Flags::WANT_YOU_TO_REPLY;
    let mut bytes = vec![0u8; request.buffer_len()];
    request.emit(&mut bytes).expect("fits");
    let mut out = vec![0u8; 512];
    c.bench_function("reply/parse+reply_to+emit/64", |b| {
        b.iter(|| {
            let msg = Message::new_checked(black_box(&bytes[..])).expect("ok");
            let reply = MessageRepr::reply_to(&msg, b"21.5").expect("ours");
            black_box(reply.emit(&mut out).expect("fits"));
        })
    });
}

criterion_group!(benches, parse, emit, round_trip);
criterion_main!(benches);
