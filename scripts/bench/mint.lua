-- Mints authorization codes through the real /authorize (session cookie,
-- remembered consent): each 302's code goes to BENCH_FILE.<thread>; a thread stops
-- once it has BENCH_COUNT / threads codes and then creates BENCH_FILE.<thread>.done
-- (wrk itself sleeps out -d, so bench.sh interrupts it once every thread is done).
-- wrk is far faster at this than Python.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local out, want, have = nil, 0, 0
function init(args)
   out = io.open(os.getenv("BENCH_FILE") .. "." .. wrk.thread:get("id"), "w")
   want = math.ceil(tonumber(os.getenv("BENCH_COUNT")) / nthreads)
end
wrk.path = "/authorize?response_type=code&client_id=" .. form_escape(os.getenv("BENCH_CLIENT_ID")) ..
   "&redirect_uri=" .. form_escape(os.getenv("BENCH_REDIRECT")) .. "&state=bench"
wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE")
function response(status, headers, body)
   if stopped then return end
   local code = (status == 302 or status == 303) and (headers["Location"] or headers["location"] or ""):match("[?&]code=([^&]+)")
   count(status, code and true or false)
   if code then
      out:write(code:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end), "\n")
      have = have + 1
      if have >= want then
         out:close()
         io.open(os.getenv("BENCH_FILE") .. "." .. wrk.thread:get("id") .. ".done", "w"):close()
         stopped = true
         wrk.thread:stop()
      end
   end
end
