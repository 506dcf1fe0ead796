//! Loading a key into a register buffer (nft_payload.c, nft_meta.c,
//! nft_ct.c, nft_fib.c): big-endian bytes of the key's width, written into a
//! fixed buffer so evaluation allocates nothing.

use crate::conntrack::conn::{direction_of, Conn, Tuple, CT_INVALID, CT_UNTRACKED, IPS_CONFIRMED};
use crate::nat::manip::{has_ports, is_icmp_query};
use crate::packet::Packet;
use crate::rules::context::{Effects, RuleCtx};
use crate::rules::matches::{addrtype, rpfilter};
use crate::rules::matches::{no_l4, pkttype};
use crate::rules::nft::{Base, Bitwise, CtDir, CtKey, Expr, Key, MetaKey, REG_BYTES};
use crate::rules::state::RuleState;

/// What loading a key gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loaded {
    /// The key's bytes fill the first `n` bytes of the buffer.
    Len(usize),
    /// The key has no value for this packet (NFT_BREAK: the rule stops).
    Break,
    /// The capture does not tell the value.
    Unknown(&'static str),
}

/// A register buffer.
pub type Regs = [u8; REG_BYTES];

const IFNAMSIZ: usize = 16;

/// The nft state bits (NF_CT_STATE_BIT and friends).
pub const CT_STATE_INVALID: u32 = 1;
pub const CT_STATE_UNTRACKED: u32 = 64;

pub fn ct_state_bits(ctinfo: u8) -> u32 {
    match ctinfo {
        CT_INVALID => CT_STATE_INVALID,
        CT_UNTRACKED => CT_STATE_UNTRACKED,
        // established, related, new, in either direction: 1 << (ctinfo % 3 + 1)
        i => 1 << (u32::from(i % 3) + 1),
    }
}

fn put(out: &mut [u8], bytes: &[u8]) -> Loaded {
    match out.get_mut(..bytes.len()) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            Loaded::Len(bytes.len())
        }
        None => Loaded::Break,
    }
}

fn put_name(out: &mut [u8], name: &str) -> Loaded {
    let Some(dst) = out.get_mut(..IFNAMSIZ) else {
        return Loaded::Break;
    };
    dst.fill(0);
    let n = name.len().min(IFNAMSIZ - 1);
    dst[..n].copy_from_slice(&name.as_bytes()[..n]);
    Loaded::Len(IFNAMSIZ)
}

fn put_addr(out: &mut [u8], family: u8, addr: u128) -> Loaded {
    if family == 4 {
        put(out, &(addr as u32).to_be_bytes())
    } else {
        put(out, &addr.to_be_bytes())
    }
}

fn nfproto(family: u8) -> u8 {
    if family == 4 {
        2
    } else {
        10
    }
}

fn payload(ctx: &RuleCtx<'_>, base: Base, offset: u32, len: u32, out: &mut [u8]) -> Loaded {
    let pkt = ctx.pkt;
    let start = match base {
        Base::Ll => return Loaded::Unknown("nft: link-layer payload is not evaluated"),
        Base::Nh if pkt.family == 0 => return Loaded::Break,
        Base::Nh => 0,
        // The kernel has no transport header for a later fragment.
        Base::Th if no_l4(pkt) || pkt.l4_off == 0 => return Loaded::Break,
        Base::Th => pkt.l4_off,
        Base::Ih if no_l4(pkt) || pkt.payload_off == 0 => return Loaded::Break,
        Base::Ih => pkt.payload_off,
    };
    let from = start + offset as usize;
    let Some(bytes) = pkt.data.get(from..from + len as usize) else {
        return Loaded::Break;
    };
    let loaded = put(out, bytes);
    if let Loaded::Len(n) = loaded {
        translated_fields(pkt, base, offset as usize, &mut out[..n]);
    }
    loaded
}

