//! Expectations: insertion, limits, matching, consumption, expiry, removal,
//! listings and events, plus bounded memory.

mod helpers_kit;

use _core::config::{HelperParams, Sysctls};
use _core::conntrack::conn::*;
use _core::conntrack::expect::*;
use _core::conntrack::l4proto::ExpectHooks;
use _core::helpers::helper_name_of;
use _core::packet::{PROTO_TCP, PROTO_UDP};
use helpers_kit::*;

fn master_conn(
    family: u8,
    proto: u8,
    src: &str,
    dst: &str,
    sport: u16,
    dport: u16,
    zone: u16,
) -> Conn {
    let mut conn = Conn::new(
        family,
        proto,
        zone,
        Tuple::new(ip(src), ip(dst), sport, dport),
        Tuple::new(ip(dst), ip(src), dport, sport),
        0.0,
    );
    conn.status |= IPS_CONFIRMED;
    conn.helper = Some(HelperKind::Ftp);
    conn
}

fn confirmed(_: ConnId) -> Option<bool> {
    Some(true)
}

#[allow(clippy::too_many_arguments)]
fn expectation(
    master: &Conn,
    id: u32,
    helper: &'static str,
    proto: u8,
    src: u128,
    src_mask: u128,
    sport: u16,
    sport_mask: u16,
    dst: u128,
    dport: u16,
) -> Expectation {
    Expectation::new(
        master,
        ConnId(id),
        helper,
        proto,
        src,
        src_mask,
        sport,
        sport_mask,
        dst,
        dport,
    )
}

// -- listings ---------------------------------------------------------------------

#[test]
fn proc_and_conntrack_lines_of_an_ftp_expectation() {
    let mut b = Machine::default();
    ftp_with_port(&mut b, 100.0, PORT_40000, 46182);
    let live = b.exp.live(100.5);
    assert_eq!(live.len(), 1);
    let exp = live[0];
    assert_eq!(
        proc_expect_line(exp, 100.5),
        "299 l3proto = 2 proto=6 src=10.77.0.2 dst=10.77.0.1 sport=0 dport=40000 ftp\n"
    );
    assert_eq!(
        conntrack_expect_line(exp, 100.5),
        "299 proto=6 src=10.77.0.2 dst=10.77.0.1 sport=0 dport=40000 mask-src=255.255.255.255 \
         mask-dst=255.255.255.255 sport=0 dport=65535 master-src=10.77.0.1 master-dst=10.77.0.2 \
         sport=46182 dport=21 class=0 helper=ftp"
    );
    assert!(conntrack_expect_event_line(ExpectEventKind::New, exp, 300)
        .starts_with("    [NEW] 300 proto=6 "));
}

#[test]
fn ipv6_proc_line_is_fully_expanded() {
    let mut b = Machine::default();
    b.send(&udp(C6, S6, 12348, 69, b"\x00\x01f\x00octet\x00"), 5.0);
    assert_eq!(
        b.listing(5.2),
        vec![
            "299 l3proto = 10 proto=17 src=fd77:0000:0000:0000:0000:0000:0000:0002 \
              dst=fd77:0000:0000:0000:0000:0000:0000:0001 sport=0 dport=12348 tftp\n"
        ]
    );
}

