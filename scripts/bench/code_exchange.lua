-- POST /token grant_type=authorization_code: each code of BENCH_FILE (minted ahead
-- through the real /authorize) is exchanged exactly once. A thread that runs out
-- of codes stops; bench.sh reports it.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local codes, redirect
function init(args)
   codes = lines_for_thread(os.getenv("BENCH_FILE"))
   redirect = form_escape(os.getenv("BENCH_REDIRECT"))
end
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = os.getenv("BENCH_BASIC") }
function request()
   local code = take(codes)
   if not code then run_dry(); return wrk.format("GET", "/health") end
   return wrk.format("POST", "/token", headers,
      "grant_type=authorization_code&code=" .. form_escape(code) .. "&redirect_uri=" .. redirect)
end
function response(status, headers, body) count(status, status == 200 and body:find('"access_token"', 1, true) ~= nil) end