/// Over `out` (the bytes at `offset` from `base`, as captured): the
/// addresses, ports and ICMP query identifier as the packet has them now.
/// NAT rewrites those fields on the way (the captured bytes stay as they
/// were), and a later chain reads what the kernel's rewritten skb holds:
/// a forward chain sees a DNATed packet's new destination. (Checksums are
/// not recomputed: no rule here reads them after a translation.)
fn translated_fields(pkt: &Packet<'_>, base: Base, offset: usize, out: &mut [u8]) {
    let mut field = |at: usize, value: &[u8]| {
        let start = at.max(offset);
        let end = (at + value.len()).min(offset + out.len());
        if start < end {
            out[start - offset..end - offset].copy_from_slice(&value[start - at..end - at]);
        }
    };
    match base {
        Base::Nh if pkt.family == 4 => {
            field(12, &(pkt.src as u32).to_be_bytes());
            field(16, &(pkt.dst as u32).to_be_bytes());
        }
        Base::Nh => {
            field(8, &pkt.src.to_be_bytes());
            field(24, &pkt.dst.to_be_bytes());
        }
        Base::Th if has_ports(pkt.proto) => {
            field(0, &pkt.sport.to_be_bytes());
            field(2, &pkt.dport.to_be_bytes());
        }
        Base::Th if is_icmp_query(pkt) => field(4, &pkt.icmp_id.to_be_bytes()),
        _ => {}
    }
}

fn meta(ctx: &RuleCtx<'_>, fx: &Effects, key: MetaKey, out: &mut [u8]) -> Loaded {
    let pkt = ctx.pkt;
    match key {
        MetaKey::Mark => put(out, &fx.mark.to_be_bytes()),
        MetaKey::Iifname => put_name(out, ctx.iface_in.unwrap_or("")),
        MetaKey::Oifname => put_name(out, ctx.iface_out.unwrap_or("")),
        // Names stand for indexes (the lowering writes the name); a missing
        // device stops the rule.
        MetaKey::Iif => ctx.iface_in.map_or(Loaded::Break, |n| put_name(out, n)),
        MetaKey::Oif => ctx.iface_out.map_or(Loaded::Break, |n| put_name(out, n)),
        MetaKey::Iiftype | MetaKey::Oiftype => {
            let dev = if key == MetaKey::Iiftype {
                ctx.iface_in
            } else {
                ctx.iface_out
            };
            match dev {
                None => Loaded::Break,
                Some("lo") => put(out, &772u16.to_be_bytes()),
                Some(_) => Loaded::Unknown(
                    "meta iiftype/oiftype: the capture does not say an interface's type",
                ),
            }
        }
        MetaKey::L4proto => put(out, &[pkt.proto]),
        MetaKey::Nfproto => put(out, &[nfproto(pkt.family)]),
        MetaKey::Protocol => {
            let ethertype: u16 = if pkt.family == 4 { 0x0800 } else { 0x86dd };
            put(out, &ethertype.to_be_bytes())
        }
        MetaKey::Pkttype => {
            let class = match pkttype::packet_class(ctx) {
                "host" => 0,
                "broadcast" => 1,
                "multicast" => 2,
                "otherhost" => 3,
                "outgoing" => 4,
                "loopback" => 5,
                _ => return Loaded::Unknown("meta pkttype: an unnamed packet type"),
            };
            put(out, &[class])
        }
        MetaKey::Length => put(out, &pkt.ip_len.to_be_bytes()),
        MetaKey::Skuid | MetaKey::Skgid => {
            if ctx.local_out {
                Loaded::Unknown(
                    "meta skuid/skgid: the capture does not say which local socket sent this packet",
                )
            } else {
                // A forwarded or received packet has no socket.
                Loaded::Break
            }
        }
        MetaKey::Random => unreachable!("meta random is drawn in key()"),
        MetaKey::Time => put(out, &((ctx.now.max(0.0) * 1e9) as u64).to_be_bytes()),
        MetaKey::Day | MetaKey::Hour => {
            let secs = ctx.now.max(0.0) as u64;
            if key == MetaKey::Day {
                // 1970-01-01 was a Thursday (4); 0 is Sunday.
                put(out, &[((secs / 86_400 + 4) % 7) as u8])
            } else {
                put(out, &((secs % 86_400) as u32).to_be_bytes())
            }
        }
    }
}