#[test]
fn flags_mask_and_policy_name_print_as_the_kernel_does() {
    let mut table = ExpectationTable::default();
    let master = master_conn(4, PROTO_UDP, "10.77.0.1", "10.77.0.255", 5137, 137, 0);
    let mut nb = expectation(
        &master,
        1,
        "netbios-ns",
        PROTO_UDP,
        ip("10.77.0.255"),
        ip("255.255.255.0"),
        137,
        0xFFFF,
        ip("10.77.0.1"),
        5137,
    );
    nb.flags = EXP_F_PERMANENT;
    let id = table
        .related(nb, &ExpectPolicy::new(1, 3), 10.0, 4096)
        .unwrap();
    let nb = table.get(id).unwrap();
    assert_eq!(
        proc_expect_line(nb, 10.2),
        "2 l3proto = 2 proto=17 src=10.77.0.255 dst=10.77.0.1 sport=137 dport=5137 PERMANENT netbios-ns\n"
    );
    assert_eq!(
        conntrack_expect_line(nb, 10.2),
        "2 proto=17 src=10.77.0.255 dst=10.77.0.1 sport=137 dport=5137 mask-src=255.255.255.0 \
         mask-dst=255.255.255.255 sport=65535 dport=65535 master-src=10.77.0.1 \
         master-dst=10.77.0.255 sport=5137 dport=137 PERMANENT class=0 helper=netbios-ns"
    );
    let sip_master = master_conn(4, PROTO_UDP, "10.77.0.1", "10.77.0.2", 5060, 5060, 0);
    let mut sip = expectation(
        &sip_master,
        2,
        "sip",
        PROTO_UDP,
        ip("10.77.0.2"),
        full_mask(4),
        0,
        0,
        ip("10.77.0.1"),
        5060,
    );
    sip.flags = EXP_F_PERMANENT | EXP_F_INACTIVE;
    let policy = ExpectPolicy {
        max_expected: 1,
        timeout: 180,
        name: "signalling",
    };
    let id = table.related(sip, &policy, 10.0, 4096).unwrap();
    assert_eq!(
        proc_expect_line(table.get(id).unwrap(), 10.5),
        "179 l3proto = 2 proto=17 src=10.77.0.2 dst=10.77.0.1 sport=0 dport=5060 PERMANENT,INACTIVE sip/signalling\n"
    );
}

#[test]
fn ipv6_addresses_print_as_inet_ntop_and_the_kernel_do() {
    let cases = [
        ("fd77::1", "fd77::1"),
        ("::", "::"),
        ("::1", "::1"),
        ("::ffff:10.77.0.1", "::ffff:10.77.0.1"),
        ("::10.77.0.1", "::10.77.0.1"),
        ("1:0:0:1:0:0:0:1", "1:0:0:1::1"),
        ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("fe80::", "fe80::"),
        ("64:ff9b::c000:201", "64:ff9b::c000:201"),
    ];
    for (text, want) in cases {
        assert_eq!(format_address(6, ip(text), false), want, "{text}");
    }
    assert_eq!(
        format_address(6, ip("fd77::2"), true),
        "fd77:0000:0000:0000:0000:0000:0000:0002"
    );
    assert_eq!(format_address(4, ip("10.77.0.255"), true), "10.77.0.255");
    assert_eq!(endpoint(6, ip("fd77::1"), 21), "[fd77::1]:21");
    assert_eq!(endpoint(4, ip("10.0.0.1"), 21), "10.0.0.1:21");
}

// -- matching and consumption -------------------------------------------------------

#[test]
fn child_is_related_until_the_reply_then_established() {
    let mut b = Machine::default();
    ftp_with_port(&mut b, 1.0, PORT_40000, 46182);
    let syn = data_syn(&mut b, 2.0, 20, 40000);
    let retransmitted = data_syn(&mut b, 2.5, 20, 40000);
    let synack = b.send(&tcp(C4, S4, 40000, 20, "SA", 900, 7001, b""), 3.0);
    let ack = b.send(&tcp(S4, C4, 20, 40000, "A", 7001, 901, b""), 3.0);
    assert_eq!(
        [syn.state, retransmitted.state, synack.state, ack.state],
        ["RELATED", "RELATED", "ESTABLISHED", "ESTABLISHED"]
    );
    let child_id = ack.id.unwrap();
    let child = b.conn(child_id);
    assert!(child.status & IPS_EXPECTED != 0 && child.status & IPS_SEEN_REPLY != 0);
    assert_eq!(child.helper, None);
    let master = b.conn(child.master.unwrap());
    assert_eq!(helper_name_of(Some(child), Some(master)), Some("ftp"));
    assert_eq!(helper_name_of(Some(master), None), None);
    assert!(b.exp.live(3.0).is_empty());
    assert_eq!(
        b.exp.related_reason(child_id).as_deref(),
        Some("RELATED: expected by ftp control 10.77.0.1:46182 → 10.77.0.2:21, PORT command in packet #5")
    );
}

#[test]
fn a_consumed_expectation_does_not_match_a_second_connection() {
    let mut b = Machine::default();
    ftp_with_port(&mut b, 1.0, PORT_40000, 46182);
    assert_eq!(data_syn(&mut b, 2.0, 20, 40000).state, "RELATED");
    assert_eq!(data_syn(&mut b, 2.0, 21000, 40000).state, "NEW");
    assert_eq!(b.exp.stats.expect_new, 1);
}

