-- The time module (Monsta's time page).
-- Built the first time a script reads the module (see sandbox.lua): this chunk runs
-- with the prelude's kit as its environment and returns the module's functions.

local function parsed_time(seconds)
  return { seconds = function() return seconds end }
end

return {
  now = now,
  sleep = sleep,
  parse = function(text)
    local seconds = unwrap(host.time_parse(check_string("time.parse", 1, text)))
    return parsed_time(seconds)
  end,
}