fn ct_tuple(conn: &Conn, dir: CtDir) -> &Tuple {
    if dir == CtDir::Reply {
        &conn.reply
    } else {
        &conn.orig
    }
}

fn ct(ctx: &RuleCtx<'_>, fx: &Effects, key: CtKey, dir: CtDir, out: &mut [u8]) -> Loaded {
    if key == CtKey::State {
        return put(out, &ct_state_bits(ctx.ctinfo).to_be_bytes());
    }
    let Some(conn) = ctx.conn else {
        return Loaded::Break;
    };
    match key {
        CtKey::State => Loaded::Break,
        CtKey::Direction => put(out, &[direction_of(ctx.ctinfo)]),
        CtKey::Status => put(out, &conn.status.to_be_bytes()),
        CtKey::Mark => put(out, &fx.connmark.unwrap_or(conn.mark).to_be_bytes()),
        CtKey::Zone => put(out, &conn.zone.to_be_bytes()),
        CtKey::Helper => match conn.helper {
            Some(h) => put_name(out, h.name()),
            None => Loaded::Break,
        },
        CtKey::Expiration => {
            let ms = if conn.status & IPS_CONFIRMED != 0 {
                ((conn.expires - ctx.now).max(0.0) * 1000.0) as u32
            } else {
                0
            };
            put(out, &ms.to_be_bytes())
        }
        CtKey::L3proto => put(out, &[nfproto(conn.family)]),
        CtKey::Protocol => put(out, &[conn.proto]),
        CtKey::Saddr => put_addr(out, conn.family, ct_tuple(conn, dir).src),
        CtKey::Daddr => put_addr(out, conn.family, ct_tuple(conn, dir).dst),
        CtKey::ProtoSrc => put(out, &ct_tuple(conn, dir).sport.to_be_bytes()),
        CtKey::ProtoDst => put(out, &ct_tuple(conn, dir).dport.to_be_bytes()),
        CtKey::Bytes | CtKey::Packets | CtKey::Avgpkt => {
            // Without accounting the kernel reads zeros.
            let c = ctx.conn_counters.unwrap_or([0; 4]);
            let (p, b) = match dir {
                CtDir::Original => (c[0], c[1]),
                CtDir::Reply => (c[2], c[3]),
                CtDir::Both => (c[0] + c[2], c[1] + c[3]),
            };
            let v = match key {
                CtKey::Bytes => b,
                CtKey::Packets => p,
                _ => b.checked_div(p).unwrap_or(0),
            };
            put(out, &v.to_be_bytes())
        }
    }
}

/// RTN_* of the address type answer (fib ... type).
fn rtn(mask: u16) -> u32 {
    match mask {
        addrtype::UNSPEC => 0,
        addrtype::UNICAST => 1,
        addrtype::LOCAL => 2,
        addrtype::BROADCAST => 3,
        addrtype::MULTICAST => 5,
        _ => 0,
    }
}

fn fib(
    ctx: &RuleCtx<'_>,
    topo: &addrtype::Topology,
    (result, addr, iif, oif): (&str, &str, bool, bool),
    out: &mut [u8],
) -> Loaded {
    let pkt = ctx.pkt;
    let address = if addr == "saddr" { pkt.src } else { pkt.dst };
    match result {
        "type" => {
            let dev = if iif {
                ctx.iface_in
            } else if oif {
                ctx.iface_out
            } else {
                None
            };
            let t = addrtype::address_type(topo, pkt.family, address, dev);
            put(out, &rtn(t).to_be_bytes())
        }
        "oif" | "oifname" if addr == "saddr" && iif => {
            // The input interface when the route back leaves through it, else none.
            match ctx.iface_in {
                Some(name) if rpfilter::back_through_iif(ctx, topo) => put_name(out, name),
                _ => put(out, &[0; IFNAMSIZ]),
            }
        }
        _ => Loaded::Unknown(
            "fib oif/oifname: only saddr . iif is answered (statewall has no routing table)",
        ),
    }
}

