//! Decoding: link layers, IPv4/IPv6 header checks, extension headers, layer 4.
//!
//! Expected values follow the kernel: ip_rcv_core / ip6_rcv_core checks, the
//! ipv6_skip_exthdr walk, tcp_options / tcp_sack parsing and the tuple layout
//! conntrack builds (ICMP id and type << 8 | code, PPTP call id).

mod frames;

use std::sync::Arc;

use _core::decode::{decode_datagram, decode_frame, parse_tcp_options};
use _core::packet::{Ipv4Options, Layer, Packet, PktType, TcpOptions};
use frames::*;

fn frame(index: u64, ts: f64, data: &[u8], linktype: u32) -> Packet<'_> {
    decode_frame(index, ts, data, linktype, None)
}

fn dg(data: &[u8]) -> Packet<'_> {
    decode_datagram(data, 0, 0.0, false)
}

fn err(pkt: &Packet<'_>) -> (Layer, usize, String) {
    let e = pkt.error.as_ref().expect("an error");
    (e.layer, e.offset, e.cause.to_string())
}

// -- link layers ------------------------------------------------------------

#[test]
fn ethernet_ipv4_tcp_fields() {
    let seg = tcp_with(Tcp {
        flags: SYN | ACK,
        seq: 7,
        ack: 9,
        window: 512,
        ..Tcp::default()
    });
    let f = ether(&ipv4_with(
        &seg,
        V4 {
            ttl: 33,
            tos: 0x10,
            ..V4::default()
        },
    ));
    let pkt = decode_frame(3, 1.5, &f, 1, Some(Arc::from("eth0")));
    assert!(pkt.error.is_none());
    assert_eq!(
        (pkt.family, pkt.proto, pkt.sport, pkt.dport),
        (4, 6, 40000, 80)
    );
    assert_eq!((pkt.src, pkt.dst), (0xC0000201, 0xC6336407));
    assert_eq!(
        (pkt.tcp_flags, pkt.seq, pkt.ack, pkt.window),
        (SYN | ACK, 7, 9, 512)
    );
    assert_eq!(
        (pkt.ttl, pkt.tos, pkt.ip_id, pkt.index, pkt.ts),
        (33, 0x10, 0x1234, 3, 1.5)
    );
    assert_eq!((pkt.l4_off, pkt.payload_off, pkt.ip_len), (20, 40, 40));
    assert_eq!(pkt.link_src, Some(&MAC_A[..]));
    assert_eq!(pkt.link_dst, Some(&MAC_B[..]));
    assert_eq!(pkt.iface_in.as_deref(), Some("eth0"));
    assert_eq!(pkt.pkt_type, PktType::Host);
    assert_eq!((pkt.frame_len, pkt.link_type), (f.len(), 1));
    assert_eq!(pkt.ip_options, Ipv4Options::None);
}

#[test]
fn ethernet_padding_is_trimmed() {
    let datagram = ipv4(&udp(), 17);
    let f = cat(&[&ether(&datagram), &[0; 18]]);
    let pkt = frame(0, 0.0, &f, 1);
    assert!(pkt.error.is_none());
    assert_eq!(pkt.data, &datagram[..]);
}

#[test]
fn vlan_and_qinq_tags_are_skipped() {
    for tags in [&[0x8100u16][..], &[0x88A8, 0x8100], &[0x9100, 0x8100]] {
        let f = ether_with(&ipv4(&udp(), 17), 0x0800, MAC_B, tags);
        let pkt = frame(0, 0.0, &f, 1);
        assert!(pkt.error.is_none());
        assert_eq!((pkt.proto, pkt.dport), (17, 53));
    }
}

#[test]
fn broadcast_and_multicast_destinations() {
    let b = ether_with(&ipv4(&udp(), 17), 0x0800, [0xFF; 6], &[]);
    let m = ether_with(&ipv4(&udp(), 17), 0x0800, [1, 0, 0x5e, 0, 0, 1], &[]);
    assert_eq!(frame(0, 0.0, &b, 1).pkt_type, PktType::Broadcast);
    assert_eq!(frame(0, 0.0, &m, 1).pkt_type, PktType::Multicast);
}

