"""What both Redis adapters (redis-py and Upstash REST) send: the same commands, one Lua script.

Generations only move forward (`advance`): GCS generations are microsecond timestamps, so a
larger number is always a newer object. The script compares them as decimal strings (length,
then digits), exactly, whatever their size — Lua numbers are doubles and would round past 2^53.
"""

from __future__ import annotations

import re

ADVANCE_SCRIPT = """
local cur = redis.call('GET', KEYS[1])
local new = ARGV[1]
if cur and string.match(cur, '^[1-9][0-9]*$')
   and (#cur > #new or (#cur == #new and cur >= new)) then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return 0
end
redis.call('SET', KEYS[1], new, 'EX', ARGV[2])
return 1
"""

SCAN_COUNT = 1000
_GLOB = re.compile(r"([*?\[\]\\])")
_DIGITS = re.compile(rb"[1-9][0-9]{0,30}")


def scan_pattern(prefix: str) -> str:
    """A SCAN MATCH pattern for keys starting with prefix (glob characters escaped)."""
    return _GLOB.sub(r"\\\1", prefix) + "*"


def parse_generation(raw: bytes | str | None) -> int | None:
    """A stored generation, or None when absent or not a positive decimal (garbage)."""
    if raw is None:
        return None
    data = raw.encode("ascii", "replace") if isinstance(raw, str) else raw
    return int(data) if _DIGITS.fullmatch(data) else None


def check_generation(generation: int) -> str:
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 1:
        raise ValueError(f"a generation is a positive integer, got {generation!r}")
    return str(generation)
