-- time page: time.parse and :seconds(), differences, and a safe parser.
local data_utc = time.parse("2024-01-15T10:30:00Z")
local timestamp_utc = data_utc:seconds()
print("Timestamp UTC:", timestamp_utc)

local data_local = time.parse("2024-01-15T07:30:00-03:00")
local timestamp_local = data_local:seconds()
print("Timestamp local:", timestamp_local)

local function formatar_data_rfc3339(timestamp)
    return os.date("!%Y-%m-%dT%H:%M:%SZ", timestamp)
end
print(formatar_data_rfc3339(timestamp_utc))

local data1 = time.parse("2024-01-15T10:30:00Z")
local data2 = time.parse("2024-01-15T11:45:00Z")
local diferenca = data2:seconds() - data1:seconds()
print("Diferença:", diferenca, "segundos (", diferenca/60, "minutos)")

local function parsear_data_segura(data_string)
    local ok, data = pcall(time.parse, data_string)
    if ok then
        return data:seconds()
    else
        log.error("Data inválida:", data_string, "-", data)
        return nil
    end
end

local timestamp = parsear_data_segura("2024-01-15T10:30:00Z")
if timestamp then
    print("Data válida:", os.date("!%d/%m/%Y %H:%M:%S", timestamp))
end
print(parsear_data_segura("15/01/2024"))
--[==[ expect exit 0
Timestamp UTC:	1705314600
Timestamp local:	1705314600
2024-01-15T10:30:00Z
Diferença:	4500	segundos (	75.0	minutos)
Data válida:	15/01/2024 10:30:00
nil
]==]
