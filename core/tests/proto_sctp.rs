//! SCTP as Linux 6.18 tracks it. Packets are built byte by byte, their
//! CRC32c computed bit by bit (independently of the tracker's tables).

mod common;

use _core::config::Sysctls;
use _core::conntrack::conn::{
    Conn, ConnId, Tuple, CT_ESTABLISHED, CT_ESTABLISHED_REPLY, CT_INVALID, CT_NEW, IPS_ASSURED,
};
use _core::conntrack::l4proto::Action;
use _core::conntrack::proto_sctp::{
    self, can_early_drop, crc32c, error as sctp_error, state_name, ABORT, COOKIE_ACK, COOKIE_ECHO,
    DATA, HEARTBEAT, HEARTBEAT_ACK, INIT, INIT_ACK, SACK, SHUTDOWN, SHUTDOWN_ACK,
    SHUTDOWN_COMPLETE, STATE_NAMES, TRANSITIONS,
};
use common::*;
use proptest::prelude::*;

const A: u128 = 0x0A63_0101; // 10.99.1.1
const B: u128 = 0x0A63_0201; // 10.99.2.1
const TAG_A: u32 = 0x1111_1111;
const TAG_B: u32 = 0x2222_2222;

fn crc32c_bitwise(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82F6_3B78 * (crc & 1));
        }
    }
    crc ^ 0xFFFF_FFFF
}

fn chunk(ctype: u8, value: &[u8], flags: u8) -> Vec<u8> {
    let mut raw = vec![ctype, flags];
    raw.extend_from_slice(&((4 + value.len()) as u16).to_be_bytes());
    raw.extend_from_slice(value);
    while raw.len() % 4 != 0 {
        raw.push(0);
    }
    raw
}

fn ch(ctype: u8, value: &[u8]) -> Vec<u8> {
    chunk(ctype, value, 0)
}

fn init_value(tag: u32) -> Vec<u8> {
    let mut value = tag.to_be_bytes().to_vec();
    value.extend_from_slice(&65535u32.to_be_bytes());
    value.extend_from_slice(&10u16.to_be_bytes());
    value.extend_from_slice(&10u16.to_be_bytes());
    value.extend_from_slice(&1u32.to_be_bytes());
    value
}

fn sctp_full(
    src: u128,
    dst: u128,
    sport: u16,
    dport: u16,
    vtag: u32,
    chunks: &[Vec<u8>],
    bad_crc: bool,
) -> Built {
    let mut body = Vec::new();
    body.extend_from_slice(&sport.to_be_bytes());
    body.extend_from_slice(&dport.to_be_bytes());
    body.extend_from_slice(&vtag.to_be_bytes());
    body.extend_from_slice(&[0; 4]);
    for chunk in chunks {
        body.extend_from_slice(chunk);
    }
    let crc = crc32c_bitwise(&body) ^ u32::from(bad_crc);
    body[8..12].copy_from_slice(&crc.to_le_bytes());
    let mut pkt = ip_packet(4, src, dst, 132, &body, 64, sport, dport, 0);
    pkt.payload_off = 20;
    pkt
}

fn sctp(src: u128, dst: u128, sport: u16, dport: u16, vtag: u32, chunks: &[Vec<u8>]) -> Built {
    sctp_full(src, dst, sport, dport, vtag, chunks, false)
}

fn cfg() -> Sysctls {
    Sysctls::default()
}

fn state(table: &MiniTable, conn: ConnId) -> &'static str {
    state_name(table.get(conn))
}

