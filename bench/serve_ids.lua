-- serve_ids.lua: wrk script of bench/serve.sh. Each connection cycles the
-- reader ids of $SERVE_IDS_FILE (one a line), from its own offset, through
-- GET /api/recommendations/user/{id}?n=10; done() prints the percentiles
-- wrk's --latency table lacks (p99.9) and the non-2xx count in one line.
local ids = {}
local path = os.getenv("SERVE_IDS_FILE")
for line in io.lines(path) do
  if #line > 0 then ids[#ids + 1] = line end
end
local i = 0

function init(args)
  i = math.random(#ids)
end

function request()
  i = i % #ids + 1
  return wrk.format("GET", "/api/recommendations/user/" .. ids[i] .. "?n=10")
end

function done(summary, latency, requests)
  io.write(string.format("PCT %.3f %.3f %.3f\n", latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))
  io.write(string.format("NON2XX %d\n", summary.errors.status))
  local e = summary.errors
  io.write(string.format("ERRORS %d\n", e.connect + e.read + e.write + e.timeout))
end
