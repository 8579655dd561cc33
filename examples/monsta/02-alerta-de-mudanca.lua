-- A Monsta-style monitor that alerts on a change between runs: the store keeps the
-- last version seen (namespaced by EXEC_IDENT, which is this script's name), so each
-- run compares with the one before, across restarts.
local response = http.get("http://127.0.0.1:8767/version")
if response.status ~= 200 then signal("RepeatPrevValue") end  -- no new data point
local version = string.trim(response.body)

local previous, since = store.get("version")
if previous == nil then
    store.put("version", version)
    print("Primeira execução: versão", version)
    return {value = version, status = "MetricOk"}
end
if previous ~= version then
    store.put("version", version)
    print("A versão mudou:", previous, "->", version)
    return {value = version, status = "MetricWarning"}
end
print("Versão", version, "inalterada desde", os.date("!%Y-%m-%dT%H:%M:%SZ", since))
return {value = version, status = "MetricOk"}
