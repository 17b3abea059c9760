-- wrk script: GET $TARGET_PATH (default /v1/me), rotating over the credentials in $CRED_FILE,
-- one per line, sent as $CRED_HEADER ("X-API-Key" for keys, "Authorization" with "Bearer " for tokens).
local creds = {}
local i = 0
local header = os.getenv("CRED_HEADER") or "X-API-Key"
local prefix = os.getenv("CRED_PREFIX") or ""
local path = os.getenv("TARGET_PATH") or "/v1/me"

init = function(args)
  for line in io.lines(os.getenv("CRED_FILE")) do
    creds[#creds + 1] = prefix .. line
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  i = math.random(#creds)
end

request = function()
  i = i % #creds + 1
  return wrk.format("GET", path, { [header] = creds[i] })
end
