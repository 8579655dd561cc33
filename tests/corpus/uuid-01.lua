-- uuid page: generation, uniqueness, the page's validation pattern.
-- (The page's temporary-file example needs io.open, which scripts do not have.)
local id = uuid.uuid4()
local function validar_uuid(uuid_str)
    local padrao = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
    return string.match(uuid_str:lower(), padrao) ~= nil
end
print("UUID válido?", validar_uuid(id))
print("UUID válido?", validar_uuid("invalid"))

local sessao_token = "sess_" .. string.sub(uuid.uuid4(), 1, 8)
print(#sessao_token)

local function testar_unicidade(iteracoes)
    local uuids = {}
    local colisoes = 0
    for i = 1, iteracoes do
        local novo = uuid.uuid4()
        if uuids[novo] then colisoes = colisoes + 1 else uuids[novo] = true end
    end
    return { iteracoes = iteracoes, colisoes = colisoes, taxa_colisao = (colisoes / iteracoes) * 100 }
end
return testar_unicidade(1000)
--[==[ expect exit 0
UUID válido?	true
UUID válido?	false
13
{"colisoes":0,"iteracoes":1000,"taxa_colisao":0.0}
]==]
