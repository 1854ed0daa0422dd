-- wrk script: Alertmanager version 4 notifications, every alert a new episode.
--
-- Arguments (after wrk's "--"): bearer token, alerts per notification, requests per second per
-- thread (0: closed loop, each connection sends as soon as its answer came), this wrk run's
-- number (6 hex digits, distinct for every run against one database). Every request is built
-- afresh: fingerprint = run, thread number (2 hex), alert number (8 hex), so no payload is
-- ever a replay.
--
-- With a rate, delay() gives each request its slot on the thread's schedule; a connection that
-- reaches its slot late (every connection busy) sends at once and the lateness is counted, so
-- the report says when wrk's latency (send to answer) understates the open-loop latency.
-- done() prints "BENCH <name> <number>" lines that bench/loadgen.py's parse_wrk reads.

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

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

-- Globals: done() reads the counters of every thread with thread:get().
local size, interval, run
sent, non_2xx, server_errors, late, max_late_ms = 0, 0, 0, 0, 0
local next_slot = nil

function init(args)
  size = tonumber(args[2])
  local rate = tonumber(args[3])
  interval = rate > 0 and 1000 / rate or 0
  run = args[4]
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. args[1]
  wrk.headers["Content-Type"] = "application/json"
end

local ALERT = '{"status":"firing","labels":{"alertname":"Bench%d","instance":"host-%s:9100",'
  .. '"job":"node","severity":"%s"},"annotations":{"summary":"Alert %s fired",'
  .. '"runbook_url":"http://rb/x"},"startsAt":"2026-05-01T00:%02d:%02d.123456789Z",'
  .. '"endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus:9090/graph?g0.expr=up",'
  .. '"fingerprint":"%s"}'
local SEVERITIES = { "critical", "warning", "info" }

function request()
  local parts = {}
  for i = 1, size do
    sent = sent + 1
    local fingerprint = string.format("%s%02x%08x", run, thread_number, sent)
    parts[i] = string.format(ALERT, sent % 50, fingerprint, SEVERITIES[sent % 3 + 1],
      fingerprint, math.floor(sent / 60) % 60, sent % 60, fingerprint)
  end
  local body = '{"version":"4","groupKey":"{}:{alertname=\\"Bench\\"}","truncatedAlerts":0,'
    .. '"status":"firing","receiver":"poundcake","groupLabels":{"alertname":"Bench"},'
    .. '"commonLabels":{"job":"node"},"commonAnnotations":{},'
    .. '"externalURL":"http://alertmanager:9093","alerts":[' .. table.concat(parts, ",") .. "]}"
  return wrk.format(nil, nil, nil, body)
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
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
    if status >= 500 then
      server_errors = server_errors + 1
    end
  end
end

function done(summary, latency, requests)
  local totals = { non_2xx = 0, server_errors = 0, late = 0, max_late_ms = 0 }
  for _, thread in ipairs(threads) do
    totals.non_2xx = totals.non_2xx + thread:get("non_2xx")
    totals.server_errors = totals.server_errors + thread:get("server_errors")
    totals.late = totals.late + thread:get("late")
    totals.max_late_ms = math.max(totals.max_late_ms, thread:get("max_late_ms"))
  end
  local errors = summary.errors
  io.write(string.format("BENCH requests %d\n", summary.requests))
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
