"""Conntrack helpers: protocol parsers that announce related connections.

One module per kernel helper (nf_conntrack_ftp/irc/tftp/amanda.c), a registry
(nf_conntrack_helper.c) and the confirm step that runs them (nf_confirm).
Expectations themselves live in `statewall.conntrack.expect`.
"""

from statewall.helpers.common import NOTHING, HelperVerdict
from statewall.helpers.confirm import confirm_with_helper
from statewall.helpers.registry import (
    HELPERS,
    HelperSpec,
    assign_helper,
    find_helper,
    helper_for_port,
    helper_name_of,
    run_helper,
)

__all__ = [
    "HELPERS", "NOTHING", "HelperSpec", "HelperVerdict", "assign_helper", "confirm_with_helper",
    "find_helper", "helper_for_port", "helper_name_of", "run_helper",
]