#[test]
fn non_ip_frame_is_not_tracked() {
    let f = ether_with(&[0; 28], 0x0806, MAC_B, &[]);
    let pkt = frame(0, 0.0, &f, 1);
    assert_eq!(pkt.family, 0);
    let (layer, offset, cause) = err(&pkt);
    assert_eq!((layer, offset), (Layer::Link, 12));
    assert_eq!(cause, "not an IP packet (EtherType 0x0806)");
    assert_eq!(
        pkt.error.as_ref().unwrap().to_string(),
        "link at byte 12: not an IP packet (EtherType 0x0806)"
    );
}

#[test]
fn truncated_ethernet_header() {
    let pkt = frame(0, 0.0, &[0; 10], 1);
    assert_eq!(err(&pkt).2, "truncated Ethernet header: 10 of 14 bytes");
}

fn sll_head(code: u16) -> Vec<u8> {
    let mut h = Vec::new();
    for v in [code, 1, 6] {
        h.extend_from_slice(&v.to_be_bytes());
    }
    h.extend_from_slice(&MAC_A);
    h.extend_from_slice(&[0, 0, 0x08, 0x00]);
    h
}

#[test]
fn linux_cooked_v1_packet_types() {
    let names = [
        (0, PktType::Host, "host"),
        (1, PktType::Broadcast, "broadcast"),
        (2, PktType::Multicast, "multicast"),
        (3, PktType::OtherHost, "otherhost"),
        (4, PktType::Outgoing, "outgoing"),
        (5, PktType::Other(5), "type5"),
    ];
    for (code, kind, name) in names {
        let f = cat(&[&sll_head(code), &ipv4(&udp(), 17)]);
        let pkt = decode_frame(0, 0.0, &f, 113, Some(Arc::from("any")));
        assert!(pkt.error.is_none());
        assert_eq!(pkt.pkt_type, kind);
        assert_eq!(pkt.pkt_type.name(), name);
        assert_eq!(pkt.link_src, Some(&MAC_A[..]));
        let iface = if kind == PktType::Outgoing {
            &pkt.iface_out
        } else {
            &pkt.iface_in
        };
        assert_eq!(iface.as_deref(), Some("any"));
    }
}

#[test]
fn linux_cooked_v2() {
    let mut head = vec![0x86, 0xDD, 0, 0, 0, 0, 0, 2, 0, 1, 4, 6];
    head.extend_from_slice(&MAC_A);
    head.extend_from_slice(&[0, 0]);
    let f = cat(&[&head, &ipv6(&udp(), 17)]);
    let pkt = decode_frame(0, 0.0, &f, 276, Some(Arc::from("eth1")));
    assert!(pkt.error.is_none());
    assert_eq!((pkt.family, pkt.dport), (6, 53));
    assert_eq!(pkt.pkt_type, PktType::Outgoing);
    assert_eq!(pkt.iface_out.as_deref(), Some("eth1"));
    assert!(pkt.iface_in.is_none());
}

#[test]
fn raw_ip_picks_version_from_first_nibble() {
    for linktype in [101, 12, 14] {
        assert_eq!(frame(0, 0.0, &ipv4(&udp(), 17), linktype).family, 4);
        assert_eq!(frame(0, 0.0, &ipv6(&udp(), 17), linktype).family, 6);
    }
    assert_eq!(err(&frame(0, 0.0, &[], 101)).2, "empty frame: no IP header");
    assert_eq!(
        err(&frame(0, 0.0, &[0x50], 101)).2,
        "not an IP packet (IP version 5)"
    );
}

#[test]
fn ipv4_and_ipv6_link_types() {
    assert!(frame(0, 0.0, &ipv4(&udp(), 17), 228).error.is_none());
    assert!(frame(0, 0.0, &ipv6(&udp(), 17), 229).error.is_none());
    let v6 = ipv6(&udp(), 17);
    let wrong = frame(0, 0.0, &v6, 228);
    assert_eq!(err(&wrong).0, Layer::Ipv4);
}

#[test]
fn bsd_loopback_families() {
    for linktype in [0, 108] {
        for big in [false, true] {
            for (af, family) in [(2u32, 4u8), (24, 6), (28, 6), (30, 6)] {
                let datagram = if family == 4 {
                    ipv4(&udp(), 17)
                } else {
                    ipv6(&udp(), 17)
                };
                let head = if big {
                    af.to_be_bytes()
                } else {
                    af.to_le_bytes()
                };
                let f = cat(&[&head, &datagram]);
                let pkt = frame(0, 0.0, &f, linktype);
                assert!(pkt.error.is_none());
                assert_eq!(pkt.family, family);
            }
        }
    }
    let other = frame(0, 0.0, &[7, 0, 0, 0, 0x45], 0);
    assert_eq!(err(&other).2, "not an IP packet (address family 7)");
}