#[test]
fn expectation_is_consumed_even_when_the_first_packet_is_dropped() {
    let mut b = Machine::default();
    ftp_with_port(&mut b, 1.0, PORT_40000, 46182);
    let first = b.send_with(&tcp(S4, C4, 20, 40000, "S", 7000, 0, b""), 2.0, true);
    assert!(first.state == "RELATED" && !first.accepted);
    let again = data_syn(&mut b, 3.0, 20, 40000);
    assert_eq!(again.state, "NEW");
    assert_eq!(b.conn(again.id.unwrap()).master, None);
}

#[test]
fn source_must_match_unless_masked_and_destination_always() {
    let mut b = Machine::default();
    ftp_with_port(&mut b, 1.0, PORT_40000, 46182);
    assert_eq!(b.send(&syn("10.77.0.9", C4, 20, 40000), 2.0).state, "NEW");
    assert_eq!(b.send(&syn(S4, C4, 20, 40001), 2.0).state, "NEW");
    assert_eq!(b.send(&syn(S4, C4, 33333, 40000), 2.0).state, "RELATED");
}

#[test]
fn master_mark_is_copied_to_the_child() {
    let mut b = Machine::default();
    let mut ctl = ftp_with_port(&mut b, 1.0, PORT_40000, 46182);
    let master = ctl.client(&mut b, b"", 1.0).id.unwrap();
    b.conn_mut(master).mark = 7;
    let child = data_syn(&mut b, 2.0, 20, 40000).id.unwrap();
    assert_eq!(b.conn(child).mark, 7);
    assert_eq!(b.conn(child).master, Some(master));
}

#[test]
fn expectation_matches_only_in_its_zone() {
    let mut table = ExpectationTable::default();
    let master = master_conn(4, PROTO_TCP, C4, S4, 46182, 21, 5);
    let exp = expectation(
        &master,
        1,
        "ftp",
        PROTO_TCP,
        ip(S4),
        full_mask(4),
        0,
        0,
        ip(C4),
        40000,
    );
    table
        .related(exp, &ExpectPolicy::new(1, 300), 0.0, 4096)
        .unwrap();
    let zone0 = master_conn(4, PROTO_TCP, S4, C4, 20, 40000, 0);
    let zone5 = master_conn(4, PROTO_TCP, S4, C4, 20, 40000, 5);
    assert_eq!(table.find_new(None, &zone0, 9, 1.0, &confirmed), None);
    assert_eq!(
        table.find_new(None, &zone5, 9, 1.0, &confirmed),
        Some(ConnId(1))
    );
}

#[test]
fn unconfirmed_master_does_not_lend_its_expectations() {
    let mut table = ExpectationTable::default();
    let mut master = master_conn(4, PROTO_UDP, C4, S4, 12346, 69, 0);
    master.status &= !IPS_CONFIRMED;
    let exp = expectation(
        &master,
        1,
        "tftp",
        PROTO_UDP,
        ip(S4),
        full_mask(4),
        0,
        0,
        ip(C4),
        12346,
    );
    table
        .related(exp, &ExpectPolicy::new(1, 300), 0.0, 4096)
        .unwrap();
    let child = master_conn(4, PROTO_UDP, S4, C4, 50000, 12346, 0);
    fn judge(m: &Conn) -> impl Fn(ConnId) -> Option<bool> + '_ {
        move |_| Some(master_usable(m))
    }
    assert_eq!(table.find_new(None, &child, 1, 0.5, &judge(&master)), None);
    master.status |= IPS_CONFIRMED;
    assert_eq!(
        table.find_new(None, &child, 2, 0.6, &judge(&master)),
        Some(ConnId(1))
    );
    // Dying masters lend nothing either.
    let exp = expectation(
        &master,
        1,
        "tftp",
        PROTO_UDP,
        ip(S4),
        full_mask(4),
        0,
        0,
        ip(C4),
        12346,
    );
    table
        .related(exp, &ExpectPolicy::new(1, 300), 1.0, 4096)
        .unwrap();
    master.status |= IPS_DYING;
    assert_eq!(table.find_new(None, &child, 3, 1.5, &judge(&master)), None);
}

