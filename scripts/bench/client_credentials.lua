-- POST /token, grant_type=client_credentials, HTTP Basic client authentication.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
wrk.method = "POST"
wrk.path = "/token"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = os.getenv("BENCH_BASIC")
function response(status, headers, body) count(status, status == 200 and body:find('"access_token"', 1, true) ~= nil) end
