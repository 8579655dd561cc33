-- funcoes-globais: EXEC_IDENT, in logs, in data and as a store key.
-- wsprobe's EXEC_IDENT is the monitor's (the script's name): see the README.
print("Execução ID:", EXEC_IDENT)
local metrics = {
    ident = EXEC_IDENT,
    timestamp = now(),
    value = 42
}
store.put("results_" .. EXEC_IDENT, metrics.value)
print((store.get("results_" .. EXEC_IDENT)))
print((store.get_global(EXEC_IDENT .. ":results_" .. EXEC_IDENT)))
--[==[ expect exit 0
Execução ID:	globais-06-exec-ident.lua
42
42
]==]
