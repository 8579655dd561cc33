-- cache page: the stampede pattern with mark_pending, by three workers at once.
-- Adapted: the cache is shared by the scripts of one run, so three copies of this
-- script run at once (the directive below), and the expensive computation counts
-- itself in the store: it runs once, the other two wait for its value.
-- corpus: copies 3
local function calcular_dados_caros()
  local computed = (store.get_global("computed") or 0) + 1
  store.put_global("computed", computed)
  sleep(0.2)
  return {valor = 123}
end

local function obter_dados_caros(chave)
    local dados = cache.get(chave)
    if dados then
        return dados
    end

    local sucesso, erro = pcall(cache.mark_pending, chave)
    if not sucesso then
        -- Another worker already marked as pending, wait for the result
        dados = cache.get(chave)
        if dados then
            return dados
        end
    end

    local resultado = calcular_dados_caros()
    cache.put(chave, resultado, 300)
    return resultado
end

print(obter_dados_caros("dados").valor, (store.get_global("computed")))
--[==[ expect exit 0
123	1
]==]
