-- ws page: send_recv, error handling with pcall, several servers.
-- Adapted: the servers are the local echo server and two closed ports.
local WS = os.getenv("WS")
local resposta = ws.send_recv(WS, "Olá, WebSocket!")
print("Resposta do servidor:", resposta)

local function enviar_com_tratamento(url, dados)
    local ok, resposta = pcall(ws.send_recv, url, dados)
    if ok then
        return resposta
    else
        log.error("Erro no WebSocket:", resposta)
        return nil
    end
end

local servidores = { "ws://127.0.0.1:1/ws", WS .. "/socket", "ws://127.0.0.1:2/ws" }
for _, servidor in ipairs(servidores) do
    local resposta = enviar_com_tratamento(servidor, "ping")
    if resposta then
        print("Servidor", servidor == WS .. "/socket", "respondendo")
        break
    end
end

local function enviar_dados_seguros(url, dados)
    return json.decode(ws.send_recv(url, json.encode(dados)))
end
print(enviar_dados_seguros(WS, {metricas = {cpu = 45.6}}).metricas.cpu)
print(pcall(ws.send_recv, WS .. "/binary", "x"))
--[==[ expect exit 0
Resposta do servidor:	Olá, WebSocket!
Servidor	true	respondendo
45.6
false	ws binary messages not supported
]==]
