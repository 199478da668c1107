//! Every notification a shard has not settled, in order, kept so that
//! settling the front of it touches no memory per notification.
//!
//! A window holds about 100,000 notifications per shard, written into it long
//! before the gateway confirms them, so by then they have left the CPU's
//! caches. Walking every one of them to settle a window (to record its line,
//! count it if in doubt, and drop its extras handle) would cost a cache miss
//! per notification. Here a notification is a [`Slot`] that
//! copies as plain bytes, and what settling needs is kept beside the slots in
//! a form that settles in bulk:
//!
//! - lines as runs of consecutive numbers (the splitter hands a shard
//!   batches of consecutive lines, so a window is a few hundred runs; a list
//!   cut into partitions, or full of lines that are skipped, makes shorter
//!   runs, down to one line, and then settling reads 16 bytes per
//!   notification instead of none);
//! - what a notification's line set for itself (its own payload), rare, in a
//!   queue of its own, found by a sequence number;
//! - doubt as a count: only a prefix of the queue is ever in doubt (a silent
//!   close marks what was in flight, and the queue only loses its front).
//!
//! A slot is 40 bytes where a whole [`Item`] is 56, so a window also takes
//! two sevenths less memory. (The runs are not sized up front: a ring that
//! cycles through all its capacity would touch it all, and the common window
//! needs a few hundred runs.)

use std::collections::VecDeque;
use std::sync::Arc;

use super::Item;
use crate::input::LineExtras;
use crate::journal::push_range;
use crate::token::DeviceToken;

/// A notification in the queue: what writing it needs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub(super) token: DeviceToken,
    /// The sequence number of its line's extras if it has them, else of the
    /// next one pushed (sequence numbers wrap).
    extras_seq: u32,
    /// Its line set something for itself (see [`Queue::own_payload`]).
    has_extras: bool,
    /// Written before, so writing it again is a resend.
    pub(super) written: bool,
}

/// The unsettled notifications of a shard, oldest first.
#[derive(Debug, Default)]
pub(super) struct Queue {
    slots: VecDeque<Slot>,
    /// The slots' lines, as inclusive runs of consecutive numbers.
    lines: VecDeque<(u64, u64)>,
    /// The extras of the slots that have them, in slot order.
    extras: VecDeque<Arc<LineExtras>>,
    /// Extras ever pushed (wrapping): the next one's sequence number.
    extras_pushed: u32,
    /// The first `in_doubt` slots may have been accepted already.
    in_doubt: usize,
}

impl Queue {
    /// An empty queue with room for `capacity` notifications.
    pub(super) fn with_capacity(capacity: usize) -> Queue {
        Queue { slots: VecDeque::with_capacity(capacity), ..Queue::default() }
    }

    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Appends a fresh notification.
    ///
    /// # Panics
    /// If it is in doubt: doubt arises only inside a shard, at its queue's front.
    pub(super) fn push(&mut self, item: Item) {
        assert!(!item.doubt, "a shard takes fresh notifications (Item::new), not ones in doubt");
        match self.lines.back_mut() {
            Some(run) if run.1 + 1 == item.line => run.1 = item.line,
            _ => self.lines.push_back((item.line, item.line)),
        }
        self.slots.push_back(Slot {
            token: item.token,
            extras_seq: self.extras_pushed,
            has_extras: item.extras.is_some(),
            written: item.written,
        });
        if let Some(extras) = item.extras {
            self.extras.push_back(extras);
            self.extras_pushed = self.extras_pushed.wrapping_add(1);
        }
    }

    pub(super) fn get(&self, index: usize) -> Option<&Slot> {
        self.slots.get(index)
    }

    pub(super) fn get_mut(&mut self, index: usize) -> Option<&mut Slot> {
        self.slots.get_mut(index)
    }

    /// The payload of `slot` (a slot of this queue), if it has its own.
    pub(super) fn own_payload(&self, slot: &Slot) -> Option<&[u8]> {
        if !slot.has_extras {
            return None;
        }
        self.extras[self.extras_index(slot.extras_seq)].payload.as_deref()
    }

    /// Where the extras with sequence number `seq` sit in `extras`.
    fn extras_index(&self, seq: u32) -> usize {
        let first = self.extras_pushed.wrapping_sub(self.extras.len() as u32);
        seq.wrapping_sub(first) as usize
    }

    /// Whether the first notification is in doubt.
    pub(super) fn front_in_doubt(&self) -> bool {
        self.in_doubt > 0
    }

    /// The first `n` notifications (at most all) may have been accepted.
    pub(super) fn mark_in_doubt(&mut self, n: usize) {
        self.in_doubt = self.in_doubt.max(n.min(self.slots.len()));
    }

    /// Settles the first `n` notifications in bulk, appending their lines
    /// to `lines` as ranges; returns how many of them were in doubt. They
    /// leave without being read.
    ///
    /// # Panics
    /// If fewer than `n` are queued.
    pub(super) fn settle_front(&mut self, n: usize, lines: &mut Vec<(u64, u64)>) -> usize {
        assert!(n <= self.slots.len(), "settling {n} of {} notifications", self.slots.len());
        let own = match self.slots.get(n) {
            Some(next) => self.extras_index(next.extras_seq),
            None => self.extras.len(),
        };
        self.extras.drain(..own);
        // Slots are `Copy`: draining the front of a ring only moves its head.
        self.slots.drain(..n);
        let mut left = n as u64;
        while left > 0 {
            let run = self.lines.front_mut().expect("a line for every slot");
            let len = run.1 - run.0 + 1;
            if len <= left {
                push_range(lines, *run);
                self.lines.pop_front();
                left -= len;
            } else {
                push_range(lines, (run.0, run.0 + left - 1));
                run.0 += left;
                left = 0;
            }
        }
        let in_doubt = self.in_doubt.min(n);
        self.in_doubt -= in_doubt;
        in_doubt
    }

