-- wrk script of bench/run.py's XCAP scenario. Each request is the next line of a list of
-- "path<TAB>Authorization value" (one line: one document; many: writes spread over users).
--   wrk -t1 -c10 -d5s --latency -s bench/xcap.lua http://127.0.0.1:8000 -- GET list.tsv
--   wrk ... -- PUT list.tsv body.xml application/auth-policy+xml
-- done() prints one JSON line: requests, seconds, non2xx (status >= 400), socket errors,
-- latency p50/p99/max in ms.
local requests, index, threads = {}, 0, {}

function setup(thread)
  thread:set("offset", #threads * 7919)  -- threads start at different lines
  threads[#threads + 1] = thread
end

function init(args)
  local body, headers = nil, {}
  if args[3] then
    local file = io.open(args[3], "rb")
    body = file:read("*a")
    file:close()
    headers["Content-Type"] = args[4]
  end
  for line in io.lines(args[2]) do
    local path, auth = line:match("^([^\t]+)\t(.+)$")
    headers["Authorization"] = auth
    requests[#requests + 1] = wrk.format(args[1], path, headers, body)
  end
  index = (offset or 0) % #requests
end

function request()
  index = index % #requests + 1
  return requests[index]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "non2xx": %d, "connect": %d, "read": %d, '
      .. '"write": %d, "timeout": %d, "p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, e.status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
