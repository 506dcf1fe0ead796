//! Display filters: which packets (or table entries, or events) an output shows.
//!
//! The expression is parsed in Python (`statewall.select`) into plain data,
//! JSON of the shape `Node` describes, and compiled here once: names become
//! the core's own codes' names, networks become masks, regular expressions
//! are compiled. Evaluation asks a `Subject` for the fields a test needs,
//! so one evaluator serves a replayed packet, a conntrack entry and an
//! event alike; text fields (the reason, the summary) are only spelt out
//! when a test reads them.
//!
//! A test on a field the subject lacks (the ports of an ICMP packet, the
//! rule of a packet no ruleset decided) is false; `!=` arrives here as
//! `not ==`, so it is then true.

use serde::Deserialize;

use crate::conntrack::conn::{ctstate_name, Conn};
use crate::conntrack::display::state_name;
use crate::conntrack::events::ConntrackEvent;
use crate::engine::{Firewall, PacketRecord, ReasonStyle};
use crate::output::record::{direction_name, tcp_state_name};
use crate::output::summary::{has_ports, packet_ports, push_summary};
use crate::packet::{Packet, PROTO_TCP};

/// Number-valued fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumField {
    Frame,
    Proto,
    Sport,
    Dport,
    Conn,
    Master,
    Mark,
    Zone,
    #[serde(rename = "rule.number")]
    RuleNumber,
}

/// Fields that hold one name out of a fixed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameField {
    Verdict,
    Ctstate,
    Ctdir,
    TcpState,
    /// The protocol's state as a listing prints it (TCP or SCTP).
    State,
    /// An event's type: NEW, UPDATE, DESTROY.
    Event,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddrField {
    Src,
    Dst,
}

/// Free-text fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextField {
    Reason,
    Summary,
    #[serde(rename = "rule.table")]
    RuleTable,
    #[serde(rename = "rule.chain")]
    RuleChain,
}

/// Any field, for the existence test (`sport` alone: the packet has ports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Field {
    Num(NumField),
    Name(NameField),
    Addr(AddrField),
    Text(TextField),
    Other(OtherField),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtherField {
    Status,
    Rule,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Cmp {
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum How {
    Eq,
    Contains,
    Regex,
}

/// The expression as Python hands it over.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Node {
    All {
        of: Vec<Node>,
    },
    Any {
        of: Vec<Node>,
    },
    Not {
        of: Box<Node>,
    },
    Has {
        field: Field,
    },
    Num {
        field: NumField,
        cmp: Cmp,
        value: u64,
    },
    NumIn {
        field: NumField,
        values: Vec<u64>,
    },
    NameIn {
        field: NameField,
        values: Vec<String>,
    },
    /// Every one of `bits` set (IPS_* bits).
    Status {
        bits: u32,
    },
    /// The field's value, masked, equals `value` (`conntrack --mark`).
    Masked {
        field: NumField,
        mask: u64,
        value: u64,
    },
    NetIn {
        field: AddrField,
        /// (address text, prefix length)
        nets: Vec<(String, u8)>,
    },
    Text {
        field: TextField,
        how: How,
        value: String,
        /// Where the value starts in the expression (1-based), for errors.
        column: usize,
    },
    /// The deciding rule; an absent part matches any.
    Rule {
        table: Option<String>,
        chain: Option<String>,
        number: Option<u32>,
    },
}

/// A network as a filter holds it: family, masked address, mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Net {
    family: u8,
    address: u128,
    mask: u128,
}

fn parse_net(text: &str, prefix: u8) -> Result<Net, String> {
    let addr: std::net::IpAddr = text
        .parse()
        .map_err(|_| format!("not an address: {text:?}"))?;
    let (family, address, width) = match addr {
        std::net::IpAddr::V4(a) => (4, u128::from(u32::from(a)), 32u32),
        std::net::IpAddr::V6(a) => (6, u128::from(a), 128u32),
    };
    let prefix = u32::from(prefix);
    if prefix > width {
        return Err(format!("prefix /{prefix} is longer than the address"));
    }
    let all = if width == 32 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    // A shift by the full 128 bits would overflow: `checked_shr` makes it 0.
    let mask = all & !all.checked_shr(prefix).unwrap_or(0);
    Ok(Net {
        family,
        address: address & mask,
        mask,
    })
}

