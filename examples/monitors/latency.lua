-- A scripted monitor: the reply time of the local echo server, in milliseconds.
local started = now()
local reply = ws.send_recv("ws://127.0.0.1:8765/", "ping")
if reply ~= "ping" then error("unexpected reply: " .. reply) end
local ms = (now() - started) * 1000
local warn = tonumber(os.getenv("LATENCY_WARN_MS")) or 250
return {value = ms, status = ms > warn and "MetricWarning" or "MetricOk"}
