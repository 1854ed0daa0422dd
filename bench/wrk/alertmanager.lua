-- wrk script: Alertmanager version 4 notifications, every alert a new episode.
--
-- Arguments (after wrk's "--"): bearer token, alerts per notification, requests per second per
-- thread (0: closed loop), this wrk run's number (6 hex digits, distinct for every run against
-- one database). Every request is built afresh: fingerprint = run, thread number (2 hex),
-- alert number (8 hex), so no payload is ever a replay. Schedule and report: common.lua.

local common = require("common")
local size, run
local sent = 0

function init(args)
  size = tonumber(args[2])
  run = args[4]
  common.install(tonumber(args[3]))
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
