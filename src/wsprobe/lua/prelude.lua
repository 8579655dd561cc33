-- The trusted prelude of every script's Lua state (see runtime.py).
-- It receives `settings`, whose `host` table holds the Python functions of the
-- registry that run in place (each returns ok, value); it keeps them and the few
-- unsafe functions it needs as locals (no script can reach a local of another chunk
-- without `debug`), builds the script's globals from a whitelist, and returns the
-- driver: a table of the functions Python runs the script with.
local settings = ...
local host = settings.host

local co_create, co_resume, co_status, co_yield = coroutine.create, coroutine.resume,
  coroutine.status, coroutine.yield
local co_running, co_isyieldable, co_close = coroutine.running, coroutine.isyieldable,
  coroutine.close
local sethook, getinfo = debug.sethook, debug.getinfo
local error, select, type, tostring, load = error, select, type, tostring, load
local pack, unpack, concat = table.pack, table.unpack, table.concat
local match, format = string.match, string.format
local setmetatable, rawequal = setmetatable, rawequal
local monotonic = settings.monotonic

-- Marks a yield that asks Python for work (a ws call), as opposed to a script's
-- own coroutine.yield.
local REQUEST = setmetatable({}, { __metatable = false })

-- Module functions report failures as plain strings, without a position, so that
-- pcall returns `false, "no response from web socket"`.
local function unwrap(ok, ...)
  if ok then return ... end
  error((...), 0)
end

-- No tail calls on the way from a script to an error: a tail call drops its
-- caller's frame, and the error's line is found by walking the frames (where()).
local function request(...)
  local results = pack(co_yield(REQUEST, ...))
  if results[1] then return unpack(results, 2, results.n) end
  error(results[2], 0)
end

local function check_string(name, position, value)
  local kind = type(value)
  if kind == "number" then return tostring(value) end
  if kind ~= "string" then
    error("bad argument #" .. position .. " to '" .. name .. "' (string expected, got " .. kind .. ")", 0)
  end
  return value
end

local function check_options(name, position, value)
  if value ~= nil and type(value) ~= "table" then
    error("bad argument #" .. position .. " to '" .. name .. "' (table expected, got " .. type(value) .. ")", 0)
  end
  return value
end

-- The CPU guard: an instruction-count hook on every coroutine of the script. Once
-- it trips it fires on every instruction, so a script cannot pcall its way out.
local HOOK_EVERY = 10000
local budget = settings.instruction_limit // HOOK_EVERY
local wall_deadline = settings.wall_deadline
local tripped = nil

local function guard()
  if tripped == nil then
    budget = budget - 1
    if budget < 0 then
      tripped = settings.cpu_message
    elseif monotonic() > wall_deadline then
      tripped = settings.time_message
    else
      return
    end
    sethook(guard, "", 1)
  end
  error(tripped, 0)
end

local function guarded(f)
  local co = co_create(f)
  sethook(co, guard, "", HOOK_EVERY)
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

local function wrap(f)
  local co = guarded(f)
  return function(...)
    local results = pack(resume(co, ...))
    if results[1] then return unpack(results, 2, results.n) end
    error(results[2], 0)
  end
end

-- Modules.
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

-- `return ws.send_recv(url, data)` is a tail call: by the time it fails, Lua has
-- dropped the script's frame and its line with it. Reading a module's function
-- happens in the script's frame, so each module is a proxy that notes that line.
local call_site = nil

local function note_call_site()
  local info = getinfo(3, "Sl")
  if info ~= nil and info.source == settings.chunk_name then call_site = info.currentline end
end

local function noting_call_site(functions)
  return setmetatable({}, {
    __index = function(_, key)
      note_call_site()
      return functions[key]
    end,
    __pairs = function() return next, functions, nil end,
    __metatable = false,
  })
end

-- Sessions: a table whose only field is a private key holding the id Python knows
-- the connection by; the methods yield requests like ws.send_recv does.
local SESSION = setmetatable({}, { __metatable = false })
local session_methods = {}
-- What the session knows of the connection, read from Python when asked.
local session_facts = { close_code = true, close_reason = true, subprotocol = true }
local session_meta = { __metatable = false,
  __index = function(self, key)
    note_call_site()
    if session_facts[key] then return unwrap(host.session_fact(rawget(self, SESSION), key)) end
    return session_methods[key]
  end,
  __tostring = function(self) return "ws session " .. tostring(rawget(self, SESSION)) end }

local function session_id(self, method)
  local id = type(self) == "table" and rawget(self, SESSION)
  if not id then
    error("bad argument #1 to '" .. method .. "' (ws session expected, got " .. type(self) ..
      "; call it as session:" .. method:match("[^:]+$") .. "(...))", 0)
  end
  return id
end

local function optional_number(name, position, value)
  if value ~= nil and type(value) ~= "number" then
    error("bad argument #" .. position .. " to '" .. name .. "' (number expected, got " .. type(value) .. ")", 0)
  end
  return value
end

function session_methods.send(self, data, kind)
  local id = session_id(self, "session:send")
  if kind ~= nil and kind ~= "text" and kind ~= "binary" then
    -- Echoed only when it is a short word: a message must stay one line of UTF-8.
    local shown = type(kind) == "string" and #kind <= 20 and kind:match("^[%w_-]*$") or type(kind)
    error("bad argument #2 to 'session:send' (\"text\" or \"binary\" expected, got " .. shown .. ")", 0)
  end
  request("session_send", id, check_string("session:send", 1, data), kind or "text")
