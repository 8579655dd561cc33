-- script-lua page: the status convention. Adapted: the voltage comes from the
-- local API instead of snmp.get.
local HTTP = os.getenv("HTTP")
local volt = json.decode(http.get(HTTP .. "/api/dados").body).valor * 2

if volt > 230 then
   return { value=volt, status="MetricWarning" }
elseif volt < 100 then
   return { value=volt, status="MetricCritical" }
else
   return { value=volt, status="MetricOk" }
end
--[==[ expect exit 0
{"status":"MetricWarning","value":246}
]==]
