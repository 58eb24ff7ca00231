-- POST /introspect by a --resource-server client on a pre-minted access token.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
wrk.method = "POST"
wrk.path = "/introspect"
wrk.body = "token=" .. form_escape(os.getenv("BENCH_TOKEN"))
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = os.getenv("BENCH_RS_BASIC")
function response(status, headers, body) count(status, status == 200 and body:find('"active":true', 1, true) ~= nil) end
