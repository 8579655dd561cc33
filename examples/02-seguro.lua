-- Conexão segura (wss://)
local url_segura = "wss://localhost:8766/ws"
local dados = json.encode({acao = "ping", timestamp = now()})
local resposta = ws.send_recv(url_segura, dados)
print("Resposta segura:", resposta)
