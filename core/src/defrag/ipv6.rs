//! IPv6 reassembly (net/ipv6/netfilter/nf_conntrack_reasm.c:
//! `nf_ct_frag6_gather`, `nf_ct_frag6_queue`, `nf_ct_frag6_reasm`).
//!
//! IPv6 drops an inconsistent fragment but keeps the queue. A fragment with MF
//! and a length not a multiple of 8 kills the queue and is then let through
//! unreassembled (the -EPROTO path). A first fragment without its full
//! layer-4 header (`ipv6frag_thdr_truncated`) is let through too. An atomic
//! fragment (offset 0, MF clear) goes through a queue that completes at once,
//! so it comes out with its fragment header removed. The fragment header is
//! removed from the reassembled datagram and the header before it takes over
//! its next-header value.

use std::borrow::Cow;

use super::{
    datagram, duplicate, ecn_clash, ecn_result, end_clash, insert, list, nth, py_slice, span,
    DefragOutcome, Defragmenter, Key, Placed, Queue, MAX_DATAGRAM,
};
use crate::packet::{FragmentInfo, Layer, Packet, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

impl Defragmenter {
    /// `nf_ct_frag6_gather` + `nf_ct_frag6_queue`, in kernel order like the IPv4 path.
    pub(super) fn push_v6(
        &mut self,
        pkt: &Packet<'_>,
        frag: &FragmentInfo,
        now: f64,
        zone: u16,
    ) -> DefragOutcome {
        let data = pkt.data;
        let fhoff = i64::from(frag.unfrag_len);
        if data.get(4..6) == Some(&[0, 0][..]) {
            return DefragOutcome::Pass(Cow::Borrowed("jumbogram: no reassembly"));
        }
        if thdr_truncated(pkt, frag) {
            return DefragOutcome::Pass(Cow::Borrowed(
                "first fragment lacks its full layer-4 header: passed unreassembled (RFC 8200 4.5)",
            ));
        }
        let key = Key {
            family: 6,
            src: pkt.src,
            dst: pkt.dst,
            ident: frag.ident,
            proto: 0,
            zone,
            iface: pkt.iface_in.clone(),
        };
        let Some(mut q) = self.take(&key, pkt, frag.ident, now) else {
            return self.over_limit(6);
        };
        let offset = i64::from(frag.offset);
        let end = offset + data.len() as i64 - fhoff - 8;
        if end > MAX_DATAGRAM {
            self.keep(key, q);
            return dropped(format!(
                "dropped: fragment {} ends beyond 65535",
                span(offset, end)
            ));
        }
        if !frag.more {
            if end < q.length || (q.last_in && end != q.length) {
                let text = format!("dropped: {} (queue kept)", end_clash(end, q.length));
                self.keep(key, q);
                return dropped(text);
            }
            q.last_in = true;
            q.length = end;
        } else {
            if end & 7 != 0 {
                let lost = q.indices();
                self.kill(&mut q);
                let also = if lost.is_empty() {
                    String::new()
                } else {
                    format!("; discarded queued fragments {}", list(&lost))
                };
                return DefragOutcome::Pass(Cow::Owned(format!(
                    "fragment with MF set and length {} not a multiple of 8: passed unreassembled{also}",
                    end - offset
                )));
            }
            if end > q.length {
                if q.last_in {
                    let text = format!(
                        "dropped: fragment {} beyond the last fragment's end {} (queue kept)",
                        span(offset, end),
                        q.length
                    );
                    self.keep(key, q);
                    return dropped(text);
                }
                q.length = end;
            }
        }
        if end == offset {
            self.keep(key, q);
            return dropped(format!(
                "dropped: empty fragment at offset {offset} (queue kept)"
            ));
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
        let payload = py_slice(data, fhoff.saturating_add(8), i64::MAX);
        self.add(&mut q, offset, payload, pkt);
        if q.first_in && q.last_in && q.meat == q.length {
            return self.reassemble_v6(q, pkt);
        }
        let text = format!("queued for reassembly ({})", nth(&q));
        self.keep(key, q);
        DefragOutcome::Queued(Cow::Owned(text))
    }

    fn reassemble_v6(&mut self, mut q: Queue, last: &Packet<'_>) -> DefragOutcome {
        self.kill(&mut q);
        let Some(ecn) = ecn_result(q.ecn) else {
            return ecn_clash(&q);
        };
        let (fhoff, full) = match &q.first {
            Some(first) => (first.unfrag_len, &first.head[..]),
            None => (40, &[][..]),
        };
        let plen = fhoff - 40 + q.length;
        if plen > MAX_DATAGRAM {
            return dropped(format!(
                "dropped: {} payload would be {plen} bytes",
                datagram(&q)
            ));
        }
        let mut header = Vec::with_capacity((fhoff + q.length).max(0) as usize);
        header.extend_from_slice(py_slice(full, 0, fhoff));
        let nexthdr = usize::try_from(fhoff)
            .ok()
            .and_then(|at| full.get(at).copied());
        let at = next_header_at(full, fhoff);
        if let (Some(value), Some(b)) = (nexthdr, header.get_mut(at)) {
            *b = value;
        }
        let plen = (plen.max(0) as u16).to_be_bytes();
        if let Some(b) = header.get_mut(4..6) {
            b.copy_from_slice(&plen);
        }
        if let Some(b) = header.get_mut(1) {
            *b |= ecn << 4;
        }
        Self::complete(&mut q, header, last, None)
    }
}

fn dropped(text: String) -> DefragOutcome {
    DefragOutcome::Dropped(Cow::Owned(text))
}

/// `ipv6frag_thdr_truncated`: a first fragment too short for its layer-4 header.
fn thdr_truncated(pkt: &Packet<'_>, frag: &FragmentInfo) -> bool {
    if frag.offset != 0
        || pkt
            .error
            .as_ref()
            .is_some_and(|e| e.layer == Layer::Ipv6Ext)
    {
        return false;
    }
    let need = match pkt.proto {
        PROTO_TCP => 20,
        PROTO_UDP | PROTO_ICMPV6 => 8,
        _ => 1,
    };
    pkt.l4_off.saturating_add(need) > pkt.data.len()
}

/// Offset of the next-header byte that names the fragment header.
fn next_header_at(data: &[u8], fhoff: i64) -> usize {
    let (mut at, mut pos) = (6usize, 40usize);
    let Some(mut nexthdr) = data.get(6).copied() else {
        return at;
    };
    while (pos as i64) < fhoff {
        at = pos;
        let (Some(&next), Some(&len)) = (data.get(pos), data.get(pos + 1)) else {
            break;
        };
        let hdrlen = if nexthdr == 51 {
            (usize::from(len) + 2) << 2
        } else {
            (usize::from(len) + 1) << 3
        };
        nexthdr = next;
        pos += hdrlen;
    }
    at
}
