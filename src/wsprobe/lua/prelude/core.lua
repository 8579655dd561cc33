-- The trusted prelude of every script's Lua state (see runtime.py), part 1 of 4:
-- the plumbing the other parts build on. The parts (core, globals, sandbox, driver)
-- are loaded in that order as ONE chunk, so each part sees the locals of the parts
-- before it. What only some scripts use (the modules, the libraries' extensions) is
-- in chunks of its own, modules/*.lua, loaded on first use (sandbox.lua).
--
-- The chunk receives its settings as arguments: `dispatch`, the one Python function
-- that runs the registry's operations in place, by name (each returns ok, value),
-- `chunk_bytecode`, which hands over a chunk of modules/ by name, and what it reads of
-- the script and its limits. It keeps them and the few unsafe functions it needs as
-- locals (no script can reach a local of another chunk without `debug`), builds the
-- script's globals from a whitelist (sandbox.lua), and returns the driver (driver.lua):
-- the functions Python runs the script with.
local dispatch, chunk_bytecode, monotonic, instruction_limit, wall_deadline, cpu_message,
  time_message, chunk_name, display_name, exec_ident, environment = ...
local setmetatable, rawset, rawget, next, ipairs = setmetatable, rawset, rawget, next, ipairs

-- Each of host's functions calls the registry's operation of its name: a Lua function
-- made on first use, so that a state holds one Python callable, not one per operation.
local host = setmetatable({}, { __index = function(functions, name)
  local function call(...) return dispatch(name, ...) end
  rawset(functions, name, call)
  return call
end })

local co_create, co_resume, co_status, co_yield = coroutine.create, coroutine.resume,
  coroutine.status, coroutine.yield
local co_running, co_isyieldable, co_close = coroutine.running, coroutine.isyieldable,
  coroutine.close
local sethook, getinfo, force_metatable = debug.sethook, debug.getinfo, debug.setmetatable
local error, select, type, tostring, load = error, select, type, tostring, load
local pack, unpack, concat = table.pack, table.unpack, table.concat
local match, format = string.match, string.format
local rawequal = rawequal

-- Marks a yield that asks Python for work (a ws call), as opposed to a script's
-- own coroutine.yield.
local REQUEST = setmetatable({}, { __metatable = false })

-- Module functions report failures as plain strings, without a position, so that
-- pcall returns `false, "no response from web socket"`.
local function unwrap(ok, ...)
  if ok then return ... end
  error((...), 0)
end

-- The deadline of the request on its way up to the driver: each with_timeout it
-- passes through lowers it to its own (lower_deadline).
local pending_deadline = nil

-- A request passing through a with_timeout (modules/rare.lua) gets its deadline at
-- the latest.
local function lower_deadline(deadline)
  if pending_deadline == nil or deadline < pending_deadline then pending_deadline = deadline end
end

-- No tail calls on the way from a script to an error: a tail call drops its
-- caller's frame, and the error's line is found by walking the frames (where()).
local function request(...)
  pending_deadline = nil
  local results = pack(co_yield(REQUEST, ...))
  if results[1] then return unpack(results, 2, results.n) end
  error(results[2], 0)
end

-- Every argument error reads like Lua's own, without a position:
-- bad argument #2 to 'ws.probe' (string expected, got nil).
local function bad_argument(position, name, expected, got)
  error("bad argument #" .. position .. " to '" .. name .. "' (" .. expected .. " expected, got " .. got .. ")", 0)
end

local function check_string(name, position, value)
  local kind = type(value)
  if kind == "number" then return tostring(value) end
  if kind ~= "string" then bad_argument(position, name, "string", kind) end
  return value
end

local function optional_string(name, position, value)
  if value == nil then return nil end
  return check_string(name, position, value)
end

local function check_number(name, position, value, minimum)
  if type(value) ~= "number" or (minimum ~= nil and not (value >= minimum)) then
    local wanted = minimum ~= nil and "non-negative number" or "number"
    bad_argument(position, name, wanted, type(value) == "number" and tostring(value) or type(value))
  end
  return value
end

local function check_table(name, position, value)
  if type(value) ~= "table" then bad_argument(position, name, "table", type(value)) end
  return value
end

-- A check that lets nil through, else wants a value of type `kind`.
local function optional(kind)
  return function(name, position, value)
    if value ~= nil and type(value) ~= kind then bad_argument(position, name, kind, type(value)) end
    return value
  end
end

-- Options and headers: a table, or nothing.
local optional_number, check_options = optional("number"), optional("table")

-- The CPU guard: an instruction-count hook on every coroutine of the script. It
-- fires every HOOK_EVERY instructions, counts them against the budget and, every
-- WALL_CHECK_EVERY seconds of CPU (os.clock, cheap: no call into Python), checks
-- the wall clock, so that a loop around a slow C function is caught too. Once it
-- trips, it fires on every instruction of every coroutine that runs (the one that
-- tripped, its parents, any created later): neither pcall nor a coroutine can
-- swallow it.
local HOOK_EVERY = 1000
local WALL_CHECK_EVERY = 0.002
local budget = instruction_limit // HOOK_EVERY
local clock = os.clock
local next_wall_check = 0
local tripped = nil

local function guard()
  if tripped == nil then
    budget = budget - 1
    if budget < 0 then
      tripped = cpu_message
    else
      local spent = clock()
      if spent < next_wall_check then return end
      next_wall_check = spent + WALL_CHECK_EVERY
      if monotonic() <= wall_deadline then return end
      tripped = time_message
    end
  end
  sethook(guard, "", 1)
  error(tripped, 0)
end

local function guarded(f)
  local co = co_create(f)
  sethook(co, guard, "", tripped == nil and HOOK_EVERY or 1)
  return co
end

-- The script's own coroutines pass our requests through to the driver.
local function forward(co, ok, first, ...)
  if ok and rawequal(first, REQUEST) and co_status(co) == "suspended" then
    return forward(co, co_resume(co, co_yield(REQUEST, ...)))
  end
  return ok, first, ...
end

local function resume(co, ...)
  return forward(co, co_resume(co, ...))
end

-- `return ws.send_recv(url, data)` is a tail call: by the time it fails, Lua has
-- dropped the script's frame and its line with it. Reading a module's function
-- happens in the script's frame, so each module is a proxy that notes that line.
local call_site = nil

local function note_call_site()
  local info = getinfo(3, "Sl")
  if info ~= nil and info.source == chunk_name then call_site = info.currentline end
end

-- What a message may echo of a script's argument: a short word, else nothing, so
-- that every message stays one line of UTF-8.
local function word(value)
  return type(value) == "string" and #value <= 40 and match(value, "^[%w_.-]+$") and value or nil
end
