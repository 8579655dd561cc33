-- The log module.
-- Built the first time a script reads the module (see sandbox.lua): this chunk runs
-- with the prelude's kit as its environment and returns the module's functions.

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
return log
