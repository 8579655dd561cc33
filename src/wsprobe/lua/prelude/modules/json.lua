-- The json module.
-- Built the first time a script reads the module (see sandbox.lua): this chunk runs
-- with the prelude's kit as its environment and returns the module's functions.

return {
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
