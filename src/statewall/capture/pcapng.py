"""The pcapng file format (IETF draft-ietf-opsawg-pcapng): the constants the writer uses.

A file is a sequence of blocks: `type, total length, body, total length`. A
Section Header Block starts each section and fixes its byte order; Interface
Description Blocks describe the interfaces; packets come in Enhanced, Simple
or (obsolete) Packet Blocks. The reader is in the Rust core
(core/src/capture/pcapng.rs).
"""

from __future__ import annotations

SHB_MAGIC = b"\x0a\x0d\x0d\x0a"

BT_SHB = 0x0A0D0D0A
BT_IDB = 0x00000001
BT_PB = 0x00000002  # obsolete Packet Block
BT_SPB = 0x00000003
BT_EPB = 0x00000006

BOM_LITTLE = b"\x4d\x3c\x2b\x1a"
BOM_BIG = b"\x1a\x2b\x3c\x4d"

OPT_ENDOFOPT = 0
IF_NAME = 2
IF_TSRESOL = 9
IF_TSOFFSET = 14
