-- store page: put_global / get_global, shared by every script, and the
-- maintenance-flag example (which returns early).
store.put_global("versao_agente", "2.5.1")
store.put_global("config_global", {
    timezone = "America/Sao_Paulo",
    log_level = "info",
    retencao_logs = 30  -- days
})

local versao, ts_versao = store.get_global("versao_agente")
if versao then
    print("Versão do agente:", versao, math.type(ts_versao))
end

local timezone, _ = store.get_global("timezone")
timezone = timezone or "UTC"  -- Default value if not configured
print("Timezone configurado:", timezone, store.get_global("config_global").timezone)

store.put_global("modo_manutencao", true)
local manutencao, ts_manutencao = store.get_global("modo_manutencao")
if manutencao then
    log.warn("Sistema em modo de manutenção desde", os.date("%H:%M:%S", ts_manutencao))
    -- Skip non-critical runs
    store.delete_global("modo_manutencao")
    return
end
print("not reached")
--[==[ expect exit 0
Versão do agente:	2.5.1	integer
Timezone configurado:	UTC	America/Sao_Paulo
]==]
