-- wrk script: one JSON body POSTed again and again (e.g. POST /v1/executions of core.noop).
--
-- Arguments (after wrk's "--"): header name, header value (a credential), the body, requests
-- per second per thread (0: closed loop), and how many answers each thread stops after (0: run
-- for wrk's duration). Schedule, limit and report: common.lua.

local common = require("common")

function init(args)
  common.install(tonumber(args[4]), tonumber(args[5]))
  wrk.method = "POST"
  wrk.headers[args[1]] = args[2]
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = args[3]
end
