"""The longest statement of a dump, counted over pieces cut anywhere (``poundcake backup``
reads the client's output in blocks, ``poundcake restore`` the file in lines)."""

from __future__ import annotations

from poundcake.ops.backup import MIB, StatementMeter

DUMP = (
    b"/*!40101 SET NAMES utf8mb4 */;\n"
    b"CREATE TABLE `t` (\n  `j` longtext\n);\n"
    b"INSERT INTO `t` VALUES\n(1,'a;\\nb'),\n(2,'" + b"x" * 300 + b"');\n"
    b"UNLOCK TABLES;\n"
)
LONGEST = len(b"INSERT INTO `t` VALUES\n(1,'a;\\nb'),\n(2,'" + b"x" * 300 + b"');\n")


def measured(size: int) -> StatementMeter:
    meter = StatementMeter()
    for start in range(0, len(DUMP), size):
        meter.feed(DUMP[start : start + size])
    return meter


def test_every_cut_gives_the_same_longest_statement() -> None:
    assert {measured(size).largest for size in range(1, len(DUMP) + 1)} == {LONGEST}


def test_lines_give_the_same_longest_statement() -> None:
    meter = StatementMeter()
    for line in DUMP.splitlines(keepends=True):
        meter.feed(line)
    assert meter.largest == LONGEST


def test_packet_needed_only_when_the_server_limit_is_short() -> None:
    meter = measured(len(DUMP))
    assert meter.packet_needed(LONGEST + 1) is None
    assert meter.packet_needed(LONGEST) == MIB
    big = StatementMeter()
    big.feed(b"x" * (3 * MIB) + b";\n")
    assert big.packet_needed(MIB) == 4 * MIB
