//! Sequence number adjustment after a helper changed a TCP payload's length
//! (nf_conntrack_seqadj.c).
//!
//! A NAT helper that rewrites `PORT 192,0,2,10,...` into a longer or
//! shorter text shifts every later sequence number of that direction. Per
//! direction the entry keeps the offset before and after the position of
//! the latest change; at the confirm step each later packet's seq is moved
//! by its direction's offset and its ack moved back by the other
//! direction's, so both endpoints keep their own numbering. Conntrack
//! itself (the TCP window check) sees packets before the adjustment: the
//! sender's own seq, and an ack in the numbering the receiver's adjusted
//! packets showed, which it maps back (`seq_offset`).

use crate::conntrack::conn::{Conn, IPS_SEQ_ADJUST};
use crate::conntrack::tcp_window::{after, before};
use crate::packet::Packet;

/// One direction's correction (struct nf_ct_seqadj).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqAdjDir {
    pub correction_pos: u32,
    pub offset_before: i32,
    pub offset_after: i32,
}

impl SeqAdjDir {
    /// The offset that applies to sequence number `seq` of this direction.
    pub fn offset(&self, seq: u32) -> i32 {
        if after(seq, self.correction_pos) {
            self.offset_after
        } else {
            self.offset_before
        }
    }
}

/// Both directions' corrections (struct nf_conn_seqadj).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqAdj {
    pub dir: [SeqAdjDir; 2],
}

/// nf_ct_seqadj_set: a payload of `direction` starting at `seq` changed
/// length by `off`. Only one change per window is tracked: a change at or
/// before the last position (a retransmission) keeps the recorded one.
pub fn seqadj_set(conn: &mut Conn, direction: u8, seq: u32, off: i32) {
    if off == 0 {
        return;
    }
    conn.status |= IPS_SEQ_ADJUST;
    let adj = conn.seqadj.get_or_insert_with(Box::default);
    let way = &mut adj.dir[usize::from(direction & 1)];
    if way.offset_before == way.offset_after || before(way.correction_pos, seq) {
        way.correction_pos = seq;
        way.offset_before = way.offset_after;
        way.offset_after = way.offset_after.wrapping_add(off);
    }
}

/// nf_ct_seq_offset: the offset of `direction` at `seq` (0 without any).
pub fn seq_offset(conn: &Conn, direction: u8, seq: u32) -> i32 {
    conn.seqadj
        .as_ref()
        .map_or(0, |adj| adj.dir[usize::from(direction & 1)].offset(seq))
}

/// nf_ct_seq_adjust: a packet's (seq, ack) as it leaves: its own
/// direction's offset added to seq, the other direction's taken from ack
/// (judged on the ack as the other side's unadjusted number).
pub fn adjust(conn: &Conn, direction: u8, seq: u32, ack: u32) -> (u32, u32) {
    let Some(adj) = conn.seqadj.as_ref() else {
        return (seq, ack);
    };
    let this = adj.dir[usize::from(direction & 1)];
    let other = adj.dir[usize::from((direction ^ 1) & 1)];
    let seqoff = this.offset(seq);
    let ackoff = if after(
        ack.wrapping_sub(other.offset_before as u32),
        other.correction_pos,
    ) {
        other.offset_after
    } else {
        other.offset_before
    };
    (
        seq.wrapping_add(seqoff as u32),
        ack.wrapping_sub(ackoff as u32),
    )
}

/// One 32-bit field a SACK adjustment changes: its offset in the datagram,
/// the value before and after.
pub type SackChange = (usize, u32, u32);

const TCPOPT_EOL: u8 = 0;
const TCPOPT_NOP: u8 = 1;
const TCPOPT_SACK: u8 = 5;
const SACK_BLOCK: usize = 8;

/// nf_ct_sack_adjust: the SACK blocks of a segment of `direction` count
/// the other direction's bytes as they arrived (adjusted); each edge is
/// moved back to the numbering of their sender. None when an option is
/// malformed (cut short, or a length below 2): the kernel drops the segment.
pub fn sack_changes(conn: &Conn, direction: u8, pkt: &Packet<'_>) -> Option<Vec<SackChange>> {
    let Some(adj) = conn.seqadj.as_ref() else {
        return Some(Vec::new());
    };
    let other = adj.dir[usize::from((direction ^ 1) & 1)];
    let data = pkt.data;
    let doff = data.get(pkt.l4_off + 12).map_or(5, |b| usize::from(b >> 4));
    let (mut at, end) = (pkt.l4_off + 20, pkt.l4_off + doff * 4);
    let mut changes = Vec::new();
    while at < end {
        match *data.get(at)? {
            TCPOPT_EOL => break,
            TCPOPT_NOP => at += 1,
            kind => {
                let len = usize::from(*data.get(at + 1)?);
                if at + 1 == end || at + len > end || len < 2 {
                    return None;
                }
                if kind == TCPOPT_SACK && len >= 2 + SACK_BLOCK && (len - 2) % SACK_BLOCK == 0 {
                    for edge in (at + 2..at + len).step_by(4) {
                        let bytes = data.get(edge..edge + 4)?;
                        let old = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                        let moved = old.wrapping_sub(other.offset_before as u32);
                        let offset = if after(moved, other.correction_pos) {
                            other.offset_after
                        } else {
                            other.offset_before
                        };
                        let new = old.wrapping_sub(offset as u32);
                        if new != old {
                            changes.push((edge, old, new));
                        }
                    }
                }
                at += len;
            }
        }
    }
    Some(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::conn::Tuple;

    fn conn() -> Conn {
        Conn::new(4, 6, 0, Tuple::default(), Tuple::default(), 0.0)
    }

    #[test]
    fn a_longer_port_command_shifts_later_numbers_both_ways() {
        let mut c = conn();
        seqadj_set(&mut c, 0, 1000, 3);
        assert_ne!(c.status & IPS_SEQ_ADJUST, 0);
        // The rewritten segment itself and anything before keep their numbers.
        assert_eq!(adjust(&c, 0, 1000, 7), (1000, 7));
        assert_eq!(adjust(&c, 0, 1030, 7), (1033, 7));
        // The server acks the longer segment; the client sees its own numbering.
        assert_eq!(adjust(&c, 1, 7, 1033), (7, 1030));
        assert_eq!(adjust(&c, 1, 7, 1000), (7, 1000));
        assert_eq!(seq_offset(&c, 0, 1032), 3);
        assert_eq!(seq_offset(&c, 0, 999), 0);
    }

    #[test]
    fn a_retransmission_keeps_the_recorded_change_and_a_later_one_adds() {
        let mut c = conn();
        seqadj_set(&mut c, 0, 1000, 3);
        seqadj_set(&mut c, 0, 1000, 3);
        assert_eq!(c.seqadj.as_ref().unwrap().dir[0].offset_after, 3);
        seqadj_set(&mut c, 0, 2000, -2);
        let way = c.seqadj.as_ref().unwrap().dir[0];
        assert_eq!(
            (way.correction_pos, way.offset_before, way.offset_after),
            (2000, 3, 1)
        );
        seqadj_set(&mut c, 1, 5, 0);
        assert_eq!(c.seqadj.as_ref().unwrap().dir[1], SeqAdjDir::default());
    }
}
