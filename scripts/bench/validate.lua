-- GET /example/api/ with a Bearer token: nginx auth_request -> Gatehouse -> example upstream.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
wrk.path = "/example/api/"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
function response(status, headers, body) count(status, status == 200) end
