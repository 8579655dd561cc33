-- http page: http.request with a body, headers and options.
-- Adapted: https://api.exemplo.com/dados is the local API.
local HTTP = os.getenv("HTTP")
local resultado = http.request("POST", HTTP .. "/api/dados",
    '{"nome": "teste", "valor": 123}',
    {["Content-Type"] = "application/json"},
    {verify = true, charset = "utf-8"}
)

print("Status:", resultado.status)
print("Resposta:", resultado.body)
--[==[ expect exit 0
Status:	200
Resposta:	{"method": "POST", "recebido": "{\"nome\": \"teste\", \"valor\": 123}", "valor": 123}
]==]