#[test]
fn unsupported_link_type_is_an_error() {
    let data = ipv4(&udp(), 17);
    let pkt = frame(0, 0.0, &data, 147);
    assert_eq!(err(&pkt).0, Layer::Link);
    assert_eq!(err(&pkt).2, "unsupported link type 147");
    assert_eq!(pkt.family, 0);
}

// -- IPv4 -------------------------------------------------------------------

#[test]
fn bad_ipv4_header_checksum_is_dropped_by_ip_rcv() {
    let mut bad = ipv4(&udp(), 17);
    bad[10] ^= 0xFF;
    let pkt = dg(&bad);
    assert_eq!(
        err(&pkt),
        (Layer::Ipv4, 10, "bad IPv4 header checksum".into())
    );
    assert!(Layer::Ipv4.drops_before_netfilter());
}

#[test]
fn ipv4_shorter_than_total_length() {
    let full = ipv4(&udp_with(5353, 53, &[0; 20]), 17);
    let pkt = dg(&full[..full.len() - 5]);
    assert_eq!(
        err(&pkt),
        (Layer::Ipv4, 2, "truncated datagram: 43 of 48 bytes".into())
    );
}

#[test]
fn ipv4_total_length_below_header_length() {
    let data = ipv4_with(
        &udp(),
        V4 {
            proto: 17,
            tot_len: Some(12),
            ..V4::default()
        },
    );
    let pkt = dg(&data);
    assert_eq!(err(&pkt).0, Layer::Ipv4);
    assert_eq!(err(&pkt).2, "total length 12 below header length 20");
}

#[test]
fn ipv4_header_length_beyond_packet() {
    let mut data = ipv4(b"", 17);
    data[0] = 0x4F;
    let pkt = dg(&data);
    assert_eq!(
        err(&pkt),
        (
            Layer::Ipv4,
            0,
            "bad header length 60 (20 bytes present)".into()
        )
    );
}

#[test]
fn ipv4_options_are_skipped() {
    let options = [7u8, 7, 4, 0, 0, 0, 0, 0];
    let data = ipv4_with(
        &udp(),
        V4 {
            proto: 17,
            options: options.to_vec(),
            ..V4::default()
        },
    );
    let pkt = dg(&data);
    assert!(pkt.error.is_none());
    assert_eq!((pkt.l4_off, pkt.dport), (28, 53));
    assert_eq!(&pkt.data[20..28], &options);
    assert_eq!(pkt.ip_options, Ipv4Options::Ok);
}

#[test]
fn ipv4_options_outcome_is_recorded() {
    let lsrr = vec![131u8, 7, 4, 192, 0, 2, 9, 0];
    let data = ipv4_with(
        &udp(),
        V4 {
            proto: 17,
            options: lsrr,
            ..V4::default()
        },
    );
    let pkt = dg(&data);
    assert!(pkt.error.is_none());
    assert_eq!(pkt.ip_options, Ipv4Options::SourceRouted { strict: false });
    let bad = vec![7u8, 12, 4, 0];
    let data = ipv4_with(
        &udp(),
        V4 {
            proto: 17,
            options: bad,
            ..V4::default()
        },
    );
    let pkt = dg(&data);
    assert!(
        pkt.error.is_none(),
        "layer 4 still decodes: the drop happens after PREROUTING"
    );
    assert!(matches!(
        pkt.ip_options,
        Ipv4Options::Malformed { pointer: 20, .. }
    ));
    // A quoted datagram's options are not judged.
    let quoted = ipv4_with(
        &udp(),
        V4 {
            proto: 17,
            options: vec![7, 12, 4, 0],
            ..V4::default()
        },
    );
    let mut icmp = vec![3u8, 3, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&quoted);
    let outer = ipv4(&icmp, 1);
    let pkt = dg(&outer);
    assert_eq!(pkt.ip_options, Ipv4Options::None);
    assert_eq!(pkt.inner.as_ref().unwrap().ip_options, Ipv4Options::None);
}

