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

use arrow::record_batch::RecordBatch;
use tokio::sync::mpsc::{Receiver, Sender};

/// One message on an edge.
#[derive(Debug, Clone)]
pub(crate) enum Msg {
    /// Rows, with the producer's watermark after them.
    Batch(RecordBatch, Option<i64>),
    /// The producer's watermark advanced without rows to carry it.
    Watermark(i64),
    /// Checkpoint barrier `n`: everything before it belongs to checkpoint `n`.
    Barrier(u64),
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

/// One outgoing edge: a consumer's channel and our slot in it.
#[derive(Clone)]
pub(crate) struct Edge {
    pub tx: Sender<Envelope>,
    pub slot: usize,
}

/// Sends `msg` on every edge; `false` once no consumer is listening.
pub(crate) fn send(edges: &[Edge], msg: &Msg) -> bool {
    let mut delivered = false;
    for edge in edges {
        delivered |= edge
            .tx
            .blocking_send(Envelope {
                slot: edge.slot,
                msg: msg.clone(),
            })
            .is_ok();
    }
    delivered
}

/// What a node acts on, in order.
#[derive(Debug)]
pub(crate) enum Event {
    /// Rows; the node's watermark once they are counted.
    Batch(RecordBatch, Option<i64>),
    /// The node's watermark advanced without rows.
    Watermark(i64),
    /// Barrier `n` has arrived on every open input.
    Barrier(u64),
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
    ready: VecDeque<Event>,
    /// The node's watermark as last reported.
    watermark: Option<i64>,
    /// An input stopped (rather than ended): the node stops too.
    stopped: bool,
}

impl Inputs {
    pub(crate) fn new(rx: Receiver<Envelope>, slots: usize) -> Inputs {
        Inputs {
            rx,
            slots: (0..slots.max(1))
                .map(|_| Slot {
                    watermark: None,
                    ended: false,
                    blocked_at: None,
                    held: VecDeque::new(),
                })
                .collect(),
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
                self.ready.push_back(Event::Batch(batch, self.watermark));
            }
            Msg::Watermark(w) => {
                self.advance(slot, Some(w));
                self.report_watermark();
            }
            Msg::Barrier(n) => {
                self.slots[slot].blocked_at = Some(n);
                self.align();
            }
            Msg::End | Msg::Stopped => {
                self.stopped |= matches!(msg, Msg::Stopped);
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

    fn batch(v: i64) -> RecordBatch {
        RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from(vec![v])) as _)]).unwrap()
    }

    fn events(inputs: &mut Inputs, msgs: Vec<(usize, Msg)>) -> Vec<String> {
        for (slot, msg) in msgs {
            inputs.accept(Envelope { slot, msg });
        }
        let mut out = Vec::new();
        while let Some(e) = inputs.ready.pop_front() {
            out.push(match e {
                Event::Batch(b, w) => {
                    let v = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                    format!("b{}@{w:?}", v.value(0))
                }
                Event::Watermark(w) => format!("w{w}"),
                Event::Barrier(n) => format!("|{n}"),
            });
        }
        out
    }

    #[test]
    fn barrier_waits_for_every_open_input_and_holds_later_rows_back() {
        let (_tx, rx) = tokio::sync::mpsc::channel(1);
        let mut inputs = Inputs::new(rx, 2);
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
        let mut inputs = Inputs::new(rx, 2);
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
        assert_eq!(got, ["b1@None", "b2@Some(5)", "|1", "w10", "w20"]);
    }
}
