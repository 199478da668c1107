//! The collector: shard events become observer calls on the caller's thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::brakes::Brakes;
use crate::handoff::Event;
use crate::report::{Counts, ShardReport, State};

use super::{Observer, Progress};

/// Turns shard events into observer calls until every shard is done.
/// Lines held for the environment guard are settled once it clears, and
/// when the run ends unless it has tripped.
pub(super) fn collect(
    events: Receiver<Event>,
    shards: usize,
    observer: &mut dyn Observer,
    read: &AtomicU64,
    started: Instant,
    brakes: &Brakes,
) -> Vec<ShardReport> {
    let guard = &brakes.guard;
    let mut held: Vec<(u64, u64)> = Vec::new();
    let mut latest: Vec<ShardReport> =
        (0..shards).map(|shard| ShardReport { shard, ..ShardReport::default() }).collect();
    let mut done = vec![false; shards];
    let mut skipped = 0u64;
    let mut last = Instant::now();
    let progress = |latest: &[ShardReport], skipped: u64| {
        let c = Counts::sum(latest.iter().map(ShardReport::counts));
        Progress {
            read: read.load(Ordering::Relaxed),
            written: c.frames_written,
            accepted: c.accepted,
            failed: skipped + c.rejected_total() + c.unconfirmed + c.unsent,
            reconnects: c.reconnects,
            elapsed: started.elapsed(),
            stopping: brakes.stop_cause().is_some(),
        }
    };
    for event in events {
        match event {
            Event::Failures(failures) => {
                for f in &failures {
                    if f.state == State::Skipped {
                        skipped += 1;
                    }
                    observer.failure(f);
                }
            }
            Event::Settled(lines) => observer.settled(&lines),
            Event::Held(lines) => held.extend(lines),
            Event::Progress(r) => {
                let shard = r.shard;
                latest[shard] = r;
            }
            Event::Done(r) => {
                let shard = r.shard;
                latest[shard] = r;
                done[shard] = true;
            }
        }
        if !held.is_empty() && guard.is_clear() {
            observer.settled(&std::mem::take(&mut held));
        }
        if last.elapsed() >= Duration::from_millis(100) {
            observer.progress(&progress(&latest, skipped));
            last = Instant::now();
        }
    }
    if guard.finish().is_none() && !held.is_empty() {
        observer.settled(&held);
    }
    observer.progress(&progress(&latest, skipped));
    debug_assert!(done.iter().all(|d| *d), "a shard ended without its final report");
    latest
}