/// INIT / INIT_ACK / COOKIE_ECHO / COOKIE_ACK, checking each step as observed.
fn handshake(table: &mut MiniTable) -> ConnId {
    let init = table.step(
        &sctp(A, B, 5000, 80, 0, &[ch(INIT, &init_value(TAG_A))]),
        0.0,
    );
    assert_eq!(init.ctinfo, CT_NEW);
    assert_eq!(init.reason, "SCTP: CLOSED");
    let conn = init.conn.unwrap();
    assert_eq!(state(table, conn), "CLOSED");
    assert!(approx(table.get(conn).expires, 10.0));
    let init_ack = sctp(B, A, 80, 5000, TAG_A, &[ch(INIT_ACK, &init_value(TAG_B))]);
    assert_eq!(table.step(&init_ack, 0.1).ctinfo, CT_ESTABLISHED_REPLY);
    assert_eq!(state(table, conn), "COOKIE_WAIT");
    assert!(approx(table.get(conn).expires, 3.1));
    let echo = table.step(
        &sctp(A, B, 5000, 80, TAG_B, &[ch(COOKIE_ECHO, b"cookie!!")]),
        0.2,
    );
    assert_eq!(echo.ctinfo, CT_ESTABLISHED);
    assert_eq!(state(table, conn), "COOKIE_ECHOED");
    assert_eq!(table.get(conn).status & IPS_ASSURED, 0);
    let ack = table.step(&sctp(B, A, 80, 5000, TAG_A, &[ch(COOKIE_ACK, b"")]), 0.3);
    assert_eq!(ack.ctinfo, CT_ESTABLISHED_REPLY);
    assert_eq!(ack.reason, "SCTP: ESTABLISHED");
    assert_eq!(state(table, conn), "ESTABLISHED");
    assert_ne!(table.get(conn).status & IPS_ASSURED, 0);
    assert!(approx(table.get(conn).expires, 210.3));
    conn
}

#[test]
fn sctp_handshake_data_and_shutdown() {
    let mut table = MiniTable::new(cfg());
    let conn = handshake(&mut table);
    let data = table.step(&sctp(A, B, 5000, 80, TAG_B, &[ch(DATA, &[0; 16])]), 1.0);
    assert_eq!(data.ctinfo, CT_ESTABLISHED);
    assert!(approx(table.get(conn).expires, 211.0));
    assert_eq!(
        table
            .step(&sctp(B, A, 80, 5000, TAG_A, &[ch(SACK, &[0; 12])]), 1.1)
            .conn,
        Some(conn)
    );
    table.step(&sctp(A, B, 5000, 80, TAG_B, &[ch(SHUTDOWN, &[0; 4])]), 2.0);
    assert_eq!(state(&table, conn), "SHUTDOWN_SENT");
    assert!(approx(table.get(conn).expires, 5.0));
    assert!(can_early_drop(table.get(conn)));
    table.step(&sctp(B, A, 80, 5000, TAG_A, &[ch(SHUTDOWN_ACK, b"")]), 2.1);
    assert_eq!(state(&table, conn), "SHUTDOWN_ACK_SENT");
    table.step(
        &sctp(A, B, 5000, 80, TAG_B, &[ch(SHUTDOWN_COMPLETE, b"")]),
        2.2,
    );
    assert_eq!(state(&table, conn), "CLOSED");
    assert!(approx(table.get(conn).expires, 12.2));
    assert!(!can_early_drop(table.get(conn)));
}

#[test]
fn sctp_shutdown_from_responder_is_shutdown_recd() {
    let mut table = MiniTable::new(cfg());
    let conn = handshake(&mut table);
    table.step(&sctp(B, A, 80, 5000, TAG_A, &[ch(SHUTDOWN, &[0; 4])]), 1.0);
    assert_eq!(state(&table, conn), "SHUTDOWN_RECD");
    assert!(can_early_drop(table.get(conn)));
}

#[test]
fn sctp_wrong_vtag_is_invalid() {
    let mut table = MiniTable::new(cfg());
    let conn = handshake(&mut table);
    let bad = table.step(
        &sctp(A, B, 5000, 80, 0xDEAD_BEEF, &[ch(DATA, &[0; 16])]),
        1.0,
    );
    assert_eq!(bad.ctinfo, CT_INVALID);
    assert_eq!(
        bad.reason,
        "INVALID: SCTP verification tag 0xdeadbeef (expected 0x22222222)"
    );
    assert!(approx(table.get(conn).expires, 210.3));
}

