-- The testee for the Autobahn|Testsuite fuzzing server: a monitor script that
-- echoes every message of every case through ws.connect until the server closes.
local base = os.getenv("AUTOBAHN_URL")
local agent = "wsprobe"

local counter = ws.connect(base .. "/getCaseCount")
local count = tonumber((counter:recv()))
counter:close()

for case = 1, count do
  local session = ws.connect(base .. "/runCase?case=" .. case .. "&agent=" .. agent,
    { binary = true, max_size = 64 * 1024 * 1024, timeout = 60 })
  while true do
    local received, data, kind = pcall(session.recv, session)
    if not received then break end  -- the server closed, or failed the connection
    if not pcall(session.send, session, data, kind) then break end
  end
  session:close()
end

ws.connect(base .. "/updateReports?agent=" .. agent):close()
return count
