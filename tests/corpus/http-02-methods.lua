-- http page: get with a bearer token, post (201), put, delete (204), head.
local HTTP = os.getenv("HTTP")
local resultado = http.get(HTTP .. "/api/usuarios/1",
    nil,
    {["Authorization"] = "Bearer token123"},
    {verify = true}
)
if resultado.status == 200 then
    print("Dados recebidos:", resultado.body)
else
    print("Erro:", resultado.status)
end
print("Sem token:", http.get(HTTP .. "/api/usuarios/1").status)

local dados_json = '{"nome": "Novo Usuário", "email": "usuario@exemplo.com"}'
resultado = http.post(HTTP .. "/api/usuarios",
    dados_json,
    {
        ["Content-Type"] = "application/json",
        ["Authorization"] = "Bearer token123"
    }
)
if resultado.status == 201 then
    print("Usuário criado com sucesso!")
    print("Resposta:", json.decode(resultado.body).criado.nome)
else
    print("Falha ao criar usuário. Status:", resultado.status)
end

local dados_atualizados = '{"nome": "Usuário Atualizado", "ativo": true}'
resultado = http.put(HTTP .. "/api/usuarios/1", dados_atualizados,
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer token123"})
if resultado.status == 200 then
    print("Usuário atualizado com sucesso!")
else
    print("Falha na atualização. Status:", resultado.status)
end

resultado = http.delete(HTTP .. "/api/usuarios/1", nil, {["Authorization"] = "Bearer token123"})
if resultado.status == 204 then
    print("Usuário removido com sucesso!")
else
    print("Falha ao remover usuário. Status:", resultado.status)
end

resultado = http.head(HTTP .. "/api/usuarios/1", nil, {["Authorization"] = "Bearer token123"})
print("Status da verificação:", resultado.status, #resultado.body)
--[==[ expect exit 0
Dados recebidos:	{"id": 1, "nome": "Alice"}
Sem token:	401
Usuário criado com sucesso!
Resposta:	Novo Usuário
Usuário atualizado com sucesso!
Usuário removido com sucesso!
Status da verificação:	200	0
]==]
