-- The prelude, part 2 of 4: Monsta's globals most scripts may call (sleep, now; the
-- others are in modules/rare.lua, built on first use: see sandbox.lua) and what the
-- modules share (modules/*.lua, each loaded on first use). Each function checks its
-- arguments, then calls the registry's operation: in place (a host function) or as a
-- request that yields to Python.

local function joined(separator, ...)
  local parts = pack(...)
  for i = 1, parts.n do parts[i] = tostring(parts[i]) end
  return concat(parts, separator, 1, parts.n)
end

local json_null = setmetatable({}, {
  __tostring = function() return "null" end,
  __newindex = function() error("json.null cannot be changed", 2) end,
  __metatable = false,
})

-- Monsta's globals (funcoes-globais page). Waiting is a request, like a ws call.
local function sleep(seconds)
  request("sleep", check_number("sleep", 1, seconds, 0))
end

-- signal(name) (modules/rare.lua) ends the script with an error holding its name
-- under this key, which the driver recognises.
local SIGNAL = setmetatable({}, { __metatable = false })

-- now() as a plain function value: the callable from Python is not exposed itself.
local function now()
  local seconds = unwrap(host.now())
  return seconds
end
