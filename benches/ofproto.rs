//! ofproto benchmarks: bulk FLOW_MOD load (the harness's flowmod workload),
//! publishing, a 100k-rule flow dump, and translation through a 1000-rule table.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rvswitchd::datapath::flow::{Field, FlowKey};
use rvswitchd::ofproto::mac_learning::MacLearning;
use rvswitchd::ofproto::xlate::{translate, translate_actions, XlateOptions};
use rvswitchd::ofproto::{FlowStatsJob, Ofproto, PortInfo};
use rvswitchd::openflow::action::{Action, Instruction};
use rvswitchd::openflow::message::{
    Bucket, FlowMod, FlowModCommand, FlowStatsRequest, GroupMod, GroupModCommand, GroupType,
    NO_BUFFER,
};
use rvswitchd::openflow::oxm::{Match, OxmField, OxmId};
use rvswitchd::types::{Cookie, DatapathId, GroupId, MacAddr, PortNo, TableId};
use std::hint::black_box;

const N: u32 = 100_000;

/// `priority=100,ip,nw_src=X actions=output:2`, as the harness sends it.
fn flow_mod(i: u32) -> FlowMod {
    FlowMod {
        cookie: Cookie(0),
        cookie_mask: 0,
        table_id: TableId(0),
        command: FlowModCommand::Add,
        idle_timeout: 0,
        hard_timeout: 0,
        priority: 100,
        buffer_id: NO_BUFFER,
        out_port: PortNo::ANY,
        out_group: GroupId::ANY,
        flags: 0,
        match_: Match {
            fields: vec![
                OxmField::exact(OxmId::EthType, 0x800),
                OxmField::exact(OxmId::Ipv4Src, 0x0a00_0000 | i as u128),
            ],
        },
        instructions: vec![Instruction::ApplyActions(vec![Action::Output {
            port: PortNo(2),
            max_len: 0,
        }])],
    }
}

fn switch() -> Ofproto {
    let mut o = Ofproto::new(DatapathId(1), "bench");
    for p in 1..=4u32 {
        o.add_port(PortInfo::new(
            PortNo(p),
            &format!("p{p}"),
            MacAddr([2, 0, 0, 0, 0, p as u8]),
        ));
    }
    o
}

fn loaded(n: u32) -> Ofproto {
    let mut o = switch();
    for i in 0..n {
        o.flow_mod(&flow_mod(i), 0).expect("valid flow_mod");
    }
    o
}

