//! The bytes of a datagram a NAT helper rewrote (mangle_contents and
//! __nf_nat_mangle_tcp_packet / nf_nat_mangle_udp_packet in
//! nf_nat_helper.c, nf_ct_seq_adjust in nf_conntrack_seqadj.c).
//!
//! The translation of addresses and ports comes first (`rewrite`); then
//! the payload edits the helper recorded are applied, the lengths fixed
//! (IPv4 total length with a fresh header checksum, IPv6 payload length,
//! UDP length) and the layer-4 checksum computed afresh over the new
//! segment, as the kernel leaves it once the device has filled it in (a
//! UDP datagram without a checksum keeps none). A segment of a connection
//! whose stream a rewrite resized leaves with its adjusted seq and ack,
//! the checksum updated for the change.

use crate::checksum::{internet_checksum, pseudo_header_sum, replace};
use crate::engine::{Addressing, PacketRecord};
use crate::nat::helper::apply_edits;
use crate::nat::rewrite::rewrite_datagram;
use crate::packet::{Packet, PROTO_TCP, PROTO_UDP};

/// The bytes `pkt` (a whole datagram) leaves with: translated, its payload
/// rewritten and its sequence numbers adjusted as `rec` says. None when it
/// leaves as it came.
pub fn leaving_datagram(pkt: &Packet<'_>, rec: &PacketRecord) -> Option<Vec<u8>> {
    let edited =
        !rec.payload_edits.is_empty() || rec.seq_adjust.is_some() || !rec.sack_adjust.is_empty();
    let leaves = match rec.leaves_as {
        Some(leaves) => leaves,
        None if edited => Addressing::of(pkt),
        None => return None,
    };
    let mut buf = rewrite_datagram(pkt, &leaves, rec.leaves_quoted.as_ref());
    if edited {
        apply_helper_rewrite(&mut buf, pkt, &leaves, rec);
    }
    Some(buf)
}

/// The helper's part on the translated bytes `buf` of `pkt`.
pub fn apply_helper_rewrite(
    buf: &mut Vec<u8>,
    pkt: &Packet<'_>,
    leaves: &Addressing,
    rec: &PacketRecord,
) {
    let (l4, payload_off) = (pkt.l4_off, pkt.payload_off);
    if buf.len() < payload_off || payload_off < l4 {
        return;
    }
    let tcp = pkt.proto == PROTO_TCP && payload_off >= l4 + 20;
    if let (Some(shift), true) = (rec.seq_adjust, tcp) {
        let old = buf[l4 + 4..l4 + 12].to_vec();
        buf[l4 + 4..l4 + 8].copy_from_slice(&shift.seq.1.to_be_bytes());
        buf[l4 + 8..l4 + 12].copy_from_slice(&shift.ack.1.to_be_bytes());
        let check = u16::from_be_bytes([buf[l4 + 16], buf[l4 + 17]]);
        let sum = replace(check, &old, &buf[l4 + 4..l4 + 12]);
        buf[l4 + 16..l4 + 18].copy_from_slice(&sum.to_be_bytes());
    }
    for &(at, old, new) in &rec.sack_adjust {
        if !tcp || buf.len() < at + 4 {
            continue;
        }
        buf[at..at + 4].copy_from_slice(&new.to_be_bytes());
        let check = u16::from_be_bytes([buf[l4 + 16], buf[l4 + 17]]);
        let sum = replace(check, &old.to_be_bytes(), &new.to_be_bytes());
        buf[l4 + 16..l4 + 18].copy_from_slice(&sum.to_be_bytes());
    }
    if rec.payload_edits.is_empty() {
        return;
    }
    let payload = apply_edits(&buf[payload_off..], &rec.payload_edits);
    buf.truncate(payload_off);
    buf.extend_from_slice(&payload);
    set_lengths(buf, pkt);
    let check_at = match pkt.proto {
        PROTO_TCP if tcp => l4 + 16,
        PROTO_UDP if payload_off >= l4 + 8 => {
            let len = (buf.len() - l4) as u16;
            buf[l4 + 4..l4 + 6].copy_from_slice(&len.to_be_bytes());
            // No checksum on arrival: none on departure either.
            if buf[l4 + 6..l4 + 8] == [0, 0] {
                return;
            }
            l4 + 6
        }
        _ => return,
    };
    buf[check_at..check_at + 2].fill(0);
    let length = (buf.len() - l4) as u32;
    let initial = pseudo_header_sum(pkt.family, leaves.src, leaves.dst, pkt.proto, length);
    let mut sum = internet_checksum(&buf[l4..], initial);
    if pkt.proto == PROTO_UDP && sum == 0 {
        sum = 0xFFFF;
    }
    buf[check_at..check_at + 2].copy_from_slice(&sum.to_be_bytes());
}

