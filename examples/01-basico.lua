-- Conexão básica com servidor WebSocket
local url = "ws://127.0.0.1:8765/ws"
local mensagem = "Olá, WebSocket!"
local resposta = ws.send_recv(url, mensagem)
print("Resposta do servidor:", resposta)
-- Saída: "Olá, WebSocket!" (servidor echo)