#[test]
fn through_the_hooks_a_master_lends_its_expectations_once_confirmed() {
    // The ExpectHooks path judges masters through the core's view: while the
    // announcing entry is unconfirmed nothing matches; once confirmed it does.
    let mut table = ExpectationTable::default();
    let mut master = master_conn(4, PROTO_UDP, C4, S4, 12346, 69, 0);
    master.status &= !IPS_CONFIRMED;
    table.touch_master(ConnId(1), &master, 7);
    let exp = expectation(
        &master,
        1,
        "tftp",
        PROTO_UDP,
        ip(S4),
        full_mask(4),
        0,
        0,
        ip(C4),
        12346,
    );
    table
        .related(exp, &ExpectPolicy::new(1, 300), 0.0, 4096)
        .unwrap();
    let child = master_conn(4, PROTO_UDP, S4, C4, 50000, 12346, 0);
    let mut stream = _core::conntrack::events::EventLog::new(false);
    let masters = |status_confirmed: bool| {
        let mut m = master.clone();
        if status_confirmed {
            m.status |= IPS_CONFIRMED;
        }
        [None, Some(m)]
    };
    let view = Slots(masters(false));
    assert_eq!(
        table.match_new(ConnId(2), &child, 7, 0.5, &view, &mut stream),
        None
    );
    let view = Slots(masters(true));
    assert_eq!(
        table.match_new(ConnId(2), &child, 8, 0.6, &view, &mut stream),
        Some(ConnId(1))
    );

    let mut b = Machine::default();
    b.use_hooks = true;
    b.send(&udp(C4, S4, 12345, 69, b"\x00\x01file\x00octet\x00"), 1.0);
    let first = b.send(&udp(S4, C4, 50000, 12345, b"\x00\x03\x00\x01"), 1.1);
    assert_eq!(first.state, "RELATED");
}

#[test]
fn inactive_and_permanent_flags() {
    let mut table = ExpectationTable::default();
    let master = master_conn(4, PROTO_UDP, C4, S4, 5060, 5060, 0);
    let mut exp = expectation(
        &master,
        1,
        "sip",
        PROTO_UDP,
        ip(S4),
        full_mask(4),
        0,
        0,
        ip(C4),
        5060,
    );
    exp.flags = EXP_F_PERMANENT | EXP_F_INACTIVE;
    let id = table
        .related(exp, &ExpectPolicy::new(1, 180), 0.0, 4096)
        .unwrap();
    let child = master_conn(4, PROTO_UDP, S4, C4, 5060, 5060, 0);
    assert_eq!(table.find_new(None, &child, 1, 1.0, &confirmed), None);
    table.get_mut(id).unwrap().flags = EXP_F_PERMANENT;
    assert_eq!(
        table.find_new(None, &child, 2, 1.0, &confirmed),
        Some(ConnId(1))
    );
    assert_eq!(
        table.find_new(None, &child, 3, 2.0, &confirmed),
        Some(ConnId(1))
    );
    assert_eq!(table.count(), 1);
}

// -- lifetime -----------------------------------------------------------------------

#[test]
fn expiry_is_fixed_at_creation_and_not_refreshed_by_master_traffic() {
    let mut b = Machine::default();
    let mut ctl = ftp_with_port(&mut b, 1000.0, PORT_40000, 46182);
    ctl.client(&mut b, b"NOOP\r\n", 1200.0);
    ctl.server(&mut b, b"200 ok\r\n", 1200.0);
    let live = b.exp.live(1299.0);
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].remaining(1299.0), 1);
    assert_eq!(data_syn(&mut b, 1299.5, 20, 40000).state, "RELATED");
}

#[test]
fn expired_expectation_no_longer_matches() {
    let mut b = Machine::default();
    ftp_with_port(&mut b, 1000.0, PORT_40000, 46182);
    assert!(b.exp.live(1320.0).is_empty());
    assert_eq!(data_syn(&mut b, 1320.0, 20, 40000).state, "NEW");
    assert!(b.events.contains(&("DESTROY", 40000)));
}