#[test]
fn ipv4_first_fragment_has_ports_and_fragment_info() {
    let data = ipv4_with(
        &udp_with(5353, 53, &[0; 16]),
        V4 {
            proto: 17,
            frag: 0x2000,
            ident: 77,
            ..V4::default()
        },
    );
    let pkt = dg(&data);
    let f = pkt.fragment.unwrap();
    assert!(f.more && f.offset == 0);
    assert_eq!((f.ident, f.unfrag_len, pkt.dport), (77, 20, 53));
}

#[test]
fn ipv4_later_fragment_has_no_layer4_decoding() {
    let data = ipv4_with(
        &[0; 16],
        V4 {
            proto: 17,
            frag: 3,
            ..V4::default()
        },
    );
    let pkt = dg(&data);
    let f = pkt.fragment.unwrap();
    assert!(f.offset == 24 && !f.more);
    assert_eq!((pkt.sport, pkt.dport, pkt.l4_off), (0, 0, 20));
    assert!(pkt.error.is_none());
    assert!(pkt.is_later_fragment());
}

#[test]
fn df_alone_is_not_a_fragment() {
    let data = ipv4_with(
        &udp(),
        V4 {
            proto: 17,
            frag: 0x4000,
            ..V4::default()
        },
    );
    assert!(dg(&data).fragment.is_none());
}

#[test]
fn bare_datagram_that_is_not_ip() {
    let empty = dg(&[]);
    assert_eq!(err(&empty), (Layer::Ip, 0, "empty datagram".into()));
    let five = dg(&[0x50, 1, 2]);
    assert_eq!(err(&five).2, "not an IP packet (IP version 5)");
    assert_eq!(
        (five.family, five.data.len(), five.frame_len, five.ip_len),
        (0, 3, 0, 0)
    );
}

// -- IPv6 -------------------------------------------------------------------

#[test]
fn ipv6_extension_headers_are_walked_to_layer4() {
    let payload = cat(&[
        &ext(60, 0),
        &ext(43, 1),
        &ext(44, 0),
        &frag6(60, 0, false, 5),
        &ext(6, 0),
        &tcp(),
    ]);
    let data = ipv6(&payload, 0);
    let pkt = dg(&data);
    assert!(pkt.error.is_none());
    assert_eq!((pkt.proto, pkt.l4_off), (6, 40 + 8 + 16 + 8 + 8 + 8));
    assert_eq!(pkt.fragment.unwrap().unfrag_len, 72);
    assert_eq!((pkt.sport, pkt.ip_id), (40000, 5));
}

#[test]
fn ipv6_authentication_header_length_in_32bit_words() {
    let mut ah = vec![17u8, 4];
    ah.resize(24, 0);
    let data = ipv6(&cat(&[&ah, &udp()]), 51);
    let pkt = dg(&data);
    assert!(pkt.error.is_none());
    assert_eq!((pkt.proto, pkt.l4_off, pkt.dport), (17, 64, 53));
}

#[test]
fn ipv6_esp_stops_the_walk() {
    let data = ipv6(&cat(&[&ext(50, 0), &[0; 16]]), 0);
    let pkt = dg(&data);
    assert!(pkt.error.is_none());
    assert_eq!((pkt.proto, pkt.l4_off), (50, 48));
}

#[test]
fn ipv6_no_next_header_cannot_be_tracked() {
    let data = ipv6(&ext(59, 0), 60);
    let pkt = dg(&data);
    assert_eq!(
        err(&pkt),
        (
            Layer::Ipv6Ext,
            48,
            "no next header (59): no layer-4 header to track".into()
        )
    );
}

#[test]
fn ipv6_truncated_extension_header() {
    let data = ipv6(&[6, 3, 0, 0, 0, 0, 0, 0], 0);
    let pkt = dg(&data);
    assert_eq!(
        err(&pkt),
        (Layer::Ipv6Ext, 48, "truncated extension header".into())
    );
}

#[test]
fn ipv6_later_fragment_stops_at_fragment_header() {
    let data = ipv6(&cat(&[&frag6(17, 1448, true, 0xABCDEF01), &[0; 32]]), 44);
    let pkt = dg(&data);
    let f = pkt.fragment.unwrap();
    assert!(f.offset == 1448 && f.more);
    assert_eq!((pkt.proto, pkt.l4_off, pkt.sport), (17, 48, 0));
    assert!(pkt.error.is_none());
}