fn benches(c: &mut Criterion) {
    let mods: Vec<FlowMod> = (0..N).map(flow_mod).collect();
    let mut g = c.benchmark_group("ofproto");
    g.sample_size(10);
    g.bench_function("add_100k_then_publish", |b| {
        b.iter_batched(
            switch,
            |mut o| {
                for m in &mods {
                    o.flow_mod(m, 0).expect("valid flow_mod");
                }
                black_box(o.publish());
                o
            },
            BatchSize::PerIteration,
        )
    });
    // Bulk load with a publish every 64 messages (a mailbox drained in batches):
    // measures the copy-on-write cost of structural sharing.
    g.bench_function("add_100k_publish_every_64", |b| {
        b.iter_batched(
            switch,
            |mut o| {
                for (i, m) in mods.iter().enumerate() {
                    o.flow_mod(m, 0).expect("valid flow_mod");
                    if i % 64 == 63 {
                        black_box(o.publish());
                    }
                }
                black_box(o.publish());
                o
            },
            BatchSize::PerIteration,
        )
    });
    let mut big = loaded(N);
    g.bench_function("publish_after_one_mod_100k", |b| {
        let mut i = N;
        b.iter(|| {
            i += 1;
            big.flow_mod(&flow_mod(i), 0).expect("valid flow_mod");
            black_box(big.publish())
        })
    });
    let big = loaded(N);
    let req = FlowStatsRequest {
        table_id: TableId::ALL,
        out_port: PortNo::ANY,
        out_group: GroupId::ANY,
        cookie: Cookie(0),
        cookie_mask: 0,
        match_: Match::default(),
    };
    g.bench_function("flow_stats_dump_100k", |b| {
        b.iter(|| black_box(big.flow_stats(&req, 0).expect("dump").len()))
    });
    // What the daemon does for dump-flows: select, then encode straight from
    // the rules into 64 KB multipart messages.
    g.bench_function("flow_stats_encode_100k", |b| {
        b.iter(|| {
            let rules = big.flow_stats_rules(&req).expect("dump");
            black_box(FlowStatsJob::new(1, 0, rules).encode_all().len())
        })
    });
    g.finish();

    // The upcall handlers' hot path: one classifier lookup among 100k rules
    // plus a few other subtables (hits in the first, misses in the rest).
    let mut cls = loaded(N);
    for (j, f) in [
        vec![OxmField::exact(OxmId::InPort, 3)],
        vec![
            OxmField::exact(OxmId::EthType, 0x800),
            OxmField::exact(OxmId::Ipv4Dst, 0x0a00_0009),
        ],
        vec![OxmField::exact(OxmId::EthType, 0x806)],
    ]
    .into_iter()
    .enumerate()
    {
        let mut m = flow_mod(0);
        m.priority = 50 - j as u16;
        m.match_ = Match { fields: f };
        cls.flow_mod(&m, 0).expect("valid flow_mod");
    }
    let table = cls.table(TableId(0)).expect("table 0");
    let keys: Vec<FlowKey> = (0..1024u32)
        .map(|i| {
            let mut k = FlowKey::default();
            k.set(Field::InPort, 1);
            k.set(Field::DlType, 0x800);
            k.set(Field::NwSrc, (0x0a00_0000 | (i * 97 % (2 * N))) as u128);
            k.set(Field::NwDst, 0x0a00_0001);
            k
        })
        .collect();
    c.bench_function("ofproto/classifier_lookup_100k_x1024", |b| {
        b.iter(|| {
            let mut hits = 0;
            for k in &keys {
                let mut wc = FlowKey::default();
                hits += table.lookup(black_box(k), &mut wc).is_some() as u32;
            }
            black_box(hits)
        })
    });

    let mut o = loaded(1000);
    let snap = o.publish();
    let ml = MacLearning::default();
    let mut k = FlowKey::default();
    k.set(Field::InPort, 1);
    k.set(Field::DlType, 0x800);
    k.set(Field::NwSrc, 0x0a00_0000 | 500);
    k.set(Field::NwDst, 0x0a00_0001);
    let opts = XlateOptions::default();
    c.bench_function("ofproto/translate_1000_rules", |b| {
        b.iter(|| black_box(translate(&snap, &ml, black_box(&k), &opts).actions.len()))
    });

    // Issue 9's attack: 32 ALL groups, each with two buckets sending to the
    // next one twice, under one PACKET_OUT. Translation stops at a budget; this
    // measures the worst case a peer can make one translation cost.
    let mut o = group_bomb(true);
    let snap = o.publish();
    let po = [Action::Group(GroupId(32))];
    c.bench_function("ofproto/translate_group_bomb_32", |b| {
        b.iter(|| {
            let x = translate_actions(&snap, &ml, black_box(&k), &po, &opts);
            assert!(x.budget.is_some());
            black_box(x.work.buckets)
        })
    });
    // The same graph with leaves that output nothing: the bucket budget.
    let mut o2 = group_bomb(false);
    let snap2 = o2.publish();
    c.bench_function("ofproto/translate_group_bomb_32_silent", |b| {
        b.iter(|| {
            let x = translate_actions(&snap2, &ml, black_box(&k), &po, &opts);
            assert!(x.budget.is_some());
            black_box(x.work.buckets)
        })
    });
    // Validating a group on top of the graph (the GROUP_MOD cost): added once,
    // then modified to the same buckets, which checks the whole chain again.
    let mut top = GroupMod {
        command: GroupModCommand::Add,
        group_type: GroupType::All,
        group_id: GroupId(1000),
        buckets: vec![Bucket {
            weight: 0,
            watch_port: PortNo::ANY,
            watch_group: GroupId::ANY,
            actions: vec![Action::Group(GroupId(31)); 2],
        }],
    };
    o.group_mod(&top, 0).expect("top group");
    top.command = GroupModCommand::Modify;
    c.bench_function("ofproto/group_mod_on_group_bomb_32", |b| {
        b.iter(|| black_box(o.group_mod(&top, 0).is_ok()))
    });
}

/// The 32-level ALL-group graph; leaves output to port 2 when `output`.
fn group_bomb(output: bool) -> Ofproto {
    let mut o = switch();
    let leaf = if output {
        vec![Action::Output {
            port: PortNo(2),
            max_len: 0,
        }]
    } else {
        vec![]
    };
    let bucket = |actions: Vec<Action>| Bucket {
        weight: 0,
        watch_port: PortNo::ANY,
        watch_group: GroupId::ANY,
        actions,
    };
    let mut gm = GroupMod {
        command: GroupModCommand::Add,
        group_type: GroupType::All,
        group_id: GroupId(1),
        buckets: vec![bucket(leaf)],
    };
    o.group_mod(&gm, 0).expect("leaf group");
    for i in 2..=32u32 {
        let b = bucket(vec![Action::Group(GroupId(i - 1)); 2]);
        gm.group_id = GroupId(i);
        gm.buckets = vec![b.clone(), b];
        o.group_mod(&gm, 0).expect("group");
    }
    o
}

criterion_group!(ofproto_benches, benches);
criterion_main!(ofproto_benches);
