-- store page: delete, and the page's processar_e_limpar.
local function processar_dados(dados) return dados * 2 end

store.put("dados_processados", 21)
local function processar_e_limpar(chave)
    local dados, timestamp = store.get(chave)

    if dados then
        local resultado = processar_dados(dados)
        store.delete(chave)
        log.info("Dados processados e removidos:", chave)
        return resultado
    else
        log.warn("Chave não encontrada:", chave)
        return nil
    end
end

print(processar_e_limpar("dados_processados"))
print(processar_e_limpar("dados_processados"))
store.delete("cache_temporario")  -- absent: nothing happens
print(store.get("dados_processados"))
--[==[ expect exit 0
42
nil
nil	nil
]==]