/// The compiled expression.
#[derive(Clone, Debug)]
enum Expr {
    All(Vec<Expr>),
    Any(Vec<Expr>),
    Not(Box<Expr>),
    Has(Field),
    Num(NumField, Cmp, u64),
    NumIn(NumField, Vec<u64>),
    NameIn(NameField, Vec<String>),
    Status(u32),
    Masked(NumField, u64, u64),
    NetIn(AddrField, Vec<Net>),
    TextEq(TextField, String),
    TextContains(TextField, String),
    TextRegex(TextField, Box<regex_lite::Regex>),
    Rule(Option<String>, Option<String>, Option<u32>),
}

fn compile(node: Node) -> Result<Expr, String> {
    let many = |of: Vec<Node>| of.into_iter().map(compile).collect::<Result<Vec<_>, _>>();
    Ok(match node {
        Node::All { of } => Expr::All(many(of)?),
        Node::Any { of } => Expr::Any(many(of)?),
        Node::Not { of } => Expr::Not(Box::new(compile(*of)?)),
        Node::Has { field } => Expr::Has(field),
        Node::Num { field, cmp, value } => Expr::Num(field, cmp, value),
        Node::NumIn { field, values } => Expr::NumIn(field, values),
        Node::NameIn { field, values } => Expr::NameIn(field, values),
        Node::Status { bits } => Expr::Status(bits),
        Node::Masked { field, mask, value } => Expr::Masked(field, mask, value),
        Node::NetIn { field, nets } => Expr::NetIn(
            field,
            nets.iter()
                .map(|(text, prefix)| parse_net(text, *prefix))
                .collect::<Result<_, _>>()?,
        ),
        Node::Text {
            field,
            how,
            value,
            column,
        } => match how {
            How::Eq => Expr::TextEq(field, value),
            How::Contains => Expr::TextContains(field, value),
            How::Regex => {
                let re = regex_lite::Regex::new(&value).map_err(|err| {
                    let first = err.to_string();
                    let first = first.lines().last().unwrap_or("").trim().to_string();
                    format!("at column {column}: bad regular expression: {first}")
                })?;
                Expr::TextRegex(field, Box::new(re))
            }
        },
        Node::Rule {
            table,
            chain,
            number,
        } => Expr::Rule(table, chain, number),
    })
}

/// What a filter asks of the thing it looks at; None: the subject has no
/// such field.
pub trait Subject {
    fn number(&mut self, field: NumField) -> Option<u64>;
    fn name(&mut self, field: NameField) -> Option<&'static str>;
    /// (family, address)
    fn address(&mut self, field: AddrField) -> Option<(u8, u128)>;
    fn status(&mut self) -> Option<u32>;
    fn text(&mut self, field: TextField) -> Option<&str>;
    /// (table, chain, number) of the deciding rule.
    fn rule(&mut self) -> Option<(&str, &str, u32)>;
}

fn has<S: Subject + ?Sized>(s: &mut S, field: Field) -> bool {
    match field {
        Field::Num(f) => s.number(f).is_some(),
        Field::Name(f) => s.name(f).is_some(),
        Field::Addr(f) => s.address(f).is_some(),
        Field::Text(f) => s.text(f).is_some(),
        Field::Other(OtherField::Status) => s.status().is_some(),
        Field::Other(OtherField::Rule) => s.rule().is_some(),
    }
}

