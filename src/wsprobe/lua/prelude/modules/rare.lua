-- The globals few scripts call (with_timeout, signal, diff, require, setmetatable,
-- load, loadstring, setfenv, getfenv, coroutine.wrap), built the first time a script calls one of
-- them (see sandbox.lua): this chunk runs with the prelude's kit as its environment,
-- receives what of the prelude's own it needs, and returns the functions by name.
-- Each is called through a stand-in that keeps its frame under it: an error raised
-- at level 3 here is where the script called it, as level 2 would be called directly.
local env, modules, monotonic, guarded, lower_deadline, REQUEST, SIGNAL, load, format, pack,
  unpack, co_resume, co_status, co_yield, co_close, resume = ...
-- Called as an upvalue, as the prelude's own copy was: Lua names a function in its
-- argument errors after the call's instruction, and stripped bytecode names no upvalue.
local setmetatable = setmetatable
local rare = {}

-- signal(name) ends the script with that signal: an error whose value the driver
-- recognises (a script's pcall can still catch it, as with any error).
local signal_meta = {
  __tostring = function(self) return "signal " .. rawget(self, SIGNAL) end,
  __metatable = false,
}

local function signal(name)
  name = check_string("signal", 1, name)
  local done = rawget(env, "_execution_done")
  if type(done) == "function" then done() end
  error(setmetatable({ [SIGNAL] = name }, signal_meta), 0)
end
rare.signal = signal

function rare.diff(lhs, rhs)
  local difference = check_number("diff", 1, lhs) - check_number("diff", 2, rhs)
  -- A counter that went down has rolled over (or restarted): keep the last value.
  if difference < 0 then signal("RepeatPrevValue") end
  return difference
end

-- with_timeout runs f in a coroutine of its own and passes its requests (and its
-- own yields) up, each request with this deadline at the latest. An answer that
-- comes after the deadline (the driver cancels the call in flight when it passes)
-- ends f where it waits: its pcalls never see the timeout, with_timeout raises it.
function rare.with_timeout(ms, f, ...)
  ms = check_number("with_timeout", 1, ms, 0)
  if type(f) ~= "function" then
    bad_argument(2, "with_timeout", "function", type(f))
  end
  local deadline = monotonic() + ms / 1000
  local co = guarded(f)
  local results = pack(co_resume(co, ...))
  while co_status(co) ~= "dead" do
    if rawequal(results[2], REQUEST) then lower_deadline(deadline) end
    local answer = pack(co_yield(unpack(results, 2, results.n)))
    if monotonic() >= deadline then
      co_close(co)
      error(format("with_timeout: timed out after %g ms", ms), 0)
    end
    results = pack(co_resume(co, unpack(answer, 1, answer.n)))
  end
  if results[1] then return unpack(results, 2, results.n) end
  error(results[2], 0)
end

function rare.require(name)
  local module = modules[name]
  if module == nil then
    local shown = word(name)
    error((shown and "module '" .. shown .. "' not found" or "module not found")
      .. " (only ws, json, log, store, cache, http, time, uuid)", 3)
  end
  return module
end

-- A finalizer runs with hooks off (outside the CPU guard) and at any allocation,
-- even after the script ended: scripts cannot have any. Lua only honours a __gc
-- present when the metatable is set, so checking here is enough.
function rare.setmetatable(value, metatable)
  if type(metatable) == "table" and rawget(metatable, "__gc") ~= nil then
    error("setmetatable: __gc metamethods are not supported", 3)
  end
  return setmetatable(value, metatable)
end

function rare.load(chunk, name, _mode, chunk_env)
  -- Text only: binary chunks can crash the interpreter.
  return load(chunk, name, "t", chunk_env or env)
end

-- Lua 5.1's loadstring: text only, like load.
function rare.loadstring(text, name)
  return env.load(check_string("loadstring", 1, text), name)
end

-- coroutine.wrap: the coroutine guarded and its requests passed up, like the
-- script's coroutine.create and coroutine.resume (core.lua).
function rare.wrap(f)
  local co = guarded(f)
  return function(...)
    local results = pack(resume(co, ...))
    if results[1] then return unpack(results, 2, results.n) end
    error(results[2], 0)
  end
end

for _, name in ipairs({ "setfenv", "getfenv" }) do
  rare[name] = function()
    error(name .. " is not available: Lua 5.4 has no function environments; give load(text, name, \"t\", env) "
      .. "the environment, or declare a local _ENV", 3)
  end
end
return rare
