use super::*;

/// Counts with every field distinct and different from `base`'s, so that a
/// counter left out of an addition shows.
fn distinct(base: u64) -> Counts {
    Counts {
        tokens_read: base + 1,
        accepted: base + 2,
        rejected: BTreeMap::from([("8".into(), base + 3), ((base + 4).to_string(), base + 5)]),
        unconfirmed: base + 6,
        unsent: base + 7,
        skipped: base + 8,
        possibly_duplicated: base + 9,
        resent: base + 10,
        reconnects: base + 11,
        frames_written: base + 12,
        previously_settled: base + 13,
    }
}

#[test]
fn add_sums_every_counter() {
    let mut total = distinct(100);
    total.add(&distinct(1000));
    // Field k of `distinct(b)` is b + k: the sum is 1100 + 2k.
    let expected = Counts {
        tokens_read: 1102,
        accepted: 1104,
        rejected: BTreeMap::from([("8".into(), 1106), ("104".into(), 105), ("1004".into(), 1005)]),
        unconfirmed: 1112,
        unsent: 1114,
        skipped: 1116,
        possibly_duplicated: 1118,
        resent: 1120,
        reconnects: 1122,
        frames_written: 1124,
        previously_settled: 1126,
    };
    assert_eq!(total, expected);
}

#[test]
fn a_report_gives_back_the_counts_it_was_set_to() {
    let mut r = Report::default();
    r.set_counts(distinct(7));
    assert_eq!(r.counts(), distinct(7));
}

fn shard(i: usize, base: u64) -> ShardReport {
    ShardReport {
        shard: i,
        accepted: base + 1,
        rejected: BTreeMap::from([("8".into(), base + 2)]),
        unconfirmed: base + 3,
        unsent: base + 4,
        possibly_duplicated: base + 5,
        resent: base + 6,
        frames_written: base + 7,
        reconnects: base + 8,
        elapsed_s: 1.0,
        ..ShardReport::default()
    }
}

#[test]
fn a_runs_report_sums_its_shards_and_takes_the_readers_counts() {
    let r = Report::from_shards(vec![shard(0, 10), shard(1, 20)], 500, 9, 2.0);
    assert_eq!((r.tokens_read, r.skipped, r.shards), (500, 9, 2));
    assert_eq!((r.accepted, r.rejected_total(), r.unconfirmed, r.unsent), (32, 34, 36, 38));
    assert_eq!((r.possibly_duplicated, r.resent, r.frames_written, r.reconnects), (40, 42, 44, 46));
    assert_eq!(r.previously_settled, 0);
    assert_eq!(r.per_shard.len(), 2);
}

#[test]
fn a_merge_sums_the_partitions_and_renumbers_their_shards() {
    let mut a = Report::from_shards(vec![shard(0, 10)], 100, 1, 2.0);
    a.previously_settled = 5;
    a.other_partitions = 200;
    let mut b = Report::from_shards(vec![shard(0, 20), shard(1, 30)], 200, 2, 3.0);
    b.interrupted = true;
    let m = Report::merge(&[a.clone(), b.clone()]);
    let mut expected = a.counts();
    expected.add(&b.counts());
    assert_eq!(m.counts(), expected);
    assert_eq!((m.shards, m.elapsed_s, m.interrupted, m.other_partitions), (3, 3.0, true, 0));
    assert_eq!((m.stopped.clone(), m.braked_s), (None, 0.0));
    let stopped =
        Stopped { cause: "Apple answered 400 BadTopic".into(), fix: "check --topic".into(), wrong_environment: false };
    b.stopped = Some(stopped.clone());
    b.braked_s = 4.5;
    let m = Report::merge(&[a.clone(), b.clone()]);
    assert_eq!((m.stopped, m.braked_s), (Some(stopped), 4.5), "a partition's stop is the merged run's");
    assert_eq!(m.per_shard.iter().map(|s| s.shard).collect::<Vec<_>>(), [0, 1, 2]);
}
