-- http page: the closing example, verificar_saude_api, with the result convention.
local HTTP = os.getenv("HTTP")
function verificar_saude_api()
    local resultado = http.get(HTTP .. "/api/health",
        nil,
        {["User-Agent"] = "MonstaAgent/1.0"}
    )

    if resultado.status == 200 then
        print("API está saudável")
        return true
    else
        print("API com problemas. Status:", resultado.status)
        return false
    end
end

local healthy = verificar_saude_api()
return { value = healthy and 1 or 0, status = healthy and "MetricOk" or "MetricCritical" }
--[==[ expect exit 0
API está saudável
{"status":"MetricOk","value":1}
]==]
