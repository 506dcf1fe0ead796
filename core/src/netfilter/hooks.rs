//! The hook list (the kernel's `nf_hook_ops` / `nf_hook_entries`), built once.
//!
//! `HookList::build` sorts, per family and hook, what runs there by the
//! kernel's priorities: defragmentation -400, the raw table -300, conntrack
//! -200, mangle -150, destination NAT -100, filter 0, security 50, source
//! NAT 100, and the confirm step (helpers, then insertion) last. A table's
//! entry exists only where the loaded ruleset has that table's built-in
//! chain, so a packet never asks "is there a chain here?". An nftables base
//! chain is an entry of its own at its priority; nat-type chains (nft's and
//! the iptables nat table alike) are walked inside the NAT core's entry, in
//! their own priority order.
//!
//! Equal priorities: the kernel (nf_hook_entries_grow) inserts a new entry
//! before the first one whose priority is not lower than its own, so of two
//! entries at one priority the one registered LATER runs first. statewall
//! registers the built-in entries, then the nft base chains in ruleset
//! order, then the iptables tables (as when `nft -f` runs before
//! `iptables-restore`).

/// The five netfilter hooks of the IPv4 and IPv6 families, in the order
/// the kernel numbers them (named as iptables names the built-in chains).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
pub enum Hook {
    #[serde(rename = "PREROUTING")]
    PreRouting,
    #[serde(rename = "INPUT")]
    Input,
    #[serde(rename = "FORWARD")]
    Forward,
    #[serde(rename = "OUTPUT")]
    Output,
    #[serde(rename = "POSTROUTING")]
    PostRouting,
}

impl Hook {
    pub const ALL: [Hook; 5] = [
        Hook::PreRouting,
        Hook::Input,
        Hook::Forward,
        Hook::Output,
        Hook::PostRouting,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Hook::PreRouting => "PREROUTING",
            Hook::Input => "INPUT",
            Hook::Forward => "FORWARD",
            Hook::Output => "OUTPUT",
            Hook::PostRouting => "POSTROUTING",
        }
    }

    pub fn from_name(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|hook| hook.name() == name)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The iptables tables, each registered at its own priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TableKind {
    Raw,
    Mangle,
    Nat,
    Filter,
    Security,
}

impl TableKind {
    pub const ALL: [TableKind; 5] = [
        TableKind::Raw,
        TableKind::Mangle,
        TableKind::Nat,
        TableKind::Filter,
        TableKind::Security,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TableKind::Raw => "raw",
            TableKind::Mangle => "mangle",
            TableKind::Nat => "nat",
            TableKind::Filter => "filter",
            TableKind::Security => "security",
        }
    }

    pub fn from_name(name: &str) -> Option<TableKind> {
        TableKind::ALL
            .into_iter()
            .find(|table| table.name() == name)
    }

    /// NF_IP_PRI_* of the table at `hook` (NAT: destination NAT before
    /// filtering, source NAT after it).
    pub fn priority(self, hook: Hook) -> i32 {
        match self {
            TableKind::Raw => PRI_RAW,
            TableKind::Mangle => PRI_MANGLE,
            TableKind::Nat if matches!(hook, Hook::PreRouting | Hook::Output) => PRI_NAT_DST,
            TableKind::Nat => PRI_NAT_SRC,
            TableKind::Filter => PRI_FILTER,
            TableKind::Security => PRI_SECURITY,
        }
    }
}

pub const PRI_DEFRAG: i32 = -400;
pub const PRI_RAW: i32 = -300;
pub const PRI_CONNTRACK: i32 = -200;
pub const PRI_MANGLE: i32 = -150;
pub const PRI_NAT_DST: i32 = -100;
pub const PRI_FILTER: i32 = 0;
pub const PRI_SECURITY: i32 = 50;
pub const PRI_NAT_SRC: i32 = 100;
pub const PRI_CONFIRM: i32 = i32::MAX;

/// What runs at one place of a hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// nf_defrag_ipv4/ipv6: fragments are held until their datagram is whole.
    Defrag,
    /// nf_conntrack_in: attach an entry and a ctinfo.
    Conntrack,
    /// An iptables table's built-in chain for this hook.
    Table(TableKind),
    /// An nft base chain (filter or route type): table and chain positions
    /// in the family's ruleset.
    Chain { table: u16, chain: u16 },
    /// The NAT core (nf_nat_ipv4_fn), registered with the nat table: it
    /// walks the table's chain for a connection's first packet and rewrites
    /// every packet to its connection's binding.
    Nat,
    /// nf_confirm: the entry's helper reads the packet, then the entry is inserted.
    Confirm,
}