#[test]
fn sctp_abort_tag_rules() {
    let mut table = MiniTable::new(cfg());
    let conn = handshake(&mut table);
    // Without the T flag the sender's own tag is required; with it, the peer's.
    let reflected = sctp(A, B, 5000, 80, TAG_A, &[ch(ABORT, b"")]);
    let result = table.step(&reflected, 1.0);
    assert_eq!(result.ctinfo, CT_INVALID);
    assert_eq!(
        result.reason,
        "INVALID: SCTP ABORT/SHUTDOWN_COMPLETE with a wrong tag"
    );
    let ok = sctp(A, B, 5000, 80, TAG_A, &[chunk(ABORT, b"", 1)]);
    assert_eq!(table.step(&ok, 1.1).ctinfo, CT_ESTABLISHED);
    assert_eq!(state(&table, conn), "CLOSED");
}

#[test]
fn sctp_data_as_first_packet_is_invalid() {
    let mut table = MiniTable::new(cfg());
    let result = table.step(&sctp(A, B, 1, 2, 5, &[ch(DATA, &[0; 8])]), 0.0);
    assert_eq!(result.ctinfo, CT_INVALID);
    assert_eq!(
        result.reason,
        "INVALID: SCTP chunk 0 cannot start a connection"
    );
    assert_eq!(table.count(), 0);
}

#[test]
fn sctp_init_with_non_zero_vtag_is_invalid() {
    let mut table = MiniTable::new(cfg());
    let result = table.step(&sctp(A, B, 1, 2, 9, &[ch(INIT, &init_value(TAG_A))]), 0.0);
    assert_eq!((result.ctinfo, table.count()), (CT_INVALID, 0));
    assert_eq!(
        result.reason,
        "INVALID: SCTP INIT with a non-zero verification tag"
    );
}

#[test]
fn sctp_chunks_that_cannot_start_an_entry() {
    for ctype in [ABORT, SHUTDOWN_COMPLETE, COOKIE_ACK] {
        let mut table = MiniTable::new(cfg());
        let result = table.step(&sctp(A, B, 1, 2, 9, &[ch(ctype, b"")]), 0.0);
        assert_eq!(result.ctinfo, CT_INVALID);
        assert_eq!(
            result.reason,
            "INVALID: SCTP ABORT, SHUTDOWN_COMPLETE or COOKIE_ACK cannot start a connection"
        );
    }
}

#[test]
fn sctp_first_heartbeat_creates_heartbeat_sent() {
    let mut table = MiniTable::new(cfg());
    let result = table.step(&sctp(A, B, 1, 2, 9, &[ch(HEARTBEAT, &[0; 8])]), 0.0);
    assert_eq!(result.ctinfo, CT_NEW);
    let conn = result.conn.unwrap();
    assert_eq!(state(&table, conn), "HEARTBEAT_SENT");
    assert!(approx(table.get(conn).expires, 30.0));
    let ack = table.step(&sctp(B, A, 2, 1, 7, &[ch(HEARTBEAT_ACK, &[0; 8])]), 0.1);
    assert_eq!(ack.ctinfo, CT_ESTABLISHED_REPLY);
    assert_eq!(state(&table, conn), "ESTABLISHED");
    assert_ne!(table.get(conn).status & IPS_ASSURED, 0);
}

#[test]
fn sctp_retransmitted_init_does_not_refresh_closed_entry() {
    let mut table = MiniTable::new(cfg());
    let init = sctp(A, B, 5000, 80, 0, &[ch(INIT, &init_value(TAG_A))]);
    let conn = table.step(&init, 0.0).conn.unwrap();
    let again = table.step(&init, 5.0);
    assert_eq!(again.ctinfo, CT_NEW);
    assert_eq!(
        again.reason,
        "SCTP: accepted without refreshing the timeout"
    );
    assert!(approx(table.get(conn).expires, 10.0));
}

