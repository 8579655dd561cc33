local function enviar_dados_seguros(url, dados)
  -- Converter dados para JSON (texto)
  local dados_json = json.encode(dados)

  local resposta = ws.send_recv(url, dados_json)

  -- Parsear resposta JSON
  return json.decode(resposta)
end

-- Exemplo com dados complexos
local dados_complexos = {
  usuarios = {
    {id = 1, nome = "Alice", ativo = true},
    {id = 2, nome = "Bob", ativo = false}
  },
  metricas = {
    cpu = 45.6,
    memoria = 78.3,
    timestamp = now()
  }
}

local resposta = enviar_dados_seguros("wss://localhost:8766/ws", dados_complexos)
