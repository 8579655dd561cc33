-- A ws session's methods, loaded by its script's first ws.connect (see ws.lua):
-- this chunk runs with the prelude's kit as its environment and returns the
-- function that makes a session of the id Python knows the connection by.

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

return function(id)
  return setmetatable({ [SESSION] = id }, session_meta)
end
