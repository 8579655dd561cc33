-- table page: contains and slice, with the page's edge cases, and batches.
local frutas = {"maçã", "banana", "laranja", "uva"}
print("Tem banana?", table.contains(frutas, "banana"))
print("Tem morango?", table.contains(frutas, "morango"))
local configuracoes = { timeout = 30, retries = 3, debug = false, hostname = "servidor.local" }
print("Tem valor 30?", table.contains(configuracoes, 30))
print("Tem valor true?", table.contains(configuracoes, true))
local usuarios = {
    {id = 1, nome = "Alice", ativo = true},
    {id = 2, nome = "Bob", ativo = false},
}
print("Encontrou Bob?", table.contains(usuarios, usuarios[2]))
print("Encontrou novo Bob?", table.contains(usuarios, {id = 2, nome = "Bob", ativo = false}))

local numeros = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100}
print(table.concat(table.slice(numeros, 3, 7), ","))
print(table.concat(table.slice(numeros, nil, 5), ","))
print(table.concat(table.slice(numeros, 8), ","))
-- The page lists two nils before 10; from index -2 there are three (-2, -1, 0).
local fatia4 = table.slice(numeros, -2, 15)
print(fatia4[1], fatia4[2], fatia4[3], fatia4[4], fatia4[13], fatia4[14], table.maxn(fatia4))
print(table.concat(table.slice(numeros, 5, 3), ","))

local function processar_em_lotes(dados, tamanho_lote)
    local lotes = {}
    local total = #dados
    for i = 1, total, tamanho_lote do
        local fim = math.min(i + tamanho_lote - 1, total)
        table.insert(lotes, table.slice(dados, i, fim))
    end
    return lotes
end
return processar_em_lotes({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, 5)
--[==[ expect exit 0
Tem banana?	true
Tem morango?	false
Tem valor 30?	true
Tem valor true?	false
Encontrou Bob?	true
Encontrou novo Bob?	false
30,40,50,60,70
10,20,30,40,50
80,90,100
nil	nil	nil	10	100	nil	13
50,40,30
[[1,2,3,4,5],[6,7,8,9,10],[11,12,13,14,15]]
]==]