/// Whether the IPv6 header chain holds extension header `want` (as
/// ipv6_find_hdr looks: through hop-by-hop, routing, fragment, AH and
/// destination options headers; not past a non-first fragment).
fn has_exthdr(data: &[u8], want: u8) -> bool {
    let (mut next, mut at) = (data.get(6).copied(), 40usize);
    while let Some(nh) = next {
        if nh == want {
            return true;
        }
        let (Some(&following), Some(&len)) = (data.get(at), data.get(at + 1)) else {
            return false;
        };
        let size = match nh {
            0 | 43 | 60 => (usize::from(len) + 1) * 8,
            51 => (usize::from(len) + 2) * 4,
            44 => {
                let off = data
                    .get(at + 2..at + 4)
                    .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]) & !7);
                if off != 0 {
                    return false;
                }
                8
            }
            _ => return false,
        };
        next = Some(following);
        at += size;
    }
    false
}

/// numgen (nft_numgen.c): a counter per rule, or a draw scaled to the modulus.
fn numgen(state: &mut RuleState, (random, modulus, offset, slot): (bool, u32, u32, usize)) -> u32 {
    let modulus = modulus.max(1);
    let n = if random {
        ((u64::from(state.rng.next_u32()) * u64::from(modulus)) >> 32) as u32
    } else {
        match state.nft.numgen.get_mut(slot) {
            Some(c) => {
                let v = *c % modulus;
                *c = c.wrapping_add(1);
                v
            }
            None => 0,
        }
    };
    n.wrapping_add(offset)
}

fn key(ctx: &RuleCtx<'_>, fx: &Effects, state: &mut RuleState, k: &Key, out: &mut [u8]) -> Loaded {
    match k {
        Key::Payload { base, offset, len } => payload(ctx, *base, *offset, *len, out),
        // meta random: a fresh draw from the ruleset's seeded generator (as
        // numgen random and -m statistic), so a run repeats with its seed.
        Key::Meta {
            key: MetaKey::Random,
        } => put(out, &state.rng.next_u32().to_be_bytes()),
        Key::Meta { key } => meta(ctx, fx, *key, out),
        Key::Ct { key, dir } => ct(ctx, fx, *key, *dir, out),
        Key::Fib {
            result,
            addr,
            iif,
            oif,
        } => fib(ctx, &state.topology, (result, addr, *iif, *oif), out),
        Key::Exthdr { hdr } => {
            if ctx.pkt.family != 6 {
                return Loaded::Break;
            }
            put(out, &[u8::from(has_exthdr(ctx.pkt.data, *hdr))])
        }
        Key::Numgen {
            random,
            modulus,
            offset,
            slot,
        } => put(
            out,
            &numgen(state, (*random, *modulus, *offset, *slot)).to_be_bytes(),
        ),
        Key::Concat { parts } => {
            let mut at = 0;
            for part in parts {
                let Some(rest) = out.get_mut(at..) else {
                    return Loaded::Break;
                };
                match load_into(ctx, fx, state, part, rest) {
                    Loaded::Len(n) => {
                        let padded = n.div_ceil(4) * 4;
                        if let Some(pad) = out.get_mut(at + n..at + padded) {
                            pad.fill(0);
                        }
                        at += padded;
                    }
                    other => return other,
                }
            }
            Loaded::Len(at)
        }
    }
}

fn load_into(
    ctx: &RuleCtx<'_>,
    fx: &Effects,
    state: &mut RuleState,
    e: &Expr,
    out: &mut [u8],
) -> Loaded {
    let got = key(ctx, fx, state, &e.key, out);
    if let Loaded::Len(n) = got {
        let value = &mut out[..n];
        for step in &e.steps {
            match step {
                Bitwise::MaskXor { mask, xor } => mask_xor(value, mask, xor),
                Bitwise::Shift { bits } => shift(value, *bits),
            }
        }
        if let Some(mask) = &e.mask {
            mask_xor(value, mask, e.xor.as_deref().unwrap_or(&[]));
        }
    }
    got
}

