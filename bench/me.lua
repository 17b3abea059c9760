-- wrk script: GET $TARGET_PATH (default /v1/me), rotating over the credentials in $CRED_FILE,
-- one per line, sent as $CRED_HEADER ("X-API-Key" for keys, "Authorization" with "Bearer " for tokens).
-- Every request is formatted once, in init: per request wrk only hands over the next one, so
-- the load generator spends as little as it can of its core.
local requests = {}
local i = 0
local header = os.getenv("CRED_HEADER") or "X-API-Key"
local prefix = os.getenv("CRED_PREFIX") or ""
local path = os.getenv("TARGET_PATH") or "/v1/me"

init = function(args)
  for line in io.lines(os.getenv("CRED_FILE")) do
    requests[#requests + 1] = wrk.format("GET", path, { [header] = prefix .. line })
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  i = math.random(#requests)
end

request = function()
  i = i % #requests + 1
  return requests[i]
end
