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

-- The deadline of the request on its way up to the driver: each with_timeout it
-- passes through lowers it to its own (see with_timeout below).
local pending_deadline = nil

-- No tail calls on the way from a script to an error: a tail call drops its
-- caller's frame, and the error's line is found by walking the frames (where()).
local function request(...)
  pending_deadline = nil
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

-- The CPU guard: an instruction-count hook on every coroutine of the script. It
-- fires every HOOK_EVERY instructions, counts them against the budget and, every
-- WALL_CHECK_EVERY seconds of CPU (os.clock, cheap: no call into Python), checks
-- the wall clock, so that a loop around a slow C function is caught too. Once it
-- trips, it fires on every instruction of every coroutine that runs (the one that
-- tripped, its parents, any created later): neither pcall nor a coroutine can
-- swallow it.
local HOOK_EVERY = 1000
local WALL_CHECK_EVERY = 0.002
local budget = settings.instruction_limit // HOOK_EVERY
local wall_deadline = settings.wall_deadline
local clock = os.clock
local next_wall_check = 0
local tripped = nil

local function guard()
  if tripped == nil then
    budget = budget - 1
    if budget < 0 then
      tripped = settings.cpu_message
    else
      local spent = clock()
      if spent < next_wall_check then return end
      next_wall_check = spent + WALL_CHECK_EVERY
      if monotonic() <= wall_deadline then return end
      tripped = settings.time_message
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

-- What a message may echo of a script's argument: a short word, else nothing, so
-- that every message stays one line of UTF-8.
local function word(value)
  return type(value) == "string" and #value <= 40 and match(value, "^[%w_.-]+$") and value or nil
end

function session_methods.send(self, data, kind)
  local id = session_id(self, "session:send")
  if kind ~= nil and kind ~= "text" and kind ~= "binary" then
    error("bad argument #2 to 'session:send' (\"text\" or \"binary\" expected, got " .. (word(kind) or type(kind)) .. ")", 0)
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

-- log.set_ident names the script's log lines from then on: "[ident] message".
local log_ident = ""
local log = {
  set_ident = function(ident)
    log_ident = "[" .. check_string("log.set_ident", 1, ident) .. "] "
  end,
}
for _, level in ipairs({ "debug", "info", "warn", "error" }) do
  log[level] = function(...) unwrap(host.log(level, log_ident .. joined(" ", ...))) end
end

-- Monsta's globals and modules (funcoes-globais, time, uuid, store, cache, http,
-- string, table and log pages). Waiting is a request, like a ws call.
local function check_number(name, position, value, minimum)
  if type(value) ~= "number" or (minimum ~= nil and not (value >= minimum)) then
    local wanted = minimum ~= nil and "non-negative number" or "number"
    local got = type(value) == "number" and tostring(value) or type(value)
    error("bad argument #" .. position .. " to '" .. name .. "' (" .. wanted .. " expected, got " .. got .. ")", 0)
  end
  return value
end

local function optional_string(name, position, value)
  if value == nil then return nil end
  return check_string(name, position, value)
end

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
    error("bad argument #2 to 'with_timeout' (function expected, got " .. type(f) .. ")", 0)
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

local function parsed_time(seconds)
  return { seconds = function() return seconds end }
end

-- now() as a plain function value: the callable from Python is not exposed itself.
local function now()
  local seconds = unwrap(host.now())
  return seconds
end

local time_module = {
  now = now,
  sleep = sleep,
  parse = function(text)
    local seconds = unwrap(host.time_parse(check_string("time.parse", 1, text)))
    return parsed_time(seconds)
  end,
}

local uuid = {
  uuid4 = function()
    local id = unwrap(host.uuid4())
    return id
  end,
}

local store = {}
for _, scope in ipairs({ "", "_global" }) do
  local global = scope == "_global"
  store["put" .. scope] = function(key, value)
    request("store_put", check_string("store.put" .. scope, 1, key), value, global)
  end
  store["get" .. scope] = function(key)
    local value, stamp = request("store_get", check_string("store.get" .. scope, 1, key), global)
    return value, stamp
  end
  store["delete" .. scope] = function(key)
    request("store_delete", check_string("store.delete" .. scope, 1, key), global)
  end
end