#[test]
fn master_death_removes_its_expectations_but_not_its_children() {
    let mut b = Machine::default();
    let mut ctl = ftp_with_port(&mut b, 1.0, PORT_40000, 46182);
    let child = data_syn(&mut b, 2.0, 20, 40000).id.unwrap();
    ctl.client(&mut b, b"PORT 10,77,0,1,156,65\r\n", 3.0);
    let master = ctl.client(&mut b, b"", 3.0).id.unwrap();
    assert_eq!(b.exp.live(3.0).len(), 1);
    b.destroy(master, 4.0);
    assert!(b.exp.live(4.0).is_empty());
    assert_eq!(b.events.last(), Some(&("DESTROY", 40001)));
    assert!(b.conns[child.0 as usize].is_some());
    assert!(!b.exp.knows_master(master));
    assert!(b.exp.ftp_state_of(master).is_none());
}

// -- limits -------------------------------------------------------------------------

#[test]
fn second_port_evicts_the_first_max_expected_1() {
    let mut b = Machine::default();
    let mut ctl = ftp_with_port(&mut b, 1.0, PORT_40000, 46182);
    ctl.client(&mut b, b"PORT 10,77,0,1,156,65\r\n", 2.0);
    assert_eq!(
        b.events,
        vec![("NEW", 40000), ("DESTROY", 40000), ("NEW", 40001)]
    );
    assert_eq!(
        b.listing(2.5),
        vec!["299 l3proto = 2 proto=6 src=10.77.0.2 dst=10.77.0.1 sport=0 dport=40001 ftp\n"]
    );
}

#[test]
fn retransmitted_command_replaces_the_identical_expectation() {
    let mut b = Machine::default();
    let mut ctl = ftp_with_port(&mut b, 1.0, PORT_40000, 46182);
    ctl.cseq -= PORT_40000.len() as u32;
    ctl.client(&mut b, PORT_40000, 100.0);
    assert_eq!(
        b.events,
        vec![("NEW", 40000), ("DESTROY", 40000), ("NEW", 40000)]
    );
    let live = b.exp.live(100.0);
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].expires, 400.0);
}

#[test]
fn same_announcement_from_another_master_clashes_and_is_dropped() {
    let mut b = Machine::default();
    let mut replies = Vec::new();
    for cport in [46001, 46002] {
        let mut ctl = Tcp::new(C4, S4, cport, 21);
        ctl.open(&mut b, 1.0);
        ctl.server(&mut b, b"220 hi\r\n", 1.0);
        replies.push(ctl.server(
            &mut b,
            b"227 Entering Passive Mode (10,77,0,2,156,65).\r\n",
            2.0,
        ));
    }
    assert!(replies[0].accepted);
    assert!(!replies[1].accepted);
    assert_eq!(
        replies[1].reason,
        "dropped by the ftp helper: 227 PASV reply but cannot add the expectation \
         TCP 10.77.0.1:any → 10.77.0.2:40001: it clashes with an expectation of ftp control \
         10.77.0.1:46001 → 10.77.0.2:21"
    );
    assert_eq!(b.exp.live(2.0).len(), 1);
}

#[test]
fn expect_max_refuses_and_the_request_is_dropped_with_its_entry() {
    let cfg = Sysctls {
        nf_conntrack_expect_max: 3,
        ..Sysctls::default()
    };
    let mut b = Machine::new(cfg, HelperParams::default());
    let seen: Vec<Seen> = (0..5)
        .map(|i| b.send(&udp(C4, S4, 20000 + i, 69, b"\x00\x01f\x00octet\x00"), 1.0))
        .collect();
    let accepted: Vec<bool> = seen.iter().map(|s| s.accepted).collect();
    assert_eq!(accepted, [true, true, true, false, false]);
    assert_eq!(
        seen[3].reason,
        "dropped by the tftp helper: RRQ (read request) but cannot add the expectation \
         UDP 10.77.0.2:any → 10.77.0.1:20003: expectation table full (nf_conntrack_expect_max=3)"
    );
    assert_eq!(b.exp.count(), 3);
    assert_eq!(b.count(), 3);
}

#[test]
fn expect_max_counts_after_eviction() {
    let cfg = Sysctls {
        nf_conntrack_expect_max: 1,
        ..Sysctls::default()
    };
    let mut b = Machine::new(cfg, HelperParams::default());
    let mut ctl = ftp_with_port(&mut b, 1.0, PORT_40000, 46182);
    assert!(
        ctl.client(&mut b, b"PORT 10,77,0,1,156,65\r\n", 2.0)
            .accepted
    );
    assert_eq!(b.dports(2.0), vec![40001]);
}