fn mask_xor(value: &mut [u8], mask: &[u8], xor: &[u8]) {
    for (i, b) in value.iter_mut().enumerate() {
        *b = (*b & mask.get(i).copied().unwrap_or(0xff)) ^ xor.get(i).copied().unwrap_or(0);
    }
}

/// `value` (big-endian, at most 16 bytes: the lowering refuses wider) shifted
/// as one number, the kernel's lshift/rshift on a value nft has put in host
/// order.
fn shift(value: &mut [u8], bits: i32) {
    let n = value.len().min(16);
    let mut wide = [0u8; 16];
    wide[16 - n..].copy_from_slice(&value[..n]);
    let number = u128::from_be_bytes(wide);
    let count = bits.unsigned_abs();
    let moved = if bits >= 0 {
        number.checked_shl(count).unwrap_or(0)
    } else {
        number.checked_shr(count).unwrap_or(0)
    };
    value[..n].copy_from_slice(&moved.to_be_bytes()[16 - n..]);
}

/// Loads `e` into `regs`; the value is `regs[..n]` for `Loaded::Len(n)`.
pub fn load(
    ctx: &RuleCtx<'_>,
    fx: &Effects,
    state: &mut RuleState,
    e: &Expr,
    regs: &mut Regs,
) -> Loaded {
    load_into(ctx, fx, state, e, regs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testpkt;

    fn expr(k: Key) -> Expr {
        Expr {
            key: k,
            steps: Vec::new(),
            mask: None,
            xor: None,
        }
    }

    #[test]
    fn payload_meta_and_concat() {
        let data = testpkt::udp4([192, 0, 2, 1], [198, 51, 100, 2], 5, 53);
        let pkt = testpkt::decode(&data);
        let ctx = testpkt::ctx(&pkt);
        let fx = Effects {
            mark: 0x11,
            ..Effects::default()
        };
        let mut ruleset: crate::rules::model::Ruleset =
            serde_json::from_str(r#"{"family": 4, "tables": []}"#).unwrap();
        let topo = &mut RuleState::for_ruleset(&mut ruleset).unwrap();
        let mut regs = [0u8; REG_BYTES];
        let saddr = Key::Payload {
            base: Base::Nh,
            offset: 12,
            len: 4,
        };
        assert_eq!(
            load(&ctx, &fx, topo, &expr(saddr.clone()), &mut regs),
            Loaded::Len(4)
        );
        assert_eq!(&regs[..4], &[192, 0, 2, 1]);
        let dport = Key::Payload {
            base: Base::Th,
            offset: 2,
            len: 2,
        };
        let concat = Key::Concat {
            parts: vec![
                expr(dport),
                expr(Key::Meta { key: MetaKey::Mark }),
                expr(saddr),
            ],
        };
        assert_eq!(
            load(&ctx, &fx, topo, &expr(concat), &mut regs),
            Loaded::Len(12)
        );
        assert_eq!(&regs[..12], &[0, 53, 0, 0, 0, 0, 0, 0x11, 192, 0, 2, 1]);
        let beyond = Key::Payload {
            base: Base::Th,
            offset: 400,
            len: 2,
        };
        assert_eq!(
            load(&ctx, &fx, topo, &expr(beyond), &mut regs),
            Loaded::Break
        );
    }

    #[test]
    fn bitwise_steps_then_the_last_mask_and_xor() {
        let data = testpkt::udp4([192, 0, 2, 1], [198, 51, 100, 2], 5, 53);
        let pkt = testpkt::decode(&data);
        let ctx = testpkt::ctx(&pkt);
        let fx = Effects {
            mark: 0x8000_00a5,
            ..Effects::default()
        };
        let mut ruleset: crate::rules::model::Ruleset =
            serde_json::from_str(r#"{"family": 4, "tables": []}"#).unwrap();
        let state = &mut RuleState::for_ruleset(&mut ruleset).unwrap();
        let mut regs = [0u8; REG_BYTES];
        // (meta mark | 0x10) << 8, then & 0xffff00 ^ 0x1: the high bit is shifted out.
        let e = Expr {
            key: Key::Meta { key: MetaKey::Mark },
            steps: vec![
                Bitwise::MaskXor {
                    mask: vec![0xff, 0xff, 0xff, 0xef].into(),
                    xor: vec![0, 0, 0, 0x10].into(),
                },
                Bitwise::Shift { bits: 8 },
            ],
            mask: Some(vec![0, 0xff, 0xff, 0].into()),
            xor: Some(vec![0, 0, 0, 1].into()),
        };
        assert_eq!(load(&ctx, &fx, state, &e, &mut regs), Loaded::Len(4));
        assert_eq!(&regs[..4], &[0, 0, 0xb5, 1]);
        let right = Expr {
            steps: vec![Bitwise::Shift { bits: -4 }],
            mask: None,
            xor: None,
            ..e
        };
        assert_eq!(load(&ctx, &fx, state, &right, &mut regs), Loaded::Len(4));
        assert_eq!(&regs[..4], &[0x08, 0, 0, 0x0a]);
        let mut wide = [0xffu8; 4];
        shift(&mut wide, 40);
        assert_eq!(wide, [0; 4]);
    }

    #[test]
    fn payload_reads_the_addresses_and_ports_nat_wrote() {
        // DNAT in prerouting: the forward chain's `ip daddr . tcp dport`
        // sees the new destination, as the kernel's rewritten skb holds it.
        let data = testpkt::udp4([198, 51, 100, 30], [203, 0, 113, 1], 43000, 8080);
        let mut pkt = testpkt::decode(&data);
        pkt.dst = u128::from(u32::from_be_bytes([192, 168, 0, 2]));
        pkt.dport = 80;
        let ctx = testpkt::ctx(&pkt);
        let mut ruleset: crate::rules::model::Ruleset =
            serde_json::from_str(r#"{"family": 4, "tables": []}"#).unwrap();
        let state = &mut RuleState::for_ruleset(&mut ruleset).unwrap();
        let mut regs = [0u8; REG_BYTES];
        let mut read = |base, offset, len| {
            let key = Key::Payload { base, offset, len };
            let n = match load(&ctx, &Effects::default(), state, &expr(key), &mut regs) {
                Loaded::Len(n) => n,
                other => panic!("{other:?}"),
            };
            regs[..n].to_vec()
        };
        assert_eq!(read(Base::Nh, 16, 4), [192, 168, 0, 2]);
        // A load across both addresses: the old source's end, the new destination's start.
        assert_eq!(read(Base::Nh, 14, 4), [100, 30, 192, 168]);
        assert_eq!(read(Base::Th, 0, 4), [0xA7, 0xF8, 0, 80]);
        assert_eq!(read(Base::Th, 3, 1), [80]);
    }

    #[test]
    fn extension_headers_are_found_along_the_chain() {
        let mut data = vec![0u8; 40];
        data[6] = 0; // hop-by-hop, then a routing header, then UDP
        data.extend_from_slice(&[43, 0, 0, 0, 0, 0, 0, 0]);
        data.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 0]);
        assert!(has_exthdr(&data, 0));
        assert!(has_exthdr(&data, 43));
        assert!(!has_exthdr(&data, 60));
        // Like ipv6_find_hdr, a header's first two bytes tell what follows it.
        assert!(has_exthdr(&data[..42], 43));
        assert!(!has_exthdr(&data[..41], 43));
    }

    #[test]
    fn ct_state_bits_follow_ctinfo() {
        assert_eq!(ct_state_bits(0), 2);
        assert_eq!(ct_state_bits(4), 4);
        assert_eq!(ct_state_bits(2), 8);
        assert_eq!(ct_state_bits(CT_INVALID), 1);
        assert_eq!(ct_state_bits(CT_UNTRACKED), 64);
    }
}