local cache = {
  put = function(key, value, ttl)
    request("cache_put", check_string("cache.put", 1, key), value, ttl)
  end,
  get = function(key)
    local value = request("cache_get", check_string("cache.get", 1, key))
    return value
  end,
  delete = function(key)
    request("cache_delete", check_string("cache.delete", 1, key))
  end,
  mark_pending = function(key)
    request("cache_mark_pending", check_string("cache.mark_pending", 1, key))
  end,
}

local function http_call(name, method, url, body, headers, options, first)
  -- first: the position of url in the caller's arguments (2 for http.request).
  local response = request("http_request", method, check_string(name, first, url),
    optional_string(name, first + 1, body), check_options(name, first + 2, headers),
    check_options(name, first + 3, options))
  return response
end

local http = {
  request = function(method, url, body, headers, options)
    local response = http_call("http.request", check_string("http.request", 1, method), url,
      body, headers, options, 2)
    return response
  end,
}
for _, method in ipairs({ "get", "post", "put", "delete", "head", "patch" }) do
  local name = "http." .. method
  http[method] = function(url, body, headers, options)
    local response = http_call(name, method:upper(), url, body, headers, options, 1)
    return response
  end
end

-- Monsta's string and table extensions and the Lua 5.1 functions a ported script
-- may call, added to the script's own libraries.
local find, sub, gsub, utf8_len = string.find, string.sub, string.gsub, utf8.len

function string.split(s, sep)
  s, sep = check_string("split", 1, s), check_string("split", 2, sep)
  local parts, n = {}, 0
  if sep == "" then
    -- Characters, not bytes, when the text is UTF-8.
    local pattern = utf8_len(s) and utf8.charpattern or "."
    for char in string.gmatch(s, pattern) do n = n + 1; parts[n] = char end
    return parts
  end
  local start = 1
  while true do
    local first, last = find(s, sep, start, true)
    n = n + 1
    if first == nil then parts[n] = sub(s, start); return parts end
    parts[n] = sub(s, start, first - 1)
    start = last + 1
  end
end

function string.trim(s)
  local trimmed = gsub(gsub(check_string("trim", 1, s), "^%s+", ""), "%s+$", "")
  return trimmed
end