#[test]
fn policy_zero_means_the_kernel_cap() {
    let mut table = ExpectationTable::default();
    let master = master_conn(4, PROTO_TCP, C4, S4, 1, 2, 0);
    for port in 1..300 {
        let exp = expectation(&master, 1, "x", PROTO_TCP, 0, 0, 0, 0, ip(C4), port);
        assert!(table
            .related(exp, &ExpectPolicy::new(0, 60), 0.0, 4096)
            .is_ok());
    }
    assert_eq!(table.count(), 255);
}

#[test]
fn same_tuple_same_master_other_class_is_refused() {
    for klass in [0u8, 1] {
        let mut table = ExpectationTable::default();
        let master = master_conn(4, PROTO_UDP, C4, S4, 5060, 5060, 0);
        let first = expectation(
            &master,
            1,
            "sip",
            PROTO_UDP,
            ip(S4),
            full_mask(4),
            0,
            0,
            ip(C4),
            7000,
        );
        table
            .related(first, &ExpectPolicy::new(4, 180), 0.0, 4096)
            .unwrap();
        let mut second = expectation(
            &master,
            1,
            "sip",
            PROTO_UDP,
            ip(S4),
            full_mask(4),
            0,
            0,
            ip(C4),
            7000,
        );
        second.klass = klass;
        let refusal = table.related(second, &ExpectPolicy::new(4, 180), 1.0, 4096);
        assert_eq!(refusal.is_ok(), klass == 0);
        if let Err(why) = refusal {
            assert_eq!(
                why.reason,
                "the same tuple is already expected with another class"
            );
        }
        assert_eq!(table.count(), 1);
    }
}

// -- events ------------------------------------------------------------------------

const BODY: &str =
    "proto=6 src=10.20.2.1 dst=10.20.1.1 sport=0 dport=40004 mask-src=255.255.255.255 \
                    mask-dst=255.255.255.255 sport=0 dport=65535 master-src=10.20.1.1 \
                    master-dst=10.20.2.1 sport=40100 dport=21 class=0 helper=ftp";

#[test]
fn an_active_ftp_expectation_event_line_by_line() {
    let mut b = Machine::default();
    let mut ctl = Tcp::new("10.20.1.1", "10.20.2.1", 40100, 21);
    ctl.open(&mut b, 10.0);
    ctl.client(&mut b, b"USER a\r\n", 10.0);
    ctl.client(&mut b, b"PORT 10,20,1,1,156,68\r\n", 10.0);
    b.send(
        &tcp("10.20.2.1", "10.20.1.1", 20, 40004, "S", 1, 0, b""),
        10.5,
    );
    let lines: Vec<String> = b.exp.take_events().iter().map(ExpectEvent::line).collect();
    assert!(lines.is_empty(), "the machine drained them");
    let mut table = ExpectationTable::default();
    table.set_events(true);
    let master = master_conn(4, PROTO_TCP, "10.20.1.1", "10.20.2.1", 40100, 21, 0);
    let exp = expectation(
        &master,
        3,
        "ftp",
        PROTO_TCP,
        ip("10.20.2.1"),
        full_mask(4),
        0,
        0,
        ip("10.20.1.1"),
        40004,
    );
    table.related(exp, &ftp_policy(), 10.0, 4096).unwrap();
    let child = master_conn(4, PROTO_TCP, "10.20.2.1", "10.20.1.1", 20, 40004, 0);
    table.find_new(Some(ConnId(9)), &child, 4, 10.5, &confirmed);
    let events = table.take_events();
    let lines: Vec<String> = events.iter().map(ExpectEvent::line).collect();
    assert_eq!(
        lines,
        vec![
            format!("    [NEW] 300 {BODY}"),
            format!("[DESTROY] 299 {BODY}")
        ]
    );
    assert_eq!(events[0].kind, ExpectEventKind::New);
    assert_eq!(events[1].ts, 10.5);
}

fn ftp_policy() -> ExpectPolicy {
    _core::helpers::ftp::POLICY
}

