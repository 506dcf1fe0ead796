"""nftables rulesets: `nft list ruleset` text, nftables.conf files and `nft -j` JSON.

The text is parsed into the objects of the libnftables JSON schema (what
`nft -j list ruleset` prints), so both forms meet in one place; those
objects are then lowered into the same rule data the core evaluates for
iptables rulesets.
"""
