-- string page: the two complete examples (syslog lines, key=value configuration).
local log_data = [[
Jan 15 10:30:45 servidor kernel: [12345.67890] CPU temperature: 65.5C
Jan 15 10:31:15 servidor sshd[1234]: Accepted password for user from 192.168.1.100
Jan 15 10:32:00 servidor crond[5678]: (root) CMD (/usr/bin/backup.sh)
]]

local function analisar_logs(logs)
    local eventos = {}
    for linha in string.gmatch(logs, "[^\n]+") do
        local linha_limpa = string.trim(linha)
        if linha_limpa ~= "" then
            local partes = string.split(linha_limpa, " ")
            if #partes >= 5 then
                local evento = {
                    data = partes[1] .. " " .. partes[2] .. " " .. partes[3],
                    host = partes[4],
                    servico = partes[5],
                    mensagem = table.concat(partes, " ", 6)
                }
                table.insert(eventos, evento)
            end
        end
    end
    return eventos
end

local eventos = analisar_logs(log_data)
print(#eventos, eventos[2].servico, eventos[3].mensagem)

local function parse_config(conteudo)
    local config = {}
    for linha in string.gmatch(conteudo, "[^\n]+") do
        local linha_limpa = string.trim(linha)
        if linha_limpa ~= "" and not string.starts(linha_limpa, "#") then
            local partes = string.split(linha_limpa, "=")
            if #partes == 2 then
                local chave = string.trim(partes[1])
                local valor = string.trim(partes[2])
                if string.starts(valor, "\"") and string.ends(valor, "\"") then
                    valor = string.sub(valor, 2, -2)
                end
                config[chave] = valor
            end
        end
    end
    return config
end

local config_text = [[
# Configurações do monitor
hostname = "servidor-prod"
port = 8080
timeout = 30
debug = false
]]
return parse_config(config_text)
--[==[ expect exit 0
3	sshd[1234]:	(root) CMD (/usr/bin/backup.sh)
{"debug":"false","hostname":"servidor-prod","port":"8080","timeout":"30"}
]==]