#[test]
fn ipv6_truncated_datagram_and_multicast_source() {
    let short = ipv6_with(
        &udp(),
        17,
        V6 {
            plen: Some(100),
            ..V6::default()
        },
    );
    let mut src = [0u8; 16];
    src[0] = 0xff;
    src[1] = 0x02;
    src[15] = 1;
    let mcast = ipv6_with(
        &udp(),
        17,
        V6 {
            src,
            ..V6::default()
        },
    );
    assert_eq!(
        err(&dg(&short)),
        (Layer::Ipv6, 4, "truncated datagram: 48 of 140 bytes".into())
    );
    assert_eq!(err(&dg(&mcast)).2, "multicast source address");
}

#[test]
fn ipv6_jumbogram_is_rejected_with_a_cause() {
    let data = ipv6_with(
        &cat(&[&ext(17, 0), &udp()]),
        0,
        V6 {
            plen: Some(0),
            ..V6::default()
        },
    );
    assert_eq!(
        err(&dg(&data)).2,
        "jumbogram (payload length 0 with a hop-by-hop header) is not supported"
    );
}

#[test]
fn ipv6_hop_limit_and_traffic_class() {
    let data = ipv6_with(
        &udp(),
        17,
        V6 {
            hlim: 9,
            tclass: 0xB8,
            ..V6::default()
        },
    );
    let pkt = dg(&data);
    assert_eq!((pkt.ttl, pkt.tos, pkt.ip_len), (9, 0xB8, 48));
}

#[test]
fn ipv6_version_mismatch() {
    let mut data = ipv6(&udp(), 17);
    data[0] = 0x40;
    let pkt = decode_frame(0, 0.0, &data, 229, None);
    assert_eq!(
        err(&pkt),
        (Layer::Ipv6, 0, "IP version 4 in an IPv6 header".into())
    );
}

// -- layer 4 ----------------------------------------------------------------

fn ts_option(a: u32, b: u32) -> Vec<u8> {
    cat(&[&[8, 10], &a.to_be_bytes(), &b.to_be_bytes()])
}

#[test]
fn tcp_options_all_kinds() {
    let opts = cat(&[
        &[2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2],
        &ts_option(5, 6),
        &[1, 1, 0, 0],
    ]);
    let data = ipv4(
        &tcp_with(Tcp {
            options: opts.clone(),
            ..Tcp::default()
        }),
        6,
    );
    let pkt = dg(&data);
    let expected = TcpOptions {
        mss: Some(1460),
        wscale: Some(7),
        sack_perm: true,
        sack_blocks: vec![],
        timestamp: Some((5, 6)),
    };
    assert_eq!(pkt.tcp_options.as_deref(), Some(&expected));
    assert_eq!(pkt.payload_off, 20 + 20 + opts.len());
    assert_eq!(pkt.tcp_option_bytes(), Some(&opts[..]));
}

#[test]
fn tcp_sack_blocks_and_aligned_timestamp() {
    let mut sack = vec![1u8, 1, 5, 0x12];
    for v in [10u32, 20, 30, 40] {
        sack.extend_from_slice(&v.to_be_bytes());
    }
    assert_eq!(
        parse_tcp_options(&sack).sack_blocks,
        vec![(10, 20), (30, 40)]
    );
    let stamp = cat(&[&[1, 1], &ts_option(1, 2)]);
    assert_eq!(parse_tcp_options(&stamp).timestamp, Some((1, 2)));
}

#[test]
fn timestamp_only_segments_carry_no_boxed_options() {
    let stamp = cat(&[&[1, 1], &ts_option(1, 2)]);
    let data = ipv4(
        &tcp_with(Tcp {
            options: stamp.clone(),
            flags: ACK,
            ..Tcp::default()
        }),
        6,
    );
    let pkt = dg(&data);
    assert!(pkt.error.is_none() && pkt.tcp_options.is_none());
    assert_eq!(pkt.tcp_option_bytes(), Some(&stamp[..]));
    assert_eq!(
        parse_tcp_options(pkt.tcp_option_bytes().unwrap()).timestamp,
        Some((1, 2))
    );
    let plain = ipv4(&tcp(), 6);
    assert_eq!(dg(&plain).tcp_option_bytes(), Some(&[][..]));
}

