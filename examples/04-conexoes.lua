-- O módulo suporta tanto ws:// quanto wss://
local conexoes = {
    "ws://localhost:8765/ws",      -- Não seguro (HTTP)
    "wss://localhost:8766/ws",     -- Seguro (HTTPS)
    "ws://127.0.0.1:9/ws",         -- Servidor offline
}

for _, url in ipairs(conexoes) do
    local ok, resposta = pcall(ws.send_recv, url, "ping")
    if ok then
        print("Conexão bem-sucedida:", url)
    else
        print("Falha na conexão:", url, "-", resposta)
    end
end
