-- funcoes-globais: with_timeout(timeout_ms, func, ...), the page's three uses.
-- Adapted: some_long_running_operation waits 50 ms; http.get reads the local API
-- (both with 10 s, not the page's 2 s and 1 s: the first http call imports aiohttp,
-- which a loaded machine may take a second for);
-- critical_operation would wait 30 s on a WebSocket that never answers (it is
-- interrupted: its own timeout's error would be "no response from web socket").
local HTTP, WS = os.getenv("HTTP"), os.getenv("WS")
local function some_long_running_operation() sleep(0.05) return "done" end
local function critical_operation() return ws.send_recv(WS .. "/silent", "ping", {timeout = 30}) end

local result = with_timeout(10000, function()
    return some_long_running_operation()
end)
print(result)

local data = with_timeout(10000, http.get, HTTP .. "/api/health")
print(data.status, data.body)

local started = now()
local success, result = pcall(function()
    return with_timeout(500, function()
        return critical_operation()
    end)
end)

if not success then
    print("Operação excedeu o timeout de 500ms")
    print(result)
end
-- Far sooner than the operation's own 30 s, with a loaded machine's margin.
print(now() - started < 20)
--[==[ expect exit 0
done
200	healthy
Operação excedeu o timeout de 500ms
with_timeout: timed out after 500 ms
true
]==]
