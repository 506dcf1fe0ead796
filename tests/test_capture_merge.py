"""Several captures of one link given at once: read as one capture, merged by timestamp.

The oracle is the capture a merging tool (mergecap) would write: the frames
of all files in timestamp order, ties in the order the files were given.
Replaying the files together must give the same bytes as replaying that
merged capture.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from statewall import builder as b
from statewall.capture import LINKTYPE_RAW
from statewall.capture.writer import write_pcap
from statewall.cli import main


def halves(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two captures of one TCP session, each holding one direction, and the
    merged capture (ties: the first file's frame first)."""
    forward = [(1.0, b.tcp("192.0.2.1", "198.51.100.1", 40000, 80, "S", 1, 0)),
               (1.2, b.tcp("192.0.2.1", "198.51.100.1", 40000, 80, "A", 2, 101)),
               (1.3, b.tcp("192.0.2.1", "198.51.100.1", 40000, 80, "FA", 2, 101))]
    backward = [(1.1, b.tcp("198.51.100.1", "192.0.2.1", 80, 40000, "SA", 100, 2)),
                (1.3, b.tcp("198.51.100.1", "192.0.2.1", 80, 40000, "FA", 101, 2))]
    paths = tmp_path / "a.pcap", tmp_path / "b.pcap", tmp_path / "merged.pcap"
    write_pcap(paths[0], forward, linktype=LINKTYPE_RAW)
    write_pcap(paths[1], backward, linktype=LINKTYPE_RAW)
    merged = sorted([(ts, 0, f) for ts, f in forward] + [(ts, 1, f) for ts, f in backward],
                    key=lambda x: (x[0], x[1]))
    write_pcap(paths[2], [(ts, f) for ts, _, f in merged], linktype=LINKTYPE_RAW)
    return paths


@pytest.mark.parametrize("command", [["replay", "--format", "jsonl"], ["replay"], ["table"],
                                     ["conns"]])
def test_several_captures_replay_as_their_merge(
        tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes], command: list[str]) -> None:
    first, second, merged = halves(tmp_path)
    assert main([command[0], str(merged), *command[1:]]) == 0
    expected = capfdbinary.readouterr().out
    assert main([command[0], str(first), str(second), *command[1:]]) == 0
    assert capfdbinary.readouterr().out == expected
    assert main([command[0], str(tmp_path / "[ab].pcap"), *command[1:]]) == 0  # a pattern
    assert capfdbinary.readouterr().out == expected
    assert b"ESTABLISHED" in expected or command[0] != "replay"


def test_a_folder_is_its_captures(tmp_path: Path,
                                  capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    _, _, merged = halves(tmp_path)
    folder = tmp_path / "link"
    folder.mkdir()
    for name in ("a.pcap", "b.pcap"):
        (folder / name).write_bytes((tmp_path / name).read_bytes())
    (folder / "README").write_text("not a capture")
    assert main(["replay", str(merged)]) == 0
    expected = capfdbinary.readouterr().out
    assert main(["replay", str(folder)]) == 0
    assert capfdbinary.readouterr().out == expected


@pytest.mark.parametrize(("args", "message"), [
    (["{tmp}/none*.pcap"], "{tmp}/none*.pcap: no file matches this pattern"),
    (["{tmp}"], "{tmp}: a folder without captures (*.pcap, *.pcapng, *.cap, "
                "gzip-compressed or not)"),
    (["-", "{tmp}/x.pcap"], "- (standard input) is one capture: it cannot be merged with others"),
])
def test_bad_capture_arguments_are_one_line(tmp_path: Path,
                                            capfdbinary: pytest.CaptureFixture[bytes],
                                            args: list[str], message: str) -> None:
    code = main(["replay", *(a.format(tmp=tmp_path) for a in args)])
    err = capfdbinary.readouterr().err.decode()
    assert code in (2, 3) and err == f"statewall: {message.format(tmp=tmp_path)}\n"