/// One entry with its priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HookEntry {
    pub priority: i32,
    pub entry: Entry,
}

/// `hooks[family][hook]`: the entries of each hook of IPv4 and IPv6, in
/// order; `nat[family][hook]`: the nat chains the NAT core walks there
/// (`Entry::Table(TableKind::Nat)` or `Entry::Chain`), in order.
#[derive(Clone, Debug, Default)]
pub struct HookList {
    hooks: [[Vec<HookEntry>; 5]; 2],
    nat: [[Vec<HookEntry>; 5]; 2],
}

/// Something a family's ruleset hooks in, in registration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registration {
    /// An iptables table's built-in chain.
    Table(TableKind, Hook),
    /// An nft base chain; `nat`: of type nat (walked by the NAT core).
    Chain {
        hook: Hook,
        priority: i32,
        table: u16,
        chain: u16,
        nat: bool,
    },
}

/// nf_hook_entries_grow: before the first entry of a priority not lower.
fn register(entries: &mut Vec<HookEntry>, new: HookEntry) {
    let at = entries
        .iter()
        .position(|e| e.priority >= new.priority)
        .unwrap_or(entries.len());
    entries.insert(at, new);
}

/// The hooks the NAT core registers at (nf_nat_ipv4_ops, nf_nat_ipv6_ops).
const NAT_HOOKS: [Hook; 4] = [
    Hook::PreRouting,
    Hook::Input,
    Hook::Output,
    Hook::PostRouting,
];

/// The NAT core's own priority at `hook`.
fn nat_core_priority(hook: Hook) -> i32 {
    TableKind::Nat.priority(hook)
}

fn family_index(family: u8) -> usize {
    usize::from(family == 6)
}

impl HookList {
    /// Build the list from what each family's ruleset registers, in order.
    pub fn build(v4: &[Registration], v6: &[Registration]) -> Self {
        let mut list = HookList::default();
        for (family, registered) in [(4u8, v4), (6u8, v6)] {
            let f = family_index(family);
            for hook in Hook::ALL {
                let entries = &mut list.hooks[f][hook.index()];
                if matches!(hook, Hook::PreRouting | Hook::Output) {
                    register(
                        entries,
                        HookEntry {
                            priority: PRI_DEFRAG,
                            entry: Entry::Defrag,
                        },
                    );
                    register(
                        entries,
                        HookEntry {
                            priority: PRI_CONNTRACK,
                            entry: Entry::Conntrack,
                        },
                    );
                }
                if matches!(hook, Hook::Input | Hook::PostRouting) {
                    register(
                        entries,
                        HookEntry {
                            priority: PRI_CONFIRM,
                            entry: Entry::Confirm,
                        },
                    );
                }
            }
            let mut nat_core = false;
            for &item in registered {
                let (hook, entry, nat) = match item {
                    Registration::Table(kind, hook) => {
                        let entry = HookEntry {
                            priority: kind.priority(hook),
                            entry: Entry::Table(kind),
                        };
                        (hook, entry, kind == TableKind::Nat)
                    }
                    Registration::Chain {
                        hook,
                        priority,
                        table,
                        chain,
                        nat,
                    } => (
                        hook,
                        HookEntry {
                            priority,
                            entry: Entry::Chain { table, chain },
                        },
                        nat,
                    ),
                };
                if !nat {
                    register(&mut list.hooks[f][hook.index()], entry);
                    continue;
                }
                // The family's first nat chain, whatever its hook, registers the
                // NAT core at all four NAT hooks (nf_nat_register_fn): a reply is
                // translated back in prerouting though only postrouting has a chain.
                if !nat_core {
                    nat_core = true;
                    for hook in NAT_HOOKS {
                        let core = HookEntry {
                            priority: nat_core_priority(hook),
                            entry: Entry::Nat,
                        };
                        register(&mut list.hooks[f][hook.index()], core);
                    }
                }
                register(&mut list.nat[f][hook.index()], entry);
            }
        }
        list
    }

    /// The entries of one hook, in priority order.
    pub fn entries(&self, family: u8, hook: Hook) -> &[HookEntry] {
        &self.hooks[family_index(family)][hook.index()]
    }