impl Expr {
    fn eval<S: Subject + ?Sized>(&self, s: &mut S) -> bool {
        match self {
            Expr::All(of) => of.iter().all(|e| e.eval(s)),
            Expr::Any(of) => of.iter().any(|e| e.eval(s)),
            Expr::Not(of) => !of.eval(s),
            Expr::Has(field) => has(s, *field),
            Expr::Num(field, cmp, value) => s.number(*field).is_some_and(|v| match cmp {
                Cmp::Eq => v == *value,
                Cmp::Lt => v < *value,
                Cmp::Le => v <= *value,
                Cmp::Gt => v > *value,
                Cmp::Ge => v >= *value,
            }),
            Expr::NumIn(field, values) => s.number(*field).is_some_and(|v| values.contains(&v)),
            Expr::NameIn(field, values) => s
                .name(*field)
                .is_some_and(|v| values.iter().any(|name| name == v)),
            Expr::Status(bits) => s.status().is_some_and(|v| v & bits == *bits),
            Expr::Masked(field, mask, value) => {
                s.number(*field).is_some_and(|v| v & mask == *value)
            }
            Expr::NetIn(field, nets) => s.address(*field).is_some_and(|(family, a)| {
                nets.iter()
                    .any(|n| n.family == family && a & n.mask == n.address)
            }),
            Expr::TextEq(field, value) => s.text(*field).is_some_and(|t| t == value),
            Expr::TextContains(field, value) => {
                s.text(*field).is_some_and(|t| t.contains(value.as_str()))
            }
            Expr::TextRegex(field, re) => s.text(*field).is_some_and(|t| re.is_match(t)),
            Expr::Rule(table, chain, number) => s.rule().is_some_and(|(t, c, n)| {
                table.as_deref().is_none_or(|want| want == t)
                    && chain.as_deref().is_none_or(|want| want == c)
                    && number.is_none_or(|want| want == n)
            }),
        }
    }
}

/// A compiled display filter.
#[derive(Clone, Debug)]
pub struct Filter {
    expr: Expr,
}

impl Filter {
    /// Compile the JSON `statewall.select` produces; the error says what is wrong.
    pub fn from_json(json: &str) -> Result<Filter, String> {
        let node: Node = serde_json::from_str(json).map_err(|err| format!("bad filter: {err}"))?;
        Ok(Filter {
            expr: compile(node)?,
        })
    }

    pub fn matches<S: Subject + ?Sized>(&self, subject: &mut S) -> bool {
        self.expr.eval(subject)
    }
}

/// One replayed packet with its result. Text fields are written into
/// `scratch` on first use.
pub struct PacketSubject<'a, 'p> {
    pub fw: &'a Firewall,
    pub rec: &'a PacketRecord,
    pub pkt: &'a Packet<'p>,
    scratch: &'a mut String,
    spelt: Option<TextField>,
}

impl<'a, 'p> PacketSubject<'a, 'p> {
    pub fn new(
        fw: &'a Firewall,
        rec: &'a PacketRecord,
        pkt: &'a Packet<'p>,
        scratch: &'a mut String,
    ) -> Self {
        PacketSubject {
            fw,
            rec,
            pkt,
            scratch,
            spelt: None,
        }
    }

    /// The packet's own ports: its protocol has them and it carries the
    /// layer-4 header (a later fragment does not).
    fn ports(&self) -> Option<(u16, u16)> {
        packet_ports(self.pkt)
    }
}

impl Subject for PacketSubject<'_, '_> {
    fn number(&mut self, field: NumField) -> Option<u64> {
        let rec = self.rec;
        match field {
            NumField::Frame => Some(rec.index + 1),
            NumField::Proto => (self.pkt.family != 0).then_some(u64::from(self.pkt.proto)),
            NumField::Sport => self.ports().map(|p| u64::from(p.0)),
            NumField::Dport => self.ports().map(|p| u64::from(p.1)),
            NumField::Conn => rec.conn.map(u64::from),
            NumField::Master => rec.master.map(u64::from),
            NumField::RuleNumber => rec.rule.map(|r| u64::from(r.number)),
            NumField::Mark | NumField::Zone => None,
        }
    }

