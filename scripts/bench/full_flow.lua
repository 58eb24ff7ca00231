-- The whole code flow: GET /authorize (session cookie, remembered consent) -> 302
-- with a code, then POST /token with that code. wrk cannot tie a response to the
-- connection that sent it, so each thread keeps a pool of received codes: a
-- request exchanges a pooled code if there is one, else asks /authorize for a new
-- one. Authorize and token requests therefore stay paired (the pool never holds
-- more codes than connections); bench.sh reports pairs/s = good responses / 2.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local codes, redirect, authorize = {}
function init(args)
   redirect = form_escape(os.getenv("BENCH_REDIRECT"))
   authorize = "/authorize?response_type=code&client_id=" .. form_escape(os.getenv("BENCH_CLIENT_ID")) ..
      "&redirect_uri=" .. redirect .. "&state=bench"
end
local token_headers = { ["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = os.getenv("BENCH_BASIC") }
local authorize_headers = { ["Cookie"] = os.getenv("BENCH_COOKIE") }
function request()
   local code = table.remove(codes)
   if code then
      return wrk.format("POST", "/token", token_headers,
         "grant_type=authorization_code&code=" .. form_escape(code) .. "&redirect_uri=" .. redirect)
   end
   return wrk.format("GET", authorize, authorize_headers)
end
function response(status, headers, body)
   if status == 302 or status == 303 then
      local code = (headers["Location"] or headers["location"] or ""):match("[?&]code=([^&]+)")
      if code then codes[#codes + 1] = code:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end) end
      count(status, code ~= nil)
   else
      count(status, status == 200 and body:find('"access_token"', 1, true) ~= nil)
   end
end
