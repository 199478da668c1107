//! Writing, driven without sockets: what a batch holds, what a failed write
//! puts in doubt, and careful mode's sizes.

use super::*;
use crate::binary::frame::Command;
use crate::binary::shard::shard_test::*;
use crate::binary::shard::{ConnEnd, Limits, ShardState};

#[test]
fn window_bytes_bound_what_is_retained() {
    let frame = Command::Items.frame_len(2);
    let mut s = ShardState::new(0, spec(), Limits { window_bytes: 4 * frame, ..limits() });
    s.push((1..=10).map(item));
    s.finish_input();
    let mut windows = vec![];
    while s.has_work() {
        s.on_connected();
        let f = drain(&mut s);
        assert!(s.in_flight() <= 4);
        windows.push(f.len() - 1);
        s.on_response(resp(2, sentinel_of(&f)));
    }
    assert_eq!(windows, [4, 4, 2]);
    assert_eq!(s.report().confirmations, 3);
}

#[test]
fn confirm_every_counts_notifications() {
    let mut s = ShardState::new(0, spec(), Limits { confirm_every: 3, ..limits() });
    s.push((1..=7).map(item));
    s.finish_input();
    s.on_connected();
    assert_eq!(drain(&mut s).len(), 4);
}

#[test]
fn pending_bytes_stay_put_until_written() {
    let mut s = ShardState::new(0, spec(), Limits { batch_bytes: 100, ..limits() });
    s.push((1..=5).map(item));
    s.on_connected();
    let a = s.pending_bytes().to_vec();
    assert_eq!(s.pending_bytes(), &a[..], "a blocked write is retried with the same bytes");
    s.wrote(10);
    assert_eq!(s.pending_bytes(), &a[10..]);
}

/// A shard of ten notifications whose retried write (all ten and the
/// sentinel, one record) failed after OpenSSL reported nothing.
fn failed_write() -> (ShardState, Vec<(u32, Option<u64>)>) {
    let mut s = shard(10);
    s.on_connected();
    let f = frames(s.pending_bytes());
    assert_eq!(f.len(), 11);
    s.write_failed();
    (s, f)
}

#[test]
fn after_a_failed_write_the_gateway_may_name_any_frame_offered() {
    let (mut s, f) = failed_write();
    assert!(matches!(s.on_response(resp(8, f[6].0)), ConnEnd::Answered(_)));
    let r = s.report();
    assert_eq!((r.accepted, r.rejected_total(), r.possibly_duplicated), (6, 1, 0));
}

#[test]
fn after_a_failed_write_a_silent_close_leaves_every_frame_offered_in_doubt() {
    let (mut s, _) = failed_write();
    s.on_close();
    confirm_the_rest(&mut s);
    let r = s.report();
    assert_eq!((r.accepted, r.possibly_duplicated), (10, 10));
}

#[test]
fn a_failed_write_puts_at_most_one_record_in_doubt() {
    let frame = Command::Items.frame_len(2);
    let mut s = shard(2_000);
    s.on_connected();
    assert!(s.pending_bytes().len() > 3 * TLS_RECORD);
    s.wrote(10 * frame + 7); // ten frames and part of the eleventh
    s.write_failed();
    // The frames whose last byte lies within the record OpenSSL held.
    let through = (10 * frame + 7 + TLS_RECORD) / frame;
    assert_eq!(s.report().frames_written, through as u64);
    s.on_close();
    confirm_the_rest(&mut s);
    let r = s.report();
    assert_eq!((r.accepted, r.possibly_duplicated), (2_000, through as u64));
}

#[test]
fn confirm_now_closes_the_window_early() {
    let mut s = ShardState::new(0, spec(), limits());
    s.push((1..=3).map(item));
    s.on_connected();
    assert_eq!(drain(&mut s).len(), 3, "no sentinel: the window is open and input may follow");
    s.confirm_now();
    let f = drain(&mut s);
    assert_eq!(f.len(), 1);
    s.on_response(resp(2, sentinel_of(&f)));
    assert_eq!(s.report().accepted, 3);
    assert!(s.has_work(), "the input has not ended");
}

