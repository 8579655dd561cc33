-- The prelude, part 2 of 5: the modules a script requires (ws and its sessions,
-- json, log, time, uuid, store, cache, http) and Monsta's globals (sleep, signal,
-- diff, with_timeout). Each function checks its arguments, then calls the registry's
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
    bad_argument(1, method, "ws session", type(self) .. "; call it as session:" .. method:match("[^:]+$") .. "(...)")
  end
  return id
end

function session_methods.send(self, data, kind)
  local id = session_id(self, "session:send")
  if kind ~= nil and kind ~= "text" and kind ~= "binary" then
    bad_argument(2, "session:send", '"text" or "binary"', word(kind) or type(kind))
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
