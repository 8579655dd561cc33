-- funcoes-globais: now(), and the duration of an operation.
local current_time = now()
print("Timestamp atual:", current_time > 1.7e9)
local start_time = now()
sleep(0.01)
local end_time = now()
local duration = end_time - start_time
print("Operação levou", duration >= 0.01, "segundos")
print(time.now() - now() < 1)
--[==[ expect exit 0
Timestamp atual:	true
Operação levou	true	segundos
true
]==]
