-- string page: split, trim, starts, ends, as the page shows them.
local resultado = string.split("maçã,banana,laranja,uva", ",")
print(#resultado, resultado[1], resultado[4])
local palavras = string.split("Olá mundo do Lua", " ")
print(table.concat(palavras, "|"))
local linhas = string.split("2024-01-15 ERROR: Falha na conexão\n2024-01-15 INFO: Reconectando", "\n")
print(#linhas, linhas[2])
print(table.concat(string.split("teste", ""), "|"), table.concat(string.split("olá", ""), "|"))
print(table.concat(string.split("texto_sem_separador", "|"), ","))
print(table.concat(string.split("a,,b,", ","), "|"), #string.split("", ","))

print("[" .. string.trim("  texto com espaços  ") .. "]")
print("[" .. string.trim("\t\n valor digitado \r\n") .. "]")
print("[" .. string.trim("   \t\n   ") .. "]")

print(string.starts("https://example.com", "http"), string.starts("/var/log/app.log", "/"),
  string.starts("qualquer string", ""), string.starts("Hello World", "hello"))
print(string.ends("document.pdf", ".pdf"), string.ends("qualquer string", ""),
  string.ends("Hello World", "world"), ("data.json"):ends(".json"))
print(pcall(string.split, nil, ","))
--[==[ expect exit 0
4	maçã	uva
Olá|mundo|do|Lua
2	2024-01-15 INFO: Reconectando
t|e|s|t|e	o|l|á
texto_sem_separador
a||b|	1
[texto com espaços]
[valor digitado]
[]
true	true	true	false
true	true	false	true
false	bad argument #1 to 'split' (string expected, got nil)
]==]