    /// Takes the first notification out, whole again.
    pub(super) fn pop_front(&mut self) -> Option<Item> {
        let slot = self.slots.pop_front()?;
        let run = self.lines.front_mut().expect("a line for every slot");
        let line = run.0;
        if run.0 == run.1 {
            self.lines.pop_front();
        } else {
            run.0 += 1;
        }
        let extras = slot.has_extras.then(|| self.extras.pop_front().expect("extras for every slot that has them"));
        let doubt = self.in_doubt > 0;
        self.in_doubt = self.in_doubt.saturating_sub(1);
        Some(Item { line, token: slot.token, extras, written: slot.written, doubt })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn item(line: u64, payload: Option<&str>) -> Item {
        let mut token = [0u8; 32];
        token[..8].copy_from_slice(&line.to_be_bytes());
        let extras = payload.map(|p| LineExtras { payload: Some(p.to_owned().into()), ..LineExtras::default() });
        Item::new(line, DeviceToken(token), extras.map(Arc::new))
    }

    #[test]
    fn a_slot_is_40_bytes() {
        assert_eq!(size_of::<Slot>(), 40);
    }

    #[test]
    fn settles_lines_as_ranges_and_keeps_payloads_in_step() {
        let mut q = Queue::with_capacity(8);
        for (line, payload) in [(1, None), (2, Some("a")), (3, None), (7, Some("b")), (8, None), (9, Some("c"))] {
            q.push(item(line, payload));
        }
        assert_eq!(q.own_payload(q.get(1).unwrap()), Some(&b"a"[..]));
        assert_eq!(q.own_payload(q.get(2).unwrap()), None);
        q.mark_in_doubt(2);
        let mut lines = vec![];
        assert_eq!(q.settle_front(4, &mut lines), 2, "in doubt");
        assert_eq!(lines, [(1, 3), (7, 7)]);
        assert_eq!(q.own_payload(q.get(1).unwrap()), Some(&b"c"[..]), "payload a and b left with their slots");
        let front = q.pop_front().unwrap();
        assert_eq!((front.line, front.extras, front.doubt), (8, None, false));
        let last = q.pop_front().unwrap();
        assert_eq!((last.line, last.payload()), (9, Some(&b"c"[..])));
        assert!(q.pop_front().is_none());
        assert_eq!(q.len(), 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push { gap: u64, payload: bool },
        Doubt(usize),
        Settle(usize),
        Pop,
        Write(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..3, any::<bool>()).prop_map(|(gap, payload)| Op::Push { gap, payload }),
            1 => (0usize..6).prop_map(Op::Doubt),
            1 => (0usize..6).prop_map(Op::Settle),
            1 => Just(Op::Pop),
            1 => (0usize..6).prop_map(Op::Write),
        ]
    }

    proptest! {
        /// The queue behaves as a plain queue of whole items would, also
        /// when the payload counter wraps and when lines repeat, go back or
        /// are 0 (`wild`).
        #[test]
        fn agrees_with_a_queue_of_whole_items(
            ops in proptest::collection::vec(op(), 0..300),
            extras_pushed in prop_oneof![Just(0u32), Just(u32::MAX - 2), any::<u32>()],
            wild in any::<bool>(),
        ) {
            let mut q = Queue { extras_pushed, ..Queue::with_capacity(4) };
            let mut model: VecDeque<Item> = VecDeque::new();
            let mut line = 0;
            for op in ops {
                match op {
                    Op::Push { gap, payload } => {
                        line = if wild { gap } else { line + 1 + gap };
                        let p = payload.then(|| format!("p{line}"));
                        q.push(item(line, p.as_deref()));
                        model.push_back(item(line, p.as_deref()));
                    }
                    Op::Doubt(n) => {
                        q.mark_in_doubt(n);
                        model.iter_mut().take(n).for_each(|i| i.doubt = true);
                    }
                    Op::Settle(n) => {
                        let n = n.min(model.len());
                        let (mut got, mut want) = (vec![], vec![]);
                        let in_doubt = q.settle_front(n, &mut got);
                        let mut doubts = 0;
                        for i in model.drain(..n) {
                            crate::journal::push_line(&mut want, i.line);
                            doubts += usize::from(i.doubt);
                        }
                        prop_assert_eq!(got, want);
                        prop_assert_eq!(in_doubt, doubts);
                    }
                    Op::Pop => {
                        let (got, want) = (q.pop_front(), model.pop_front());
                        prop_assert_eq!(got.is_some(), want.is_some());
                        if let (Some(g), Some(w)) = (got, want) {
                            prop_assert_eq!((g.line, g.token, g.extras, g.written, g.doubt), (w.line, w.token, w.extras, w.written, w.doubt));
                        }
                    }
                    Op::Write(i) => {
                        if let Some(s) = q.get_mut(i) {
                            s.written = true;
                            model[i].written = true;
                        }
                    }
                }
                prop_assert_eq!(q.len(), model.len());
                prop_assert_eq!(q.front_in_doubt(), model.front().is_some_and(|i| i.doubt));
                for (i, w) in model.iter().enumerate() {
                    let s = q.get(i).unwrap();
                    prop_assert_eq!(s.token, w.token);
                    prop_assert_eq!(s.written, w.written);
                    prop_assert_eq!(q.own_payload(s), w.payload());
                }
            }
        }
    }
}
