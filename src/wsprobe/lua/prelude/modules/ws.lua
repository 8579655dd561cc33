-- The ws module.
-- Built the first time a script reads the module (see sandbox.lua): this chunk runs
-- with the prelude's kit as its environment and returns the module's functions.

-- Sessions are made by a chunk of their own (session.lua), loaded by the first
-- ws.connect.
local new_session = nil

return {
  connect = function(url, options)
    url, options = check_string("ws.connect", 1, url), check_options("ws.connect", 2, options)
    new_session = new_session or run_chunk("session")
    local session = new_session(request("connect", url, options))
    return session
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