end

function session_methods.recv(self, timeout)
  local data, kind = request("session_recv", session_id(self, "session:recv"),
    optional_number("session:recv", 1, timeout))
  return data, kind
end

function session_methods.ping(self, timeout)
  local seconds = request("session_ping", session_id(self, "session:ping"),
    optional_number("session:ping", 1, timeout))
  return seconds
end

function session_methods.close(self, code, reason)
  request("session_close", session_id(self, "session:close"),
    optional_number("session:close", 1, code), reason ~= nil and check_string("session:close", 2, reason) or nil)
end

local ws = {
  connect = function(url, options)
    local id = request("connect", check_string("ws.connect", 1, url), check_options("ws.connect", 2, options))
    return setmetatable({ [SESSION] = id }, session_meta)
  end,
  send_recv = function(url, data, options)
    local reply = request("send_recv", check_string("ws.send_recv", 1, url),
      check_string("ws.send_recv", 2, data), check_options("ws.send_recv", 3, options))
    return reply
  end,
  probe = function(url, data, options)
    local facts = request("probe", check_string("ws.probe", 1, url),
      check_string("ws.probe", 2, data), check_options("ws.probe", 3, options))
    return facts
  end,
}

local json = {
  null = json_null,
  encode = function(value)
    local text = unwrap(host.json_encode(value))
    return text
  end,
  decode = function(text)
    local value = unwrap(host.json_decode(check_string("json.decode", 1, text)))
    return value
  end,
}

local log = {}
for _, level in ipairs({ "debug", "info", "warn", "error" }) do
  log[level] = function(...) unwrap(host.log(level, joined(" ", ...))) end
end

local environment = settings.environment
local safe_os = {
  time = os.time,
  date = os.date,
  clock = os.clock,
  difftime = os.difftime,
  getenv = function(name) return environment[check_string("os.getenv", 1, name)] end,
}

-- The state is the script's alone, and this prelude keeps what it needs as
-- locals: the script may have the libraries themselves, made safe in place.
-- string.dump only makes binary chunks, which load() refuses anyway.
string.dump = nil
coroutine.create, coroutine.resume, coroutine.wrap = guarded, resume, wrap

ws, json, log = noting_call_site(ws), noting_call_site(json), noting_call_site(log)

local modules = { ws = ws, json = json, log = log }

local env = {
  ws = ws, json = json, log = log,
  print = function(...) unwrap(host.write(joined("\t", ...))) end,
  string = string, table = table, math = math, utf8 = utf8,
  coroutine = coroutine, os = safe_os,
  assert = assert, error = error, pcall = pcall, xpcall = xpcall,
  ipairs = ipairs, pairs = pairs, next = next, select = select,
  tonumber = tonumber, tostring = tostring, type = type,
  rawget = rawget, rawset = rawset, rawequal = rawequal, rawlen = rawlen,
  setmetatable = setmetatable, getmetatable = getmetatable,
  _VERSION = _VERSION,
  require = function(name)
    local module = modules[name]
    if module == nil then error("module '" .. tostring(name) .. "' not found (only ws, json, log)", 2) end
    return module
  end,
}
env._G = env
env.load = function(chunk, name, _mode, chunk_env)
  -- Text only: binary chunks can crash the interpreter.
  return load(chunk, name, "t", chunk_env or env)
end
-- now() as a plain function value: the callable from Python is not exposed itself.
local python_now = host.now
env.now = function()
  local seconds = unwrap(python_now())
  return seconds
end

-- The driver: Python compiles the script with `start`, then calls `step` until the
-- script ends. `step` returns "yield", op, args... | "done", values... |
-- "error", message, line.
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
    if info.source == settings.chunk_name and info.currentline > 0 then
      -- Below a tail call, the script frame found is not the one that failed.
      if not tail or line == nil then line = info.currentline end
      break
    end
    tail = tail or info.istailcall
    level = level + 1
  end
  if line == nil then return settings.display_name .. ": " .. message end
  return settings.display_name .. ":" .. line .. ": " .. message
end

local function finish(ok, ...)
  if co_status(main) ~= "dead" then
    if rawequal(..., REQUEST) then return "yield", select(2, ...) end
    -- A plain coroutine.yield from the script's main body has nowhere to go.
    return "error", where(main, "attempt to yield from outside a coroutine")
  end
  if ok then return "done", ... end
  local value = ...
  if tripped ~= nil then return "error", tripped end
  return "error", where(main, value)
end

local function start(source)
  local chunk, message = load(source, settings.chunk_name, "t", env)
  if chunk == nil then return "error", message end
  main = guarded(chunk)
  return finish(co_resume(main))
end

local function step(...)
  return finish(co_resume(main, ...))
end

-- For the conversion in lua.py: a table's identity (even with __tostring), and
-- Lua's own type() (lupa calls a thread a "function").
local function identity(value) return format("%p", value) end

-- No script can reach these; freeing them keeps thousands of states small.
local loaded = package.loaded
for _, name in ipairs({ "io", "debug", "package", "python" }) do
  loaded[name] = nil
  _G[name] = nil
end

return { start = start, step = step, null = json_null, identity = identity, type = type }
