-- funcoes-globais: sleep(seconds). Adapted: 0.05 s instead of 5 s.
local started = now()
sleep(0.05)
print("Execução retomada após 5 segundos")
-- now() is wall-clock time, sleep is measured on the monotonic clock: allow 1 ms.
print(now() - started >= 0.049)
--[==[ expect exit 0
Execução retomada após 5 segundos
true
]==]