    /// The nat chains the NAT core walks at one hook, in priority order.
    pub fn nat_chains(&self, family: u8, hook: Hook) -> &[HookEntry] {
        &self.nat[family_index(family)][hook.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &HookList, family: u8, hook: Hook) -> Vec<String> {
        list.entries(family, hook)
            .iter()
            .map(|e| match e.entry {
                Entry::Defrag => "defrag".to_string(),
                Entry::Conntrack => "conntrack".to_string(),
                Entry::Confirm => "confirm".to_string(),
                Entry::Table(t) => t.name().to_string(),
                Entry::Nat => "nat".to_string(),
                Entry::Chain { table, chain } => format!("{table}.{chain}"),
            })
            .collect()
    }

    #[test]
    fn entries_in_kernel_priority_order_only_where_chains_exist() {
        let v4 = [
            (TableKind::Filter, Hook::Forward),
            (TableKind::Raw, Hook::PreRouting),
            (TableKind::Nat, Hook::PostRouting),
            (TableKind::Nat, Hook::PreRouting),
            (TableKind::Mangle, Hook::PreRouting),
            (TableKind::Security, Hook::Input),
            (TableKind::Filter, Hook::Input),
            (TableKind::Nat, Hook::Input),
        ]
        .map(|(kind, hook)| Registration::Table(kind, hook));
        let list = HookList::build(&v4, &[]);
        assert_eq!(
            names(&list, 4, Hook::PreRouting),
            ["defrag", "raw", "conntrack", "mangle", "nat"]
        );
        assert_eq!(
            names(&list, 4, Hook::Input),
            ["filter", "security", "nat", "confirm"]
        );
        assert_eq!(names(&list, 4, Hook::Forward), ["filter"]);
        assert_eq!(names(&list, 4, Hook::PostRouting), ["nat", "confirm"]);
        assert_eq!(names(&list, 6, Hook::PreRouting), ["defrag", "conntrack"]);
        assert_eq!(names(&list, 6, Hook::Forward), Vec::<String>::new());
    }

    fn chain(hook: Hook, priority: i32, chain: u16, nat: bool) -> Registration {
        Registration::Chain {
            hook,
            priority,
            table: 0,
            chain,
            nat,
        }
    }

    #[test]
    fn nft_base_chains_at_their_priorities_later_first_when_equal() {
        let v4 = [
            chain(Hook::Forward, 0, 1, false),
            chain(Hook::Forward, -5, 2, false),
            chain(Hook::Forward, 0, 3, false),
            chain(Hook::PostRouting, 100, 4, true),
            chain(Hook::PostRouting, 50, 5, true),
            Registration::Table(TableKind::Filter, Hook::Forward),
            Registration::Table(TableKind::Nat, Hook::PostRouting),
        ];
        let list = HookList::build(&v4, &[]);
        assert_eq!(
            names(&list, 4, Hook::Forward),
            ["0.2", "filter", "0.3", "0.1"]
        );
        assert_eq!(names(&list, 4, Hook::PostRouting), ["nat", "confirm"]);
        let nat: Vec<_> = list
            .nat_chains(4, Hook::PostRouting)
            .iter()
            .map(|e| e.entry)
            .collect();
        assert_eq!(
            nat,
            [
                Entry::Chain { table: 0, chain: 5 },
                Entry::Table(TableKind::Nat),
                Entry::Chain { table: 0, chain: 4 },
            ]
        );
    }

    #[test]
    fn one_nat_chain_registers_the_nat_core_at_all_four_nat_hooks() {
        // The kernel translates a masqueraded connection's replies back in
        // prerouting though the ruleset's only nat chain is in postrouting.
        let list = HookList::build(&[chain(Hook::PostRouting, 100, 1, true)], &[]);
        assert_eq!(
            names(&list, 4, Hook::PreRouting),
            ["defrag", "conntrack", "nat"]
        );
        assert_eq!(names(&list, 4, Hook::Input), ["nat", "confirm"]);
        assert_eq!(
            names(&list, 4, Hook::Output),
            ["defrag", "conntrack", "nat"]
        );
        assert_eq!(names(&list, 4, Hook::PostRouting), ["nat", "confirm"]);
        assert_eq!(names(&list, 4, Hook::Forward), Vec::<String>::new());
        assert!(list.nat_chains(4, Hook::PreRouting).is_empty());
        assert_eq!(names(&list, 6, Hook::PreRouting), ["defrag", "conntrack"]);
    }
}
