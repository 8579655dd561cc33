-- The prelude, part 3 of 4: the sandbox. The script's globals are a whitelist; the
-- libraries it sees are made safe in place; what no script may reach is freed.
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
coroutine.create, coroutine.resume = guarded, resume

-- The modules: each is a proxy that notes the call site (see core.lua) and builds
-- the module the first time it is read, from its own precompiled chunk (modules/*.lua,
-- whose bytecode Python hands over): a state holds only the modules its script uses.
-- A module's chunk sees the kit (what the prelude shares with the modules, then the
-- base functions, set below) as its environment.
local kit = {
  request = request, unwrap = unwrap, host = host, bad_argument = bad_argument,
  check_string = check_string, optional_string = optional_string,
  optional_number = optional_number, check_options = check_options, word = word,
  note_call_site = note_call_site, joined = joined, json_null = json_null,
  now = now, sleep = sleep, check_table = check_table, check_number = check_number,
  find = string.find, sub = string.sub, gsub = string.gsub, gmatch = string.gmatch,
  utf8_len = utf8.len, exp = math.exp, log_ = math.log, floor = math.floor, abs = math.abs,
  huge = math.huge, charpattern = utf8.charpattern, setmetatable = setmetatable,
}

-- A script that caught a memory error may leave its heap full of garbage, which counts
-- against its limit until collected; and Lua grows a stack without collecting. What
-- the prelude builds on first use collects it and tries again before failing.
local pcall, collectgarbage = pcall, collectgarbage

local function run_chunk(name, ...)
  -- nil when the chunk would not fit in the script's memory limit
  local bytecode = chunk_bytecode(name)
  if bytecode == nil then
    collectgarbage()
    bytecode = chunk_bytecode(name)
    if bytecode == nil then error("not enough memory", 0) end
  end
  -- load fails only for want of memory: its message says so
  local chunk, message = load(bytecode, "=" .. name, "b", kit)
  if chunk == nil then error(message, 0) end
  return chunk(...)
end
kit.run_chunk = run_chunk

-- The libraries' extensions are added the first time the script reads a name
-- string, table or math lacks (or lists one of them); then the libraries lose this
-- metatable.
local extended = { string, table, math }
kit.kit_string, kit.kit_table, kit.kit_math = string, table, math
local function extend()
  for library, extensions in next, run_chunk("extensions") do
    for name, extension in next, extensions do
      if rawget(library, name) == nil then rawset(library, name, extension) end
    end
  end
  for _, library in ipairs(extended) do force_metatable(library, nil) end
end
local extension_meta = {
  __index = function(library, key)
    extend()
    return rawget(library, key)
  end,
  __pairs = function(library)
    extend()
    return next, library, nil
  end,
  __metatable = false,
}
for _, library in ipairs(extended) do setmetatable(library, extension_meta) end

local module_names, module_functions = {}, {}

local function functions_of(proxy)
  local functions = module_functions[proxy]
  if functions == nil then
    functions = run_chunk(module_names[proxy])
    module_functions[proxy] = functions
  end
  return functions
end

local module_meta = {
  __index = function(proxy, key)
    note_call_site()
    return functions_of(proxy)[key]
  end,
  __pairs = function(proxy) return next, functions_of(proxy), nil end,
  __metatable = false,
}
local modules = {}
for _, name in ipairs({ "ws", "json", "log", "store", "cache", "http", "time", "uuid" }) do
  local proxy = setmetatable({}, module_meta)
  module_names[proxy], modules[name] = name, proxy
end

-- The globals few scripts call (and coroutine.wrap) are built by a chunk of their own
-- (modules/rare.lua) the first time the script calls one of them: until then each is
-- a stand-in that builds them and calls its own, without a tail call, so that its
-- frame stays under it and the script's line is found as if the script had called it
-- directly.
local env, rare = nil, nil
local function build_rare()
  return run_chunk("rare", env, modules, monotonic, guarded, lower_deadline, REQUEST,
    SIGNAL, load, format, pack, unpack, co_resume, co_status, co_yield, co_close, resume)
end
local function rare_globals()
  if rare == nil then
    local ok, built = pcall(build_rare)
    if not ok then
      collectgarbage()
      built = build_rare()
    end
    rare = built
  end
  return rare
end
-- (select(1, ...) passes the results on as they lie on the stack: a Lua function
-- returning `...` would copy them, and with_timeout may return as many as fit.)
local function stand_in(name)
  return function(...) return select(1, rare_globals()[name](...)) end
end

env = {
  ws = modules.ws, json = modules.json, log = modules.log, store = modules.store,
  cache = modules.cache, http = modules.http, time = modules.time, uuid = modules.uuid,
  sleep = sleep, with_timeout = stand_in("with_timeout"), signal = stand_in("signal"),
  diff = stand_in("diff"),
  -- The time page writes await(time.sleep(5)): every call here already waits.
  await = function(...) return ... end,
  EXEC_IDENT = exec_ident,
  unpack = unpack,
  setfenv = stand_in("setfenv"), getfenv = stand_in("getfenv"),
  print = function(...) unwrap(host.write(joined("\t", ...))) end,
  string = string, table = table, math = math, utf8 = utf8,
  coroutine = coroutine, os = safe_os,
  assert = assert, error = error, pcall = pcall, xpcall = xpcall,
  ipairs = ipairs, pairs = pairs, next = next, select = select,
  tonumber = tonumber, tostring = tostring, type = type,
  rawget = rawget, rawset = rawset, rawequal = rawequal, rawlen = rawlen,
  getmetatable = getmetatable,
  _VERSION = _VERSION,
  require = stand_in("require"),
}
env.setmetatable = stand_in("setmetatable")
env._G = env
env.load = stand_in("load")
env.loadstring = stand_in("loadstring")
env.now = now
coroutine.wrap = stand_in("wrap")

-- No script can reach the state's own globals, nor the libraries that only they and
-- the registry hold (io, debug, package, os, lupa's python), and the prelude keeps
-- what it needs of them as locals: the registry lets go of them, which frees them
-- and keeps thousands of states small. Its second slot is the globals table Lua and
-- lupa read (LUA_RIDX_GLOBALS): an empty one from now on. What stays is what Lua
-- names a library function by in its argument errors ("bad argument #1 to
-- 'string.rep'"): the libraries where _LOADED holds them, and the base functions.
local registry = debug.getregistry()
local loaded, base = registry._LOADED, {}
for _, name in ipairs({ "io", "debug", "package", "python", "os" }) do
  loaded[name] = nil
end
for _, name in ipairs({ "require", "dofile", "loadfile", "load", "collectgarbage", "warn",
  "print" }) do
  _G[name] = nil
end
-- (setmetatable aside: scripts reach it only through env.setmetatable, which calls it
-- as an upvalue, so Lua names it '?' in its errors anyway; 16 entries take half the
-- slots 17 would.)
for name, value in next, _G do
  if type(value) == "function" and value ~= setmetatable then base[name] = value end
end
loaded._G, registry[2] = base, {}
setmetatable(kit, { __index = base })
for _, name in ipairs({ "_PRELOAD", "_CLIBS", "FILE*", "_IO_input", "_IO_output" }) do
  registry[name] = nil
end
