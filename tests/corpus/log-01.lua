-- log page: set_ident, then the levels (the lines go to standard error; the test
-- checks them there).
log.set_ident("monitoramento-cpu")
log.info("Iniciando monitoramento")
local temperatura = 45.6
log.debug("Variáveis de sistema:", "Temp:", temperatura)
log.warn("Atenção")
log.set_ident("backup-automatico")
log.error("Iniciando backup")
print(pcall(log.set_ident, nil))
--[==[ expect exit 0
false	bad argument #1 to 'log.set_ident' (string expected, got nil)
]==]
