-- funcoes-globais: signal("RepeatPrevValue") when collecting fails.
-- Adapted: collect_metric reads the local API and fails on a missing route.
local HTTP = os.getenv("HTTP")
local function collect_metric()
  local result = http.get(HTTP .. "/api/missing")
  if result.status ~= 200 then return nil, "status " .. result.status end
  return tonumber(result.body)
end

local value, err = collect_metric()
if err then
    -- In case of failure, repeat the previous value
    signal("RepeatPrevValue")
end
return value
--[==[ expect exit 0
signal RepeatPrevValue
]==]