    fn name(&mut self, field: NameField) -> Option<&'static str> {
        let rec = self.rec;
        match field {
            NameField::Verdict => Some(rec.verdict.name()),
            NameField::Ctstate => rec.ctinfo.map(ctstate_name),
            NameField::Ctdir => rec.ctdir.map(direction_name),
            NameField::TcpState | NameField::State => rec.tcp_state.map(tcp_state_name),
            NameField::Event => None,
        }
    }

    fn address(&mut self, field: AddrField) -> Option<(u8, u128)> {
        let pkt = self.pkt;
        (pkt.family != 0).then_some(match field {
            AddrField::Src => (pkt.family, pkt.src),
            AddrField::Dst => (pkt.family, pkt.dst),
        })
    }

    fn status(&mut self) -> Option<u32> {
        Some(self.rec.status)
    }

    fn text(&mut self, field: TextField) -> Option<&str> {
        match field {
            TextField::RuleTable => return self.rule().map(|(t, _, _)| t),
            TextField::RuleChain => return self.rule().map(|(_, c, _)| c),
            TextField::Reason | TextField::Summary => {}
        }
        if self.spelt != Some(field) {
            self.scratch.clear();
            if field == TextField::Reason {
                self.fw
                    .write_reason(self.scratch, self.rec, ReasonStyle::Full);
            } else {
                push_summary(self.scratch, self.pkt);
            }
            self.spelt = Some(field);
        }
        Some(self.scratch.as_str())
    }

    fn rule(&mut self) -> Option<(&str, &str, u32)> {
        let rule = self.rec.rule?;
        let (table, chain) = self.fw.rules().names(rule.family, rule.table, rule.chain);
        Some((table, chain, rule.number))
    }
}

/// A conntrack entry as a listing shows it: the original direction's
/// tuple, the protocol's state, the status bits, mark and zone.
/// `master`: the confirmation number of the connection that expected it.
pub struct EntrySubject<'a> {
    pub conn: &'a Conn,
    pub master: Option<u32>,
}

impl Subject for EntrySubject<'_> {
    fn number(&mut self, field: NumField) -> Option<u64> {
        let c = self.conn;
        match field {
            NumField::Proto => Some(u64::from(c.proto)),
            NumField::Sport => has_ports(c.proto).then_some(u64::from(c.orig.sport)),
            NumField::Dport => has_ports(c.proto).then_some(u64::from(c.orig.dport)),
            NumField::Conn => Some(u64::from(c.id)),
            NumField::Master => self.master.map(u64::from),
            NumField::Mark => Some(u64::from(c.mark)),
            NumField::Zone => Some(u64::from(c.zone)),
            NumField::Frame | NumField::RuleNumber => None,
        }
    }

    fn name(&mut self, field: NameField) -> Option<&'static str> {
        let c = self.conn;
        match field {
            NameField::State => Some(state_name(c)).filter(|s| !s.is_empty()),
            NameField::TcpState => (c.proto == PROTO_TCP).then(|| state_name(c)),
            _ => None,
        }
    }

    fn address(&mut self, field: AddrField) -> Option<(u8, u128)> {
        let c = self.conn;
        Some(match field {
            AddrField::Src => (c.family, c.orig.src),
            AddrField::Dst => (c.family, c.orig.dst),
        })
    }

    fn status(&mut self) -> Option<u32> {
        Some(self.conn.status)
    }

    fn text(&mut self, _field: TextField) -> Option<&str> {
        None
    }

    fn rule(&mut self) -> Option<(&str, &str, u32)> {
        None
    }
}

/// A `conntrack -E` event: its type and connection number, and for a
/// connection's event the entry as it was then (an expectation's event
/// has only the type and its master's number).
pub struct EventSubject<'a> {
    pub event: &'a ConntrackEvent,
}

