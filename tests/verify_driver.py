"""`statewall ARGS` in a process the cleanup tests can stop at a chosen moment.

python verify_driver.py MODE ARGS...; every mode prints `NS left firewall right`
on stderr when the namespaces are named. MODE:

* hold: after the namespaces are built and before the first packet is sent,
  print `READY` on stderr and wait for a line on stdin (the test kills the
  process there, or lets it go on).
* SIGINT, SIGTERM: send that signal to this process while the kernel firewall
  closes its NFLOG socket, the moment before its namespaces are deleted.
"""

from __future__ import annotations

import os
import signal
import sys

from statewall.cli import main
from statewall.oracle import kernel, netns, nflog


def announce_names() -> None:
    named = netns.new_names

    def announced(prefix: str = "sw-") -> tuple[str, str, str]:
        names = named(prefix)
        print("NS", *names, file=sys.stderr, flush=True)
        return names

    netns.new_names = announced  # type: ignore[assignment]


def hold_before_sending() -> None:
    send = kernel.KernelFirewall.send
    held: list[bool] = []

    def holding(self: kernel.KernelFirewall, datagram: bytes,
                side: int) -> kernel.KernelObservation:
        if not held:
            held.append(True)
            print("READY", file=sys.stderr, flush=True)
            sys.stdin.readline()
        return send(self, datagram, side)

    kernel.KernelFirewall.send = holding  # type: ignore[method-assign]


def signal_while_closing(signum: int) -> None:
    close = nflog.NflogListener.close

    def interrupted(self: nflog.NflogListener) -> None:
        os.kill(os.getpid(), signum)
        close(self)

    nflog.NflogListener.close = interrupted  # type: ignore[method-assign]


if __name__ == "__main__":
    mode, argv = sys.argv[1], sys.argv[2:]
    announce_names()
    if mode == "hold":
        hold_before_sending()
    else:
        signal_while_closing(signal.Signals[mode])
    sys.exit(main(argv))