#[test]
fn sctp_crc() {
    assert_eq!(crc32c_bitwise(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    let bad = sctp_full(A, B, 1, 2, 0, &[ch(INIT, &init_value(TAG_A))], true);
    let reason = sctp_error(&bad.packet(), &cfg(), true).unwrap();
    assert!(reason.contains("CRC"));
    assert_eq!(reason, "INVALID: SCTP bad CRC32c checksum");
    assert!(sctp_error(&bad.packet(), &cfg(), false).is_none());
    let mut off = cfg();
    off.set("nf_conntrack_checksum", 0).unwrap();
    assert!(sctp_error(&bad.packet(), &off, true).is_none());
    let good = sctp(
        A,
        B,
        1,
        2,
        0,
        &[ch(INIT, &init_value(TAG_A)), ch(DATA, &[7; 41])],
    );
    assert!(proto_sctp::checksum_ok(&good.bytes[20..]));
}

#[test]
fn sctp_basic_checks() {
    let cases: [(Vec<Vec<u8>>, &str); 6] = [
        (vec![], "INVALID: SCTP packet without chunks"),
        (
            vec![vec![DATA, 0, 0, 0]],
            "INVALID: SCTP zero-length chunk (type 0)",
        ),
        (
            vec![ch(INIT, &init_value(TAG_A)), ch(DATA, &[0; 4])],
            "INVALID: SCTP chunk 0 in position 1 (must be first or alone)",
        ),
        (
            vec![ch(DATA, &[0; 4]), ch(INIT, &init_value(TAG_A))],
            "INVALID: SCTP chunk 1 in position 1 (must be first or alone)",
        ),
        (
            vec![ch(DATA, &[0; 4]), ch(COOKIE_ECHO, &[0; 4])],
            "INVALID: SCTP chunk 10 in position 1 (must be first or alone)",
        ),
        (
            vec![ch(SACK, &[0; 12]), ch(COOKIE_ACK, b"")],
            "INVALID: SCTP chunk 11 in position 1 (must be first or alone)",
        ),
    ];
    for (chunks, reason) in cases {
        let pkt = sctp(A, B, 1, 2, 0, &chunks);
        assert_eq!(
            sctp_error(&pkt.packet(), &cfg(), true).as_deref(),
            Some(reason)
        );
    }
}

#[test]
fn sctp_cookie_echo_bundled_with_data_is_fine() {
    let pkt = sctp(
        A,
        B,
        1,
        2,
        0,
        &[ch(COOKIE_ECHO, &[0; 4]), ch(DATA, &[0; 4])],
    );
    assert!(sctp_error(&pkt.packet(), &cfg(), true).is_none());
}

#[test]
fn sctp_short_header_is_invalid() {
    let pkt = sctp(A, B, 1, 2, 0, &[ch(INIT, &init_value(TAG_A))]).truncated(31);
    assert_eq!(
        sctp_error(&pkt.packet(), &cfg(), true).as_deref(),
        Some("INVALID: SCTP short packet (common header needs 12 bytes)")
    );
}

#[test]
fn sctp_transition_table_is_complete() {
    let chunk_types = [
        INIT,
        INIT_ACK,
        ABORT,
        SHUTDOWN,
        SHUTDOWN_ACK,
        9,
        COOKIE_ECHO,
        COOKIE_ACK,
        SHUTDOWN_COMPLETE,
        HEARTBEAT,
        HEARTBEAT_ACK,
    ];
    for rows in TRANSITIONS {
        for (ctype, row) in rows.iter().enumerate() {
            assert_eq!(
                row.is_some(),
                chunk_types.contains(&(ctype as u8)),
                "chunk {ctype}"
            );
            if let Some(row) = row {
                assert_eq!(row.len(), STATE_NAMES.len());
                assert!(row
                    .iter()
                    .all(|&state| 0 < state && usize::from(state) <= STATE_NAMES.len()));
            }
        }
    }
}

#[test]
fn sctp_entry_without_sctp_data_is_invalid() {
    let mut conn = Conn::new(
        4,
        132,
        0,
        Tuple::new(A, B, 1, 2),
        Tuple::new(B, A, 2, 1),
        0.0,
    );
    let pkt = sctp(A, B, 1, 2, 0, &[ch(DATA, &[0; 4])]);
    let (action, reason) = proto_sctp::packet(&mut conn, &pkt.packet(), 0, CT_NEW, 0.0, &cfg());
    assert_eq!(
        (action, reason.as_ref()),
        (Action::Invalid, "INVALID: SCTP entry without SCTP data")
    );
}

// -- the cases tests/test_proto_other.py checks against the live kernel -----------
// (the expected ctinfo of each packet and the final states are the kernel's, as
// that test observes them; the reasons are statewall's own)

fn handshake_packets(port: u16) -> Vec<Built> {
    vec![
        sctp(A, B, port, 80, 0, &[ch(INIT, &init_value(TAG_A))]),
        sctp(B, A, 80, port, TAG_A, &[ch(INIT_ACK, &init_value(TAG_B))]),
        sctp(A, B, port, 80, TAG_B, &[ch(COOKIE_ECHO, b"cookie!!")]),
        sctp(B, A, 80, port, TAG_A, &[ch(COOKIE_ACK, b"")]),
    ]
}

/// A scenario, the expected (ctinfo, reason) for each packet, and the entry's
/// final state.
type KernelCase = (
    &'static str,
    Vec<Built>,
    Vec<(u8, &'static str)>,
    &'static str,
);

#[test]
fn kernel_checked_cases() {
    let with = |port: u16, extra: Vec<Built>| {
        let mut packets = handshake_packets(port);
        packets.extend(extra);
        packets
    };
    const HANDSHAKE: [(u8, &str); 4] = [
        (CT_NEW, "SCTP: CLOSED"),
        (CT_ESTABLISHED_REPLY, "SCTP: COOKIE_WAIT"),
        (CT_ESTABLISHED, "SCTP: COOKIE_ECHOED"),
        (CT_ESTABLISHED_REPLY, "SCTP: ESTABLISHED"),
    ];
    let after = |extra: &[(u8, &'static str)]| {
        let mut verdicts = HANDSHAKE.to_vec();
        verdicts.extend_from_slice(extra);
        verdicts
    };
    // (name, packets, the expected (ctinfo, reason) for each, final state)
    let cases: Vec<KernelCase> = vec![
        (
            "abort own tag",
            with(5001, vec![sctp(A, B, 5001, 80, TAG_B, &[ch(ABORT, b"")])]),
            after(&[(CT_ESTABLISHED, "SCTP: CLOSED")]),
            "CLOSED",
        ),
        (
            "abort peer tag",
            with(5002, vec![sctp(A, B, 5002, 80, TAG_A, &[ch(ABORT, b"")])]),
            after(&[(
                CT_INVALID,
                "INVALID: SCTP ABORT/SHUTDOWN_COMPLETE with a wrong tag",
            )]),
            "ESTABLISHED",
        ),
        (
            "abort reflected",
            with(
                5003,
                vec![sctp(A, B, 5003, 80, TAG_A, &[chunk(ABORT, b"", 1)])],
            ),
            after(&[(CT_ESTABLISHED, "SCTP: CLOSED")]),
            "CLOSED",
        ),
        (
            "shutdown_ack and error first",
            vec![sctp(
                A,
                B,
                5004,
                80,
                77,
                &[ch(SHUTDOWN_ACK, b""), ch(9, &[0; 4])],
            )],
            vec![(CT_NEW, "SCTP: SHUTDOWN_ACK_SENT")],
            "SHUTDOWN_ACK_SENT",
        ),
        (
            "heartbeat with data first",
            vec![sctp(
                A,
                B,
                5005,
                80,
                77,
                &[ch(HEARTBEAT, &[0; 8]), ch(DATA, &[0; 8])],
            )],
            vec![(
                CT_INVALID,
                "INVALID: SCTP chunk 0 cannot start a connection",
            )],
            "",
        ),
        (
            "init_ack wrong tag",
            vec![
                sctp(A, B, 5006, 80, 0, &[ch(INIT, &init_value(TAG_A))]),
                sctp(B, A, 80, 5006, 999, &[ch(INIT_ACK, &init_value(TAG_B))]),
            ],
            vec![
                (CT_NEW, "SCTP: CLOSED"),
                (
                    CT_INVALID,
                    "INVALID: SCTP verification tag 0x3e7 (expected 0x11111111)",
                ),
            ],
            "CLOSED",
        ),
        (
            "close",
            with(
                5007,
                vec![
                    sctp(A, B, 5007, 80, TAG_B, &[ch(SHUTDOWN, &[0; 4])]),
                    sctp(B, A, 80, 5007, TAG_A, &[ch(SHUTDOWN_ACK, b"")]),
                    sctp(A, B, 5007, 80, TAG_A, &[chunk(SHUTDOWN_COMPLETE, b"", 1)]),
                ],
            ),
            after(&[
                (CT_ESTABLISHED, "SCTP: SHUTDOWN_SENT"),
                (CT_ESTABLISHED_REPLY, "SCTP: SHUTDOWN_ACK_SENT"),
                (CT_ESTABLISHED, "SCTP: CLOSED"),
            ]),
            "CLOSED",
        ),
    ];
    let mut table = MiniTable::new(cfg());
    for (name, packets, verdicts, final_state) in cases {
        assert_eq!(packets.len(), verdicts.len(), "{name}");
        let mut conn = None;
        for (number, (pkt, (ctinfo, reason))) in packets.iter().zip(verdicts).enumerate() {
            let result = table.step(pkt, 0.0);
            assert_eq!(
                (result.ctinfo, result.reason.as_ref()),
                (ctinfo, reason),
                "{name} #{number}"
            );
            conn = conn.or(result.conn);
        }
        match conn {
            Some(conn) => assert_eq!(state(&table, conn), final_state, "{name}"),
            None => assert_eq!(final_state, "", "{name}"),
        }
    }
}

// -- robustness -----------------------------------------------------------------

fn any_chunk() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![0u8..16, any::<u8>()],
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..24),
        prop_oneof![Just(None), any::<u16>().prop_map(Some)],
    )
        .prop_map(|(ctype, flags, value, length)| {
            let mut raw = chunk(ctype, &value, flags);
            if let Some(length) = length {
                raw[2..4].copy_from_slice(&length.to_be_bytes());
            }
            raw
        })
}

proptest! {
    #[test]
    fn random_sctp_packets_never_panic(
        steps in prop::collection::vec(
            (any::<bool>(), prop_oneof![Just(0u32), Just(TAG_A), Just(TAG_B), any::<u32>()],
             prop::collection::vec(any_chunk(), 0..5), 0usize..120, any::<bool>()),
            1..8),
        state in 0u8..12,
    ) {
        let mut table = MiniTable::new(cfg());
        let mut conn = Conn::new(4, 132, 0, Tuple::new(A, B, 1, 2), Tuple::new(B, A, 2, 1), 0.0);
        conn.proto_state = state;
        conn.proto_data = _core::conntrack::conn::ProtoData::Sctp(Default::default());
        for (reply, vtag, chunks, cut, bad_crc) in steps {
            let (src, dst, sport, dport) = if reply { (B, A, 2, 1) } else { (A, B, 1, 2) };
            let built = sctp_full(src, dst, sport, dport, vtag, &chunks, bad_crc).truncated(20 + 12 + cut);
            let _ = table.step(&built, 1.0);
            let pkt = built.packet();
            let _ = sctp_error(&pkt, &cfg(), true);
            let _ = proto_sctp::new(&mut conn.clone(), &pkt, &cfg());
            let _ = proto_sctp::packet(&mut conn, &pkt, u8::from(reply), CT_NEW, 1.0, &cfg());
            let _ = state_name(&conn);
            let _ = can_early_drop(&conn);
        }
    }
}
