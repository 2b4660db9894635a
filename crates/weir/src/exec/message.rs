//! What travels on the edges between nodes, and how a node with several
//! inputs merges them: batches with their event-time watermark, watermark
//! advances without rows, checkpoint barriers, and the end of an input.
//!
//! Every consumer has one channel that all its producers share; each
//! message names the input slot it came in on (the index of the producer
//! in the consumer's `inputs`). [`Inputs`] turns that interleaving into
//! what the node acts on:
//!
//! - **Watermarks**: a node's watermark is the minimum over its inputs
//!   that have not ended (an input that has sent none yet holds it back:
//!   no watermark at all until every input has one).
//! - **Barrier alignment**: when barrier `n` arrives on one input, later
//!   messages of that input are held back until barrier `n` arrived on
//!   every other open input; then the node sees barrier `n` once — exactly
//!   everything before it on every input, and nothing after.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::plugin::Rows;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::{Receiver, Sender};

/// One message on an edge.
#[derive(Debug, Clone)]
pub(crate) enum Msg {
    /// Rows, with the producer's watermark after them. A plugin's
    /// selection may still be pending on them: each consumer applies it to
    /// the columns it reads.
    Batch(Rows, Option<i64>),
    /// The producer's watermark advanced without rows to carry it.
    Watermark(i64),
    /// Checkpoint barrier `n`: everything before it belongs to checkpoint `n`.
    Barrier(u64),
    /// The producer has sent a complete version of its data, and what it
    /// sends next (if anything) is a new version that replaces it: a
    /// `refresh_ms` table source between two reads.
    Complete,
    /// The producer is done: no more messages on this input.
    End,
    /// The producer stopped on request (Ctrl-C, SIGTERM) before its input
    /// ended: no more messages, but the data is not finished — under
    /// checkpoints a consumer keeps its state for a restart instead of
    /// flushing it as final.
    Stopped,
}

/// A message and the input slot it arrived on.
#[derive(Debug)]
pub(crate) struct Envelope {
    pub slot: usize,
    pub msg: Msg,
}

/// What the metrics read of one edge: messages from this producer still
/// in the consumer's channel, and the time the producer spent blocked on
/// a full channel (backpressure).
#[derive(Debug, Default)]
pub struct EdgeMeter {
    queued: AtomicI64,
    blocked_ns: AtomicU64,
}

impl EdgeMeter {
    /// Messages sent on the edge and not yet taken by the consumer.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed).max(0) as u64
    }

    /// Time the producer waited for room on this edge.
    pub fn blocked(&self) -> Duration {
        Duration::from_nanos(self.blocked_ns.load(Ordering::Relaxed))
    }
}

/// One outgoing edge: a consumer's channel, our slot in it, its meter,
/// and whether the consumer reads whole batches.
#[derive(Clone)]
pub(crate) struct Edge {
    pub tx: Sender<Envelope>,
    pub slot: usize,
    pub meter: Arc<EdgeMeter>,
    /// The consumer is a sink, which reads every column: rows sent on this
    /// edge leave with their pending selection applied — by the sender, on
    /// its own thread, overlapping the sink's write of the batch before
    /// (the sink is most often the pipeline's slowest stage). A plugin
    /// consumer takes the rows as they are and filters what it reads.
    pub whole: bool,
}

/// Sends `msg` on every edge; `false` once no consumer is listening.
pub(crate) fn send(edges: &[Edge], msg: &Msg) -> bool {
    let mut delivered = false;
    for edge in edges {
        let envelope = Envelope {
            slot: edge.slot,
            msg: msg.clone(),
        };
        edge.meter.queued.fetch_add(1, Ordering::Relaxed);
        // The clock runs only when the channel is full: the time measured
        // is backpressure, and an uncontended send costs no clock read.
        let sent = match edge.tx.try_send(envelope) {
            Ok(()) => true,
            Err(TrySendError::Closed(_)) => false,
            Err(TrySendError::Full(envelope)) => {
                let started = Instant::now();
                let sent = edge.tx.blocking_send(envelope).is_ok();
                edge.meter
                    .blocked_ns
                    .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
                sent
            }
        };
        if !sent {
            edge.meter.queued.fetch_sub(1, Ordering::Relaxed);
        }
        delivered |= sent;
    }
    delivered
}

/// What a node acts on, in order.
#[derive(Debug)]
pub(crate) enum Event {
    /// Rows; the node's watermark once they are counted; the input slot
    /// they came in on.
    Batch(Rows, Option<i64>, usize),
    /// The node's watermark advanced without rows.
    Watermark(i64),
    /// Barrier `n` has arrived on every open input.
    Barrier(u64),
    /// Input slot `slot` sent a complete version of its data (`Msg::Complete`).
    Complete(usize),
    /// Input slot `slot` ended (its producer is done; not a stop).
    Ended(usize),
}

struct Slot {
    watermark: Option<i64>,
    ended: bool,
    /// The barrier this input delivered that the node still waits to align.
    blocked_at: Option<u64>,
    held: VecDeque<Msg>,
}

