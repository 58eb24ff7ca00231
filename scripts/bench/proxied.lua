-- GET /example/public/: the same example upstream as validate, without auth_request. The
-- cost of nginx's proxy hop alone, so validate's own cost can be told apart from it.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
wrk.path = "/example/public/"
function response(status, headers, body) count(status, status == 200) end
