-- serve_ids.lua: wrk script of bench/serve.sh. Each wrk thread cycles the
-- reader ids of $SERVE_IDS_FILE (one a line), from its own random offset,
-- through GET /api/recommendations/user/{id}?n=10; done() prints the
-- percentiles wrk's --latency table lacks (p99.9) and the non-2xx count in
-- one line. The requests are formatted once per thread, in init(), as
-- redis-benchmark builds its commands up front: formatting each request
-- in Lua cost wrk enough of the two vCPUs it shares with the server to
-- lower the measured rate (docs/benchmarks.md, "wrk's own cost").
-- With SERVE_FIXED_PATH set, every request is a GET of that path instead
-- (serve.sh's floor of the HTTP layer: GET /healthz).
local ids = {}
local fixed = os.getenv("SERVE_FIXED_PATH")
if not fixed then
  for line in io.lines(os.getenv("SERVE_IDS_FILE")) do
    if #line > 0 then ids[#ids + 1] = line end
  end
end
local reqs = {}
local i = 0

function init(args)
  if fixed then
    reqs[1] = wrk.format("GET", fixed)
  end
  for k = 1, #ids do
    reqs[k] = wrk.format("GET", "/api/recommendations/user/" .. ids[k] .. "?n=10")
  end
  i = math.random(#reqs)
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end

function done(summary, latency, requests)
  io.write(string.format("PCT %.3f %.3f %.3f\n", latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))
  io.write(string.format("NON2XX %d\n", summary.errors.status))
  local e = summary.errors
  io.write(string.format("ERRORS %d\n", e.connect + e.read + e.write + e.timeout))
end
