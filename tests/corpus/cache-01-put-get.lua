-- cache page: put with a ttl, get, delete.
local resultado_api = {status = "ativo", usuarios = 150}
cache.put("status_sistema", resultado_api, 300)
cache.put("ultima_atualizacao", "2026-01-15T10:30:00Z", 3600)
cache.put("contador_requisicoes", 42, 60)

local status = cache.get("status_sistema")
if status then
    print("Status do sistema:", status.status)
    print("Usuários ativos:", status.usuarios)
else
    print("Cache expirado ou não encontrado")
end

local ultima_atualizacao = cache.get("ultima_atualizacao")
if ultima_atualizacao then
    print("Última atualização:", ultima_atualizacao)
end

cache.put("curto", "x", 0.05)
sleep(0.1)
print(cache.get("curto"), cache.get("contador_requisicoes"))
cache.delete("dados_expirados")
cache.delete("contador_requisicoes")
print(cache.get("contador_requisicoes"))
print(pcall(cache.put, "k", "v", 0))
--[==[ expect exit 0
Status do sistema:	ativo
Usuários ativos:	150
Última atualização:	2026-01-15T10:30:00Z
nil	42
nil
false	cache.put: ttl must be a positive number of seconds, got 0
]==]