#[test]
fn malformed_option_lists_stop_the_parse() {
    for opts in [
        &[3u8, 3, 7, 0, 4, 2, 0, 0][..], // EOL ends the list
        &[3, 1, 7, 1, 4, 2, 0, 0],       // length below 2 ("silly option")
        &[1, 1, 1, 3],                   // window scale running past the header
    ] {
        let data = ipv4(
            &tcp_with(Tcp {
                options: opts.to_vec(),
                ..Tcp::default()
            }),
            6,
        );
        let pkt = dg(&data);
        assert!(pkt.error.is_none());
        let parsed = parse_tcp_options(pkt.tcp_option_bytes().unwrap());
        assert!(!parsed.sack_perm && matches!(parsed.wscale, None | Some(7)));
        assert_eq!(
            pkt.tcp_options.as_deref().map(|o| o.wscale),
            parsed.wscale.map(Some)
        );
    }
}

#[test]
fn only_first_sack_option_counts() {
    let mut two = vec![5u8, 10];
    two.extend_from_slice(&1u32.to_be_bytes());
    two.extend_from_slice(&2u32.to_be_bytes());
    two.extend_from_slice(&[5, 10]);
    two.extend_from_slice(&3u32.to_be_bytes());
    two.extend_from_slice(&4u32.to_be_bytes());
    two.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(parse_tcp_options(&two).sack_blocks, vec![(1, 2)]);
}

#[test]
fn tcp_truncated_header() {
    let data = ipv4(&tcp()[..12], 6);
    let pkt = dg(&data);
    assert_eq!(
        err(&pkt),
        (Layer::Tcp, 20, "truncated header: 12 of 20 bytes".into())
    );
    assert_eq!((pkt.sport, pkt.seq), (40000, 1000));
}

#[test]
fn tcp_bad_data_offset() {
    let mut short = tcp();
    short[12] = 0x40;
    let mut long = tcp();
    long[12] = 0x80;
    let s = ipv4(&short, 6);
    assert_eq!(
        err(&dg(&s)),
        (Layer::Tcp, 32, "bad data offset: header length 16".into())
    );
    let l = ipv4(&long, 6);
    assert_eq!(err(&dg(&l)).2, "truncated header: 20 of 32 bytes");
}

#[test]
fn short_layer4_headers() {
    for (proto, layer, need) in [
        (17, Layer::Udp, 8),
        (136, Layer::Udplite, 8),
        (132, Layer::Sctp, 12),
        (1, Layer::Icmp, 8),
    ] {
        let data = ipv4(&[0; 6], proto);
        let pkt = dg(&data);
        let (l, _, cause) = err(&pkt);
        assert_eq!(l, layer);
        assert_eq!(cause, format!("truncated header: 6 of {need} bytes"));
    }
}

#[test]
fn sctp_and_udplite_ports() {
    let mut sctp = Vec::new();
    for v in [3868u16, 3869] {
        sctp.extend_from_slice(&v.to_be_bytes());
    }
    sctp.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
    let s = ipv4(&sctp, 132);
    let pkt = dg(&s);
    assert_eq!((pkt.sport, pkt.dport), (3868, 3869));
    assert!(pkt.error.is_none());
    let l = ipv4(&udp_with(1, 2, b""), 136);
    let lite = dg(&l);
    assert_eq!((lite.sport, lite.dport), (1, 2));
    assert!(lite.error.is_none());
}

#[test]
fn icmp_echo_tuple_parts() {
    let data = ipv4(&cat(&[&[8, 0, 0, 0, 0x42, 0x42, 0, 1], &[0; 8]]), 1);
    let pkt = dg(&data);
    assert_eq!((pkt.icmp_type, pkt.icmp_code, pkt.icmp_id), (8, 0, 0x4242));
    assert_eq!((pkt.sport, pkt.dport), (0x4242, 8 << 8));
    assert!(pkt.inner.is_none());
}