/// The IP header's length fields for the new size (and IPv4's checksum,
/// computed afresh as ip_send_check does).
fn set_lengths(buf: &mut [u8], pkt: &Packet<'_>) {
    if pkt.family == 4 {
        let ihl = usize::from(buf[0] & 0x0F) * 4;
        if buf.len() < ihl || ihl < 20 {
            return;
        }
        let total = buf.len() as u16;
        buf[2..4].copy_from_slice(&total.to_be_bytes());
        buf[10..12].fill(0);
        let sum = internet_checksum(&buf[..ihl], 0);
        buf[10..12].copy_from_slice(&sum.to_be_bytes());
    } else if buf.len() >= 40 {
        let payload = (buf.len() - 40) as u16;
        buf[4..6].copy_from_slice(&payload.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::{ipv4_header_ok, l4_checksum_ok};
    use crate::decode::decode_datagram;
    use crate::engine::SeqShift;
    use crate::nat::helper::PayloadEdit;
    use crate::rules::testpkt::tcp4;

    const C: [u8; 4] = [192, 0, 2, 10];
    const S: [u8; 4] = [198, 51, 100, 20];

    /// A PSH/ACK from C to S carrying `payload`, every checksum right.
    fn segment(payload: &[u8]) -> Vec<u8> {
        let mut data = tcp4(C, S, 40000, 21, 0x18, &[]);
        data.extend_from_slice(payload);
        let total = data.len() as u16;
        data[2..4].copy_from_slice(&total.to_be_bytes());
        data[10..12].fill(0);
        let sum = internet_checksum(&data[..20], 0);
        data[10..12].copy_from_slice(&sum.to_be_bytes());
        data[36..38].fill(0);
        let (src, dst) = (
            u128::from(u32::from_be_bytes(C)),
            u128::from(u32::from_be_bytes(S)),
        );
        let pseudo = pseudo_header_sum(4, src, dst, PROTO_TCP, (data.len() - 20) as u32);
        let sum = internet_checksum(&data[20..], pseudo);
        data[36..38].copy_from_slice(&sum.to_be_bytes());
        data
    }

    fn verifies(data: &[u8]) -> bool {
        let pkt = decode_datagram(data, 0, 0.0, false);
        ipv4_header_ok(&data[..20])
            && l4_checksum_ok(4, pkt.src, pkt.dst, PROTO_TCP, &data[20..])
            && usize::from(u16::from_be_bytes([data[2], data[3]])) == data.len()
    }

    #[test]
    fn a_rewritten_port_command_leaves_longer_with_right_lengths_and_checksums() {
        let data = segment(b"PORT 192,0,2,10,156,64\r\n");
        let pkt = decode_datagram(&data, 0, 0.0, false);
        let rec = PacketRecord {
            leaves_as: Some(Addressing {
                src: 0xCB00_7101,
                ..Addressing::of(&pkt)
            }),
            payload_edits: vec![PayloadEdit {
                offset: 5,
                removed: 17,
                inserted: b"203,0,113,1,156,64".to_vec(),
            }],
            ..PacketRecord::default()
        };
        let out = leaving_datagram(&pkt, &rec).unwrap();
        assert_eq!(&out[40..], b"PORT 203,0,113,1,156,64\r\n");
        assert_eq!(&out[12..16], &[203, 0, 113, 1]);
        assert!(verifies(&out));
    }

    #[test]
    fn an_adjusted_segment_keeps_a_right_checksum() {
        let data = segment(b"QUIT\r\n");
        let pkt = decode_datagram(&data, 0, 0.0, false);
        let rec = PacketRecord {
            seq_adjust: Some(SeqShift {
                seq: (1000, 1001),
                ack: (0, 0xFFFF_FFFF),
            }),
            ..PacketRecord::default()
        };
        let out = leaving_datagram(&pkt, &rec).unwrap();
        assert_eq!(&out[24..32], &[0, 0, 0x03, 0xE9, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(verifies(&out));
        // Nothing to change: it leaves as it came.
        assert_eq!(leaving_datagram(&pkt, &PacketRecord::default()), None);
    }
}
