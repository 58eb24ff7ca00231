-- code_exchange with scope openid: bench.sh mints the codes for its relying party and
-- sets BENCH_BASIC to it; every answer carries an ES256-signed ID Token.
dofile(os.getenv("BENCH_DIR") .. "/code_exchange.lua")
function response(status, headers, body)
   count(status, status == 200 and body:find('"id_token"', 1, true) ~= nil)
end
