-- The prelude, part 4 of 5: the sandbox. The script's globals are a whitelist; the
-- libraries it sees are made safe in place; what no script may reach is freed.
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

-- No script can reach these; freeing them keeps thousands of states small.
local loaded = package.loaded
for _, name in ipairs({ "io", "debug", "package", "python" }) do
  loaded[name] = nil
  _G[name] = nil
end