impl Subject for EventSubject<'_> {
    fn number(&mut self, field: NumField) -> Option<u64> {
        let event = self.event;
        if field == NumField::Conn {
            return Some(u64::from(event.conn_id));
        }
        let entry = event.entry.as_ref()?;
        let orig = entry.orig;
        match field {
            NumField::Proto => Some(u64::from(entry.proto)),
            NumField::Sport => has_ports(entry.proto).then_some(u64::from(orig.sport)),
            NumField::Dport => has_ports(entry.proto).then_some(u64::from(orig.dport)),
            NumField::Mark => Some(u64::from(entry.mark)),
            NumField::Zone => Some(u64::from(entry.zone)),
            _ => None,
        }
    }

    fn name(&mut self, field: NameField) -> Option<&'static str> {
        let entry = self.event.entry.as_ref();
        match field {
            NameField::Event => Some(self.event.kind.name()),
            NameField::State => entry.map(|e| e.state).filter(|s| !s.is_empty()),
            NameField::TcpState => entry.filter(|e| e.proto == PROTO_TCP).map(|e| e.state),
            _ => None,
        }
    }

    fn address(&mut self, field: AddrField) -> Option<(u8, u128)> {
        let entry = self.event.entry.as_ref()?;
        let orig = entry.orig;
        Some(match field {
            AddrField::Src => (entry.family, orig.src),
            AddrField::Dst => (entry.family, orig.dst),
        })
    }

    fn status(&mut self) -> Option<u32> {
        self.event.entry.as_ref().map(|e| e.status)
    }

    fn text(&mut self, _field: TextField) -> Option<&str> {
        None
    }

    fn rule(&mut self) -> Option<(&str, &str, u32)> {
        None
    }
}

/// `--conn N`: packets of connection N and of the connections it expected,
/// recursively. A child is recognised by its first numbered packet, whose
/// master is then alive (an expectation dies with its master), and stays
/// followed from then on.
#[derive(Clone, Debug, Default)]
pub struct Follow {
    ids: Vec<u32>,
}

impl Follow {
    pub fn new(conn: u32) -> Self {
        Follow { ids: vec![conn] }
    }

    /// Whether `rec` belongs to the followed family of connections
    /// (remembering a new child).
    pub fn admit(&mut self, rec: &PacketRecord) -> bool {
        let Some(conn) = rec.conn else {
            return false;
        };
        if self.ids.contains(&conn) {
            return true;
        }
        match rec.master {
            Some(master) if self.ids.contains(&master) => {
                self.ids.push(conn);
                true
            }
            _ => false,
        }
    }
}

/// What a replay shows: the packets passing the filter and, with
/// `--conn`, belonging to the followed connections.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub filter: Option<Filter>,
    pub follow: Option<Follow>,
    scratch: String,
}

impl Selection {
    pub fn new(filter: Option<Filter>, follow: Option<Follow>) -> Self {
        Selection {
            filter,
            follow,
            scratch: String::new(),
        }
    }

    /// Whether everything is selected (no filter, no `--conn`).
    pub fn is_everything(&self) -> bool {
        self.filter.is_none() && self.follow.is_none()
    }