function string.starts(s, prefix)
  s, prefix = check_string("starts", 1, s), check_string("starts", 2, prefix)
  return sub(s, 1, #prefix) == prefix
end

function string.ends(s, suffix)
  s, suffix = check_string("ends", 1, s), check_string("ends", 2, suffix)
  return suffix == "" or sub(s, -#suffix) == suffix
end

local function check_table(name, position, value)
  if type(value) ~= "table" then
    error("bad argument #" .. position .. " to '" .. name .. "' (table expected, got " .. type(value) .. ")", 0)
  end
  return value
end

function table.contains(t, value)
  for _, item in pairs(check_table("contains", 1, t)) do
    if item == value then return true end
  end
  return false
end

function table.slice(t, first, last)
  check_table("slice", 1, t)
  first = first == nil and 1 or check_number("slice", 2, first)
  last = last == nil and #t or check_number("slice", 3, last)
  local slice, n = {}, 0
  for i = first, last, first <= last and 1 or -1 do n = n + 1; slice[n] = t[i] end
  return slice
end

function table.getn(t) return #check_table("getn", 1, t) end

function table.maxn(t)
  local largest = 0
  for key in pairs(check_table("maxn", 1, t)) do
    if type(key) == "number" and key > largest then largest = key end
  end
  return largest
end

local exp, log_, floor, abs, huge = math.exp, math.log, math.floor, math.abs, math.huge
function math.pow(x, y) return check_number("pow", 1, x) ^ check_number("pow", 2, y) end
function math.log10(x) return log_(check_number("log10", 1, x), 10) end
function math.ldexp(m, e) return check_number("ldexp", 1, m) * 2.0 ^ check_number("ldexp", 2, e) end
function math.frexp(x)
  check_number("frexp", 1, x)
  if x == 0 or x ~= x or x == huge or x == -huge then return x, 0 end
  -- As a float: abs(math.mininteger) wraps round to itself, whose log is nan.
  local e = floor(log_(abs(x + 0.0), 2)) + 1
  local m = x / 2.0 ^ e
  -- log2 can be off by one near powers of two: bring m into [0.5, 1).
  if abs(m) >= 1 then m, e = m / 2, e + 1 elseif abs(m) < 0.5 then m, e = m * 2, e - 1 end
  return m, e
end
function math.cosh(x) x = check_number("cosh", 1, x); return (exp(x) + exp(-x)) / 2 end
function math.sinh(x) x = check_number("sinh", 1, x); return (exp(x) - exp(-x)) / 2 end
function math.tanh(x)
  x = check_number("tanh", 1, x)
  if x > 20 then return 1.0 elseif x < -20 then return -1.0 end
  local e2 = exp(2 * x)
  return (e2 - 1) / (e2 + 1)
end

local function no_environments(name)
  return function()
    error(name .. " is not available: Lua 5.4 has no function environments; give load(text, name, \"t\", env) "
      .. "the environment, or declare a local _ENV", 2)
  end
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
store, cache, http = noting_call_site(store), noting_call_site(cache), noting_call_site(http)
time_module, uuid = noting_call_site(time_module), noting_call_site(uuid)

local modules = { ws = ws, json = json, log = log, store = store, cache = cache, http = http,
  time = time_module, uuid = uuid }

env = {
  ws = ws, json = json, log = log,
  store = store, cache = cache, http = http, time = time_module, uuid = uuid,
  sleep = sleep, with_timeout = with_timeout, signal = signal, diff = diff,
  -- The time page writes await(time.sleep(5)): every call here already waits.
  await = function(...) return ... end,
  EXEC_IDENT = settings.exec_ident,
  unpack = unpack,
  setfenv = no_environments("setfenv"), getfenv = no_environments("getfenv"),
  print = function(...) unwrap(host.write(joined("\t", ...))) end,
  string = string, table = table, math = math, utf8 = utf8,
  coroutine = coroutine, os = safe_os,
  assert = assert, error = error, pcall = pcall, xpcall = xpcall,
  ipairs = ipairs, pairs = pairs, next = next, select = select,
  tonumber = tonumber, tostring = tostring, type = type,
  rawget = rawget, rawset = rawset, rawequal = rawequal, rawlen = rawlen,
  getmetatable = getmetatable,
  _VERSION = _VERSION,
  require = function(name)
    local module = modules[name]
    if module == nil then
      local shown = word(name)
      error((shown and "module '" .. shown .. "' not found" or "module not found")
        .. " (only ws, json, log, store, cache, http, time, uuid)", 2)
    end
    return module
  end,
}
-- A finalizer runs with hooks off (outside the CPU guard) and at any allocation,
-- even after the script ended: scripts cannot have any. Lua only honours a __gc
-- present when the metatable is set, so checking here is enough.
env.setmetatable = function(value, metatable)
  if type(metatable) == "table" and rawget(metatable, "__gc") ~= nil then
    error("setmetatable: __gc metamethods are not supported", 2)
  end
  return setmetatable(value, metatable)
end
env._G = env
env.load = function(chunk, name, _mode, chunk_env)
  -- Text only: binary chunks can crash the interpreter.
  return load(chunk, name, "t", chunk_env or env)
end
-- Lua 5.1's loadstring: text only, like load.
env.loadstring = function(text, name)
  return env.load(check_string("loadstring", 1, text), name)
end
env.now = now

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
    if rawequal(..., REQUEST) then return "yield", (select(2, ...)), pending_deadline, select(3, ...) end
    -- A plain coroutine.yield from the script's main body has nowhere to go.
    return "error", where(main, "attempt to yield from outside a coroutine")
  end
  if ok then return "done", ... end
  local value = ...
  if tripped ~= nil then return "error", tripped end
  if type(value) == "table" and rawget(value, SIGNAL) ~= nil then return "signal", rawget(value, SIGNAL) end
  return "error", where(main, value)
end

local function start(source)
  local chunk, message = load(source, settings.chunk_name, "t", env)
  if chunk == nil then return "invalid", message end
  main = guarded(chunk)
  return finish(co_resume(main))
end

local function step(...)
  return finish(co_resume(main, ...))
end

-- For the conversion in lua.py: a table's identity (even with __tostring), and
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

-- No script can reach these; freeing them keeps thousands of states small.
local loaded = package.loaded
for _, name in ipairs({ "io", "debug", "package", "python" }) do
  loaded[name] = nil
  _G[name] = nil
end

return { start = start, step = step, null = json_null, identity = identity, type = type,
  show = show }
