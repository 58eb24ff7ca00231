-- Shared by the scenario scripts (loaded with dofile; bench.sh sets BENCH_DIR).
-- Each wrk thread has its own Lua state: `good`, `bad` and `starved` are per-thread
-- globals; done() (in the main state) sums them over the threads kept by setup().
-- Speed counts only good responses, never errors.

local threads, next_id = {}, 0
function setup(thread)                -- runs in the main state, once per thread
   thread:set("id", next_id)          -- 0-based, used to split input files
   next_id = next_id + 1
   table.insert(threads, thread)
end
nthreads = tonumber(os.getenv("BENCH_THREADS"))   -- wrk -t (init runs before all threads exist)

good, bad, starved, stopped, statuses = 0, 0, 0, false, {}

-- count(status, ok): one response, expected (ok) or not; statuses counts each code.
function count(status, ok)
   if stopped then return end         -- answers after the thread ran dry do not count
   if ok then good = good + 1 else bad = bad + 1 end
   statuses[status] = (statuses[status] or 0) + 1
end

-- run_dry(): the thread has no input left; stop it instead of sending junk.
function run_dry()
   if not stopped then starved = starved + 1; stopped = true; wrk.thread:stop() end
end

-- take(list): the next input (nil when none is left). wrk calls request() once on
-- thread 0 before the run only to inspect it (script_verify_request) and never
-- sends that request: that first call must not use up a code or a refresh token.
local verify_pending = nil
function take(list)
   if verify_pending == nil then verify_pending = (wrk.thread:get("id") == 0) end
   if verify_pending then verify_pending = false; return list[#list] end
   return table.remove(list)
end

-- lines_for_thread(path): this thread's share of a file, one entry per line.
function lines_for_thread(path)
   local id, n, out, i = wrk.thread:get("id"), nthreads, {}, 0
   for line in io.lines(path) do
      if line ~= "" then
         if i % n == id then out[#out + 1] = line end
         i = i + 1
      end
   end
   return out
end

function form_escape(s)
   return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function done(summary, latency, requests)
   local g, b, s, st, codes = 0, 0, 0, {}, {}
   for _, t in ipairs(threads) do
      g, b, s = g + t:get("good"), b + t:get("bad"), s + t:get("starved")
      for code, n in pairs(t:get("statuses")) do st[code] = (st[code] or 0) + n end
   end
   for code, n in pairs(st) do codes[#codes + 1] = code .. ":" .. n end
   table.sort(codes)
   local e = summary.errors
   local sock = e.connect + e.read + e.write + e.timeout
   local secs = summary.duration / 1e6
   io.write(string.format("BENCH good=%d bad=%d socket_errors=%d starved_threads=%d seconds=%.3f rps=%.1f p50_ms=%.2f p99_ms=%.2f statuses=%s\n",
      g, b, sock, s, secs, g / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
      #codes > 0 and table.concat(codes, ",") or "none"))
end
