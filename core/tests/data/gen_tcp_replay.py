"""Write tcp_replay.txt: what the Python TCP tracker decides, step by step, for
the kernel scenarios of tests/test_proto_tcp.py and for random segment
sequences, so the Rust port can be checked against it decision for decision
and reason for reason (core/tests/tcp_replay.rs).

Run from the repository root: PYTHONPATH=src:tests python3 core/tests/data/gen_tcp_replay.py
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import test_proto_tcp as t
from statewall.config import Sysctls

OUT = Path(__file__).with_name("tcp_replay.txt")
SYSCTL_SETS = (
    {},
    {"nf_conntrack_tcp_be_liberal": 1},
    {"nf_conntrack_tcp_ignore_invalid_rst": 1},
    {"nf_conntrack_tcp_loose": 0, "nf_conntrack_tcp_max_retrans": 1},
)


def extra_steps(rng: random.Random, count: int) -> list[tuple]:
    """Wilder than the kernel-checked generator: any flags, SACK blocks, waits."""
    base = {"o": rng.getrandbits(32), "r": rng.getrandbits(32)}
    sent = {"o": 0, "r": 0}
    steps = []
    if rng.random() < 0.6:
        steps += [("o", "S", base["o"], 0, t.WIN, 0, rng.choice([b"", t.wscale(3)]), 0),
                  ("r", "SA", base["r"], base["o"] + 1, t.WIN, 0,
                   rng.choice([b"", t.wscale(3), t.SACK_PERM_OPT + t.wscale(2)]), 0),
                  ("o", "A", base["o"] + 1, base["r"] + 1, t.WIN, 0, b"", 0)]
    letters_pool = ["S", "SA", "A", "PA", "FA", "R", "RA", "A", "PA", "F", "", "SF", "AU"]
    for _ in range(count):
        who = rng.choice("or")
        peer_who = "r" if who == "o" else "o"
        letters = rng.choice(letters_pool)
        nxt = base[who] + 1 + sent[who]
        peer = base[peer_who] + 1 + sent[peer_who]
        seq = rng.choice([nxt, nxt, nxt - 1, nxt + 70000, 0, rng.getrandbits(32)])
        ack = rng.choice([peer, peer, peer + 1, peer - 70000, 0, rng.getrandbits(32)])
        length = 0 if "S" in letters or "R" in letters else rng.choice([0, 1, 100, 3000])
        opts = b""
        if "S" in letters:
            opts = rng.choice([b"", t.wscale(rng.choice([0, 9, 15])), t.SACK_PERM_OPT,
                               b"\x02\x04\x05\xb4" + t.SACK_PERM_OPT + t.wscale(7)])
        elif rng.random() < 0.3:
            blocks = [(peer + rng.randrange(-5000, 5000), peer + rng.randrange(-5000, 90000))
                      for _ in range(rng.randrange(1, 4))]
            opts = b"\x01\x01" + bytes((5, 2 + 8 * len(blocks))) + b"".join(
                struct.pack("!II", a & 0xFFFFFFFF, b & 0xFFFFFFFF) for a, b in blocks)
            if rng.random() < 0.3:
                opts = b"\x01\x01\x08\x0a" + struct.pack("!II", 1, 2) + opts
        if seq == nxt and rng.random() < 0.7:
            sent[who] += length + ("S" in letters) + ("F" in letters)
        wait = rng.choice([0, 0, 0, 0, 1, 31, 130, 400, 500000])
        steps.append((who, letters, seq, ack, rng.choice([t.WIN, 0, 65535, 1]), length, opts,
                      wait))
    return steps


def run(out: list[str], name: str, sysctls: dict[str, int], steps: list[tuple]) -> None:
    knobs = " ".join(f"{k}={v}" for k, v in sorted(sysctls.items()))
    out.append(f"# {name}\t{knobs}")
    flow = t.Flow(Sysctls(**sysctls))
    for step in steps:
        who, letters, seq, ack, win, length, opts = step[:7]
        wait = step[7] if len(step) > 7 else 0
        flow.wait(wait)
        src, dst, sport, dport = (t.CLIENT, t.SERVER, t.CPORT, t.SPORT) if who == "o" else \
            (t.SERVER, t.CLIENT, t.SPORT, t.CPORT)
        seq &= 0xFFFFFFFF
        ack &= 0xFFFFFFFF
        pkt = t.build(src, dst, sport, dport, seq, ack, t.flags_of(letters), win,
                      b"p" * length, opts)
        seen = flow.feed(pkt)
        assert "\t" not in seen.reason and "\n" not in seen.reason
        timeout = "-" if seen.timeout is None else repr(float(seen.timeout))
        out.append("\t".join((who, letters or ".", str(seq), str(ack), str(win), str(length),
                              opts.hex() or ".", str(wait), seen.ctstate, seen.state or "-",
                              timeout, "1" if seen.assured else "0", seen.reason)))


def main() -> None:
    out: list[str] = []
    for name, (sysctls, steps) in sorted(t.KERNEL_SCENARIOS.items()):
        if name == "first packets":
            for step in steps:
                run(out, f"{name} {step[1] or 'none'}", sysctls, [step])
        else:
            run(out, name, sysctls, steps)
    for knobs in SYSCTL_SETS:
        rng = random.Random(f"replay-{sorted(knobs.items())}")
        for number in range(25):
            run(out, f"kernel-like {number}", knobs, t._random_steps(rng, 12))
        for number in range(25):
            run(out, f"wild {number}", knobs, extra_steps(rng, 14))
    OUT.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
