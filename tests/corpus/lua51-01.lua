-- Lua 5.1 idioms a ported script may use (none is on a page, all are in old monitors).
print(unpack({1, 2, 3}))
print(loadstring("return 1 + 1")(), select("#", loadstring("return")()))
print(table.getn({1, 2, 3}), table.maxn({[1] = "a", [7] = "b", x = 1}))
print(math.pow(2, 10), math.log10(1000), math.ldexp(0.75, 4), math.frexp(48))
print(math.cosh(0), math.sinh(0), math.tanh(0), math.tanh(1000))
print(pcall(setfenv, 1, {}))
print(pcall(getfenv))
print(pcall(loadstring, string.dump and "" or nil))
--[==[ expect exit 0
1	2	3
2	0
3	7
1024.0	3.0	12.0	0.75	6
1.0	0.0	0.0	1.0
false	setfenv is not available: Lua 5.4 has no function environments; give load(text, name, "t", env) the environment, or declare a local _ENV
false	getfenv is not available: Lua 5.4 has no function environments; give load(text, name, "t", env) the environment, or declare a local _ENV
false	bad argument #1 to 'loadstring' (string expected, got nil)
]==]
