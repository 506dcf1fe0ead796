//! The hook list (the kernel's `nf_hook_ops` / `nf_hook_entries`), built once.
//!
//! `HookList::build` sorts, per family and hook, what runs there by the
//! kernel's priorities: defragmentation -400, the raw table -300, conntrack
//! -200, mangle -150, destination NAT -100, filter 0, security 50, source
//! NAT 100, and the confirm step (helpers, then insertion) last. A table's
//! entry exists only where the loaded ruleset has that table's built-in
//! chain, so a packet never asks "is there a chain here?". New kinds of
//! entry (nftables base chains at any priority) are one more variant.

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

/// `hooks[family][hook]`: the entries of each hook of IPv4 and IPv6, in order.
#[derive(Clone, Debug, Default)]
pub struct HookList {
    hooks: [[Vec<HookEntry>; 5]; 2],
}

fn family_index(family: u8) -> usize {
    usize::from(family == 6)
}

impl HookList {
    /// Build the list from the (table, hook) pairs each family's ruleset has chains for.
    pub fn build(chains_v4: &[(TableKind, Hook)], chains_v6: &[(TableKind, Hook)]) -> Self {
        let mut list = HookList::default();
        for (family, chains) in [(4u8, chains_v4), (6u8, chains_v6)] {
            for hook in Hook::ALL {
                let entries = &mut list.hooks[family_index(family)][hook.index()];
                if matches!(hook, Hook::PreRouting | Hook::Output) {
                    entries.push(HookEntry {
                        priority: PRI_DEFRAG,
                        entry: Entry::Defrag,
                    });
                    entries.push(HookEntry {
                        priority: PRI_CONNTRACK,
                        entry: Entry::Conntrack,
                    });
                }
                if matches!(hook, Hook::Input | Hook::PostRouting) {
                    entries.push(HookEntry {
                        priority: PRI_CONFIRM,
                        entry: Entry::Confirm,
                    });
                }
                for &(table, _) in chains.iter().filter(|(_, h)| *h == hook) {
                    entries.push(HookEntry {
                        priority: table.priority(hook),
                        entry: if table == TableKind::Nat {
                            Entry::Nat
                        } else {
                            Entry::Table(table)
                        },
                    });
                }
                // Stable: entries of equal priority keep their registration order.
                entries.sort_by_key(|entry| entry.priority);
            }
        }
        list
    }

    /// The entries of one hook, in priority order.
    pub fn entries(&self, family: u8, hook: Hook) -> &[HookEntry] {
        &self.hooks[family_index(family)][hook.index()]
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
        ];
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
}
