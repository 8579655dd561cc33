-- time page: time.now and now, await(time.sleep(...)), polling with an interval.
-- Adapted: 0.01 s waits; the page's `local resposta, status = http.get(url)` is
-- written as the http page documents it (a table with status and body).
local HTTP = os.getenv("HTTP")
local timestamp_modulo = time.now()
local timestamp_global = now()
print("São iguais?", math.abs(timestamp_global - timestamp_modulo) < 1)

await(time.sleep(0.01))
print("5 segundos se passaram")

local function poll_com_intervalo(url, intervalo_segundos, max_tentativas)
    for tentativa = 1, max_tentativas do
        log.info("Tentativa", tentativa, "de", max_tentativas)
        local resposta = http.get(url)
        if resposta.status == 200 then
            log.info("Sucesso na tentativa", tentativa)
            return resposta.body
        end
        if tentativa < max_tentativas then
            time.sleep(intervalo_segundos)
        end
    end
    log.error("Todas as tentativas falharam")
    return nil
end

print(poll_com_intervalo(HTTP .. "/api/health", 0.01, 6))
print(poll_com_intervalo(HTTP .. "/api/missing", 0.01, 2))
--[==[ expect exit 0
São iguais?	true
5 segundos se passaram
healthy
nil
]==]