#[test]
fn icmp_error_quotes_a_truncated_datagram() {
    let whole = ipv4_with(
        &udp_with(5353, 53, &[0; 100]),
        V4 {
            proto: 17,
            src: DST4,
            dst: SRC4,
            ..V4::default()
        },
    );
    let data = ipv4(&cat(&[&[3, 3, 0, 0, 0, 0, 0, 0], &whole[..28]]), 1);
    let pkt = dg(&data);
    assert!(pkt.error.is_none());
    assert_eq!(pkt.dport, 3 << 8 | 3);
    let inner = pkt.inner.as_ref().unwrap();
    assert!(inner.error.is_none());
    assert_eq!((inner.proto, inner.sport, inner.dport), (17, 5353, 53));
    assert_eq!((inner.ip_len, inner.data.len()), (128, 28));
    assert_eq!((inner.src, inner.dst), (pkt.dst, pkt.src));
}

#[test]
fn icmp_error_quoting_too_little_layer4() {
    let whole = ipv4(&udp(), 17);
    let data = ipv4(&cat(&[&[3, 3, 0, 0, 0, 0, 0, 0], &whole[..22]]), 1);
    let pkt = dg(&data);
    let inner = pkt.inner.as_ref().unwrap();
    assert!(inner.error.is_none());
    assert_eq!(inner.data.len() - inner.l4_off, 2);
}

#[test]
fn icmp_error_quoting_a_later_fragment() {
    let quoted = ipv4_with(
        &[0; 8],
        V4 {
            proto: 17,
            frag: 10,
            ..V4::default()
        },
    );
    let data = ipv4(&cat(&[&[11, 1, 0, 0, 0, 0, 0, 0], &quoted]), 1);
    let pkt = dg(&data);
    assert_eq!(pkt.inner.as_ref().unwrap().fragment.unwrap().offset, 80);
}

#[test]
fn icmpv6_error_inner_and_echo() {
    let quoted = ipv6_with(
        &tcp(),
        6,
        V6 {
            src: DST6,
            dst: SRC6,
            ..V6::default()
        },
    );
    let e = ipv6(&cat(&[&[1, 4, 0, 0, 0, 0, 0, 0], &quoted[..48]]), 58);
    let err_pkt = dg(&e);
    let inner = err_pkt.inner.as_ref().unwrap();
    assert_eq!((inner.sport, inner.dport, inner.seq), (40000, 80, 1000));
    let echo_bytes = ipv6(&[128, 0, 0, 0, 0, 7, 0, 1], 58);
    let echo = dg(&echo_bytes);
    assert_eq!((echo.sport, echo.dport), (7, 128 << 8));
    assert!(echo.inner.is_none());
}

#[test]
fn icmpv6_redirect_with_redirected_header() {
    let quoted = ipv6(&udp(), 17);
    let mut body = vec![137u8, 0, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&[0; 32]);
    body.extend_from_slice(&[4, 7, 0, 0, 0, 0, 0, 0]);
    body.extend_from_slice(&quoted);
    let data = ipv6(&body, 58);
    let pkt = dg(&data);
    assert_eq!(pkt.inner.as_ref().unwrap().dport, 53);
    body[40] = 1;
    let data = ipv6(&body, 58);
    assert!(dg(&data).inner.is_none());
}

#[test]
fn gre_pptp_call_id_and_plain_gre() {
    let pptp = cat(&[&[0x30, 0x81, 0x88, 0x0B, 0, 0, 0x55, 0x66], &[0; 8]]);
    let plain = cat(&[&[0, 0, 0x08, 0x00], &ipv4(&udp(), 17)]);
    let other = [0x30u8, 0x81, 0x08, 0x00, 0, 0, 0, 1];
    let (a, b, c) = (ipv4(&pptp, 47), ipv4(&plain, 47), ipv4(&other, 47));
    let p1 = dg(&a);
    assert_eq!((p1.sport, p1.dport, p1.payload_off), (0, 0x5566, 36));
    assert!(p1.error.is_none());
    let p0 = dg(&b);
    assert_eq!((p0.sport, p0.dport, p0.payload_off), (0, 0, 24));
    assert!(p0.error.is_none());
    assert_eq!(
        err(&dg(&c)),
        (
            Layer::Gre,
            22,
            "GRE version 1 carrying protocol 0x0800, not PPP".into()
        )
    );
}

#[test]
fn generic_protocol_has_zero_ports() {
    let data = ipv4(&[0; 12], 89);
    let pkt = dg(&data);
    assert_eq!(
        (pkt.proto, pkt.sport, pkt.dport, pkt.l4_off),
        (89, 0, 0, 20)
    );
    assert!(pkt.error.is_none());
}
