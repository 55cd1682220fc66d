-- wrk script: POST the JSON body in the file $BODY, with the bearer token in
-- $TOKEN when set. Used by bench/serve_load.sh and the load checks in the
-- serving tests.
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("TOKEN")
if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
end
