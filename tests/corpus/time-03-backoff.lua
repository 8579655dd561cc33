-- time page: executar_com_backoff with math.pow (Lua 5.1) and time.sleep.
-- Adapted: waits are a thousandth of the page's.
local tries = 0
local function funcao()
  tries = tries + 1
  if tries < 3 then error("falhou " .. tries, 0) end
  return "ok na tentativa " .. tries
end

local function executar_com_backoff(funcao, max_tentativas)
    local tentativa = 1
    while tentativa <= max_tentativas do
        local ok, resultado = pcall(funcao)
        if ok then
            return resultado
        end
        local wait_time = math.pow(2, tentativa - 1)
        log.warn("Tentativa", tentativa, "falhou. Aguardando", wait_time, "segundos")
        if tentativa < max_tentativas then
            time.sleep(wait_time / 1000)
        end
        tentativa = tentativa + 1
    end
    error("Todas as tentativas falharam")
end

print(executar_com_backoff(funcao, 5))
tries = -10
print(pcall(executar_com_backoff, funcao, 2))
--[==[ expect exit 0
ok na tentativa 3
false	time-03-backoff.lua:24: Todas as tentativas falharam
]==]
