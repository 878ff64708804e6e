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


# Request pacing (barlake.core.pacing: GCRA). KEYS[1] holds the budget's theoretical arrival
# time in microseconds of Redis's own clock (TIME), so every instance reads one clock.
# ARGV: interval (µs per request), burst, cost, max wait (µs). Answers {granted 0|1, wait µs,
# start µs}: the start is the reserved instant on Redis's clock (what the contract tests check).
# A refused reservation changes nothing. The key expires once the bucket is full again.
PACE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '')
if tat == nil or tat < now then tat = now end
local new_tat = tat + cost * interval
local wait = new_tat - burst * interval - now
if wait < 0 then wait = 0 end
if wait > max_wait then return {0, math.floor(wait), 0} end
local ttl = math.floor((new_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl)
return {1, math.floor(wait), math.floor(now + wait)}
"""
