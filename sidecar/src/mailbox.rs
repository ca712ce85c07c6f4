//! Where a member's messages go, whatever carries them. Performs no I/O itself.
//!
//! The room table and the session logic send to a [`Mailbox`]: one protocol message (a JSON text
//! message, or an Engine.IO packet) at a time, or a [`Batch`] of them. What a mailbox does with
//! them is the transport's business: a WebSocket connection frames them and sends them without
//! blocking ([`crate::conn::Conn`]); tests record them.
//!
//! [`Deferred`] is the coalescing a reading thread does: messages it forwards to other members
//! wait, per recipient, until it runs out of input, then leave as one batch per recipient (one
//! `send` instead of one per message).

use std::fmt;
use std::sync::Arc;

/// A member's outgoing side. Every method returns at once: a mailbox never blocks its caller on
/// the network, and a mailbox that cannot keep up drops its connection rather than the caller's
/// time.
pub trait Mailbox: Send + Sync + fmt::Debug {
    /// Queues one message.
    fn send(&self, text: &str);

    /// Queues several messages, in order, at once.
    fn send_batch(&self, batch: &Batch);
}

/// Messages for one recipient, in order, in one buffer.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    text: String,
    ends: Vec<usize>,
}

impl Batch {
    /// Appends a message.
    pub fn push(&mut self, msg: &str) {
        self.text.push_str(msg);
        self.ends.push(self.text.len());
    }

    /// The messages, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let s = &self.text[start..end];
            start = end;
            s
        })
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether it holds no message.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of text held.
    pub fn bytes(&self) -> usize {
        self.text.len()
    }
}

/// Messages one thread queued for other members, coalesced per recipient and sent on
/// [`Deferred::flush`]. Order per recipient is kept; the owner flushes before anything it sends
/// directly to another member, so its own messages never overtake its forwarded ones.
#[derive(Debug, Default)]
pub struct Deferred {
    batches: Vec<(Arc<dyn Mailbox>, Batch)>,
    bytes: usize,
}

/// A backlog larger than this goes out at once.
const MAX_DEFERRED: usize = 64 * 1024;

impl Deferred {
    /// Queues `msg` for `to`.
    pub fn push(&mut self, to: &Arc<dyn Mailbox>, msg: &str) {
        match self.batches.iter_mut().find(|(m, _)| same(m, to)) {
            Some((_, b)) => b.push(msg),
            None => {
                let mut b = Batch::default();
                b.push(msg);
                self.batches.push((Arc::clone(to), b));
            }
        }
        self.bytes += msg.len();
        if self.bytes > MAX_DEFERRED {
            self.flush();
        }
    }

    /// Sends every batch.
    pub fn flush(&mut self) {
        for (m, b) in self.batches.drain(..) {
            m.send_batch(&b);
        }
        self.bytes = 0;
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }
}

/// Whether two mailboxes are the same object (the data pointers; vtables may differ between
/// codegen units).
pub fn same(a: &Arc<dyn Mailbox>, b: &Arc<dyn Mailbox>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

/// A mailbox that keeps what it is sent (tests, and the sans-IO scenario harness).
#[derive(Debug, Default)]
pub struct Recorder {
    got: std::sync::Mutex<Vec<String>>,
}

impl Recorder {
    /// A new, empty recorder, ready to be a member's mailbox.
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }

    /// Takes everything received so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.got.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Mailbox for Recorder {
    fn send(&self, text: &str) {
        self.got.lock().unwrap_or_else(|e| e.into_inner()).push(text.to_owned());
    }

    fn send_batch(&self, batch: &Batch) {
        let mut got = self.got.lock().unwrap_or_else(|e| e.into_inner());
        got.extend(batch.iter().map(str::to_owned));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_keeps_its_messages_apart_and_in_order() {
        let mut b = Batch::default();
        for m in ["a", "", "bcd"] {
            b.push(m);
        }
        assert_eq!(b.iter().collect::<Vec<_>>(), ["a", "", "bcd"]);
        assert_eq!((b.len(), b.bytes()), (3, 4));
    }

    #[test]
    fn deferred_coalesces_per_recipient_until_flushed() {
        let (x, y) = (Recorder::new(), Recorder::new());
        let (mx, my): (Arc<dyn Mailbox>, Arc<dyn Mailbox>) = (x.clone(), y.clone());
        let mut d = Deferred::default();
        d.push(&mx, "1");
        d.push(&my, "a");
        d.push(&mx, "2");
        assert!(x.take().is_empty(), "nothing leaves before the flush");
        d.flush();
        assert_eq!(x.take(), ["1", "2"]);
        assert_eq!(y.take(), ["a"]);
        assert!(d.is_empty());
    }
}
