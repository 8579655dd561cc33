-- The prelude, part 2 of 4: Monsta's globals (sleep, signal, diff, with_timeout,
-- now) and what the modules share (modules/*.lua, each loaded on first use: see
-- sandbox.lua). Each function checks its arguments, then calls the registry's
-- operation: in place (a host function) or as a request that yields to Python.

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

-- signal(name) ends the script with that signal: an error whose value the driver
-- recognises (a script's pcall can still catch it, as with any error).
local SIGNAL = setmetatable({}, { __metatable = false })
local signal_meta = {
  __tostring = function(self) return "signal " .. rawget(self, SIGNAL) end,
  __metatable = false,
}
local env

local function signal(name)
  name = check_string("signal", 1, name)
  local done = rawget(env, "_execution_done")
  if type(done) == "function" then done() end
  error(setmetatable({ [SIGNAL] = name }, signal_meta), 0)
end

local function diff(lhs, rhs)
  local difference = check_number("diff", 1, lhs) - check_number("diff", 2, rhs)
  -- A counter that went down has rolled over (or restarted): keep the last value.
  if difference < 0 then signal("RepeatPrevValue") end
  return difference
end

-- with_timeout runs f in a coroutine of its own and passes its requests (and its
-- own yields) up, each request with this deadline at the latest. An answer that
-- comes after the deadline (the driver cancels the call in flight when it passes)
-- ends f where it waits: its pcalls never see the timeout, with_timeout raises it.
local function with_timeout(ms, f, ...)
  ms = check_number("with_timeout", 1, ms, 0)
  if type(f) ~= "function" then
    bad_argument(2, "with_timeout", "function", type(f))
  end
  local deadline = monotonic() + ms / 1000
  local co = guarded(f)
  local results = pack(co_resume(co, ...))
  while co_status(co) ~= "dead" do
    if rawequal(results[2], REQUEST) and (pending_deadline == nil or deadline < pending_deadline) then
      pending_deadline = deadline
    end
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

-- now() as a plain function value: the callable from Python is not exposed itself.
local function now()
  local seconds = unwrap(host.now())
  return seconds
end