    /// Whether the packet just processed is shown.
    pub fn admits(&mut self, fw: &Firewall, rec: &PacketRecord, pkt: &Packet<'_>) -> bool {
        // The family is updated on every packet, before the filter can
        // short-circuit, so that no child's first packet goes unseen.
        let followed = self.follow.as_mut().is_none_or(|f| f.admit(rec));
        if !followed {
            return false;
        }
        match &self.filter {
            None => true,
            Some(filter) => {
                let mut subject = PacketSubject::new(fw, rec, pkt, &mut self.scratch);
                filter.matches(&mut subject)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A subject with fixed fields, to test the evaluator on its own.
    struct Fixed {
        sport: Option<u64>,
        verdict: &'static str,
        src: (u8, u128),
        status: u32,
        reason: String,
    }

    impl Subject for Fixed {
        fn number(&mut self, field: NumField) -> Option<u64> {
            match field {
                NumField::Sport => self.sport,
                NumField::Mark => Some(0x13),
                _ => None,
            }
        }
        fn name(&mut self, field: NameField) -> Option<&'static str> {
            (field == NameField::Verdict).then_some(self.verdict)
        }
        fn address(&mut self, _field: AddrField) -> Option<(u8, u128)> {
            Some(self.src)
        }
        fn status(&mut self) -> Option<u32> {
            Some(self.status)
        }
        fn text(&mut self, _field: TextField) -> Option<&str> {
            Some(&self.reason)
        }
        fn rule(&mut self) -> Option<(&str, &str, u32)> {
            Some(("filter", "FORWARD", 3))
        }
    }

    fn fixed() -> Fixed {
        Fixed {
            sport: Some(1024),
            verdict: "DROP",
            src: (4, 0xc000_0205),
            status: 0b110,
            reason: "SEQ beyond the receiver's window".into(),
        }
    }

    fn check(json: &str) -> bool {
        Filter::from_json(json).unwrap().matches(&mut fixed())
    }

    #[test]
    fn comparisons_and_absent_fields() {
        assert!(check(
            r#"{"op":"num","field":"sport","cmp":"<=","value":1024}"#
        ));
        assert!(!check(
            r#"{"op":"num","field":"sport","cmp":"<","value":1024}"#
        ));
        // A field the subject lacks: false, and its negation true.
        assert!(!check(
            r#"{"op":"num","field":"dport","cmp":">=","value":0}"#
        ));
        assert!(check(
            r#"{"op":"not","of":{"op":"num","field":"dport","cmp":"==","value":1}}"#
        ));
        assert!(!check(r#"{"op":"has","field":"dport"}"#));
        assert!(check(r#"{"op":"has","field":"sport"}"#));
    }

    #[test]
    fn names_sets_and_bits() {
        assert!(check(
            r#"{"op":"name_in","field":"verdict","values":["REJECT","DROP"]}"#
        ));
        assert!(check(r#"{"op":"status","bits":6}"#));
        assert!(!check(r#"{"op":"status","bits":5}"#));
        assert!(check(
            r#"{"op":"masked","field":"mark","mask":3,"value":3}"#
        ));
        assert!(!check(
            r#"{"op":"masked","field":"mark","mask":15,"value":19}"#
        ));
    }

    #[test]
    fn networks_keep_families_apart() {
        assert!(check(
            r#"{"op":"net_in","field":"src","nets":[["192.0.2.0",24]]}"#
        ));
        assert!(!check(
            r#"{"op":"net_in","field":"src","nets":[["192.0.3.0",24]]}"#
        ));
        // ::ffff:c000:205 is not the IPv4 address 192.0.2.5.
        assert!(!check(
            r#"{"op":"net_in","field":"src","nets":[["::c000:205",128]]}"#
        ));
        assert!(check(
            r#"{"op":"net_in","field":"src","nets":[["0.0.0.0",0]]}"#
        ));
        assert!(
            Filter::from_json(r#"{"op":"net_in","field":"src","nets":[["1.2.3.4",33]]}"#).is_err()
        );
    }

    fn numbered(conn: Option<u32>, master: Option<u32>) -> PacketRecord {
        PacketRecord {
            conn,
            master,
            ..PacketRecord::default()
        }
    }

    #[test]
    fn follow_takes_children_and_grandchildren_from_their_first_packet() {
        let mut follow = Follow::new(1);
        assert!(follow.admit(&numbered(Some(1), None)));
        assert!(!follow.admit(&numbered(Some(2), None)));
        assert!(!follow.admit(&numbered(None, None)));
        // 3 was expected by 1, 4 by 3, 5 by the unrelated 2.
        assert!(follow.admit(&numbered(Some(3), Some(1))));
        assert!(follow.admit(&numbered(Some(4), Some(3))));
        assert!(!follow.admit(&numbered(Some(5), Some(2))));
        // Once recognised, a child stays followed after its master is gone.
        assert!(follow.admit(&numbered(Some(4), None)));
    }

    #[test]
    fn texts_and_rules() {
        assert!(check(
            r#"{"op":"text","field":"reason","how":"contains","value":"window","column":1}"#
        ));
        assert!(check(
            r#"{"op":"text","field":"reason","how":"regex","value":"^SEQ .* window$","column":1}"#
        ));
        assert!(!check(
            r#"{"op":"text","field":"reason","how":"eq","value":"SEQ","column":1}"#
        ));
        assert!(check(
            r#"{"op":"rule","table":null,"chain":"FORWARD","number":3}"#
        ));
        assert!(!check(
            r#"{"op":"rule","table":"filter","chain":"INPUT","number":null}"#
        ));
        let err = Filter::from_json(
            r#"{"op":"text","field":"reason","how":"regex","value":"(","column":9}"#,
        )
        .unwrap_err();
        assert!(
            err.starts_with("at column 9: bad regular expression"),
            "{err}"
        );
    }
}
