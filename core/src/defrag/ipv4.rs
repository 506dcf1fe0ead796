//! IPv4 reassembly (net/ipv4/ip_fragment.c: `ip_defrag`, `ip_frag_queue`,
//! `ip_frag_reasm`).
//!
//! IPv4 fails fast: an inconsistent end, a zero-length fragment or an overlap
//! kills the queue. A fragment with MF set and a length not a multiple of 8 is
//! silently cut down to a multiple of 8. ipfrag_max_dist counts fragments per
//! source address; if more than that many arrived from the source since this
//! queue's previous fragment, the queue is emptied and restarted
//! (`ip_frag_too_far`, `ip_frag_reinit`). The reassembled header is the first
//! fragment's (TTL, identification, options), with the total length, DF (set
//! only when the largest fragment carried DF) and checksum rewritten.

use std::borrow::Cow;

use super::{
    datagram, duplicate, ecn_clash, ecn_result, end_clash, insert, list, nth, py_slice, span,
    DefragOutcome, Defragmenter, Key, Placed, Queue, MAX_DATAGRAM, QUEUE_SIZE_V4,
};
use crate::packet::{FragmentInfo, Packet};

impl Defragmenter {
    /// `ip_defrag` + `ip_frag_queue`, kept in one piece so the checks read in kernel order.
    pub(super) fn push_v4(
        &mut self,
        pkt: &Packet<'_>,
        frag: &FragmentInfo,
        now: f64,
        zone: u16,
    ) -> DefragOutcome {
        let key = Key {
            family: 4,
            src: pkt.src,
            dst: pkt.dst,
            ident: frag.ident,
            proto: pkt.proto,
            zone,
            iface: None,
        };
        let Some(mut q) = self.take(&key, pkt, frag.ident, now) else {
            return self.over_limit(4);
        };
        let mut restarted = Vec::new();
        if self.too_far(&mut q) {
            restarted = q.indices();
            self.reinit(&mut q, &key, now);
        }
        let data = pkt.data;
        let ihl = i64::from(frag.unfrag_len);
        let offset = i64::from(frag.offset);
        let mut end = offset + data.len() as i64 - ihl;
        if !frag.more {
            if end < q.length || (q.last_in && end != q.length) {
                let why = end_clash(end, q.length);
                return self.discard(q, why);
            }
            q.last_in = true;
            q.length = end;
        } else {
            end &= !7;
            if end > q.length {
                if q.last_in {
                    let why = format!(
                        "fragment {} beyond the last fragment's end {}",
                        span(offset, end),
                        q.length
                    );
                    return self.discard(q, why);
                }
                q.length = end;
            }
        }
        if end == offset {
            return self.discard(q, format!("empty fragment at offset {offset}"));
        }
        match insert(&mut q, offset, end) {
            Placed::Overlap => {
                let why = format!("fragment {} overlaps queued data", span(offset, end));
                return self.discard(q, why);
            }
            Placed::Duplicate => {
                let out = duplicate(&q, offset, end);
                self.keep(key, q);
                return out;
            }
            Placed::New => {}
        }
        let payload = py_slice(data, ihl, ihl + end - offset);
        self.add(&mut q, offset, payload, pkt);
        let fragsize = end - offset + ihl;
        q.max_size = q.max_size.max(fragsize);
        if data.get(6).is_some_and(|b| b & 0x40 != 0) {
            q.max_df_size = q.max_df_size.max(fragsize);
        }
        if q.first_in && q.last_in && q.meat == q.length {
            return self.reassemble_v4(q, pkt);
        }
        let note = if restarted.is_empty() {
            String::new()
        } else {
            format!(
                " after an ipfrag_max_dist restart that discarded {}",
                list(&restarted)
            )
        };
        let text = format!("queued for reassembly{note} ({})", nth(&q));
        self.keep(key, q);
        DefragOutcome::Queued(Cow::Owned(text))
    }

    /// `ip_frag_too_far`: count fragments from this source between two of this queue.
    fn too_far(&mut self, q: &mut Queue) -> bool {
        let limit = self.cfg.ipfrag_max_dist;
        if limit == 0 {
            return false;
        }
        let peer = self.peers.entry(q.src).or_default();
        peer.rid = peer.rid.wrapping_add(1);
        let count = peer.rid;
        let start = std::mem::replace(&mut q.rid, count);
        !q.frags.is_empty() && count.wrapping_sub(start) > limit
    }

    /// Empty the queue and restart its timer (`ip_frag_reinit`).
    fn reinit(&mut self, q: &mut Queue, key: &Key, now: f64) {
        let freed = q.mem.saturating_sub(QUEUE_SIZE_V4);
        q.mem = QUEUE_SIZE_V4;
        self.mem[0] = self.mem[0].saturating_sub(freed);
        self.timers.remove(&q.timer);
        q.timer = self.arm(now + self.cfg.ipfrag_time as f64, key.clone());
        q.length = 0;
        q.meat = 0;
        q.ecn = 0;
        q.tail_end = 0;
        q.first_in = false;
        q.last_in = false;
        q.runs = Vec::new();
        q.frags = Vec::new();
        q.first = None;
        q.max_size = 0;
        q.max_df_size = 0;
    }

    fn reassemble_v4(&mut self, mut q: Queue, last: &Packet<'_>) -> DefragOutcome {
        self.kill(&mut q);
        let Some(ecn) = ecn_result(q.ecn) else {
            return ecn_clash(&q);
        };
        let (ihl, head) = match &q.first {
            Some(first) => (first.unfrag_len, py_slice(&first.head, 0, first.unfrag_len)),
            None => (20, &[][..]),
        };
        let total = ihl + q.length;
        if total > MAX_DATAGRAM {
            return DefragOutcome::Dropped(Cow::Owned(format!(
                "dropped: {} would be {total} bytes (over 65535)",
                datagram(&q)
            )));
        }
        let mut header = Vec::with_capacity(total.max(0) as usize);
        header.extend_from_slice(head);
        if let Some(b) = header.get_mut(1) {
            *b |= ecn;
        }
        let flags: u8 = if q.max_df_size == q.max_size { 0x40 } else { 0 };
        let fields = [
            (2, (total >> 8) as u8),
            (3, total as u8),
            (6, flags),
            (7, 0),
            (10, 0),
            (11, 0),
        ];
        for (at, value) in fields {
            if let Some(b) = header.get_mut(at) {
                *b = value;
            }
        }
        let sum = header_checksum(&header);
        if let Some(b) = header.get_mut(10..12) {
            b.copy_from_slice(&sum.to_be_bytes());
        }
        Self::complete(&mut q, header, last, Some(total))
    }
}

/// The IPv4 header checksum, the header read as big-endian 16-bit words (an
/// odd last byte counts as a word of its own value).
fn header_checksum(header: &[u8]) -> u16 {
    let mut total: u64 = header
        .chunks(2)
        .map(|c| match *c {
            [hi, lo] => u64::from(u16::from_be_bytes([hi, lo])),
            [b] => u64::from(b),
            _ => 0,
        })
        .sum();
    while total >> 16 != 0 {
        total = (total & 0xFFFF) + (total >> 16);
    }
    !(total as u16)
}