/// A node's merged view of its inputs.
pub(crate) struct Inputs {
    rx: Receiver<Envelope>,
    slots: Vec<Slot>,
    /// Each input edge's meter, by slot.
    meters: Vec<Arc<EdgeMeter>>,
    ready: VecDeque<Event>,
    /// The node's watermark as last reported.
    watermark: Option<i64>,
    /// An input stopped (rather than ended): the node stops too.
    stopped: bool,
}

impl Inputs {
    /// The merged view of `rx`, whose producers send on the edges
    /// `meters` measure (one per input slot).
    pub(crate) fn new(rx: Receiver<Envelope>, meters: Vec<Arc<EdgeMeter>>) -> Inputs {
        Inputs {
            rx,
            slots: (0..meters.len().max(1))
                .map(|_| Slot {
                    watermark: None,
                    ended: false,
                    blocked_at: None,
                    held: VecDeque::new(),
                })
                .collect(),
            meters,
            ready: VecDeque::new(),
            watermark: None,
            stopped: false,
        }
    }

    /// Whether an input stopped on request instead of ending: what the
    /// node holds is not final.
    pub(crate) fn stopped(&self) -> bool {
        self.stopped
    }

    /// The next event, blocking; `None` once every producer is gone.
    pub(crate) fn blocking_next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            match self.rx.blocking_recv() {
                Some(envelope) => self.accept(envelope),
                None => return self.closed(),
            }
        }
    }

    /// The next event; `None` once every producer is gone.
    pub(crate) async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            match self.rx.recv().await {
                Some(envelope) => self.accept(envelope),
                None => return self.closed(),
            }
        }
    }

    /// The next event if one is there without waiting.
    pub(crate) fn try_next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            match self.rx.try_recv() {
                Ok(envelope) => self.accept(envelope),
                Err(_) => return None,
            }
        }
    }

    /// Puts `event` back in front: the next call returns it again.
    pub(crate) fn unread(&mut self, event: Event) {
        self.ready.push_front(event);
    }

    /// Stops accepting messages (the node stopped); producers see a
    /// closed channel.
    pub(crate) fn close(&mut self) {
        self.rx.close();
    }

    /// Every producer dropped its sender (a pause, or a failure): what was
    /// held back for alignment is let through — the checkpoint it waited
    /// for can't complete any more.
    fn closed(&mut self) -> Option<Event> {
        for i in 0..self.slots.len() {
            self.slots[i].blocked_at = None;
            while let Some(msg) = self.slots[i].held.pop_front() {
                self.deliver(i, msg);
            }
        }
        self.ready.pop_front()
    }

    fn accept(&mut self, envelope: Envelope) {
        if let Some(meter) = self.meters.get(envelope.slot) {
            meter.queued.fetch_sub(1, Ordering::Relaxed);
        }
        let slot = envelope.slot.min(self.slots.len() - 1);
        if self.slots[slot].blocked_at.is_some() {
            self.slots[slot].held.push_back(envelope.msg);
        } else {
            self.deliver(slot, envelope.msg);
        }
    }

    fn deliver(&mut self, slot: usize, msg: Msg) {
        match msg {
            Msg::Batch(batch, watermark) => {
                self.advance(slot, watermark);
                self.watermark = self.current();
                self.ready
                    .push_back(Event::Batch(batch, self.watermark, slot));
            }
            Msg::Watermark(w) => {
                self.advance(slot, Some(w));
                self.report_watermark();
            }
            Msg::Barrier(n) => {
                self.slots[slot].blocked_at = Some(n);
                self.align();
            }
            Msg::Complete => self.ready.push_back(Event::Complete(slot)),
            Msg::End | Msg::Stopped => {
                self.stopped |= matches!(msg, Msg::Stopped);
                if matches!(msg, Msg::End) && !self.slots[slot].ended {
                    self.ready.push_back(Event::Ended(slot));
                }
                self.slots[slot].ended = true;
                self.slots[slot].blocked_at = None;
                self.align();
                self.report_watermark();
            }
        }
    }

    fn advance(&mut self, slot: usize, watermark: Option<i64>) {
        if let Some(w) = watermark {
            let s = &mut self.slots[slot];
            s.watermark = Some(s.watermark.map_or(w, |old| old.max(w)));
        }
    }

    /// The minimum watermark over open inputs (`None` while one has none).
    fn current(&self) -> Option<i64> {
        let mut open = self.slots.iter().filter(|s| !s.ended).peekable();
        if open.peek().is_none() {
            return self.slots.iter().filter_map(|s| s.watermark).max();
        }
        open.map(|s| s.watermark)
            .try_fold(i64::MAX, |m, w| Some(m.min(w?)))
    }

    fn report_watermark(&mut self) {
        let now = self.current();
        if now > self.watermark {
            self.watermark = now;
            if let Some(w) = now {
                self.ready.push_back(Event::Watermark(w));
            }
        }
    }

    /// Emits a barrier once every open input delivered it, then lets the
    /// held-back messages through (which may align the next barrier).
    fn align(&mut self) {
        let open = || self.slots.iter().filter(|s| !s.ended);
        let Some(n) = open().find_map(|s| s.blocked_at) else {
            return;
        };
        if !open().all(|s| s.blocked_at == Some(n)) {
            return;
        }
        self.ready.push_back(Event::Barrier(n));
        let mut held = Vec::new();
        for (i, s) in self.slots.iter_mut().enumerate() {
            s.blocked_at = None;
            held.push((i, std::mem::take(&mut s.held)));
        }
        for (i, messages) in held {
            for msg in messages {
                if self.slots[i].blocked_at.is_some() {
                    self.slots[i].held.push_back(msg);
                } else {
                    self.deliver(i, msg);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use std::sync::Arc;

    fn batch(v: i64) -> Rows {
        Rows::from(
            arrow::record_batch::RecordBatch::try_from_iter([(
                "x",
                Arc::new(Int64Array::from(vec![v])) as _,
            )])
            .unwrap(),
        )
    }

    fn events(inputs: &mut Inputs, msgs: Vec<(usize, Msg)>) -> Vec<String> {
        for (slot, msg) in msgs {
            inputs.accept(Envelope { slot, msg });
        }
        let mut out = Vec::new();
        while let Some(e) = inputs.ready.pop_front() {
            out.push(match e {
                Event::Batch(b, w, _) => {
                    let v = b
                        .base()
                        .column(0)
                        .as_any()
                        .downcast_ref::<Int64Array>()
                        .unwrap();
                    format!("b{}@{w:?}", v.value(0))
                }
                Event::Watermark(w) => format!("w{w}"),
                Event::Barrier(n) => format!("|{n}"),
                Event::Ended(slot) => format!("end{slot}"),
                Event::Complete(slot) => format!("complete{slot}"),
            });
        }
        out
    }

    #[test]
    fn barrier_waits_for_every_open_input_and_holds_later_rows_back() {
        let (_tx, rx) = tokio::sync::mpsc::channel(1);
        let mut inputs = Inputs::new(rx, vec![Arc::default(), Arc::default()]);
        let got = events(
            &mut inputs,
            vec![
                (0, Msg::Batch(batch(1), None)),
                (0, Msg::Barrier(7)),
                (0, Msg::Batch(batch(2), None)),
                (1, Msg::Batch(batch(3), None)),
                (1, Msg::Barrier(7)),
            ],
        );
        assert_eq!(got, ["b1@None", "b3@None", "|7", "b2@None"]);
    }

    #[test]
    fn an_ended_input_no_longer_holds_barriers_or_watermarks_back() {
        let (_tx, rx) = tokio::sync::mpsc::channel(1);
        let mut inputs = Inputs::new(rx, vec![Arc::default(), Arc::default()]);
        let got = events(
            &mut inputs,
            vec![
                (0, Msg::Batch(batch(1), Some(10))),
                (1, Msg::Batch(batch(2), Some(5))),
                (0, Msg::Barrier(1)),
                (1, Msg::End),
                (0, Msg::Watermark(20)),
            ],
        );
        assert_eq!(got, ["b1@None", "b2@Some(5)", "end1", "|1", "w10", "w20"]);
    }

    #[test]
    fn each_input_that_ends_is_told_once_but_a_stopped_one_is_not() {
        let (_tx, rx) = tokio::sync::mpsc::channel(1);
        let mut inputs = Inputs::new(rx, vec![Arc::default(), Arc::default()]);
        let got = events(
            &mut inputs,
            vec![
                (1, Msg::Batch(batch(1), None)),
                (1, Msg::End),
                (1, Msg::End),
                (0, Msg::Batch(batch(2), None)),
                (0, Msg::Stopped),
            ],
        );
        assert_eq!(got, ["b1@None", "end1", "b2@None"]);
        assert!(inputs.stopped());
    }

    #[test]
    fn an_edge_meter_counts_what_waits_in_the_channel_and_the_time_blocked_on_it() {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let meter = Arc::new(EdgeMeter::default());
        let edge = Edge {
            tx,
            slot: 0,
            meter: meter.clone(),
            whole: false,
        };
        let mut inputs = Inputs::new(rx, vec![meter.clone()]);
        assert!(send(
            std::slice::from_ref(&edge),
            &Msg::Batch(batch(1), None)
        ));
        assert_eq!(meter.queued(), 1);
        assert_eq!(
            meter.blocked(),
            Duration::ZERO,
            "room in the channel: no wait"
        );
        // The channel is full: the next send waits until the consumer
        // takes the first message, 50 ms from now.
        let consumer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let first = inputs.blocking_next();
            (inputs, first.is_some())
        });
        assert!(send(
            std::slice::from_ref(&edge),
            &Msg::Batch(batch(2), None)
        ));
        let (mut inputs, took_first) = consumer.join().unwrap();
        assert!(took_first);
        assert!(
            meter.blocked() >= Duration::from_millis(40),
            "{:?}",
            meter.blocked()
        );
        assert_eq!(meter.queued(), 1);
        assert!(inputs.blocking_next().is_some());
        assert_eq!(meter.queued(), 0);
    }
}
