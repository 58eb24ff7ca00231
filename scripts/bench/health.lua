-- GET /health: the baseline (nginx -> FastCGI -> worker, no database write).
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
wrk.path = "/health"
function response(status, headers, body) count(status, status == 200) end