#[test]
fn a_master_expiring_takes_its_expectation_along_at_its_expiry() {
    // A TFTP request, its master expiring (UDP 30 s), the same request again.
    let mut b = Machine::default();
    let request = udp(C4, S4, 1069, 69, b"\x00\x01report.txt\x00octet\x00");
    b.send(&request, 1000.0);
    b.send(&request, 1100.0);
    assert_eq!(
        b.events,
        vec![("NEW", 1069), ("DESTROY", 1069), ("NEW", 1069)]
    );
    assert_eq!(b.exp.stats.expect_create, 2);
    assert_eq!(b.exp.stats.expect_delete, 1);
}

#[test]
fn expiry_destroy_events_carry_zero_and_the_expiry_time() {
    let mut table = ExpectationTable::default();
    table.set_events(true);
    let master = master_conn(4, PROTO_TCP, C4, S4, 46182, 21, 0);
    let exp = expectation(
        &master,
        1,
        "ftp",
        PROTO_TCP,
        ip(S4),
        full_mask(4),
        0,
        0,
        ip(C4),
        40000,
    );
    table.related(exp, &ftp_policy(), 5.0, 4096).unwrap();
    assert_eq!(table.expire(400.0), 1);
    let events = table.take_events();
    assert_eq!(events[1].ts, 305.0);
    assert!(events[1].body.starts_with("0 proto=6 "));
}

// -- bounded memory -----------------------------------------------------------------

#[test]
fn replaced_and_evicted_expectations_free_their_memory_at_once() {
    let mut b = Machine::default();
    let mut ctl = ftp_with_port(&mut b, 1.0, PORT_40000, 46182);
    // Thousands of PORT commands within one expectation timeout: each evicts
    // (or replaces) the previous one; the heap must not keep them all.
    for n in 0..5000u32 {
        let cmd = format!("PORT 10,77,0,1,{},{}\r\n", 100 + n % 100, n % 200);
        let port_retransmit = n % 3 == 0;
        if port_retransmit {
            ctl.client_at(&mut b, cmd.as_bytes(), 2.0, false);
        }
        assert!(ctl.client(&mut b, cmd.as_bytes(), 2.0).accepted);
    }
    assert_eq!(b.exp.count(), 1);
    assert!(
        b.exp.timer_entries() <= 2 * b.exp.count() + 65,
        "{}",
        b.exp.timer_entries()
    );
    assert!(b.exp.slot_capacity() <= 2);
}

#[test]
fn memory_is_bounded_by_expect_max_under_announcement_floods() {
    let cfg = Sysctls {
        nf_conntrack_expect_max: 16,
        ..Sysctls::default()
    };
    let mut b = Machine::new(cfg, HelperParams::default());
    for i in 0..2000u16 {
        let seen = b.send(
            &udp(C4, S4, 10000 + i, 69, b"\x00\x01f\x00octet\x00"),
            1.0 + f64::from(i) / 100.0,
        );
        if !seen.accepted {
            // Full: free one by letting a master die.
            let victim = (0..b.conns.len()).find(|&k| b.conns[k].is_some()).unwrap();
            b.destroy(ConnId(victim as u32), 2.0);
        }
    }
    assert!(b.exp.count() <= 16);
    assert!(b.exp.slot_capacity() <= 17);
    assert!(b.exp.timer_entries() <= 2 * 16 + 65);
}

#[test]
fn a_reused_connection_id_starts_with_no_helper_state() {
    let mut b = Machine::default();
    let mut ctl = ftp_with_port(&mut b, 1.0, PORT_40000, 46182);
    let master = ctl.client(&mut b, b"", 1.0).id.unwrap();
    assert!(b.exp.ftp_state_of(master).is_some());
    b.destroy(master, 2.0);
    // The slot is reused by the next entry: nothing of the old master leaks.
    let mut next = Tcp::new(C4, S4, 46183, 21);
    let opened = next.open(&mut b, 3.0);
    assert_eq!(opened[0].id, Some(master));
    // Its first client segment is not parsed (no remembered position).
    assert!(next.client(&mut b, PORT_40000, 3.0).accepted);
    assert!(b.exp.live(3.0).is_empty());
}

/// Masters by slot, as the conntrack table shows them to the expectation hooks.
struct Slots<const N: usize>([Option<Conn>; N]);

impl<const N: usize> _core::conntrack::l4proto::ConnView for Slots<N> {
    fn get_conn(&self, id: ConnId) -> Option<&Conn> {
        self.0.get(id.0 as usize).and_then(Option::as_ref)
    }
}
