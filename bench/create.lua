-- wrk script: POST /v1/keys with an empty JSON body, as the key in $CREATE_KEY.
local key = os.getenv("CREATE_KEY")
request = function()
  return wrk.format("POST", "/v1/keys", { ["X-API-Key"] = key, ["Content-Type"] = "application/json" }, "{}")
end
