//! Fuzzing the decoder: random frames and mutations of well-formed ones, for
//! every link type. Decoding must never panic, every error offset must lie
//! inside the frame, and every offset a later stage slices with must stay
//! inside the datagram (or, for payload_off, at its end).
//!
//! Inputs per run: 2 x 16384 random frames, 16384 mutated frames, 8192 random
//! datagrams (each decoded strict and quoted), 8192 IPv4 option lists.

mod frames;

use _core::decode::{compile_ipv4_options, decode_datagram, decode_frame, SUPPORTED_LINKTYPES};
use _core::packet::{Ipv4Options, Packet};
use frames::*;
use proptest::prelude::*;

fn check(pkt: &Packet<'_>, len: usize) {
    if let Some(e) = &pkt.error {
        assert!(e.offset <= len, "error offset {} past {len}: {e}", e.offset);
    }
    assert!(pkt.data.len() <= len);
    let _ = pkt.payload();
    let _ = pkt.tcp_option_bytes();
    if pkt.error.is_none() && pkt.family != 0 {
        assert!(
            pkt.l4_off <= pkt.data.len(),
            "l4_off {} past {}",
            pkt.l4_off,
            pkt.data.len()
        );
        assert!(pkt.payload_off <= pkt.data.len());
    }
    if let Some(inner) = &pkt.inner {
        check(inner, len);
    }
}

fn linktypes() -> impl Strategy<Value = u32> {
    let mut all = SUPPORTED_LINKTYPES.to_vec();
    all.push(147);
    prop::sample::select(all)
}

/// Well-formed frames of every link type to mutate.
fn seeds() -> Vec<(u32, Vec<u8>)> {
    let v4_tcp = ipv4(
        &tcp_with(Tcp {
            options: vec![2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 0, 0],
            ..Tcp::default()
        }),
        6,
    );
    let v4_opts = ipv4_with(
        &udp(),
        V4 {
            proto: 17,
            options: vec![131, 7, 4, 192, 0, 2, 9, 0],
            ..V4::default()
        },
    );
    let quoted = ipv4(&udp_with(1, 2, &[0; 12]), 17);
    let v4_icmp = ipv4(&cat(&[&[3, 3, 0, 0, 0, 0, 0, 0], &quoted[..28]]), 1);
    let v4_gre = ipv4(&[0x30, 0x81, 0x88, 0x0B, 0, 0, 0x55, 0x66, 0, 0, 0, 0], 47);
    let v4_frag = ipv4_with(
        &[0; 16],
        V4 {
            proto: 17,
            frag: 0x2000,
            ..V4::default()
        },
    );
    let v6_ext = ipv6(
        &cat(&[&ext(60, 0), &ext(44, 0), &frag6(6, 0, true, 5), &tcp()]),
        0,
    );
    let v6_icmp = ipv6(
        &cat(&[&[1, 4, 0, 0, 0, 0, 0, 0], &ipv6(&tcp(), 6)[..48]]),
        58,
    );
    let v6_sctp = ipv6(&[0x0f, 0x1c, 0x0f, 0x1d, 0, 0, 0, 1, 0, 0, 0, 0], 132);
    let datagrams = [
        v4_tcp, v4_opts, v4_icmp, v4_gre, v4_frag, v6_ext, v6_icmp, v6_sctp,
    ];
    let mut out = Vec::new();
    for d in &datagrams {
        let v6 = d[0] >> 4 == 6;
        let ethertype = if v6 { 0x86DD } else { 0x0800 };
        out.push((1, ether_with(d, ethertype, MAC_B, &[])));
        out.push((1, ether_with(d, ethertype, MAC_B, &[0x88A8, 0x8100])));
        out.push((101, d.clone()));
        out.push((if v6 { 229 } else { 228 }, d.clone()));
        let mut sll = vec![0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
        sll.extend_from_slice(&ethertype.to_be_bytes());
        out.push((113, cat(&[&sll, d])));
        let mut sll2 = ethertype.to_be_bytes().to_vec();
        sll2.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
        out.push((276, cat(&[&sll2, d])));
        let af: u32 = if v6 { 30 } else { 2 };
        out.push((0, cat(&[&af.to_le_bytes(), d])));
        out.push((108, cat(&[&af.to_be_bytes(), d])));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16384))]

    #[test]
    fn random_frames_never_panic(
        data in prop::collection::vec(any::<u8>(), 0..200),
        linktype in linktypes(),
    ) {
        let pkt = decode_frame(0, 0.0, &data, linktype, None);
        prop_assert_eq!(pkt.frame_len, data.len());
        check(&pkt, data.len());
    }

    /// Random bytes behind a plausible link header, so the IP layers get
    /// exercised more than the link layer's rejections.
    #[test]
    fn random_ip_behind_plausible_headers(
        tail in prop::collection::vec(any::<u8>(), 0..160),
        version in prop::sample::select(vec![0x45u8, 0x46, 0x4f, 0x60, 0x61]),
        proto in prop::sample::select(vec![1u8, 6, 17, 47, 58, 132, 136, 0, 44, 59, 60, 51]),
    ) {
        let mut d = vec![version];
        d.extend_from_slice(&tail);
        if let Some(p) = d.get_mut(if version >> 4 == 6 { 6 } else { 9 }) {
            *p = proto;
        }
        let f = ether_with(&d, if version >> 4 == 6 { 0x86DD } else { 0x0800 }, MAC_B, &[]);
        check(&decode_frame(0, 0.0, &f, 1, None), f.len());
        let framed = ipv4(&tail, proto);
        check(&decode_frame(0, 0.0, &framed, 228, None), framed.len());
        let framed6 = ipv6(&tail, proto);
        check(&decode_frame(0, 0.0, &framed6, 229, None), framed6.len());
    }

    #[test]
    fn mutated_frames_never_panic(
        pick in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let all = seeds();
        let (linktype, mut f) = all[pick.index(all.len())].clone();
        for (at, value) in flips {
            let i = at.index(f.len());
            f[i] = value;
        }
        if truncate {
            f.truncate(cut.index(f.len() + 1));
        }
        let pkt = decode_frame(0, 0.0, &f, linktype, None);
        check(&pkt, f.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8192))]

    #[test]
    fn ipv4_option_lists_never_panic(opts in prop::collection::vec(any::<u8>(), 0..41)) {
        if let Ipv4Options::Malformed { pointer, .. } = compile_ipv4_options(&opts) {
            // The parameter problem points inside the option bytes.
            prop_assert!(usize::from(pointer) >= 20 && usize::from(pointer) < 20 + opts.len());
        }
    }

    #[test]
    fn random_datagrams_never_panic(data in prop::collection::vec(any::<u8>(), 0..200)) {
        check(&decode_datagram(&data, 0, 0.0, false), data.len());
        check(&decode_datagram(&data, 0, 0.0, true), data.len());
    }
}

#[test]
fn seeds_decode_cleanly() {
    for (linktype, f) in seeds() {
        let pkt = decode_frame(0, 0.0, &f, linktype, None);
        assert!(pkt.error.is_none(), "{linktype}: {:?}", pkt.error);
    }
}
