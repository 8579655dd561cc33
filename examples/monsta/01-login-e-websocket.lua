-- A Monsta-style monitor: log in over HTTP, then open the WebSocket with the token.
-- The demo's service (examples/demo.py) listens on 127.0.0.1:8767; the password
-- comes from the environment (wsprobe run --env DEMO_PASSWORD).
local base = "http://127.0.0.1:8767"

local login = http.post(base .. "/login",
    json.encode({user = "monitor", password = os.getenv("DEMO_PASSWORD")}),
    {["Content-Type"] = "application/json"})
if login.status ~= 200 then
    log.error("login recusado:", login.status, login.body)
    return {value = login.status, status = "MetricCritical"}
end
local token = json.decode(login.body).token

local ok, reply = pcall(ws.send_recv, "ws://127.0.0.1:8767/ws", "ping",
    {headers = {Authorization = "Bearer " .. token}, timeout = 5})
if not ok then
    log.error("WebSocket:", reply)
    return {value = reply, status = "MetricCritical"}
end

local answer = json.decode(reply)
print("Conectado como", answer.user, "- eco:", answer.echo)
return {value = answer.echo, status = answer.echo == "ping" and "MetricOk" or "MetricWarning"}
