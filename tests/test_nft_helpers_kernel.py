"""nftables' `ct helper set` against the live kernel, on the shared helper captures.

The machine of the helper corpus (oracle.scenarios.STATEFUL_HELPERS_NFT): ct
helper objects assigned by a prerouting chain at priority filter, after
conntrack has made the entry (nft_ct_helper_obj_eval: only an unconfirmed
entry gets one). Each capture's data connections must be RELATED in the
kernel, and statewall must agree on every packet and on the final tables
(with the helper in each control connection's entry).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from statewall.oracle import cli_verify
from statewall.oracle.scenarios import STATEFUL_HELPERS_NFT
from statewall.oracle.verify import verify_capture

CAPTURES = ["ftp-epsv-retr-ipv4.pcap", "ftp-active-port-download-ipv4.pcap",
            "ftp-epsv-eprt-internet-ipv6.pcap", "tftp-rrq-read.pcap",
            "irc-dcc-send-and-chat.pcapng"]


@pytest.mark.kernel
@pytest.mark.shared
@pytest.mark.parametrize("capture", CAPTURES)
def test_ct_helper_set_after_conntrack(kernel: None, shared: Path, capture: str) -> None:
    result = verify_capture(shared / "traces" / capture, None, None, nft=STATEFUL_HELPERS_NFT)
    related = [p for p in result.packets if p.kernel_answer().startswith("RELATED")]
    assert related, f"{capture}: the kernel saw no RELATED packet: the helper was not attached"
    assert any("helper=" in entry for entry in result.table.kernel), capture
    wrong = [cli_verify.disagreement_line(p) for p in result.disagreements]
    assert not wrong, "\n".join(wrong)
    assert not result.table.only_kernel and not result.table.only_statewall
