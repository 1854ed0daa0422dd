-- What every bench wrk script shares: an open-loop schedule, status counts, a request limit and
-- the report that bench/loadgen.py's parse_wrk reads. A script calls common.install(rate,
-- limit) from its init(args); wrk must run with bench/wrk as its working directory so that
-- require("common") finds this file.
--
-- With a rate (requests per second per thread), delay() gives each request its slot on the
-- thread's schedule; a connection that reaches its slot late (every connection busy) sends at
-- once and the lateness is counted, so the report says when wrk's latency (send to answer)
-- understates the open-loop latency. With a limit, a thread stops after that many answers.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local clock = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local common = {}
local threads = {}
local interval, limit = 0, 0
local next_slot = nil

-- Globals: done() reads every thread's counters with thread:get().
answered, non_2xx, server_errors, late, max_late_ms = 0, 0, 0, 0, 0

function common.install(rate, request_limit)
  interval = rate > 0 and 1000 / rate or 0
  limit = request_limit or 0
end

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

function delay()
  if interval == 0 then
    return 0
  end
  local now = now_ms()
  if next_slot == nil then
    next_slot = now
  end
  local slot = next_slot
  next_slot = next_slot + interval
  if slot < now - 1 then
    late = late + 1
    max_late_ms = math.max(max_late_ms, now - slot)
    return 0
  end
  return math.max(0, math.floor(slot - now + 0.5))
end

function response(status, headers, body)
  answered = answered + 1
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
    if status >= 500 then
      server_errors = server_errors + 1
    end
  end
  if limit > 0 and answered >= limit then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local totals = { answered = 0, non_2xx = 0, server_errors = 0, late = 0, max_late_ms = 0 }
  for _, thread in ipairs(threads) do
    for name, value in pairs(totals) do
      if name == "max_late_ms" then
        totals[name] = math.max(value, thread:get(name))
      else
        totals[name] = value + thread:get(name)
      end
    end
  end
  local errors = summary.errors
  io.write(string.format("BENCH requests %d\n", summary.requests))
  io.write(string.format("BENCH answered %d\n", totals.answered))
  io.write(string.format("BENCH seconds %.6f\n", summary.duration / 1e6))
  io.write(string.format("BENCH non_2xx %d\n", totals.non_2xx))
  io.write(string.format("BENCH server_errors %d\n", totals.server_errors))
  io.write(string.format("BENCH socket_errors %d\n",
    errors.connect + errors.read + errors.write + errors.timeout))
  io.write(string.format("BENCH p50_ms %.3f\n", latency:percentile(50) / 1000))
  io.write(string.format("BENCH p99_ms %.3f\n", latency:percentile(99) / 1000))
  io.write(string.format("BENCH max_ms %.3f\n", latency.max / 1000))
  io.write(string.format("BENCH late %d\n", totals.late))
  io.write(string.format("BENCH max_late_ms %.3f\n", totals.max_late_ms))
end

return common