/// Writes one batch; returns its frames.
fn write_batch(s: &mut ShardState) -> Vec<(u32, Option<u64>)> {
    let bytes = s.pending_bytes().to_vec();
    s.wrote(bytes.len());
    frames(&bytes)
}

/// Writes the first `n` frames of the next batch; returns the batch's frames.
fn write_part(s: &mut ShardState, n: usize) -> Vec<(u32, Option<u64>)> {
    let bytes = s.pending_bytes().to_vec();
    s.wrote(n * Command::Items.frame_len(2));
    frames(&bytes)
}

/// Two rejections `gap` notifications apart.
fn reject_twice(s: &mut ShardState, gap: usize) {
    s.on_connected();
    let f = write_batch(s);
    s.on_response(resp(8, f[0].0));
    assert!(!s.careful(), "one rejection alone says little about the next");
    s.on_connected();
    let f = write_part(s, gap);
    s.on_response(resp(8, f[0].0));
}

#[test]
fn careful_writes_are_an_eighth_batch_over_a_quarter_of_the_send_buffer() {
    let frame = Command::Items.frame_len(2);
    // (configured batch, careful batch): an eighth, not below 4 KiB nor
    // above the configured batch (the strict style writes one frame).
    for (batch, careful) in [
        (1 << 20, 128usize << 10),
        (64 << 10, 8 << 10),
        (32 << 10, 4 << 10),
        (16 << 10, 4 << 10),
        (4 << 10, 4 << 10),
        (2 << 10, 2 << 10),
        (1, 1),
    ] {
        let mut s = ShardState::new(0, spec(), Limits { batch_bytes: batch, ..limits() });
        s.push((1..=5_000).map(item));
        s.finish_input();
        assert_eq!(s.send_buffer(Some(64 << 10)), Some(64 << 10));
        reject_twice(&mut s, 1);
        assert!(s.careful());
        // A quarter of the send buffer, not below 16 KiB nor above the
        // configured size; the kernel's autotuning is left alone.
        for (configured, want) in [
            (Some(4 << 20), Some(1 << 20)),
            (Some(64 << 10), Some(16 << 10)),
            (Some(32 << 10), Some(16 << 10)),
            (Some(8 << 10), Some(8 << 10)),
            (None, None),
        ] {
            assert_eq!(s.send_buffer(configured), want);
        }
        s.on_connected();
        assert_eq!(write_batch(&mut s).len(), (careful / frame).max(1), "careful batch for {batch}");
    }
}

#[test]
fn careful_while_rejections_come_closer_than_careful_frames() {
    let frame = Command::Items.frame_len(2);
    let (big, small) = ((64usize << 10) / frame, (8usize << 10) / frame);
    assert!(small < 200 && 2 * small > 200, "the test's arithmetic");
    let limits = Limits { careful_frames: 200, ..limits() };

    // 200 apart: not close enough.
    let mut s = ShardState::new(0, spec(), limits);
    s.push((1..=20_000).map(item));
    reject_twice(&mut s, 200);
    assert!(!s.careful());
    s.on_connected();
    assert_eq!(write_batch(&mut s).len(), big);

    // 199 apart: careful for 200 written after the second.
    let mut s = ShardState::new(0, spec(), limits);
    s.push((1..=20_000).map(item));
    reject_twice(&mut s, 199);
    assert!(s.careful());
    s.on_connected();
    assert_eq!(write_batch(&mut s).len(), small);
    assert!(s.careful(), "{small} of 200 written");
    // Sized while careful, this batch takes the count past 200.
    assert_eq!(write_batch(&mut s).len(), small);
    assert!(!s.careful());
    assert_eq!(s.send_buffer(Some(64 << 10)), Some(64 << 10));
    let f = write_batch(&mut s);
    assert_eq!(f.len(), big);
    // A rejection long after the last: still not careful.
    s.on_response(resp(8, f[0].0));
    assert!(!s.careful());
}
