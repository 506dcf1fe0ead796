"""The Internet checksum (RFC 1071) and the pseudo-headers TCP, UDP and ICMPv6 use.

The arithmetic is the core's (core/src/checksum.rs), which sums 64-bit
words with an end-around carry; this module is its Python face, for the
conntrack trackers, the packet builder and the oracle.

* `internet_checksum(data, initial=0)`: one's-complement sum of 16-bit
  words (an odd length padded with a zero byte), folded and inverted;
  `initial` is a non-negative, possibly unfolded sum to start from (a
  pseudo-header's).
* `pseudo_header_sum(family, src, dst, proto, length)`: the unfolded sum of
  the IPv4 or IPv6 pseudo-header's 16-bit words, to seed `internet_checksum`.
* `l4_checksum_ok(family, src, dst, proto, segment)`: True when a
  TCP/UDP/UDP-Lite/ICMPv6 segment's checksum verifies (its sum, pseudo-header
  included, folds to 0xFFFF; 0000 and ffff in the field count as one value).
"""

from statewall._core import internet_checksum, l4_checksum_ok, pseudo_header_sum

__all__ = ["internet_checksum", "l4_checksum_ok", "pseudo_header_sum"]
