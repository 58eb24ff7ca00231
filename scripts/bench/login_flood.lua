-- POST /authorize: the login form with a wrong password, under a new username each time
-- (so no per-user lock makes the answer cheap), from one pre-login cookie and form.
-- bench.sh runs it beside client_credentials and validate (scenario login_flood).
-- Each connection waits BENCH_FLOOD_DELAY_MS between posts (bench.sh: 100 ms, so 32
-- connections try up to 320 logins a second, some 30 times what a host can hash); 0 sends
-- as fast as answers come, which on these shared cores measures CPU sharing with the
-- load generator more than Gatehouse.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
wrk.method = "POST"
wrk.path = "/authorize"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = os.getenv("BENCH_FLOOD_COOKIE")
local form, n = os.getenv("BENCH_FLOOD_FORM"), 0
local pause = tonumber(os.getenv("BENCH_FLOOD_DELAY_MS") or "100")
if pause > 0 then function delay() return pause end end
function request()
   n = n + 1
   return wrk.format(nil, nil, nil, form .. "&username=flood-" .. math.random(1e9) .. "-" .. n .. "&password=wrong")
end
-- 401: a password was checked; 503: the hashing bound answered; 429: nginx's limit answered.
function response(status, headers, body) count(status, status == 401 or status == 503 or status == 429) end
