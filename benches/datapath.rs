//! Fast-path micro-benchmarks: flow extraction, EMC hits, megaflow lookups.
//!
//! Kept short (20 samples, 2 s measurement) so the whole run takes well under a
//! minute on a shared machine: `cargo bench --bench datapath`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rvswitchd::datapath::dpcls::Dpcls;
use rvswitchd::datapath::dpflow::DpFlow;
use rvswitchd::datapath::emc::Emc;
use rvswitchd::datapath::extract::extract;
use rvswitchd::datapath::flow::{Field, FlowKey};
use rvswitchd::types::PortNo;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

fn udp_frame() -> Vec<u8> {
    let mut v = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(4000, 53)
        .write(&mut v, &[0u8; 64])
        .expect("frame builds");
    v
}

fn bench_extract(c: &mut Criterion) {
    let f = udp_frame();
    c.bench_function("extract/udp4", |b| {
        b.iter(|| extract(black_box(&f), PortNo(1)))
    });
}

fn bench_emc(c: &mut Criterion) {
    let key = extract(&udp_frame(), PortNo(1)).expect("valid frame");
    let mut m = FlowKey::default();
    m.set_exact(Field::InPort);
    let flow = Arc::new(DpFlow::new(1, &key, &m, vec![], 1));
    let mut emc = Emc::new(1);
    let h = key.hash64();
    emc.insert(&key, h, &flow);
    c.bench_function("emc/hit", |b| {
        b.iter(|| {
            let k = black_box(&key);
            emc.lookup(k, k.hash64()).map(|f| f.id)
        })
    });
}

fn bench_dpcls(c: &mut Criterion) {
    const FLOWS: u32 = 100_000;
    let mut g = c.benchmark_group("dpcls/lookup_100k_flows");
    for n_sub in [1u32, 10, 100] {
        let mut cls = Dpcls::new();
        let mut keys = Vec::new();
        for i in 0..FLOWS {
            let sub = i % n_sub;
            let mut mask = FlowKey::default();
            mask.set_exact(Field::InPort);
            mask.set_exact(Field::NwSrc);
            // A distinct partial tp_src mask per subtable.
            mask.set(Field::TpSrc, (sub + 1) as u128);
            let mut k = FlowKey::default();
            k.set(Field::InPort, 1);
            k.set(Field::DlType, 0x0800);
            k.set(Field::NwSrc, i as u128);
            k.set(Field::TpSrc, 0xffff);
            cls.insert(Arc::new(DpFlow::new(i as u64, &k, &mask, vec![], 1)));
            if i % 97 == 0 {
                keys.push(k);
            }
        }
        assert_eq!(cls.n_subtables(), n_sub as usize);
        let mut i = 0usize;
        g.bench_with_input(BenchmarkId::from_parameter(n_sub), &n_sub, |b, _| {
            b.iter(|| {
                i = (i + 1) % keys.len();
                cls.lookup(black_box(&keys[i])).map(|f| f.id)
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_extract, bench_emc, bench_dpcls
}
criterion_main!(benches);
