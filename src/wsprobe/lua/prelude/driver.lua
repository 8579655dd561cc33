-- The prelude, part 4 of 4: the driver, which the chunk returns.
-- The driver: Python compiles the script with `start`, then calls `step` until the
-- script ends. `step` returns "yield", op, deadline, args... | "done", values... |
-- "signal", name | "error", message; `start` may also return "invalid", message
-- (the script does not compile).
local main = nil

local function located(value)
  return type(value) == "string"
    and (match(value, "^[^%s:]+:%d+: ") or match(value, "^%[string .-%]:%d+: ")) ~= nil
end

local function where(co, value)
  if located(value) then return value end
  local message = type(value) == "string" and value
    or ("(error object is a " .. type(value) .. " value)")
  local line = call_site
  local level, tail = 0, false
  while true do
    local info = getinfo(co, level, "Slt")
    if info == nil then break end
    if info.source == chunk_name and info.currentline > 0 then
      -- Below a tail call, the script frame found is not the one that failed.
      if not tail or line == nil then line = info.currentline end
      break
    end
    tail = tail or info.istailcall
    level = level + 1
  end
  if line == nil then return display_name .. ": " .. message end
  return display_name .. ":" .. line .. ": " .. message
end

local function finish(ok, ...)
  if co_status(main) ~= "dead" then
    if rawequal(..., REQUEST) then return "yield", (select(2, ...)), pending_deadline, select(3, ...) end
    -- A plain coroutine.yield from the script's main body has nowhere to go.
    return "error", where(main, "attempt to yield from outside a coroutine")
  end
  if ok then return "done", ... end
  local value = ...
  if tripped ~= nil then return "error", tripped end
  -- A script can read the key off a signal it caught (next) and raise its own: only a
  -- name signal() would have made is one; anything else stays in the state.
  local name = type(value) == "table" and rawget(value, SIGNAL)
  if type(name) == "string" then return "signal", name end
  return "error", where(main, value)
end

local function start(source)
  local chunk, message = load(source, chunk_name, "t", env)
  if chunk == nil then return "invalid", message end
  main = guarded(chunk)
  return finish(co_resume(main))
end

local function step(...)
  return finish(co_resume(main, ...))
end

-- For the conversion in lua/convert.py: a table's identity (even with __tostring), and
-- Lua's own type() (lupa calls a thread a "function").
local function identity(value) return format("%p", value) end

-- tostring of a script's value (its result), with its __tostring under the guard:
-- the text, or nil and why not (a limit's message as it is, anything else as
-- "result cannot be shown: ...").
local function show(value)
  local co = guarded(function() return tostring(value) end)
  local ok, text = co_resume(co)
  if ok and co_status(co) == "dead" and type(text) == "string" then return text, nil end
  if tripped ~= nil then return nil, tripped end
  if ok then text = "__tostring must return a string" end
  if type(text) ~= "string" then text = "(error object is a " .. type(text) .. " value)" end
  return nil, "result cannot be shown: " .. text
end

return start, step, show, json_null, identity, type
