-- json page: encode and decode, as the page shows them. wsprobe writes object
-- keys sorted (the page's output keeps insertion order, which Lua tables lack).
print(json.encode(nil), json.encode(true), json.encode(42.5), json.encode("Hello\nWorld"))
print(json.encode({"apple", "banana", "orange"}))
local person = {
    name = "João Silva",
    age = 30,
    active = true,
    tags = {"developer", "backend"},
    address = {
        street = "Rua das Flores, 123",
        city = "São Paulo"
    }
}
print(json.encode(person))

print(json.decode("null"), json.decode("true"), json.decode("42.5"), json.decode("\"Hello\""))
local array = json.decode("[\"apple\", \"banana\", \"orange\"]")
print(array[1], array[2], #array)
local api_response = [[
{
    "status": "success",
    "data": {
        "users": [
            {"id": 1, "name": "Alice", "email": "alice@example.com"},
            {"id": 2, "name": "Bob", "email": "bob@example.com"}
        ],
        "total": 2,
        "page": 1
    },
    "timestamp": "2024-01-15T12:00:00Z"
}
]]
local response = json.decode(api_response)
if response.status == "success" then
    for _, user in ipairs(response.data.users) do
        print("Usuário: " .. user.name .. " (" .. user.email .. ")")
    end
    print("Total: " .. response.data.total)
end
print(pcall(json.decode, "{"))
-- wsprobe's decision (README): a float stays a float, so 10/2 encodes as 5.0.
print(json.encode(10/2), json.encode(10//2), json.encode(math.tointeger(10/2)))
--[==[ expect exit 0
null	true	42.5	"Hello\nWorld"
["apple","banana","orange"]
{"active":true,"address":{"city":"São Paulo","street":"Rua das Flores, 123"},"age":30,"name":"João Silva","tags":["developer","backend"]}
nil	true	42.5	Hello
apple	banana	3
Usuário: Alice (alice@example.com)
Usuário: Bob (bob@example.com)
Total: 2
false	json.decode: invalid JSON: expecting property name enclosed in double quotes at line 1 column 2
5.0	5	5
]==]
