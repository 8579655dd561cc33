-- store page: put, then get with its timestamp (and os.date on it).
store.put("ultima_execucao", os.time())
store.put("contador_falhas", 0)
store.put("config", {
    timeout = 30,
    intervalo = 60,
    alertas = true
})

local ultima_exec, timestamp = store.get("ultima_execucao")
if ultima_exec then
    local diferenca = os.time() - timestamp
    print("Última execução há", diferenca <= 1, "segundos")
end

local config, ts = store.get("config")
if config then
    print("Configuração carregada", os.date("%H:%M:%S", ts) == os.date("%H:%M:%S", ts))
    local keys = {}
    for chave, valor in pairs(config) do keys[#keys + 1] = chave .. "=" .. tostring(valor) end
    table.sort(keys)
    print(table.concat(keys, " "))
end

local limite, _ = store.get("limite_temperatura")
limite = limite or 70  -- Default value if not configured
print(limite, (store.get("contador_falhas")), math.type((store.get("contador_falhas"))))
--[==[ expect exit 0
Última execução há	true	segundos
Configuração carregada	true
alertas=true intervalo=60 timeout=30
70	0	integer
]==]
