//! Mixing tick cost by room size and number of talkers, against the memory floor: a plain copy
//! of the same input bytes, measured in the same run.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tutti_benches::{SteadyRoom, FRAME_BYTES};
use tutti_mix::talk::frame_energy;
use tutti_mix::Frame;

const ROOM_SIZES: [usize; 4] = [2, 10, 100, 1000];

fn tick(c: &mut Criterion) {
    for participants in ROOM_SIZES {
        let mut group = c.benchmark_group(format!("room_{participants}"));
        group.throughput(Throughput::Bytes((participants * FRAME_BYTES) as u64));

        let mut talker_counts = vec![1, 3, participants];
        talker_counts.retain(|&t| t <= participants);
        talker_counts.dedup();
        for talkers in talker_counts {
            let label = if talkers == participants {
                "all".to_string()
            } else {
                talkers.to_string()
            };
            let mut steady = SteadyRoom::new(participants, talkers);
            group.bench_function(BenchmarkId::new("tick_talkers", &label), |b| {
                b.iter(|| {
                    steady.mark_inputs();
                    black_box(steady.room.tick().group_count())
                })
            });
            group.bench_function(BenchmarkId::new("write_and_tick_talkers", &label), |b| {
                b.iter(|| {
                    steady.write_inputs();
                    black_box(steady.room.tick().group_count())
                })
            });
        }

        let inputs = SteadyRoom::new(participants, 3.min(participants)).inputs;
        let mut copies = vec![Frame::silent(); participants];
        group.bench_function("copy_inputs", |b| {
            b.iter(|| {
                for (dst, src) in copies.iter_mut().zip(&inputs) {
                    dst.clone_from(black_box(src));
                }
                black_box(&copies);
            })
        });
        group.bench_function("energy_only", |b| {
            b.iter(|| {
                let mut total = 0.0f32;
                for frame in &inputs {
                    total += frame_energy(black_box(frame), 1.0);
                }
                black_box(total)
            })
        });
        group.finish();
    }
}

criterion_group!(benches, tick);
criterion_main!(benches);
