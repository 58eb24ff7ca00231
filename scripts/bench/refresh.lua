-- POST /token grant_type=refresh_token along rotation chains. BENCH_FILE holds one
-- refresh token per connection; each thread keeps a pool of its chains' current
-- tokens: a request takes one, its response puts back the rotated successor. Every
-- token is used exactly once (reuse would revoke the family).
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local pool
function init(args) pool = lines_for_thread(os.getenv("BENCH_FILE")) end
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = os.getenv("BENCH_BASIC") }
function request()
   local token = take(pool)
   if not token then run_dry(); return wrk.format("GET", "/health") end
   return wrk.format("POST", "/token", headers, "grant_type=refresh_token&refresh_token=" .. form_escape(token))
end
function response(status, headers, body)
   local token = status == 200 and body:match('"refresh_token":"([^"]+)"')
   if token then pool[#pool + 1] = token end
   count(status, token and true or false)
end
